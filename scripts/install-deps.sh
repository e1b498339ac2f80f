#!/usr/bin/env bash
# Installs every Debian 12 package the build, the tests, the benchmarks and the local stack
# need. Idempotent: apt-get skips what is already installed, and the package lists are only
# refreshed when a package is missing.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake pkg-config ninja-build
  prometheus-cpp-dev libcivetweb-dev civetweb libmicrohttpd-dev libhiredis-dev libpq-dev libyaml-cpp-dev
  libspdlog-dev libfmt-dev libgtest-dev libgmock-dev zlib1g-dev libssl-dev
  libsimdjson-dev libcurl4-openssl-dev libmariadb-dev libgnutls28-dev libcrypt-dev
  libxml2-dev libzstd-dev
  # sanitizers and fuzzing
  clang libclang-rt-14-dev
  # real servers for the tests and the local stack
  postgresql redis-server nginx prometheus prometheus-alertmanager mariadb-server
  # real producers: Laravel 8 with PHP's MySQL driver (the MySQL database-queue test)
  php-cli php-mysql php-laravel-framework
  # benchmarks: load generator and the reference exporters
  wrk prometheus-postgres-exporter prometheus-redis-exporter prometheus-mysqld-exporter
  # the job frameworks the queue tests run for real (tests/queues/run.sh; Laravel and php-cli above)
  python3-celery python3-rq ruby-sidekiq php-redis php-pgsql
  # misc tools used by tests and scripts
  curl openssl procps docker-compose chromium
  # bcrypt hashes for the web config tests, made by the tool the docs name (htpasswd)
  apache2-utils
  # the Debian package (tests/package/run.sh) and the status API's schema test
  debhelper dpkg-dev lintian help2man systemd python3-jsonschema
  # the alert backtest (tests/rules/backtest/)
  python3-yaml
  # backups: the S3 client and zstd for the backup tests (pg_dump & co. come with postgresql),
  # node and npm for s3rver (tests/support/TempS3.cpp runs `npm ci` itself)
  s3cmd zstd nodejs npm
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs from another source (NodeSource) provides npm itself.
if [[ " ${missing[*]} " == *" npm "* ]] && command -v npm >/dev/null; then
  missing=("${missing[@]/npm}")
  read -ra missing <<<"${missing[*]}"
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's postgresql/redis/nginx/prometheus packages start system services where an init
# system runs; the tests start their own throwaway servers on other ports, so nothing here
# depends on those services.

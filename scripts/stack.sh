#!/usr/bin/env bash
# The whole apphealth stack from Debian packages, on 127.0.0.1 only, in one state directory:
#
#   PostgreSQL   throwaway cluster (initdb/pg_ctl as the postgres user); role `apphealth` with
#                pg_monitor, its password in a password file; WAL archived to STATE/pg/wal-archive
#   Redis        demo job queues (Celery, Sidekiq; no worker, so nothing waits)
#   MariaDB      only with APPHEALTH_MARIADB=1: a throwaway server (mariadb-install-db, its data
#                in STATE/mariadb) with the user `apphealth` (PROCESS) and Laravel's queue tables
#                holding demo jobs (deploy/mariadb/init, as in the compose stack); the exporter
#                gets a `mysql` target "shop" with the `laravel` preset
#   nginx        a tiny demo web app writing the access log the exporter tails; /ingest/ is
#                proxied to the exporter's beacon listener (ingest.listen_address) with the
#                production recipe of deploy/nginx/, /metrics staying private; the same site
#                over TLS (self-signed) for the HTTP probes' certificate metrics
#   backups      a directory with one verified backup (pg_dumpall + .sha256 sidecar)
#   exporter     build/release/exporter/apphealth_exporter with a config using all of the above,
#                an HTTP probe of the web app and an `ingest:` section
#   Prometheus   Debian `prometheus`, job "apphealth", rule_files = this repo's rules/*.yml
#                (by absolute path), alerting to the Alertmanager below
#   Alertmanager `prometheus-alertmanager` with a copy of alertmanager/alertmanager.yml in which
#                only the local-run items change (see write_alertmanager_config)
#
# HA mode (APPHEALTH_STACK_HA=1) adds, still on 127.0.0.1 only (README "Scaling out"):
#   a second Prometheus   same rules and targets; the pair differ only in external_labels
#                         {replica: a|b}, which alert_relabel_configs drops from alerts; both
#                         send to both Alertmanagers
#   a second Alertmanager same configuration file, clustered with the first (gossip on
#                         127.0.0.1:APPHEALTH_AM_CLUSTER_PORT / _PORT2, each the other's peer)
#   a second exporter     beacons only (an `ingest:` section, nothing else); nginx balances
#                         /ingest/ over both exporters' beacon listeners, Prometheus scrapes each
#
# Usage:
#   scripts/stack.sh run              foreground: start, print URLs, Ctrl-C stops and removes all
#   scripts/stack.sh start            background: start, print the env file path (STATE/stack.env)
#   scripts/stack.sh stop [DIR]       stop everything started in DIR and remove DIR
#   scripts/stack.sh pg-stop|pg-start [DIR]     stop or start PostgreSQL only (for tests)
#   scripts/stack.sh redis-stop|redis-start [DIR]  the same for Redis (its demo queues are lost)
#   scripts/stack.sh backup-age SECONDS [DIR]   rename the newest backup so that its name-parsed
#                                               time is SECONDS in the past (sidecar rewritten)
#   scripts/stack.sh traffic [DIR]    a few requests through nginx and some beacons
# DIR defaults to $APPHEALTH_STACK_DIR. The exporter must be built already (scripts/run.sh does).
#
# STATE/stack.env (sourceable) holds STACK_DIR, the ports, the URLs and the PIDs (HA mode adds
# PROMETHEUS2_*, ALERTMANAGER2_*, EXPORTER2_*).
#
# Options (environment):
#   APPHEALTH_STACK_DIR        state directory (must be empty or absent); default: mktemp -d
#   APPHEALTH_STACK_KEEP=1     `stop` leaves the state directory (logs) in place
#   APPHEALTH_PORT (10045)  APPHEALTH_INGEST_PORT (10046)  APPHEALTH_PG_PORT (15432)  APPHEALTH_REDIS_PORT (16379)
#   APPHEALTH_WEB_PORT (18080)  APPHEALTH_WEB_TLS_PORT (18443)  APPHEALTH_PROMETHEUS_PORT (19090)  APPHEALTH_ALERTMANAGER_PORT (19093)
#   APPHEALTH_MARIADB=1        start the MariaDB above, on APPHEALTH_MARIADB_PORT (13306)
#   APPHEALTH_STACK_HA=1       HA mode (above), with APPHEALTH_PROMETHEUS_PORT2 (19091)
#                              APPHEALTH_ALERTMANAGER_PORT2 (19094)  APPHEALTH_AM_CLUSTER_PORT (19095)
#                              APPHEALTH_AM_CLUSTER_PORT2 (19096)  APPHEALTH_PORT2 (10047)  APPHEALTH_INGEST_PORT2 (10048)
#   APPHEALTH_STACK_FAST=1     test mode: 1 s scrape and evaluation, 1 s collector intervals,
#                              Prometheus --rules.alert.resend-delay=1s
#   APPHEALTH_SCRAPE_INTERVAL / APPHEALTH_EVAL_INTERVAL   (15s / 15s; 1s / 1s when fast)
#   APPHEALTH_COLLECTOR_INTERVAL   interval of every collector (exporter defaults; 1s when fast)
#   APPHEALTH_PAGERDUTY_URL    global.pagerduty_url (default: a closed loopback port, so nothing
#                              leaves the machine; alerts show in the Alertmanager UI)
#   APPHEALTH_SLACK_URL        content of the Slack webhook secret file (same default)
#   APPHEALTH_SMTP_SMARTHOST   global.smtp_smarthost (same default)
#   APPHEALTH_PAGERDUTY_ROUTING_KEY   content of the routing key secret file (a placeholder)
#   APPHEALTH_BACKUP_MAX_AGE   backups[].max_age (exporter default 26h)
#   APPHEALTH_PG_PROBE_QUERY / APPHEALTH_PG_PROBE_LATENCY   probe_query / thresholds.probe_latency
# Test-only shortcuts, each documented where it is applied:
#   APPHEALTH_RULES_FOR        e.g. 3s: Prometheus loads a copy of rules/*.yml in which every
#                              `for:` value is replaced by this (sed on `for:` lines only; the
#                              expressions, labels and annotations stay the repo's own)
#   APPHEALTH_AM_GROUP_INTERVAL  e.g. 5s: every `group_interval:` in the Alertmanager copy (a
#                              resolve is only sent on the group's next flush, 5 min by default)
#   APPHEALTH_AM_PEER_TIMEOUT  HA mode, e.g. 3s: --cluster.peer-timeout (default 15s), how long
#                              the second Alertmanager waits for the first one's notification
#                              log before sending itself. Keep it well below group_interval: a
#                              member whose wait outlasts group_interval notifies from a stale
#                              view (firing again after a resolve).
set -euo pipefail

STACK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_BIN=/usr/lib/postgresql/15/bin
NOWHERE="http://127.0.0.1:9/not-configured"   # discard port: nothing listens, nothing leaves

stack_log() { echo "stack: $*" >&2; }
as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# wait_http URL SECONDS: until URL answers 2xx.
wait_http() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  stack_log "no answer from $1 after $2 s"
  return 1
}

stack_tail_logs() {
  local f
  for f in "$1"/pg/pg.log "$1"/redis.log "$1"/nginx/error.log "$1"/exporter.log "$1"/exporter2.log \
           "$1"/alertmanager/alertmanager.log "$1"/prometheus/prometheus.log \
           "$1"/alertmanager2/alertmanager.log "$1"/prometheus2/prometheus.log; do
    [ -s "$f" ] && { echo "--- $f" >&2; tail -n 8 "$f" >&2; }
  done
  return 0
}

stack_dir_arg() {
  local d=${1:-${APPHEALTH_STACK_DIR:-}}
  if [ -z "$d" ] || [ ! -f "$d/stack.env" ]; then stack_log "no stack.env in '${d}'"; return 1; fi
  echo "$d"
}

write_env() { printf '%s=%q\n' "$1" "$2" >> "$STATE/stack.env"; }

write_alertmanager_config() {
  # The repo's alertmanager.yml with only what a local run must change:
  #   global.pagerduty_url, global.smtp_smarthost  -> loopback (APPHEALTH_PAGERDUTY_URL, ...)
  #   /etc/apphealth/secrets/*                     -> STATE/secrets/* (placeholder values)
  #   templates: templates/*.tmpl                  -> the repo's alertmanager/templates/*.tmpl
  #   group_interval (only with APPHEALTH_AM_GROUP_INTERVAL, tests)
  # Routes, receivers, inhibitions and templates are otherwise the very same.
  local src="$STACK_ROOT/alertmanager/alertmanager.yml" dst="$STATE/alertmanager/alertmanager.yml"
  local pd=${APPHEALTH_PAGERDUTY_URL:-$NOWHERE/pagerduty}
  local smtp=${APPHEALTH_SMTP_SMARTHOST:-127.0.0.1:9}
  mkdir -p "$STATE/secrets" "$STATE/alertmanager/data"
  (umask 077
   printf '%s\n' "${APPHEALTH_PAGERDUTY_ROUTING_KEY:-0123456789abcdef0123456789abcdef}" > "$STATE/secrets/pagerduty_routing_key"
   printf '%s\n' "${APPHEALTH_SLACK_URL:-$NOWHERE/slack}" > "$STATE/secrets/slack_webhook_url"
   printf '%s\n' "placeholder-smtp-password" > "$STATE/secrets/smtp_password")
  local args=(-e "s|^(  pagerduty_url:) .*|\1 $pd|"
              -e "s|^(  smtp_smarthost:) .*|\1 $smtp|"
              -e "s|/etc/apphealth/secrets/|$STATE/secrets/|g"
              -e "s|^(  - )templates/\*\.tmpl$|\1$STACK_ROOT/alertmanager/templates/*.tmpl|")
  if [ -n "${APPHEALTH_AM_GROUP_INTERVAL:-}" ]; then
    args+=(-e "s|^( *group_interval:) .*|\1 $APPHEALTH_AM_GROUP_INTERVAL|")
  fi
  sed -E "${args[@]}" "$src" > "$dst"
  # Fail loudly if the repo's file no longer has the shape these substitutions expect.
  if ! grep -q "^  pagerduty_url: $pd\$" "$dst" || ! grep -q "^  smtp_smarthost: $smtp\$" "$dst" \
     || ! grep -q "$STACK_ROOT/alertmanager/templates/" "$dst" || grep -q /etc/apphealth "$dst"; then
    stack_log "alertmanager.yml changed shape; update write_alertmanager_config"
    return 1
  fi
  amtool check-config "$dst" >/dev/null
}

write_rules() {
  # Without APPHEALTH_RULES_FOR: the repo's rule files themselves, by absolute path.
  # With it (tests): copies in STATE/rules whose `for:` lines are replaced; nothing else.
  RULE_FILES=()
  local f
  for f in "$STACK_ROOT"/rules/*.yml; do
    if [ -n "${APPHEALTH_RULES_FOR:-}" ]; then
      mkdir -p "$STATE/rules"
      sed -E "s/^( +for:) [0-9]+[smhdw]( *(#.*)?)$/\1 $APPHEALTH_RULES_FOR\2/" "$f" > "$STATE/rules/$(basename "$f")"
      RULE_FILES+=("$STATE/rules/$(basename "$f")")
    else
      RULE_FILES+=("$f")
    fi
  done
  promtool check rules "${RULE_FILES[@]}" >/dev/null
}

# write_prometheus_config DIR [REPLICA]: DIR/prometheus.yml; with REPLICA (HA mode) the
# replica's external label, dropped again from the alerts it sends.
write_prometheus_config() {
  local dir=$1 replica=${2:-} ams="'127.0.0.1:$AM_PORT'" exporters="'127.0.0.1:$EXPORTER_PORT'"
  local proms="'127.0.0.1:$PROM_PORT'"
  if [ "$HA" = 1 ]; then
    ams+=", '127.0.0.1:$AM2_PORT'"; exporters+=", '127.0.0.1:$EXPORTER2_PORT'"
    proms+=", '127.0.0.1:$PROM2_PORT'"
  fi
  mkdir -p "$dir/data"
  {
    echo "global:"
    echo "  scrape_interval: $SCRAPE_INTERVAL"
    echo "  evaluation_interval: $EVAL_INTERVAL"
    [ -z "$replica" ] || echo "  external_labels: {replica: $replica}"
    echo "rule_files:"
    local f; for f in "${RULE_FILES[@]}"; do echo "  - $f"; done
    echo "alerting:"
    if [ -n "$replica" ]; then
      echo "  alert_relabel_configs:"
      echo "    - {action: labeldrop, regex: replica}"
    fi
    echo "  alertmanagers:"
    echo "    - static_configs:"
    echo "        - targets: [$ams]"
    echo "scrape_configs:"
    echo "  - job_name: apphealth"
    echo "    scrape_interval: $SCRAPE_INTERVAL"
    echo "    static_configs:"
    echo "      - targets: [$exporters]"
    # rules/alerting.rules.yml watches the alerting path itself (each Prometheus its peer too).
    echo "  - job_name: prometheus"
    echo "    static_configs:"
    echo "      - targets: [$proms]"
    echo "  - job_name: alertmanager"
    echo "    static_configs:"
    echo "      - targets: [$ams]"
  } > "$dir/prometheus.yml"
  promtool check config "$dir/prometheus.yml" >/dev/null
}

write_exporter_config() {
  local iv="" pgextra="" mysql=""
  [ -n "$COLLECTOR_INTERVAL" ] && iv="interval: $COLLECTOR_INTERVAL"
  [ -n "${APPHEALTH_PG_PROBE_QUERY:-}" ] && pgextra+="    probe_query: \"${APPHEALTH_PG_PROBE_QUERY}\""$'\n'
  [ -n "${APPHEALTH_PG_PROBE_LATENCY:-}" ] && pgextra+="    thresholds: {probe_latency: ${APPHEALTH_PG_PROBE_LATENCY}}"$'\n'
  if [ -n "$MARIADB_PORT" ]; then
    mysql="mysql:
  - name: shop
    port: $MARIADB_PORT
    user: apphealth
    database: app
    password_file: $STATE/secrets/mysql_password
    ssl_mode: disabled
    ${iv}
    ${iv:+timeout: ${COLLECTOR_TIMEOUT}}
    sql_metrics:
      - {preset: laravel, queues: [default, emails]}
"
  fi
  cat > "$STATE/apphealth.yml" <<YAML
# Generated by scripts/stack.sh for a local run; every section of the exporter in use.
postgres:
  - name: main
    dsn: "host=127.0.0.1 port=$PG_PORT dbname=postgres user=apphealth"
    password_file: $STATE/secrets/postgres_password
    $iv
    ${iv:+timeout: ${COLLECTOR_TIMEOUT}}
${pgextra}${mysql}redis:
  - name: jobs
    address: 127.0.0.1:$REDIS_PORT
    $iv
    ${iv:+timeout: ${COLLECTOR_TIMEOUT}}
    queues:
      - {preset: celery, queues: [celery]}
      - {preset: sidekiq, queues: [default]}
backups:
  - name: nightly
    directory: $STATE/backups
    glob: "full-backup-*"
    name_time_format: "full-backup-%Y%m%d-%H%M%S"
    verify_checksum: true
    check_complete: true              # pg_dumpall's "dump complete" trailer
    settle_time: 0s                   # make_backup renames finished dumps into place
    retention: {keep_daily: 1, min_count: 1, max_age: 30d}
    ${APPHEALTH_BACKUP_MAX_AGE:+max_age: $APPHEALTH_BACKUP_MAX_AGE}
    $iv
access_logs:
  - name: web
    path: $STATE/nginx/access.log
    format: combined_request_time
    start_at: beginning
    routes: ["/tutors/:id", "/blog/*", "/"]
http_probes:
  - name: web
    url: http://127.0.0.1:$WEB_PORT/
    $iv
    ${iv:+timeout: ${COLLECTOR_TIMEOUT}}
  - name: web-tls
    url: https://127.0.0.1:$WEB_TLS_PORT/
    ca_file: $STATE/nginx/tls.crt
    $iv
    ${iv:+timeout: ${COLLECTOR_TIMEOUT}}
ingest:
  listen_address: "127.0.0.1:$INGEST_PORT"   # beacons only; nginx proxies /ingest/ here
  allowed_origins: ["*"]
  routes: ["/tutors/:id", "/blog/*", "/"]
  rate_per_second: 100
  burst: 200
  trusted_proxies: [127.0.0.1]
  error_log:
    file: $STATE/client-errors.jsonl
YAML
  sed -i '/^ *$/d' "$STATE/apphealth.yml"
  "$EXPORTER_BIN" --config.file="$STATE/apphealth.yml" --check-config >/dev/null
}

write_exporter2_config() {
  # HA mode: a beacon-only exporter, the first one's `ingest:` section on its own ports.
  sed -n '/^ingest:/,$p' "$STATE/apphealth.yml" \
    | sed -E "s|^(  listen_address: \"127\.0\.0\.1:)$INGEST_PORT\"|\1$INGEST2_PORT\"|; s|client-errors\.jsonl|client-errors-2.jsonl|" \
    > "$STATE/apphealth2.yml"
  grep -q "^  listen_address: \"127.0.0.1:$INGEST2_PORT\"" "$STATE/apphealth2.yml" \
    || { stack_log "the ingest section changed shape; update write_exporter2_config"; return 1; }
  "$EXPORTER_BIN" --config.file="$STATE/apphealth2.yml" --check-config >/dev/null
}

write_nginx_config() {
  mkdir -p "$STATE/nginx/tmp"
  cat > "$STATE/nginx/nginx.conf" <<NGINX
worker_processes 1;
pid $STATE/nginx/nginx.pid;
error_log $STATE/nginx/error.log;
events { worker_connections 64; }
http {
  log_format apphealth '\$remote_addr - \$remote_user [\$time_local] "\$request" \$status \$body_bytes_sent "\$http_referer" "\$http_user_agent" \$request_time';
  access_log $STATE/nginx/access.log apphealth;
  client_body_temp_path $STATE/nginx/tmp/body;
  proxy_temp_path $STATE/nginx/tmp/proxy;
  fastcgi_temp_path $STATE/nginx/tmp/fastcgi;
  uwsgi_temp_path $STATE/nginx/tmp/uwsgi;
  scgi_temp_path $STATE/nginx/tmp/scgi;
  default_type text/plain;
  # The recipe's http-level half (deploy/nginx/), pointed at the exporters' beacon listeners
  # (two in HA mode: round robin, each scraped by Prometheus).
  include $STATE/nginx/apphealth-ingest-http.conf;
  server {
    listen 127.0.0.1:$WEB_PORT;
    location = / { return 200 "apphealth demo app\n"; }
    location /tutors/ { return 200 "a tutor\n"; }
    location /blog/ { return 200 "a blog post\n"; }
    # The production recipe for the beacon endpoints, as shipped (deploy/nginx/).
    client_header_timeout 10s;
    keepalive_timeout 15s;
    include $STACK_ROOT/deploy/nginx/apphealth-ingest-location.conf;
    location / { return 404; }
  }
  # The same site over TLS with a self-signed certificate (90 days), for the certificate probe.
  server {
    listen 127.0.0.1:$WEB_TLS_PORT ssl;
    ssl_certificate $STATE/nginx/tls.crt;
    ssl_certificate_key $STATE/nginx/tls.key;
    location / { return 200 "apphealth demo app over TLS\n"; }
  }
}
NGINX
  # The recipe's http-level half with its one upstream server replaced by this stack's beacon
  # listeners, and a per-address request rate for a stack whose every client is 127.0.0.1 (as
  # the exporter's rate_per_second above; the tests send dozens of beacons in a burst).
  local port servers=""
  for port in "$INGEST_PORT" ${INGEST2_PORT:+"$INGEST2_PORT"}; do servers+="    server 127.0.0.1:$port;\n"; done
  awk -v servers="$servers" '/^    server 127\.0\.0\.1:10046;/ { printf "%s", servers; next }
                             { sub(/ rate=10r\/s;/, " rate=1000r/s;"); print }' \
    "$STACK_ROOT/deploy/nginx/apphealth-ingest-http.conf" > "$STATE/nginx/apphealth-ingest-http.conf"
  grep -q "server 127.0.0.1:$INGEST_PORT;" "$STATE/nginx/apphealth-ingest-http.conf" \
    && grep -q " rate=1000r/s;" "$STATE/nginx/apphealth-ingest-http.conf" \
    || { stack_log "deploy/nginx/apphealth-ingest-http.conf changed shape; update write_nginx_config"; return 1; }
  openssl req -x509 -newkey rsa:2048 -nodes -days 90 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$STATE/nginx/tls.key" -out "$STATE/nginx/tls.crt" 2>/dev/null
}

make_backup() {  # make_backup UNIX_TIME: a pg_dumpall named after that time, with its sidecar
  local name
  name="full-backup-$(date -u -d "@$1" +%Y%m%d-%H%M%S).sql"
  pg_dumpall -h 127.0.0.1 -p "$PG_PORT" -U postgres > "$STATE/backups/$name.tmp" 2>/dev/null \
    || echo "-- demo backup" > "$STATE/backups/$name.tmp"
  mv "$STATE/backups/$name.tmp" "$STATE/backups/$name"
  (cd "$STATE/backups" && sha256sum "$name" > "$name.sha256")
}

stack_start() {
  EXPORTER_PORT=${APPHEALTH_PORT:-10045}
  INGEST_PORT=${APPHEALTH_INGEST_PORT:-10046}
  PG_PORT=${APPHEALTH_PG_PORT:-15432}
  REDIS_PORT=${APPHEALTH_REDIS_PORT:-16379}
  WEB_PORT=${APPHEALTH_WEB_PORT:-18080}
  WEB_TLS_PORT=${APPHEALTH_WEB_TLS_PORT:-18443}
  PROM_PORT=${APPHEALTH_PROMETHEUS_PORT:-19090}
  AM_PORT=${APPHEALTH_ALERTMANAGER_PORT:-19093}
  HA=${APPHEALTH_STACK_HA:-0}
  MARIADB_PORT=""
  [ "${APPHEALTH_MARIADB:-0}" = 1 ] && MARIADB_PORT=${APPHEALTH_MARIADB_PORT:-13306}
  local ha_ports=()
  EXPORTER2_PORT="" INGEST2_PORT="" PROM2_PORT="" AM2_PORT="" AM_CLUSTER_PORT="" AM2_CLUSTER_PORT=""
  if [ "$HA" = 1 ]; then
    EXPORTER2_PORT=${APPHEALTH_PORT2:-10047}; INGEST2_PORT=${APPHEALTH_INGEST_PORT2:-10048}
    PROM2_PORT=${APPHEALTH_PROMETHEUS_PORT2:-19091}; AM2_PORT=${APPHEALTH_ALERTMANAGER_PORT2:-19094}
    AM_CLUSTER_PORT=${APPHEALTH_AM_CLUSTER_PORT:-19095}; AM2_CLUSTER_PORT=${APPHEALTH_AM_CLUSTER_PORT2:-19096}
    ha_ports=("$EXPORTER2_PORT" "$INGEST2_PORT" "$PROM2_PORT" "$AM2_PORT" "$AM_CLUSTER_PORT" "$AM2_CLUSTER_PORT")
  fi
  local fast=${APPHEALTH_STACK_FAST:-0}
  RESEND=()
  if [ "$fast" = 1 ]; then
    SCRAPE_INTERVAL=${APPHEALTH_SCRAPE_INTERVAL:-1s}; EVAL_INTERVAL=${APPHEALTH_EVAL_INTERVAL:-1s}
    COLLECTOR_INTERVAL=${APPHEALTH_COLLECTOR_INTERVAL:-1s}
    RESEND=(--rules.alert.resend-delay=1s)
  else
    SCRAPE_INTERVAL=${APPHEALTH_SCRAPE_INTERVAL:-15s}; EVAL_INTERVAL=${APPHEALTH_EVAL_INTERVAL:-15s}
    COLLECTOR_INTERVAL=${APPHEALTH_COLLECTOR_INTERVAL:-}
  fi
  COLLECTOR_TIMEOUT=900ms
  EXPORTER_BIN=${APPHEALTH_EXPORTER:-$STACK_ROOT/build/release/exporter/apphealth_exporter}
  [ -x "$EXPORTER_BIN" ] || { stack_log "$EXPORTER_BIN not built (scripts/run.sh builds it)"; return 1; }

  if [ -n "${APPHEALTH_STACK_DIR:-}" ]; then
    STATE=$APPHEALTH_STACK_DIR
    mkdir -p "$STATE"
    [ -z "$(ls -A "$STATE")" ] || { stack_log "$STATE is not empty"; return 1; }
  else
    STATE=$(mktemp -d /tmp/apphealth-stack-XXXXXX)
  fi
  STATE=$(cd "$STATE" && pwd)
  chmod 755 "$STATE"
  touch "$STATE/.apphealth-stack"   # `stop` only removes directories carrying this marker
  : > "$STATE/stack.env"
  write_env STACK_DIR "$STATE"
  # From here on a failure stops what was started.
  trap 'trap - ERR; stack_log "start failed (line $LINENO)"; stack_tail_logs "$STATE"; stack_stop "$STATE"; exit 1' ERR
  set -E
  local port
  for port in "$PG_PORT" "$REDIS_PORT" "$WEB_PORT" "$WEB_TLS_PORT" "$EXPORTER_PORT" "$INGEST_PORT" "$PROM_PORT" "$AM_PORT" "${ha_ports[@]}" $MARIADB_PORT; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      stack_log "127.0.0.1:$port is already in use (set the APPHEALTH_*_PORT variables)"
      false
    fi
  done

  write_env PG_PORT "$PG_PORT"; write_env PG_BIN "$PG_BIN"; write_env PG_DATA "$STATE/pg/data"
  stack_log "PostgreSQL on 127.0.0.1:$PG_PORT"
  mkdir -p "$STATE/pg"
  [ "$(id -u)" -eq 0 ] && chown postgres "$STATE/pg"
  as_postgres "$PG_BIN/initdb" -D "$STATE/pg/data" -U postgres --auth=trust --no-sync >/dev/null
  # Continuous archiving as a team with an RPO runs it: every segment copied to an archive
  # directory, and a segment switch at least once a minute when there was any write.
  as_postgres mkdir -p "$STATE/pg/wal-archive"
  cat >> "$STATE/pg/data/postgresql.conf" <<CONF
archive_mode = on
archive_command = 'test ! -f $STATE/pg/wal-archive/%f && cp %p $STATE/pg/wal-archive/%f'
archive_timeout = 60
CONF
  pg_start_server
  local password
  password="local-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc \
    "CREATE ROLE apphealth LOGIN PASSWORD '$password'; GRANT pg_monitor TO apphealth;"
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qAtc "SELECT pg_switch_wal()" >/dev/null
  mkdir -p "$STATE/secrets"
  (umask 077; echo "$password" > "$STATE/secrets/postgres_password")

  stack_log "Redis on 127.0.0.1:$REDIS_PORT with demo queues"
  write_env REDIS_PORT "$REDIS_PORT"
  redis_start_server
  local now
  now=$(date +%s)
  # No worker runs here, so nothing waits: a waiting job with no live worker is
  # ApphealthQueueNoWorkers' page. Sidekiq holds a job to retry and one scheduled for tomorrow.
  redis-cli -p "$REDIS_PORT" zadd retry "$now" '{"class":"FlakyWorker"}' >/dev/null
  redis-cli -p "$REDIS_PORT" zadd schedule "$((now + 86400))" '{"class":"HardWorker"}' >/dev/null

  [ -n "$MARIADB_PORT" ] && mariadb_start

  stack_log "a verified backup in $STATE/backups"
  mkdir -p "$STATE/backups"
  write_env BACKUP_DIR "$STATE/backups"
  make_backup "$now"

  write_nginx_config
  write_exporter_config
  write_rules
  if [ "$HA" = 1 ]; then
    write_prometheus_config "$STATE/prometheus" a
    write_prometheus_config "$STATE/prometheus2" b
    write_exporter2_config
  else
    write_prometheus_config "$STATE/prometheus"
  fi
  write_alertmanager_config

  stack_log "nginx (demo web app) on 127.0.0.1:$WEB_PORT"
  /usr/sbin/nginx -p "$STATE/nginx/" -c "$STATE/nginx/nginx.conf" -e "$STATE/nginx/error.log" \
    -g 'daemon off;' >"$STATE/nginx/stdout.log" 2>&1 &
  write_env NGINX_PID $!
  write_env WEB_PORT "$WEB_PORT"; write_env WEB_URL "http://127.0.0.1:$WEB_PORT"
  write_env WEB_TLS_PORT "$WEB_TLS_PORT"
  write_env ACCESS_LOG "$STATE/nginx/access.log"

  stack_log "apphealth_exporter on 127.0.0.1:$EXPORTER_PORT"
  "$EXPORTER_BIN" --config.file="$STATE/apphealth.yml" --web.listen-address="127.0.0.1:$EXPORTER_PORT" \
    >"$STATE/exporter.log" 2>&1 &
  write_env EXPORTER_PID $!
  write_env EXPORTER_PORT "$EXPORTER_PORT"; write_env EXPORTER_URL "http://127.0.0.1:$EXPORTER_PORT"

  if [ "$HA" = 1 ]; then
    stack_log "apphealth_exporter (beacons only) on 127.0.0.1:$EXPORTER2_PORT"
    "$EXPORTER_BIN" --config.file="$STATE/apphealth2.yml" --web.listen-address="127.0.0.1:$EXPORTER2_PORT" \
      >"$STATE/exporter2.log" 2>&1 &
    write_env EXPORTER2_PID $!
    write_env EXPORTER2_PORT "$EXPORTER2_PORT"; write_env EXPORTER2_URL "http://127.0.0.1:$EXPORTER2_PORT"
  fi

  AM_PEER_TIMEOUT=${APPHEALTH_AM_PEER_TIMEOUT:-}
  start_alertmanager ""
  if [ "$HA" = 1 ]; then
    write_env AM_CLUSTER_PORT "$AM_CLUSTER_PORT"; write_env AM2_CLUSTER_PORT "$AM2_CLUSTER_PORT"
    start_alertmanager 2
  fi
  start_prometheus "" "$PROM_PORT"
  if [ "$HA" = 1 ]; then start_prometheus 2 "$PROM2_PORT"; fi

  wait_http "http://127.0.0.1:$WEB_PORT/" 10
  wait_http "http://127.0.0.1:$EXPORTER_PORT/-/ready" 10
  wait_http "http://127.0.0.1:$AM_PORT/-/ready" 20
  wait_http "http://127.0.0.1:$PROM_PORT/-/ready" 30
  if [ "$HA" = 1 ]; then
    wait_http "http://127.0.0.1:$EXPORTER2_PORT/-/ready" 10
    wait_http "http://127.0.0.1:$AM2_PORT/-/ready" 20
    wait_http "http://127.0.0.1:$PROM2_PORT/-/ready" 30
  fi
  trap - ERR
  echo "$STATE/stack.env"
}

# start_alertmanager N: Alertmanager N ("" or 2; state in STATE/alertmanagerN, the one
# configuration file in STATE/alertmanager). In HA mode each one gossips on its own cluster
# port with the other as its peer; without HA an empty --cluster.listen-address turns gossip
# off (it would listen on 0.0.0.0).
start_alertmanager() {
  local n=$1 port=$AM_PORT cluster=(--cluster.listen-address=) gossip="gossip off"
  [ -z "$n" ] || port=$AM2_PORT
  if [ "$HA" = 1 ]; then
    local own=$AM_CLUSTER_PORT peer=$AM2_CLUSTER_PORT
    [ -z "$n" ] || { own=$AM2_CLUSTER_PORT; peer=$AM_CLUSTER_PORT; }
    cluster=(--cluster.listen-address="127.0.0.1:$own" --cluster.peer="127.0.0.1:$peer")
    [ -z "${AM_PEER_TIMEOUT:-}" ] || cluster+=(--cluster.peer-timeout="$AM_PEER_TIMEOUT")
    gossip="gossip 127.0.0.1:$own, peer 127.0.0.1:$peer"
  fi
  stack_log "Alertmanager${n:+ $n} on 127.0.0.1:$port ($gossip)"
  mkdir -p "$STATE/alertmanager$n/data"
  /usr/bin/prometheus-alertmanager --config.file="$STATE/alertmanager/alertmanager.yml" \
    "${cluster[@]}" --web.listen-address="127.0.0.1:$port" \
    --web.external-url="http://127.0.0.1:$port" --storage.path="$STATE/alertmanager$n/data" \
    >"$STATE/alertmanager$n/alertmanager.log" 2>&1 &
  write_env "ALERTMANAGER${n}_PID" $!
  write_env "ALERTMANAGER${n}_PORT" "$port"; write_env "ALERTMANAGER${n}_URL" "http://127.0.0.1:$port"
}

# start_prometheus N PORT: Prometheus N ("" or 2) with STATE/prometheusN/prometheus.yml.
start_prometheus() {
  local n=$1 port=$2
  stack_log "Prometheus${n:+ $n} on 127.0.0.1:$port (scrape $SCRAPE_INTERVAL, evaluation $EVAL_INTERVAL)"
  /usr/bin/prometheus --config.file="$STATE/prometheus$n/prometheus.yml" \
    --storage.tsdb.path="$STATE/prometheus$n/data" --web.listen-address="127.0.0.1:$port" \
    --web.external-url="http://127.0.0.1:$port" "${RESEND[@]}" \
    >"$STATE/prometheus$n/prometheus.log" 2>&1 &
  write_env "PROMETHEUS${n}_PID" $!
  write_env "PROMETHEUS${n}_PORT" "$port"; write_env "PROMETHEUS${n}_URL" "http://127.0.0.1:$port"
}

redis_start_server() {
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --pidfile "$STATE/redis.pid" \
    --dir "$STATE" --logfile "$STATE/redis.log" --save '' --appendonly no
  local i
  for ((i = 0; i < 50; i++)); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  write_env REDIS_PID "$(cat "$STATE/redis.pid")"
}

mariadb_start() {
  stack_log "MariaDB on 127.0.0.1:$MARIADB_PORT with Laravel's queue tables"
  local dir=$STATE/mariadb i password
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown mysql "$dir"
  mariadb-install-db --no-defaults --datadir="$dir/data" --user=mysql --auth-root-authentication-method=normal \
    --skip-test-db --innodb-log-file-size=4M >"$dir/install.log" 2>&1
  /usr/sbin/mariadbd --no-defaults --datadir="$dir/data" --socket="$dir/mysqld.sock" --port="$MARIADB_PORT" \
    --bind-address=127.0.0.1 --user=mysql --pid-file="$dir/mariadbd.pid" --log-error="$dir/error.log" \
    --skip-name-resolve --innodb-log-file-size=4M >"$dir/mariadbd.out" 2>&1 &
  write_env MARIADB_PID $!
  write_env MARIADB_PORT "$MARIADB_PORT"; write_env MARIADB_SOCKET "$dir/mysqld.sock"
  for ((i = 0; i < 300; i++)); do mariadb -S "$dir/mysqld.sock" -uroot -e 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done
  password="local-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  # What the compose stack's MARIADB_DATABASE/MARIADB_USER do, then the same init script.
  mariadb -S "$dir/mysqld.sock" -uroot -e "CREATE DATABASE app CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
    CREATE USER 'apphealth'@'%' IDENTIFIED BY '$password'; GRANT ALL ON app.* TO 'apphealth'@'%';"
  mariadb -S "$dir/mysqld.sock" -uroot < "$STACK_ROOT/deploy/mariadb/init/10-apphealth.sql"
  mkdir -p "$STATE/secrets"
  (umask 077; echo "$password" > "$STATE/secrets/mysql_password")
}

pg_start_server() {
  as_postgres "$PG_BIN/pg_ctl" -D "$STATE/pg/data" -l "$STATE/pg/pg.log" -w \
    -o "-p $PG_PORT -k $STATE/pg -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
}

stack_stop() {
  local dir
  dir=$(stack_dir_arg "${1:-}") || return 0
  # shellcheck disable=SC1091
  ( set +e
    . "$dir/stack.env"
    # Only PIDs that are still ours: every server's command line names the state directory,
    # Redis its port in its process title (a server killed earlier, e.g. by a test, may have
    # left its PID to another process).
    pids=()
    for pid in ${PROMETHEUS_PID:-} ${PROMETHEUS2_PID:-} ${ALERTMANAGER_PID:-} ${ALERTMANAGER2_PID:-} \
               ${EXPORTER_PID:-} ${EXPORTER2_PID:-} ${NGINX_PID:-} ${REDIS_PID:-} ${MARIADB_PID:-}; do
      cmd=$(tr '\0' ' ' 2>/dev/null < "/proc/$pid/cmdline") || continue
      [[ $cmd == *"$dir/"* || ( $pid == "${REDIS_PID:-}" && $cmd == redis-server*":${REDIS_PORT:-}"* ) ]] && pids+=("$pid")
    done
    for pid in "${pids[@]}"; do
      kill "$pid" 2>/dev/null
    done
    for pid in "${pids[@]}"; do
      for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null
    done
    if [ -f "$dir/pg/data/postmaster.pid" ]; then
      as_postgres "$PG_BIN/pg_ctl" -D "$dir/pg/data" -m immediate -w stop >/dev/null 2>&1
    fi
    true )
  if [ "${APPHEALTH_STACK_KEEP:-0}" = 1 ]; then
    stack_log "stopped; state kept in $dir"
  elif [ -f "$dir/.apphealth-stack" ]; then
    rm -rf "$dir"
  fi
  return 0
}

stack_traffic() {
  local dir i
  dir=$(stack_dir_arg "${1:-}")
  # shellcheck disable=SC1091
  . "$dir/stack.env"
  for path in / /tutors/7 /tutors/42 /blog/2024/hello /pricing /missing; do
    curl -s -o /dev/null -A 'Mozilla/5.0 (X11; Linux x86_64) Chrome/120' "$WEB_URL$path" || true
  done
  for i in 1 2 3; do
    curl -s -o /dev/null -X POST -H 'Content-Type: text/plain;charset=UTF-8' \
      -H 'User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/120' --data-binary "[
      {\"name\":\"LCP\",\"value\":$((1800 + i * 100)),\"id\":\"v4-l$i\",\"page\":\"/tutors/$i\",\"pageViewId\":\"pv$i$RANDOM\"},
      {\"name\":\"FCP\",\"value\":$((900 + i * 50)),\"id\":\"v4-f$i\",\"page\":\"/tutors/$i\",\"pageViewId\":\"pv$i\"},
      {\"name\":\"TTFB\",\"value\":$((200 + i * 30)),\"id\":\"v4-t$i\",\"page\":\"/tutors/$i\",\"pageViewId\":\"pv$i\"},
      {\"name\":\"INP\",\"value\":$((120 + i * 20)),\"id\":\"v4-i$i\",\"page\":\"/blog/post-$i\",\"pageViewId\":\"pv$i\"},
      {\"name\":\"CLS\",\"value\":0.0$i,\"id\":\"v4-c$i\",\"page\":\"/\",\"device\":\"mobile\",\"pageViewId\":\"pv$i\"}]" \
      "$WEB_URL/ingest/vitals" || true
  done
  curl -s -o /dev/null -X POST -H 'Content-Type: application/json' --data-binary \
    '[{"message":"TypeError: x is undefined","level":"component","component":"Cart","page":"/tutors/7","severity":"error"}]' \
    "$WEB_URL/ingest/errors" || true
}

stack_backup_age() {
  local seconds=$1 dir newest when
  dir=$(stack_dir_arg "${2:-}")
  newest=$(cd "$dir/backups" && find . -maxdepth 1 -name 'full-backup-*.sql' -printf '%f\n' | sort | tail -n 1)
  when=$(( $(date +%s) - seconds ))
  local name
  name="full-backup-$(date -u -d "@$when" +%Y%m%d-%H%M%S).sql"
  ( cd "$dir/backups"
    mv "$newest" "$name"
    sha256sum "$name" > "$name.sha256"
    rm -f "$newest.sha256" )
}

stack_pg() {
  local dir
  dir=$(stack_dir_arg "${2:-}")
  # shellcheck disable=SC1091
  . "$dir/stack.env"
  STATE=$dir
  case $1 in
    stop) as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null ;;
    start) pg_start_server ;;
  esac
}

stack_redis() {
  local dir i
  dir=$(stack_dir_arg "${2:-}")
  # shellcheck disable=SC1091
  . "$dir/stack.env"
  STATE=$dir
  case $1 in
    stop)
      redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
      for ((i = 0; i < 50; i++)); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 || return 0; sleep 0.1; done
      stack_log "Redis on $REDIS_PORT did not stop"; return 1 ;;
    start) redis_start_server ;;
  esac
}

stack_run() {
  # Not in $(...): the servers must stay children of this shell for `wait -n`.
  stack_start >/dev/null
  # shellcheck disable=SC1091
  . "$STATE/stack.env"
  trap 'trap - EXIT INT TERM; echo; stack_log "stopping"; stack_stop "$STACK_DIR"; exit 0' EXIT INT TERM
  stack_traffic "$STACK_DIR"
  cat <<EOF

  exporter      $EXPORTER_URL/          (metrics: $EXPORTER_URL/metrics)
  Prometheus    $PROMETHEUS_URL/       (alerts: $PROMETHEUS_URL/alerts)
  Alertmanager  $ALERTMANAGER_URL/${PROMETHEUS2_URL:+
  HA peers      Prometheus $PROMETHEUS2_URL/  Alertmanager $ALERTMANAGER2_URL/
                beacon-only exporter $EXPORTER2_URL/ (nginx balances /ingest/ over both)}
  demo web app  $WEB_URL/          (nginx; its access log is tailed; /ingest/ -> exporter's beacon listener)
                https://127.0.0.1:$WEB_TLS_PORT/  (self-signed, for the certificate probe)
  PostgreSQL    127.0.0.1:$PG_PORT     Redis 127.0.0.1:$REDIS_PORT${MARIADB_PORT:+     MariaDB 127.0.0.1:$MARIADB_PORT}
  state, configs and logs in $STACK_DIR

Ctrl-C stops everything and removes the state directory.
EOF
  # Until Ctrl-C, or until one of the long-running servers exits on its own.
  wait -n "$EXPORTER_PID" "$PROMETHEUS_PID" "$ALERTMANAGER_PID" "$NGINX_PID" ${EXPORTER2_PID:+"$EXPORTER2_PID"} \
    ${PROMETHEUS2_PID:+"$PROMETHEUS2_PID"} ${ALERTMANAGER2_PID:+"$ALERTMANAGER2_PID"} || true
  stack_log "a server exited; see the logs in $STACK_DIR"
  tail -n 5 "$STACK_DIR"/exporter.log "$STACK_DIR"/prometheus/prometheus.log \
    "$STACK_DIR"/alertmanager/alertmanager.log 2>/dev/null || true
  exit 1
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case ${1:-} in
    run) stack_run ;;
    start) stack_start ;;
    stop) stack_stop "${2:-}" ;;
    pg-stop) stack_pg stop "${2:-}" ;;
    pg-start) stack_pg start "${2:-}" ;;
    redis-stop) stack_redis stop "${2:-}" ;;
    redis-start) stack_redis start "${2:-}" ;;
    backup-age) stack_backup_age "$2" "${3:-}" ;;
    traffic) stack_traffic "${2:-}" ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 2 ;;
  esac
fi

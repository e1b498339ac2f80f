#!/usr/bin/env bash
# The real-browser test: installs what is missing (Debian's chromium, the pinned npm
# packages), then runs `node --test tests/browser/`. Exits non-zero on any failure.
#
#   tests/browser/run.sh
#   APPHEALTH_EXPORTER=build/exporter/apphealth_exporter tests/browser/run.sh
#
# APPHEALTH_EXPORTER defaults to build/release/exporter/apphealth_exporter (repo-relative).
# Never runs `playwright install`: the browser is /usr/bin/chromium from Debian.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

if [[ ! -x /usr/bin/chromium ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "run.sh: /usr/bin/chromium is missing; install it: sudo apt-get install -y chromium" >&2
    exit 1
  fi
  echo "run.sh: installing Debian's chromium" >&2
  # Another apt/dpkg process may hold the lock: wait for it (up to 10 minutes).
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y chromium >&2
fi

for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is not installed" >&2; exit 1; }
done

# npm ci when node_modules is missing or older than the lock file (npm writes
# node_modules/.package-lock.json on every install).
stamp="$here/node_modules/.package-lock.json"
if [[ ! -f "$stamp" || "$here/package-lock.json" -nt "$stamp" || "$here/package.json" -nt "$stamp" ]]; then
  echo "run.sh: npm ci in tests/browser" >&2
  (cd "$here" && npm ci --no-audit --no-fund >&2)
fi

cd "$repo"
exec node --test tests/browser/

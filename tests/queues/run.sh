#!/usr/bin/env bash
# The job frameworks themselves against the exporter: Celery, RQ, Sidekiq and Laravel from
# Debian, BullMQ 5 and 6 from npm (pinned), each with real workers and a throwaway Redis (and
# PostgreSQL for Laravel's failed jobs), in parallel. Each scenario makes jobs in every state
# through the framework's API, compares the framework's own counts with /metrics (counts
# exactly, ages within 3 s), SIGKILLs a worker and times how long it takes to leave
# apphealth_queue_workers, then stops the exporter and checks it exited cleanly (with a
# sanitizer build: no ASan/UBSan report).
#
#   tests/queues/run.sh [SCENARIO...]       (celery rq sidekiq laravel bullmq5 bullmq6; default all)
#   APPHEALTH_EXPORTER=build/sanitize/exporter/apphealth_exporter tests/queues/run.sh
#
# APPHEALTH_EXPORTER defaults to build/release/exporter/apphealth_exporter (repo-relative).
# Prints every check; exits non-zero if any scenario fails or runs past its 240 s bound.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export APPHEALTH_EXPORTER="${APPHEALTH_EXPORTER:-$repo/build/release/exporter/apphealth_exporter}"
[[ "$APPHEALTH_EXPORTER" = /* ]] || APPHEALTH_EXPORTER="$repo/$APPHEALTH_EXPORTER"
[[ -x "$APPHEALTH_EXPORTER" ]] || { echo "run.sh: $APPHEALTH_EXPORTER is not built" >&2; exit 1; }

# The frameworks and servers, from Debian (also in scripts/install-deps.sh).
packages=(redis-server postgresql python3-celery python3-rq ruby-sidekiq php-laravel-framework php-cli php-redis
          php-pgsql nodejs npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs from another source (NodeSource) provides npm itself.
if [[ " ${missing[*]} " == *" npm "* ]] && command -v npm >/dev/null; then
  missing=("${missing[@]/npm}")
fi
read -ra missing <<<"${missing[*]}"
if ((${#missing[@]})); then
  [[ $(id -u) -eq 0 ]] || { echo "run.sh: missing ${missing[*]}; run as root or install them" >&2; exit 1; }
  echo "run.sh: installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends \
    "${missing[@]}" >&2
fi

# BullMQ 5 and 6 side by side (npm aliases), exactly as locked.
stamp="$here/bullmq/node_modules/.package-lock.json"
if [[ ! -f "$stamp" || "$here/bullmq/package-lock.json" -nt "$stamp" || "$here/bullmq/package.json" -nt "$stamp" ]]; then
  echo "run.sh: npm ci in tests/queues/bullmq" >&2
  (cd "$here/bullmq" && npm ci --no-audit --no-fund >&2)
fi

scenarios=("$@")
((${#scenarios[@]})) || scenarios=(celery rq sidekiq laravel bullmq5 bullmq6)
logs="$(mktemp -d /tmp/apphealth-queues-run.XXXXXX)"
trap 'rm -rf "$logs"' EXIT
start=$SECONDS
declare -A pids=()
for s in "${scenarios[@]}"; do
  case $s in
    bullmq5 | bullmq6) cmd=(bullmq_scenario.py "${s#bullmq}") ;;
    celery | rq | sidekiq | laravel) cmd=("${s}_scenario.py") ;;
    *) echo "run.sh: unknown scenario $s" >&2; exit 2 ;;
  esac
  # /usr/bin/python3: Debian's interpreter, which has the Debian packages (not a pyenv one).
  timeout --kill-after=10 240 /usr/bin/python3 "$here/${cmd[0]}" "${cmd[@]:1}" >"$logs/$s.log" 2>&1 &
  pids[$s]=$!
done
failed=()
for s in "${scenarios[@]}"; do
  if wait "${pids[$s]}"; then status=ok; else status="FAILED (exit $?)"; failed+=("$s"); fi
  echo "=== $s: $status"
  cat "$logs/$s.log"
done
echo "=== queue scenarios: ${#scenarios[@]} run, ${#failed[@]} failed${failed:+ (${failed[*]})}, $((SECONDS - start)) s"
grep -h "liveness:" "$logs"/*.log | sed 's/^\[[^]]*\] /    /' || true
((${#failed[@]} == 0))

# Shared by the benchmarks in bench/; source it right after `set -euo pipefail`. It gives:
#   log / die        timestamped messages on stderr; die exits 1
#   free_port        a free TCP port on 127.0.0.1
#   bench_workdir N  a fresh /tmp/apphealth-bench-N-XXXXXX in WORK, readable by daemons that
#                    drop privileges (nginx workers, postgres)
#   PIDS             processes to stop on exit: each gets TERM, then KILL after 3 s; an nginx
#                    that daemonized is found by $WORK/nginx.pid. WORK is removed on exit.
# Must not be called in a subshell: bench_workdir sets WORK for the exit trap.

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

WORK=""
PIDS=()
bench_workdir() {
  WORK=$(mktemp -d "/tmp/apphealth-bench-$1-XXXXXX")
  chmod 755 "$WORK"
}

bench_cleanup() {
  local rc=$? pid nginx=""
  trap - EXIT INT TERM
  # Read before any TERM: an nginx among PIDS removes its pid file as it stops.
  if [[ -n "$WORK" ]]; then nginx=$(cat "$WORK/nginx.pid" 2>/dev/null || true); fi
  for pid in "${PIDS[@]}" $nginx; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ -n "$WORK" ]]; then rm -rf "$WORK"; fi
  exit "$rc"
}
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# bench_exporter: sets EXPORTER to the binary to measure: the one EXPORTER already names (an
# older build, say), or build/release's, configured and built here as the test command builds
# it. Installs the project's dependencies first (idempotent).
bench_exporter() {
  bash scripts/install-deps.sh
  if [[ -z "${EXPORTER:-}" ]]; then
    cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build build/release --target apphealth_exporter >/dev/null
    EXPORTER=build/release/exporter/apphealth_exporter
  fi
}

# bench_nginx WORKERS CONNECTIONS HTTP: starts an nginx (it daemonizes; stopped on exit through
# $WORK/nginx.pid) with HTTP as the contents of its http block; its logs and temp files are in
# $WORK/nginx, it keeps no access log.
bench_nginx() {
  mkdir -p "$WORK/nginx/logs"
  cat >"$WORK/nginx/nginx.conf" <<NGINX
worker_processes $1;
worker_rlimit_nofile 8192;
pid $WORK/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events { worker_connections $2; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
$3
}
NGINX
  nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf"
}

# bench_nginx_pids: NGINX_PIDS, the master and its workers, for CPU accounting. Call it once
# nginx answers: the master forks its workers after the start command returns.
bench_nginx_pids() {
  NGINX_PIDS=("$(cat "$WORK/nginx.pid")")
  mapfile -t -O 1 NGINX_PIDS < <(ps -o pid= --ppid "${NGINX_PIDS[0]}" | tr -d ' ')
}

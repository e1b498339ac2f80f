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

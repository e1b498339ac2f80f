#!/usr/bin/env bash
# Can apphealth_exporter's access-log collector keep up with nginx at full speed? (issue 4)
#
# Starts a throwaway nginx (1 worker, `return 200`, combined access log) and the exporter
# tailing that log, both on free 127.0.0.1 ports, then:
#   (a) live: wrk -t2 -c64 against nginx for WRK_SECONDS; lines/s nginx wrote vs lines/s the
#       exporter parsed in the same window, as a ratio, then the time to catch up fully and the
#       final ratio (must be exactly 1: no line lost or counted twice);
#   (b) replay: a file of REPLAY_LINES combined lines appears at a second watched path; lines/s
#       parsed from it (the parser's ceiling, bounded by 64 MiB per 100 ms sample);
#   (c) the exporter's CPU time during (a), as a share of one core.
# A ratio below 0.95 at the end of (a) or a final ratio other than 1 prints FAIL but exits 0 (a
# benchmark, not a test); anything that cannot run exits non-zero.
#
# Usage: bench/access_log.sh           (as root on Debian 12)
# Environment: WRK_SECONDS (10), REPLAY_LINES (2000000), SKIP_BUILD=1 (use the existing
#              binary in BUILD), BUILD (build-bench).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-"$ROOT/build-bench"}
BIN="$BUILD/exporter/apphealth_exporter"
WRK_SECONDS=${WRK_SECONDS:-10}
REPLAY_LINES=${REPLAY_LINES:-2000000}
source "$ROOT/bench/lib.sh"

for tool in nginx wrk curl python3; do
  command -v "$tool" >/dev/null || die "$tool missing: apt-get install -y nginx wrk curl python3"
done
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  log "building apphealth_exporter (Release) in $BUILD"
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  ninja -C "$BUILD" apphealth_exporter >/dev/null
fi
[[ -x "$BIN" ]] || die "no binary at $BIN"

bench_workdir log
NGINX_PORT=$(free_port)
EXPORTER_PORT=$(free_port)
LOG="$WORK/access.log"
REPLAY="$WORK/replay.log"

cat >"$WORK/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/error.log;
events { worker_connections 1024; }
http {
  client_body_temp_path $WORK/body; proxy_temp_path $WORK/proxy; fastcgi_temp_path $WORK/fcgi;
  uwsgi_temp_path $WORK/uwsgi; scgi_temp_path $WORK/scgi;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    keepalive_requests 1000000;
    access_log $LOG combined;
    location / { return 200 "ok\n"; }
  }
}
CONF
nginx -p "$WORK/" -c "$WORK/nginx.conf" -e "$WORK/error.log" &
PIDS+=($!)
for _ in $(seq 50); do [[ -s "$WORK/nginx.pid" ]] && break; sleep 0.1; done
[[ -s "$WORK/nginx.pid" ]] || die "nginx did not start: $(cat "$WORK/error.log")"

cat >"$WORK/apphealth.yml" <<CONF
access_logs:
  - name: live
    path: $LOG
    interval: 1s
  - name: replay
    path: $REPLAY
    interval: 100ms
CONF
"$BIN" --config.file="$WORK/apphealth.yml" --web.listen-address="127.0.0.1:$EXPORTER_PORT" --log.level=warn \
  >"$WORK/exporter.log" 2>&1 &
EXPORTER_PID=$!
PIDS+=("$EXPORTER_PID")
METRICS="http://127.0.0.1:$EXPORTER_PORT/metrics"
for _ in $(seq 50); do curl -sf "$METRICS" >/dev/null && break; sleep 0.1; done
curl -sf "$METRICS" >/dev/null || die "exporter did not start: $(cat "$WORK/exporter.log")"
sleep 1.2

lines_of() { # total lines (parsed + unparsable) the exporter counted for log $1
  curl -sf "$METRICS" | awk -v name="$1" '$1 ~ "^apphealth_log_lines_total\\{log=\"" name "\"" { s += $2 } END { printf "%d\n", s }'
}
file_lines() { if [[ -f "$1" ]]; then wc -l <"$1"; else echo 0; fi; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$EXPORTER_PID/stat"; }
now() { date +%s.%N; }

# ------------------------------------------------------------------------------ (a) live
log "(a) wrk -t2 -c64 -d${WRK_SECONDS}s against nginx, exporter tailing its log every 1s"
written0=$(file_lines "$LOG"); parsed0=$(lines_of live); cpu0=$(cpu_ticks); t0=$(now)
wrk -t2 -c64 -d"${WRK_SECONDS}s" "http://127.0.0.1:$NGINX_PORT/ok" >"$WORK/wrk.txt"
t1=$(now); written1=$(file_lines "$LOG"); parsed1=$(lines_of live); cpu1=$(cpu_ticks)
window=$(echo "$t1 - $t0" | bc -l)
written=$((written1 - written0)); parsed=$((parsed1 - parsed0))
(( written > 0 )) || die "nginx wrote nothing: $(cat "$WORK/wrk.txt")"
catch_start=$(now)
while (( $(lines_of live) < written1 )); do
  sleep 0.05
  (( $(echo "$(now) - $catch_start > 30" | bc) )) && break
done
catch_up=$(echo "$(now) - $catch_start" | bc -l)
final=$(lines_of live)
ratio=$(echo "$parsed / $written" | bc -l)
hz=$(getconf CLK_TCK)
cpu_share=$(echo "($cpu1 - $cpu0) / $hz / $window" | bc -l)
printf '\n(a) live, %.1f s window\n' "$window"
printf '    nginx wrote      %10d lines  %10.0f lines/s\n' "$written" "$(echo "$written / $window" | bc -l)"
printf '    exporter parsed  %10d lines  %10.0f lines/s\n' "$parsed" "$(echo "$parsed / $window" | bc -l)"
printf '    ratio parsed/written in the window: %.3f (lag of at most one 1 s interval)\n' "$ratio"
printf '    caught up %.2f s after the load; final ratio %d/%d = %.6f\n' "$catch_up" "$final" "$written1" \
  "$(echo "$final / $written1" | bc -l)"
printf '    exporter CPU during the load: %.1f%% of one core\n' "$(echo "$cpu_share * 100" | bc -l)"
(( $(echo "$ratio >= 0.95" | bc) )) || echo "    FAIL: ratio below 0.95"
(( final == written1 )) || echo "    FAIL: final count differs from the lines nginx wrote"

# ------------------------------------------------------------------------------ (b) replay
log "(b) replay: $REPLAY_LINES lines appear at once"
python3 - "$WORK/replay.tmp" "$REPLAY_LINES" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
line = '203.0.113.{0} - - [23/Nov/2026:13:44:48 +0000] "GET /tutors/{1}?tab=reviews HTTP/1.1" {2} {3} "https://example.com/" "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0 Safari/537.36"\n'
with open(path, "w") as f:
    for i in range(n):
        f.write(line.format(i % 250, i, (200, 200, 200, 404, 500)[i % 5], 100 + i % 5000))
PY
bytes=$(stat -c %s "$WORK/replay.tmp")
r0=$(now)
mv "$WORK/replay.tmp" "$REPLAY"
while (( $(lines_of replay) < REPLAY_LINES )); do
  sleep 0.02
  (( $(echo "$(now) - $r0 > 120" | bc) )) && die "replay not parsed within 120 s"
done
r1=$(now)
rt=$(echo "$r1 - $r0" | bc -l)
printf '\n(b) replay: %d lines (%.0f MB) in %.2f s = %.0f lines/s (%.0f MB/s), sampling every 100 ms\n' \
  "$REPLAY_LINES" "$(echo "$bytes / 1000000" | bc -l)" "$rt" "$(echo "$REPLAY_LINES / $rt" | bc -l)" \
  "$(echo "$bytes / 1000000 / $rt" | bc -l)"
printf '    headroom vs nginx in (a): %.1fx\n' "$(echo "($REPLAY_LINES / $rt) / ($written / $window)" | bc -l)"

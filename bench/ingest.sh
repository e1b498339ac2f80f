#!/usr/bin/env bash
# Beacon ingest throughput: wrk POSTs realistic Web Vitals beacons (one metric, and a batch
# of 5) over keep-alive connections to the exporter and, in the same run, to nginx answering
# `return 204` on the same path (this machine's HTTP ceiling). While the exporter is under
# load, a paced scraper measures /metrics latency. Prints beacons/s, the ratio to nginx and the
# /metrics p99. Only 127.0.0.1; everything started here is stopped on exit.
#
#   bench/ingest.sh            DURATION=10 CONNECTIONS=64 THREADS=2 to change the load
#   EXPORTER=/path/to/apphealth_exporter bench/ingest.sh   measure another build
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}

bench_exporter  # EXPORTER=path: measure another build (an older one, say)

bench_workdir ingest
EXPORTER_PORT=$(free_port)
INGEST_PORT=$(free_port)
NGINX_PORT=$(free_port)

# The layout the README recommends for beacons from the internet: the endpoints on their own
# listener, /metrics on the private one. wrk's connections all come from 127.0.0.1, which is
# therefore a trusted proxy here (exempt from the per-client connection cap).
cat > "$WORK/apphealth.yml" <<YAML
ingest:
  listen_address: "127.0.0.1:$INGEST_PORT"
  max_connections: $CONNECTIONS
  routes: ["/tutors/:id", "/blog/*", "/pricing"]
  rate_per_second: 1000000   # all load comes from one address here
  burst: 1000000
  trusted_proxies: [127.0.0.1]
YAML
"$EXPORTER" --config.file="$WORK/apphealth.yml" \
  --web.listen-address="127.0.0.1:$EXPORTER_PORT" --log.level=warn 2>"$WORK/exporter.log" &
PIDS+=($!)

bench_nginx auto 1024 "
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location /ingest/vitals { return 204; }
  }"

for _ in $(seq 50); do
  curl -sf "http://127.0.0.1:$EXPORTER_PORT/-/ready" >/dev/null && curl -s -o /dev/null "http://127.0.0.1:$NGINX_PORT/" && break
  sleep 0.1
done

# Unique metric ids per request, as real browsers send them (a repeated id is dropped as a
# retry, which would make the benchmark measure the de-duplication shortcut). Each wrk thread
# has its own Lua state, so ids carry the thread's number: random numbers would repeat across
# threads, which all start from the same seed.
make_script() {  # $1 = beacons per request
  cat > "$WORK/beacons$1.lua" <<LUA
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local n = 0
local pages = {"/tutors/42", "/tutors/7", "/blog/2024/launch", "/pricing", "/unknown/page"}
local names = {"LCP", "INP", "CLS", "FCP", "TTFB"}
local values = {2100.4, 184, 0.043, 950.2, 310.7}
local ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
request = function()
  n = n + 1
  local parts = {}
  for i = 1, $1 do
    local k = ((n + i) % 5) + 1
    parts[i] = string.format('{"name":"%s","value":%s,"rating":"good","delta":%s,"id":"v4-%d-%d-%d","navigationType":"navigate","page":"%s","pageViewId":"pv-%d-%d"}',
      names[k], values[k], values[k], tid, n, i, pages[(n % 5) + 1], tid, n)
  end
  local body = parts[1]
  if $1 > 1 then body = "[" .. table.concat(parts, ",") .. "]" end
  return wrk.format("POST", "/ingest/vitals", {["Content-Type"] = "text/plain;charset=UTF-8", ["User-Agent"] = ua}, body)
end
LUA
}
make_script 1
make_script 5

rps() { grep "Requests/sec" | awk '{print $2}'; }
# CPU time (user + system, in clock ticks) of the given processes: on a machine other work
# shares, CPU per request measures a server's cost where req/s mostly measures its share.
cpu_ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
CLK_TCK=$(getconf CLK_TCK)
run_wrk() {  # url script pid...; wrk's summary also goes to stderr so timeouts and errors show.
  local url=$1 script=$2 out before after requests
  shift 2
  before=$(cpu_ticks "$@")
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s "$script" "$url" 2>&1)
  after=$(cpu_ticks "$@")
  requests=$(echo "$out" | awk '/requests in/{print $1}')
  echo "$out" | grep -E "Latency|requests in|Socket errors|Non-2xx" | sed 's/^/    /' >&2
  echo "$out"
  echo "CPU-us-per-request $(python3 -c "print(f'{($after - $before) / $CLK_TCK * 1e6 / $requests:.1f}')")"
}
cpu_per_request() { awk '/^CPU-us-per-request/{print $2}'; }

EXPORTER_PID=${PIDS[0]}
bench_nginx_pids

echo "== nginx return 204 (ceiling)"
NGINX_OUT=$(run_wrk "http://127.0.0.1:$NGINX_PORT/ingest/vitals" "$WORK/beacons1.lua" "${NGINX_PIDS[@]}")
NGINX_RPS=$(echo "$NGINX_OUT" | rps)
NGINX_CPU=$(echo "$NGINX_OUT" | cpu_per_request)
NGINX_OUT5=$(run_wrk "http://127.0.0.1:$NGINX_PORT/ingest/vitals" "$WORK/beacons5.lua" "${NGINX_PIDS[@]}")
NGINX_RPS5=$(echo "$NGINX_OUT5" | rps)
NGINX_CPU5=$(echo "$NGINX_OUT5" | cpu_per_request)

# /metrics latency under load, scraped the way Prometheus does it but 300 times as often: one
# keep-alive connection, a scrape every 50 ms (a back-to-back scraper would take a whole core
# from the exporter and measure the machine, not the scrape path). Prints p50 p99 max in ms.
scrape_latency() {  # seconds
  python3 - "$EXPORTER_PORT" "$1" <<'PY'
import http.client, sys, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
lat, end = [], time.monotonic() + seconds
while time.monotonic() < end:
    t0 = time.perf_counter()
    conn.request("GET", "/metrics")
    r = conn.getresponse(); r.read()
    if r.status != 200: sys.exit(f"/metrics answered {r.status}")
    lat.append((time.perf_counter() - t0) * 1000)
    time.sleep(max(0.0, 0.05 - (time.perf_counter() - t0)))
lat.sort()
q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))]
print(f"{q(0.5):.2f} {q(0.99):.2f} {lat[-1]:.2f} {len(lat)}")
PY
}
measure_exporter() {  # script -> prints "rps p99 non2xx answered-requests cpu-us-per-request"
  scrape_latency "$DURATION" > "$WORK/metrics-latency.txt" &
  local metrics_pid=$!
  local out
  out=$(run_wrk "http://127.0.0.1:$INGEST_PORT/ingest/vitals" "$1" "$EXPORTER_PID")
  wait "$metrics_pid" || { echo "the /metrics scraper failed" >&2; exit 1; }
  local r p99 errors
  r=$(echo "$out" | rps)
  echo "    /metrics while loaded: p50 p99 max (ms), scrapes: $(cat "$WORK/metrics-latency.txt")" >&2
  p99=$(awk '{print $2 "ms"}' "$WORK/metrics-latency.txt")
  errors=$(echo "$out" | awk '/Non-2xx/{print $5}')
  echo "$r ${p99:-n/a} ${errors:-0} $(echo "$out" | awk '/requests in/{print $1}') $(echo "$out" | cpu_per_request)"
}
echo "== apphealth_exporter, single beacon"
read -r EXP_RPS EXP_P99 EXP_ERR EXP_N EXP_CPU < <(measure_exporter "$WORK/beacons1.lua")
echo "== apphealth_exporter, batch of 5"
read -r EXP_RPS5 EXP_P99_5 EXP_ERR5 EXP_N5 EXP_CPU5 < <(measure_exporter "$WORK/beacons5.lua")

METRICS=$(curl -s "http://127.0.0.1:$EXPORTER_PORT/metrics")
COUNT=$(echo "$METRICS" | awk '/^apphealth_web_vitals_.*_count/{s+=$2} END{print s+0}')
DUPLICATES=$(echo "$METRICS" | awk '/^apphealth_ingest_rejected_total.*reason="duplicate"/{s+=$2} END{print s+0}')
python3 - "$NGINX_RPS" "$NGINX_RPS5" "$EXP_RPS" "$EXP_RPS5" "$EXP_P99" "$EXP_P99_5" "$EXP_ERR" "$EXP_ERR5" "$COUNT" \
  "$EXP_N" "$EXP_N5" "$DUPLICATES" "$CONNECTIONS" "$NGINX_CPU" "$NGINX_CPU5" "$EXP_CPU" "$EXP_CPU5" <<'PY'
import sys
n1, n5, e1, e5 = map(float, sys.argv[1:5])
p99, p99_5, err1, err5, count = sys.argv[5:10]
answered = int(sys.argv[10]) + 5 * int(sys.argv[11])
duplicates, connections = int(sys.argv[12]), int(sys.argv[13])
cn1, cn5, ce1, ce5 = map(float, sys.argv[14:18])
print()
print(f"{'':28}{'req/s':>10}{'beacons/s':>11}{'vs nginx':>10}{'CPU us/req':>12}{'vs nginx':>10}{'/metrics p99':>14}{'non-2xx':>9}")
print(f"{'nginx return 204, single':28}{n1:10.0f}{n1:11.0f}{1:10.2f}{cn1:12.1f}{1:10.2f}{'':>14}{'':>9}")
print(f"{'nginx return 204, batch 5':28}{n5:10.0f}{n5*5:11.0f}{1:10.2f}{cn5:12.1f}{1:10.2f}{'':>14}{'':>9}")
print(f"{'apphealth, single beacon':28}{e1:10.0f}{e1:11.0f}{e1/n1:10.2f}{ce1:12.1f}{ce1/cn1:10.2f}{p99:>14}{err1:>9}")
print(f"{'apphealth, batch of 5':28}{e5:10.0f}{e5*5:11.0f}{e5/n5:10.2f}{ce5:12.1f}{ce5/cn5:10.2f}{p99_5:>14}{err5:>9}")
print(f"\nobservations recorded by the exporter: {count}; beacons in the requests wrk saw answered: {answered}"
      f" (up to {2 * connections * 5} more were in flight when wrk stopped); dropped as retries: {duplicates}")
if not answered <= int(count) <= answered + 2 * connections * 5:
    sys.exit("ERROR: the exporter's observation count does not match the beacons sent")
ratio = e1 / n1
print(f"target: ratio >= 0.5 (goal 0.8): {'PASS' if ratio >= 0.5 else 'MISS'} ({ratio:.2f}); /metrics p99 < 50 ms: see column")
print("CPU us/req: the server's own CPU time (user + system) per request; on a shared machine a steadier\n"
      "measure of its cost than req/s, which mostly measures the share of the cores it got")
PY

#!/usr/bin/env bash
# Beacon latency under slow-client attacks, with and without the nginx recipe in deploy/nginx/.
# An honest client posts a beacon every 100 ms (a new connection each) while slow clients hold
# sockets open, dribbling one byte a second; prints per scenario how many slow sockets the
# server held and the honest beacons' p50 / p99 / max latency and failures. Only 127.0.0.1
# (slow clients come from 127.0.x.y source addresses); everything started here is stopped on
# exit.
#
#   bench/attack.sh                       ATTACK_SECONDS=12 per scenario
#   EXPORTER=/path/to/apphealth_exporter bench/attack.sh   another build (e.g. an older one)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
ATTACK_SECONDS=${ATTACK_SECONDS:-12}

bench_exporter
ulimit -n "$(ulimit -Hn)"

bench_workdir attack
EXPORTER_PORT=$(free_port)
INGEST_PORT=$(free_port)
NGINX_PORT=$(free_port)

# The recommended layout (own beacon listener), default limits; generous rates, as every
# client here is on loopback.
cat > "$WORK/apphealth.yml" <<YAML
ingest:
  listen_address: "127.0.0.1:$INGEST_PORT"
  routes: ["/tutors/:id"]
  rate_per_second: 100000
  burst: 100000
  trusted_proxies: [127.0.0.1]
YAML
"$EXPORTER" --config.file="$WORK/apphealth.yml" --web.listen-address="127.0.0.1:$EXPORTER_PORT" \
  --log.level=warn 2>"$WORK/exporter.log" &
PIDS+=($!)

sed "s/server 127.0.0.1:10046;/server 127.0.0.1:$INGEST_PORT;/" deploy/nginx/apphealth-ingest-http.conf > "$WORK/ingest-http.conf"
bench_nginx 1 4096 "
  include $WORK/ingest-http.conf;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    client_header_timeout 10s;
    keepalive_timeout 15s;
    include $PWD/deploy/nginx/apphealth-ingest-location.conf;
    location / { return 404; }
  }"

for _ in $(seq 50); do
  curl -sf "http://127.0.0.1:$EXPORTER_PORT/-/ready" >/dev/null && curl -s -o /dev/null "http://127.0.0.1:$NGINX_PORT/" && break
  sleep 0.1
done

python3 - "$EXPORTER_PORT" "$INGEST_PORT" "$NGINX_PORT" "$ATTACK_SECONDS" <<'PY'
import asyncio, http.client, socket, sys, threading, time, urllib.request

exporter_port, ingest_port, nginx_port, seconds = map(int, sys.argv[1:5])
BEACON = b'{"name":"LCP","value":1200,"page":"/tutors/1"}'

def honest(port, stop, out):
    """A beacon every 100 ms on a new connection; latency in ms, None for a failure."""
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("POST", "/ingest/vitals", BEACON, {"Content-Type": "text/plain"})
            r = c.getresponse(); r.read(); c.close()
            out.append((time.perf_counter() - t0) * 1000 if r.status == 204 else None)
        except OSError:
            out.append(None)
        stop.wait(max(0.0, 0.1 - (time.perf_counter() - t0)))

async def slow_crowd(port, count, sources, prefix, drip, stop_at, state):
    """`count` connections dribbling `drip` a byte a second; state["open"] counts those the
    server has not closed (an EOF or a reset on the read side)."""
    conns = []
    async def watch(r):
        try:
            while await r.read(1024):
                pass
        except OSError:
            pass
        state["open"] -= 1
    for i in range(count):
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(
                "127.0.0.1", port, local_addr=(sources[i % len(sources)], 0)), 3)
        except (OSError, asyncio.TimeoutError):
            continue
        w.write(prefix)
        conns.append(w)
        state["connected"] += 1
        state["open"] += 1
        asyncio.ensure_future(watch(r))
    n = 0
    while time.monotonic() < stop_at:
        await asyncio.sleep(1)
        for w in conns:
            if not w.is_closing():
                w.write(drip[n % len(drip):n % len(drip) + 1])
        n += 1
    for w in conns:
        w.close()

def src(first, count):
    return [f"127.0.{(first + i) // 250 + 1}.{(first + i) % 250 + 1}" for i in range(count)]

def exporter_connections():
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{exporter_port}/metrics", timeout=10).read().decode()
        for line in body.splitlines():
            if line.startswith("apphealth_ingest_connections "):
                return int(float(line.split()[1]))
    except OSError:
        pass
    return None

HEAD = b"POST /ingest/vitals HTTP/1.1\r\nHost: x\r\n"
BODY = b"POST /ingest/vitals HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n"

def scenario(name, port, crowds):
    stop, lat = threading.Event(), []
    t = threading.Thread(target=honest, args=(port, stop, lat)); t.start()
    stop_at = time.monotonic() + seconds
    state = {"connected": 0, "open": 0}
    seen = {}
    async def attack():
        async def sample():
            # 7 s in: before the exporter's 10 s request deadline closes the first of them.
            await asyncio.sleep(min(7, seconds * 0.6))
            seen["held"] = state["open"]
            seen["exporter"] = await asyncio.get_running_loop().run_in_executor(None, exporter_connections)
        await asyncio.gather(sample(), *(slow_crowd(port, *c, stop_at, state) for c in crowds),
                             asyncio.sleep(seconds))
    asyncio.run(attack())
    stop.set(); t.join()
    ok = sorted(x for x in lat if x is not None)
    q = lambda f: ok[min(len(ok) - 1, int(f * len(ok)))] if ok else float("nan")
    exp = "-" if seen.get("exporter") is None else str(seen["exporter"])
    print(f"{name:50}{state['connected']:>6}{seen['held']:>6}{exp:>6}{len(lat):>6}{len(lat) - len(ok):>6}"
          f"{q(0.5):>9.1f}{q(0.99):>9.1f}{(ok[-1] if ok else float('nan')):>9.1f}")

print(f"{'':50}{'slow':>6}{'held':>6}{'exp.':>6}{'sent':>6}{'fail':>6}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
scenario("direct, no attack", ingest_port, [])
scenario("direct, 300 slow headers from one address", ingest_port, [(300, ["127.0.9.1"], HEAD, b"X-a: b\r\n")])
scenario("direct, 1000 slow headers from 100 addresses", ingest_port, [(1000, src(0, 100), HEAD, b"X-a: b\r\n")])
scenario("direct, 1000 slow bodies from 100 addresses", ingest_port, [(1000, src(100, 100), BODY, b"b")])
scenario("nginx recipe, no attack", nginx_port, [])
scenario("nginx recipe, 1000 slow headers+bodies, 100 addr.", nginx_port,
         [(500, src(200, 50), HEAD, b"X-a: b\r\n"), (500, src(250, 50), BODY, b"b")])
print("\nslow: slow sockets connected; held: of those, open 7 s into the attack; exp.: the exporter's open beacon\n"
      "connections then (apphealth_ingest_connections; '-' for builds without it); sent/fail: honest beacons, a\n"
      "failure being no 204 within 10 s; latencies of the answered ones")
PY

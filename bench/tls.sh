#!/usr/bin/env bash
# What does TLS from --web.config.file cost a scrape? The exporter's main listener with TLS
# (libmicrohttpd + GnuTLS) against nginx serving the same /metrics bytes over TLS with the same
# certificate (the reference), and against the exporter without TLS (CivetWeb). For each:
#   (a) keep-alive scrapes, as Prometheus makes them: one connection, a request every 20 ms;
#   (b) a new connection and full handshake per scrape (no session resumption: what every
#       scrape costs when connections are not kept, and what a flood of handshakes costs);
# printing p50 / p99 latency, and for (b) the server's CPU time per handshake (user + system
# from /proc, the steadier figure on a shared machine), with the ratios exporter / nginx.
# The certificate is ECDSA P-256 (certbot's default key type since 2.0). Only 127.0.0.1;
# everything started here is stopped on exit.
#
#   bench/tls.sh                     SECONDS_EACH=10 per measurement
#   EXPORTER=/path/to/apphealth_exporter bench/tls.sh   another build
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
SECONDS_EACH=${SECONDS_EACH:-10}

bench_exporter
for tool in nginx openssl python3 curl; do
  command -v "$tool" >/dev/null || die "$tool missing: apt-get install -y nginx openssl python3 curl"
done

bench_workdir tls
TLS_PORT=$(free_port)
PLAIN_PORT=$(free_port)
NGINX_PORT=$(free_port)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
chmod 644 "$WORK/key.pem"  # nginx workers run as www-data

# A config with a backup collector, so /metrics has collector families besides the exporter's own.
mkdir -p "$WORK/backups"
printf 'backups:\n  - name: nightly\n    directory: %s\n    glob: "*.sql.gz"\n' "$WORK/backups" >"$WORK/apphealth.yml"
printf 'tls_server_config:\n  cert_file: %s\n  key_file: %s\n' "$WORK/cert.pem" "$WORK/key.pem" >"$WORK/web.yml"
"$EXPORTER" --config.file="$WORK/apphealth.yml" --web.config.file="$WORK/web.yml" \
  --web.listen-address="127.0.0.1:$TLS_PORT" --log.level=warn 2>"$WORK/exporter-tls.log" &
PIDS+=($!)
TLS_PID=$!
"$EXPORTER" --config.file="$WORK/apphealth.yml" --web.listen-address="127.0.0.1:$PLAIN_PORT" \
  --log.level=warn 2>"$WORK/exporter-plain.log" &
PIDS+=($!)
PLAIN_PID=$!
for _ in $(seq 50); do
  curl -sfk "https://127.0.0.1:$TLS_PORT/-/ready" >/dev/null && curl -sf "http://127.0.0.1:$PLAIN_PORT/-/ready" >/dev/null && break
  sleep 0.1
done
curl -sfk "https://127.0.0.1:$TLS_PORT/metrics" >"$WORK/metrics.txt" || die "no TLS scrape: $(cat "$WORK/exporter-tls.log")"

mkdir -p "$WORK/www"
cp "$WORK/metrics.txt" "$WORK/www/metrics"
bench_nginx 1 1024 "
  default_type text/plain;
  server {
    listen 127.0.0.1:$NGINX_PORT ssl;
    ssl_certificate $WORK/cert.pem;
    ssl_certificate_key $WORK/key.pem;
    ssl_session_cache off;
    ssl_session_tickets off;
    root $WORK/www;
  }"
for _ in $(seq 50); do curl -sfk "https://127.0.0.1:$NGINX_PORT/metrics" >/dev/null && break; sleep 0.1; done
bench_nginx_pids

# measure MODE URL PID...: prints "p50_ms p99_ms cpu_us_per_request requests" (MODE keep|new).
measure() {
  local mode=$1 url=$2
  shift 2
  python3 - "$mode" "$url" "$SECONDS_EACH" "$(getconf CLK_TCK)" "$@" <<'PY'
import http.client, ssl, sys, time, urllib.parse
mode, url, seconds, clk = sys.argv[1], urllib.parse.urlsplit(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
pids = sys.argv[5:]
def ticks():
    t = 0
    for p in pids:
        with open("/proc/%s/stat" % p) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        t += int(fields[11]) + int(fields[12])
    return t
# One client context: building one loads the CA store (tens of ms), which would swamp the
# servers' share. http.client never offers a saved session, so every handshake is a full one.
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
def connect():
    if url.scheme == "https":
        return http.client.HTTPSConnection(url.hostname, url.port, timeout=10, context=ctx)
    return http.client.HTTPConnection(url.hostname, url.port, timeout=10)
lat, conn = [], None
before, end = ticks(), time.monotonic() + seconds
while time.monotonic() < end:
    t0 = time.perf_counter()
    if conn is None or mode == "new":
        if conn is not None:
            conn.close()
        conn = connect()
    conn.request("GET", url.path)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200 or not body:
        sys.exit("status %d from %s" % (r.status, sys.argv[2]))
    lat.append((time.perf_counter() - t0) * 1000)
    if mode == "keep":
        time.sleep(0.02)
after = ticks()
lat.sort()
print("%.2f %.2f %.0f %d" % (lat[len(lat) // 2], lat[min(len(lat) - 1, len(lat) * 99 // 100)],
                             (after - before) / clk * 1e6 / len(lat), len(lat)))
PY
}

log "measuring, ${SECONDS_EACH} s each; /metrics is $(stat -c %s "$WORK/metrics.txt") bytes"
read -r k_tls_50 k_tls_99 _ k_tls_n < <(measure keep "https://127.0.0.1:$TLS_PORT/metrics" "$TLS_PID")
read -r k_ng_50 k_ng_99 _ k_ng_n < <(measure keep "https://127.0.0.1:$NGINX_PORT/metrics" "${NGINX_PIDS[@]}")
read -r k_pl_50 k_pl_99 _ k_pl_n < <(measure keep "http://127.0.0.1:$PLAIN_PORT/metrics" "$PLAIN_PID")
read -r n_tls_50 n_tls_99 n_tls_cpu n_tls_n < <(measure new "https://127.0.0.1:$TLS_PORT/metrics" "$TLS_PID")
read -r n_ng_50 n_ng_99 n_ng_cpu n_ng_n < <(measure new "https://127.0.0.1:$NGINX_PORT/metrics" "${NGINX_PIDS[@]}")
read -r n_pl_50 n_pl_99 n_pl_cpu n_pl_n < <(measure new "http://127.0.0.1:$PLAIN_PORT/metrics" "$PLAIN_PID")

ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
printf '\n%-44s %9s %9s %12s %9s\n' "" "p50 ms" "p99 ms" "CPU us/req" "requests"
printf '%-44s %9s %9s %12s %9s\n' "keep-alive, apphealth TLS" "$k_tls_50" "$k_tls_99" "" "$k_tls_n"
printf '%-44s %9s %9s %12s %9s\n' "keep-alive, nginx TLS (same bytes)" "$k_ng_50" "$k_ng_99" "" "$k_ng_n"
printf '%-44s %9s %9s %12s %9s\n' "keep-alive, apphealth without TLS" "$k_pl_50" "$k_pl_99" "" "$k_pl_n"
printf '%-44s %9s %9s %12s %9s\n' "new connection each, apphealth TLS" "$n_tls_50" "$n_tls_99" "$n_tls_cpu" "$n_tls_n"
printf '%-44s %9s %9s %12s %9s\n' "new connection each, nginx TLS (same bytes)" "$n_ng_50" "$n_ng_99" "$n_ng_cpu" "$n_ng_n"
printf '%-44s %9s %9s %12s %9s\n' "new connection each, apphealth without TLS" "$n_pl_50" "$n_pl_99" "$n_pl_cpu" "$n_pl_n"
echo
echo "ratios apphealth TLS / nginx TLS: keep-alive p50 $(ratio "$k_tls_50" "$k_ng_50"), p99 $(ratio "$k_tls_99" "$k_ng_99");" \
     "new connection p50 $(ratio "$n_tls_50" "$n_ng_50"), p99 $(ratio "$n_tls_99" "$n_ng_99"), server CPU per handshake $(ratio "$n_tls_cpu" "$n_ng_cpu")"
echo "TLS cost on apphealth (TLS / without): keep-alive p50 $(ratio "$k_tls_50" "$k_pl_50"); new connection p50 $(ratio "$n_tls_50" "$n_pl_50")," \
     "server CPU $(ratio "$n_tls_cpu" "$n_pl_cpu")"

#!/usr/bin/env bash
# Benchmark of apphealth_exporter's collectors against the Debian Go exporters (issue 2).
#
# Starts a throwaway Redis (1,000 list keys queue:0000..queue:0999 of 1-500 elements), a
# throwaway PostgreSQL and a throwaway MariaDB on free 127.0.0.1 ports, then measures in the
# same run:
#   (a) time to sample the 1,000 queues: apphealth_collector_duration_seconds of the redis target
#       (median of SAMPLES samples) vs prometheus-redis-exporter's scrape with -check-keys on
#       the same keys (its own redis_exporter_last_scrape_duration_seconds and curl's time_total);
#       for the `key: "queue:*"` pattern and for 1,000 explicit keys (-check-single-keys);
#       (a3) and for 1,000 queues read through the framework presets (200 each of celery, rq,
#       sidekiq, laravel, bullmq, in Redis db 1: every state, oldest-job ages, 20 Sidekiq
#       processes with running jobs, 40 RQ workers, Celery's unacked hash and worker question,
#       BullMQ's priority levels and CLIENT LIST), against the same redis_exporter figure, and
#       how long the presets' read scripts hold Redis per sample and per call;
#   (b) RSS (VmRSS) after warm-up and after 1,000 scrapes, apphealth vs both Go exporters;
#   (c) /metrics latency: p50/p99 of 1,000 keep-alive scrapes (curl) and of `wrk -c1 -t1`;
#   (a') one sample of a PostgreSQL and of a MySQL target vs one scrape of
#   prometheus-postgres-exporter / prometheus-mysqld-exporter (default collectors) on the same server;
#   (b') for scale, the RSS floor of a C program that only holds one connection with Debian's
#   libpq (and one that also initialises libcurl and libcrypto).
# Targets (issue 2): sampling <= 1/5 of redis_exporter's scrape time; RSS <= 1/2 of the lighter
# Go exporter. A missed target prints FAIL but exits 0 (a benchmark, not a test); anything that
# cannot run exits non-zero. Everything listens on 127.0.0.1 only and is cleaned up on exit.
#
# Usage: bench/collectors.sh            (as root on Debian 12)
# Environment: SAMPLES (20), SCRAPES (1000), WRK_SECONDS (5), KEYS (1000), INTERVAL (500ms),
#              SKIP_DEPS=1 (do not check/install packages), SKIP_BUILD=1 (use the existing binary),
#              APPHEALTH_ENV="VAR=value ..." (extra environment for apphealth_exporter only, for
#              what-if runs such as APPHEALTH_ENV=MALLOC_ARENA_MAX=2).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD="$ROOT/build-bench"
BIN="$BUILD/exporter/apphealth_exporter"
SAMPLES=${SAMPLES:-20}
SCRAPES=${SCRAPES:-1000}
WRK_SECONDS=${WRK_SECONDS:-5}
KEYS=${KEYS:-1000}
INTERVAL=${INTERVAL:-500ms}
PG_BIN=/usr/lib/postgresql/15/bin
REDIS_EXPORTER=/usr/bin/prometheus-redis-exporter
PG_EXPORTER=/usr/bin/prometheus-postgres-exporter
MYSQLD_EXPORTER=/usr/bin/prometheus-mysqld-exporter

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

# ---------------------------------------------------------------------------------------------
# Cleanup: every process we start is recorded by PID; the temp dir goes last.
WORK=""
PIDS=()
REDIS_PID=""
PG_STARTED=0
MARIADB_PID=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ -n "$REDIS_PID" ]]; then stop_pid "$REDIS_PID"; fi  # daemonized: not in PIDS
  if [[ -n "$MARIADB_PID" ]]; then kill -KILL "$MARIADB_PID" 2>/dev/null || true; wait "$MARIADB_PID" 2>/dev/null || true; fi
  if [[ "$PG_STARTED" == 1 ]]; then
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  if [[ $rc -ne 0 && -n "$WORK" && -d "$WORK" ]]; then
    local f
    for f in "$WORK"/*.log "$WORK"/pg/pg.log; do
      [[ -s "$f" ]] || continue
      log "--- tail of $f"
      tail -n 15 "$f" >&2 || true
    done
  fi
  if [[ -n "$WORK" ]]; then rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[[ $(id -u) -eq 0 ]] || die "run as root (apt-get, runuser for PostgreSQL)"

# ---------------------------------------------------------------------------------------------
# 1. Dependencies and build.
ensure_deps() {
  local pkgs=(prometheus-redis-exporter prometheus-postgres-exporter prometheus-mysqld-exporter mariadb-server
              redis-server postgresql wrk curl
              cmake ninja-build g++)
  local missing=() p
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  log "installing ${missing[*]}"
  # Another process may hold the dpkg/apt lock: wait for it (DPkg::Lock::Timeout) and retry.
  local attempt
  for attempt in 1 2 3 4 5 6; do
    if DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends \
         "${missing[@]}" >&2; then
      return 0
    fi
    if [[ $attempt -eq 1 ]]; then
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update >&2 || true
    fi
    log "apt-get failed (attempt $attempt), retrying in 10 s"
    sleep 10
  done
  die "could not install ${missing[*]}"
}
[[ "${SKIP_DEPS:-0}" == 1 ]] || ensure_deps
for b in "$REDIS_EXPORTER" "$PG_EXPORTER" "$MYSQLD_EXPORTER" "$PG_BIN/initdb" "$PG_BIN/pg_ctl" /usr/sbin/mariadbd; do
  [[ -x "$b" ]] || die "$b not found"
done
for b in redis-server redis-cli wrk curl ss awk runuser; do
  command -v "$b" >/dev/null || die "$b not found"
done

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  log "building apphealth_exporter (Release) in $BUILD"
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DAPPHEALTH_BUILD_TESTS=OFF >/dev/null \
    || die "cmake configure failed"
  ninja -C "$BUILD" apphealth_exporter >/dev/null || die "build failed"
fi
[[ -x "$BIN" ]] || die "$BIN not built"

# ---------------------------------------------------------------------------------------------
# Helpers.
WORK=$(mktemp -d /tmp/apphealth-bench.XXXXXX)
chmod 755 "$WORK"  # the postgres user must reach $WORK/pg

declare -A USED_PORTS=()
free_port() {
  local p listening
  listening=$(ss -Htan | awk '{print $4}' | sed 's/.*://' | sort -u)
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 40000))
    [[ -n "${USED_PORTS[$p]:-}" ]] && continue
    grep -qx "$p" <<<"$listening" && continue
    USED_PORTS[$p]=1
    echo "$p"
    return 0
  done
  die "no free port found"
}

# wait_http URL SECONDS PID: until URL answers 200, or fail if PID dies.
wait_http() {
  local url=$1 secs=$2 pid=${3:-}
  local deadline=$((SECONDS + secs))
  while ((SECONDS < deadline)); do
    curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null && return 0
    [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null && die "process $pid died before $url answered"
    sleep 0.1
  done
  die "$url did not answer within ${secs}s"
}

# "RssAnon Pss" in kB: the process's own memory, and its proportional share of shared pages.
mem_detail() {
  local anon pss
  anon=$(awk '/^RssAnon:/ {print $2}' "/proc/$1/status" 2>/dev/null) || die "process $1 is gone"
  pss=$(awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null) || die "process $1 is gone"
  echo "$anon $pss"
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || die "process $1 is gone"; }

# median / percentile of numbers on stdin (nearest-rank).
percentile() {
  sort -g | awk -v q="$1" '{v[NR]=$1} END {if (NR==0) {print "nan"; exit} i=int(q*NR+0.999999); if (i<1) i=1; if (i>NR) i=NR; print v[i]}'
}

# metric_value TEXT NAME LABELMATCH: the value of the first series of NAME whose line contains LABELMATCH.
metric_value() {
  awk -v name="$2" -v match_="$3" '
    index($0, name) == 1 && (substr($0, length(name)+1, 1) == "{" || substr($0, length(name)+1, 1) == " ") \
      && (match_ == "" || index($0, match_) > 0) { print $NF; exit }' <<<"$1"
}

# start_bg LOGFILE CMD...: start CMD in the background as a direct child (its PID, not a subshell).
LAST_PID=""
start_bg() {
  local logfile=$1
  shift
  "$@" >"$logfile" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for i in "${!PIDS[@]}"; do
    if [[ "${PIDS[$i]}" == "$pid" ]]; then unset 'PIDS[i]'; fi
  done
}

# ---------------------------------------------------------------------------------------------
# 2. Throwaway Redis and PostgreSQL.
REDIS_PORT=$(free_port)
log "starting redis-server on 127.0.0.1:$REDIS_PORT"
mkdir -p "$WORK/redis"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --pidfile "$WORK/redis/r.pid" \
  --dir "$WORK/redis" --save '' --appendonly no --logfile "$WORK/redis.log" >/dev/null
for _ in $(seq 50); do [[ -s "$WORK/redis/r.pid" ]] && break; sleep 0.1; done
REDIS_PID=$(cat "$WORK/redis/r.pid" 2>/dev/null) || die "redis-server did not start"
RCLI=(redis-cli -h 127.0.0.1 -p "$REDIS_PORT")
for _ in $(seq 50); do [[ "$("${RCLI[@]}" PING 2>/dev/null)" == PONG ]] && break; sleep 0.1; done
[[ "$("${RCLI[@]}" PING 2>/dev/null)" == PONG ]] || die "redis-server does not answer"

log "filling Redis with $KEYS list keys"
# RESP protocol for redis-cli --pipe; lengths 1..500 (an empty list does not exist in Redis).
awk -v n="$KEYS" 'BEGIN {
  srand(42); total = 0
  for (k = 0; k < n; k++) {
    key = sprintf("queue:%04d", k)
    len = 1 + int(rand() * 500); total += len
    printf "*%d\r\n$3\r\nDEL\r\n$%d\r\n%s\r\n", 2, length(key), key
    printf "*%d\r\n$5\r\nRPUSH\r\n$%d\r\n%s\r\n", len + 2, length(key), key
    for (j = 0; j < len; j++) {
      v = sprintf("{\"class\":\"Job\",\"id\":%d,\"enqueued_at\":%d}", k * 1000 + j, 1700000000 + j)
      printf "$%d\r\n%s\r\n", length(v), v
    }
  }
  print total > "/dev/stderr"
}' >"$WORK/fill.resp" 2>"$WORK/expected_total"
"${RCLI[@]}" --pipe <"$WORK/fill.resp" >"$WORK/fill.log" 2>&1 || die "redis-cli --pipe failed"
EXPECTED_TOTAL=$(cat "$WORK/expected_total")
DBSIZE=$("${RCLI[@]}" DBSIZE)
[[ "$DBSIZE" == "$KEYS" ]] || die "Redis holds $DBSIZE keys, expected $KEYS"
log "Redis: $DBSIZE keys, $EXPECTED_TOTAL list elements"

# The framework layouts for (a3), in db 1: what the presets read, as the frameworks write it
# (tests/queues/ checks the layouts against the real frameworks).
PRESET_QUEUES=$((KEYS / 5))
log "filling Redis db 1 with $PRESET_QUEUES queues for each of celery, rq, sidekiq, laravel, bullmq"
NOW=$(date +%s)
awk -v n="$PRESET_QUEUES" -v now="$NOW" -v enqueued="$(date -u -d "@$((NOW - 60))" +%Y-%m-%dT%H:%M:%S.000000Z)" '
  function out(count,   i) {  # RESP of a[1..count]
    printf "*%d\r\n", count
    for (i = 1; i <= count; i++) printf "$%d\r\n%s\r\n", length(a[i]), a[i]
  }
  function cmd2(c, k) { a[1] = c; a[2] = k; out(2) }
  function cmd3(c, k, v) { a[1] = c; a[2] = k; a[3] = v; out(3) }
  function cmd4(c, k, f, v) { a[1] = c; a[2] = k; a[3] = f; a[4] = v; out(4) }
  BEGIN {
    srand(7)
    for (q = 0; q < n; q++) {
      len = 1 + int(rand() * 100)
      # celery: the queue list, two held messages (one prefetched, one with an ETA)
      c = sprintf("cq%03d", q)
      for (j = 0; j < len; j++) cmd3("LPUSH", c, sprintf("{\"body\":\"W10=\",\"headers\":{\"id\":\"%s-%d\",\"eta\":null},\"properties\":{\"delivery_info\":{\"exchange\":\"\",\"routing_key\":\"%s\"}}}", c, j, c))
      cmd4("HSET", "unacked", c "-r", sprintf("[{\"headers\":{\"id\":\"%s-r\",\"eta\":null}},\"\",\"%s\"]", c, c))
      cmd4("HSET", "unacked", c "-s", sprintf("[{\"headers\":{\"id\":\"%s-s\",\"eta\":\"2999-01-01T00:00:00+00:00\"}},\"\",\"%s\"]", c, c))
      # rq: ids, the head job hash, every registry, a worker set
      r = sprintf("rq%03d", q)
      for (j = 0; j < len; j++) cmd3("RPUSH", "rq:queue:" r, r "-" j)
      cmd4("HSET", "rq:job:" r "-0", "enqueued_at", enqueued)
      split("wip finished failed canceled scheduled deferred", regs, " ")
      for (g = 1; g <= 6; g++) { a[1] = "ZADD"; a[2] = "rq:" regs[g] ":" r; a[3] = now + 600; a[4] = r "-x" g; out(4) }
      cmd3("SADD", "rq:workers:" r, sprintf("rq:worker:w%02d", q % 40))
      # sidekiq: JSON jobs, oldest at the tail
      k = sprintf("sq%03d", q)
      for (j = 0; j < len; j++) cmd3("LPUSH", "queue:" k, sprintf("{\"class\":\"Job\",\"queue\":\"%s\",\"jid\":\"%d\",\"enqueued_at\":%d.5}", k, j, now - 100 + j))
      # laravel: payloads, delayed and reserved
      l = sprintf("lq%03d", q)
      for (j = 0; j < len; j++) cmd3("RPUSH", "queues:" l, sprintf("{\"uuid\":\"%s-%d\",\"job\":\"Handler\",\"attempts\":0}", l, j))
      a[1] = "ZADD"; a[2] = "queues:" l ":delayed"; a[3] = now + 60; a[4] = l "-d"; out(4)
      a[1] = "ZADD"; a[2] = "queues:" l ":reserved"; a[3] = now + 90; a[4] = l "-r"; out(4)
      # bullmq: ids and job hashes, two priority levels, the other states, metrics
      b = sprintf("bq%03d", q)
      for (j = 0; j < len; j++) { cmd3("LPUSH", "bull:" b ":wait", j); cmd4("HSET", "bull:" b ":" j, "timestamp", sprintf("%.0f", (now - 100 + j) * 1000)) }
      for (j = 1; j <= 2; j++) {
        a[1] = "ZADD"; a[2] = "bull:" b ":prioritized"; a[3] = sprintf("%.0f", j * 4294967296 + j); a[4] = "p" j; out(4)
        cmd4("HSET", "bull:" b ":p" j, "timestamp", sprintf("%.0f", (now - 200) * 1000))
      }
      split("delayed failed completed waiting-children", states, " ")
      for (g = 1; g <= 4; g++) { a[1] = "ZADD"; a[2] = "bull:" b ":" states[g]; a[3] = now; a[4] = "x" g; out(4) }
      cmd4("HSET", "bull:" b ":metrics:completed", "count", 1000 + q)
    }
    # 40 RQ workers, each listed on 5 queues; 20 Sidekiq processes with 5 running jobs each.
    for (w = 0; w < 40; w++) {
      a[1] = "HSET"; a[2] = sprintf("rq:worker:w%02d", w); a[3] = "birth"; a[4] = "2024-01-01T00:00:00Z"; a[5] = "state"; a[6] = (w % 2 ? "busy" : "idle"); out(6)
      cmd3("SADD", "rq:workers", sprintf("rq:worker:w%02d", w))
    }
    for (p = 0; p < 20; p++) {
      id = sprintf("host:%d:abc", p)
      cmd3("SADD", "processes", id)
      queues = ""
      for (q = p; q < n; q += 20) queues = queues (queues == "" ? "" : ",") sprintf("\"sq%03d\"", q)
      a[1] = "HSET"; a[2] = id; a[3] = "info"; a[4] = "{\"hostname\":\"host\",\"concurrency\":5,\"queues\":[" queues "]}"
      a[5] = "busy"; a[6] = 5; a[7] = "beat"; a[8] = now; a[9] = "quiet"; a[10] = "false"; out(10)
      for (t = 0; t < 5; t++) cmd4("HSET", id ":work", "tid" t, sprintf("{\"queue\":\"sq%03d\",\"payload\":\"{}\",\"run_at\":%d}", p, now))
    }
    cmd3("SET", "stat:processed", 123456)
    cmd3("SET", "stat:failed", 789)
    for (j = 0; j < 5; j++) { a[1] = "ZADD"; a[2] = "retry"; a[3] = now + j; a[4] = "r" j; out(4) }
  }' >"$WORK/presets.resp"
"${RCLI[@]}" -n 1 --pipe <"$WORK/presets.resp" >"$WORK/presets.log" 2>&1 || die "redis-cli --pipe (presets) failed"
PRESET_KEYS=$("${RCLI[@]}" -n 1 DBSIZE)
log "Redis db 1: $PRESET_KEYS keys"

PG_PORT=$(free_port)
log "starting PostgreSQL 15 on 127.0.0.1:$PG_PORT"
mkdir -p "$WORK/pg"
chown postgres: "$WORK/pg"
runuser -u postgres -- "$PG_BIN/initdb" -D "$WORK/pg/data" -U postgres --auth=trust >"$WORK/initdb.log" 2>&1 \
  || die "initdb failed"
PG_STARTED=1
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/pg.log" -w \
  -o "-p $PG_PORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null \
  || die "pg_ctl start failed"
PG_DSN="host=127.0.0.1 port=$PG_PORT dbname=postgres user=postgres sslmode=disable"

MARIADB_PORT=$(free_port)
log "starting MariaDB on 127.0.0.1:$MARIADB_PORT"
mkdir -p "$WORK/mariadb"
chown mysql: "$WORK/mariadb"
mariadb-install-db --no-defaults --datadir="$WORK/mariadb/data" --user=mysql --auth-root-authentication-method=normal \
  --skip-test-db --innodb-log-file-size=4M >"$WORK/mariadb-install.log" 2>&1 || die "mariadb-install-db failed"
MARIADB_SOCKET="$WORK/mariadb/mysqld.sock"
/usr/sbin/mariadbd --no-defaults --datadir="$WORK/mariadb/data" --socket="$MARIADB_SOCKET" --port="$MARIADB_PORT" \
  --bind-address=127.0.0.1 --user=mysql --pid-file="$WORK/mariadb/pid" --log-error="$WORK/mariadb.log" \
  --skip-name-resolve --innodb-log-file-size=4M >/dev/null 2>&1 &
MARIADB_PID=$!
for _ in $(seq 600); do mariadb -S "$MARIADB_SOCKET" -uroot -e 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done
mariadb -S "$MARIADB_SOCKET" -uroot -e 'select 1' >/dev/null 2>&1 || die "MariaDB does not answer"
PG_URL="postgresql://postgres@127.0.0.1:$PG_PORT/postgres?sslmode=disable"

# ---------------------------------------------------------------------------------------------
# 3. Configs and exporters.
write_config() {  # write_config FILE pattern|explicit
  {
    echo "postgres:"
    echo "  - name: bench"
    echo "    dsn: \"$PG_DSN\""
    echo "    interval: $INTERVAL"
    echo "    timeout: 400ms"
    echo "mysql:"
    echo "  - name: bench-mysql"   # database target names are unique across postgres and mysql
    echo "    socket: $MARIADB_SOCKET"
    echo "    user: root"
    echo "    interval: $INTERVAL"
    echo "    timeout: 400ms"
    echo "redis:"
    echo "  - name: bench"
    echo "    address: \"127.0.0.1:$REDIS_PORT\""
    echo "    interval: $INTERVAL"
    echo "    timeout: 400ms"
    echo "    max_keys_per_pattern: $KEYS"
    echo "    queues:"
    if [[ $2 == pattern ]]; then
      echo "      - key: \"queue:*\""
    else
      awk -v n="$KEYS" 'BEGIN { for (k = 0; k < n; k++) printf "      - key: \"queue:%04d\"\n", k }'
    fi
  } >"$1"
}
write_config "$WORK/pattern.yml" pattern
write_config "$WORK/explicit.yml" explicit
write_preset_config() {  # FILE
  local names
  {
    echo "redis:"
    echo "  - name: presets"
    echo "    address: \"127.0.0.1:$REDIS_PORT\""
    echo "    db: 1"
    echo "    interval: $INTERVAL"
    echo "    timeout: 400ms"
    echo "    queues:"
    for p in celery:cq rq:rq sidekiq:sq laravel:lq bullmq:bq; do
      names=$(awk -v n="$PRESET_QUEUES" -v pre="${p#*:}" 'BEGIN { for (q = 0; q < n; q++) printf "%s%s%03d", (q ? ", " : ""), pre, q }')
      echo "      - preset: ${p%%:*}"
      echo "        queues: [$names]"
    done
  } >"$1"
}
write_preset_config "$WORK/presets.yml"
"$BIN" --config.file="$WORK/pattern.yml" --check-config >"$WORK/check.log" 2>&1 || die "pattern config invalid"
"$BIN" --config.file="$WORK/explicit.yml" --check-config >>"$WORK/check.log" 2>&1 || die "explicit config invalid"
"$BIN" --config.file="$WORK/presets.yml" --check-config >>"$WORK/check.log" 2>&1 || die "preset config invalid"

start_apphealth() {  # start_apphealth CONFIG NAME -> AH_PID, AH_URL
  local port
  port=$(free_port)
  local extra_env=()
  read -ra extra_env <<<"${APPHEALTH_ENV:-}"
  start_bg "$WORK/$2.log" env "${extra_env[@]}" "$BIN" --config.file="$1" --web.listen-address="127.0.0.1:$port" --log.level=warn
  AH_PID=$LAST_PID
  AH_URL="http://127.0.0.1:$port/metrics"
  wait_http "http://127.0.0.1:$port/-/healthy" 15 "$AH_PID"
}

start_redis_exporter() {  # start_redis_exporter NAME FLAG VALUE -> RE_PID, RE_URL
  local port
  port=$(free_port)
  start_bg "$WORK/$1.log" "$REDIS_EXPORTER" -redis.addr "redis://127.0.0.1:$REDIS_PORT" \
    -web.listen-address "127.0.0.1:$port" "$2" "$3"
  RE_PID=$LAST_PID
  RE_URL="http://127.0.0.1:$port/metrics"
  wait_http "$RE_URL" 30 "$RE_PID"
}

# Distinct samples of the redis collector: poll until SAMPLES new sample durations are seen
# (keyed by the last-success timestamp), skipping the first (connect + warm-up).
collect_apphealth_samples() {  # URL TARGETLABEL OUTFILE
  local url=$1 match=$2 out=$3 text ts dur last="" skipped=0 deadline=$((SECONDS + 120))
  : >"$out"
  while (($(wc -l <"$out") < SAMPLES)); do
    ((SECONDS < deadline)) || die "no $SAMPLES samples within 120 s from $url"
    text=$(curl -fsS --max-time 5 "$url") || die "scrape of $url failed"
    ts=$(metric_value "$text" apphealth_collector_last_success_timestamp_seconds "$match")
    dur=$(metric_value "$text" apphealth_collector_duration_seconds "$match")
    if [[ -n "$ts" && "$ts" != 0 && "$ts" != "$last" ]]; then
      last=$ts
      if ((skipped < 1)); then skipped=1; else echo "$dur" >>"$out"; fi
    fi
    sleep 0.05
  done
}

# Sizes of the checked keys must be all there: count and sum of the series.
verify_apphealth_keys() {  # URL
  local text count sum
  text=$(curl -fsS --max-time 5 "$1")
  count=$(grep -c '^apphealth_queue_jobs{.*queue="queue:[0-9]*"' <<<"$text" || true)
  sum=$(awk '/^apphealth_queue_jobs\{.*queue="queue:[0-9]*"/ {s += $NF} END {printf "%d", s}' <<<"$text")
  [[ "$count" == "$KEYS" && "$sum" == "$EXPECTED_TOTAL" ]] \
    || die "apphealth reports $count queue series summing to $sum, expected $KEYS / $EXPECTED_TOTAL"
  grep -q '^apphealth_collector_up{.*collector="postgres".*} 1' <<<"$text" \
    || die "apphealth's postgres collector is not up"
  grep -q '^apphealth_collector_up{.*collector="mysql".*} 1' <<<"$text" \
    || die "apphealth's mysql collector is not up"
}

verify_redis_exporter_keys() {  # URL
  local text count sum
  text=$(curl -fsS --max-time 60 "$1")
  count=$(grep -c '^redis_key_size{.*key="queue:[0-9]*"' <<<"$text" || true)
  sum=$(awk '/^redis_key_size\{.*key="queue:[0-9]*"/ {s += $NF} END {printf "%d", s}' <<<"$text")
  [[ "$count" == "$KEYS" && "$sum" == "$EXPECTED_TOTAL" ]] \
    || die "redis_exporter reports $count redis_key_size series summing to $sum, expected $KEYS / $EXPECTED_TOTAL"
}

# Scrape time of a Go exporter: curl time_total and its own last-scrape duration metric.
collect_go_scrapes() {  # URL OWNMETRIC CURLOUT OWNOUT
  local url=$1 metric=$2 text t i
  : >"$3"
  : >"$4"
  curl -fsS -o /dev/null --max-time 60 "$url"  # warm-up
  for i in $(seq "$SAMPLES"); do
    t=$(curl -fsS -o "$WORK/scrape.txt" -w '%{time_total}' --max-time 60 "$url") || die "scrape of $url failed"
    echo "$t" >>"$3"
    # Each scrape reports the duration of that scrape's own collection.
    text=$(cat "$WORK/scrape.txt")
    metric_value "$text" "$metric" "" >>"$4"
  done
}

# SCRAPES keep-alive scrapes with one curl; latencies in seconds, one a line.
scrape_loop() {  # URL OUTFILE
  local cfg="$WORK/curl.cfg" i
  : >"$cfg"
  for ((i = 0; i < SCRAPES; i++)); do printf 'url = "%s"\noutput = "/dev/null"\n' "$1" >>"$cfg"; done
  curl -fsS --max-time 120 -w '%{http_code} %{time_total}\n' -K "$cfg" >"$2.raw" || die "scrape loop on $1 failed"
  awk '$1 != 200 {bad++} {print $2} END {if (bad) exit 1}' "$2.raw" >"$2" || die "non-200 answers from $1"
  [[ $(wc -l <"$2") == "$SCRAPES" ]] || die "scrape loop on $1: $(wc -l <"$2") answers, expected $SCRAPES"
}

# wrk -c1 -t1 --latency: p50, p99 (ms) and requests/s.
wrk_run() {  # URL -> "p50ms p99ms rps"
  local out
  out=$(wrk -c1 -t1 -d"${WRK_SECONDS}s" --latency --timeout 10s "$1" 2>&1) || die "wrk on $1 failed: $out"
  awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) } $1 == "Requests/sec:" { rps = $2 }
    /Non-2xx/ { bad = 1 }
    END { if (bad) exit 1; printf "%.3f %.3f %.0f\n", p50, p99, rps }' <<<"$out" || die "wrk on $1: non-2xx answers"
}

ms() { awk -v v="$1" 'BEGIN { printf "%.3f", v * 1000 }'; }
mb() { awk -v v="$1" 'BEGIN { printf "%.1f", v / 1024 }'; }

# ---------------------------------------------------------------------------------------------
# 4. Measurements.
declare -A R=()  # results

# (a1) Pattern "queue:*": apphealth vs redis_exporter -check-keys.
log "apphealth with key: \"queue:*\" (interval $INTERVAL)"
start_apphealth "$WORK/pattern.yml" apphealth-pattern
AH1_PID=$AH_PID AH1_URL=$AH_URL
collect_apphealth_samples "$AH1_URL" 'collector="redis' "$WORK/ah_pattern.dur"
verify_apphealth_keys "$AH1_URL"
collect_apphealth_samples "$AH1_URL" 'collector="postgres' "$WORK/ah_pg.dur"
collect_apphealth_samples "$AH1_URL" 'collector="mysql' "$WORK/ah_mysql.dur"
R[ah_pattern]=$(percentile 0.5 <"$WORK/ah_pattern.dur")
R[ah_pg]=$(percentile 0.5 <"$WORK/ah_pg.dur")
R[ah_mysql]=$(percentile 0.5 <"$WORK/ah_mysql.dur")

log "redis_exporter -check-keys=queue:*"
start_redis_exporter redis-exporter-pattern -check-keys 'queue:*'
RE1_PID=$RE_PID RE1_URL=$RE_URL
verify_redis_exporter_keys "$RE1_URL"
collect_go_scrapes "$RE1_URL" redis_exporter_last_scrape_duration_seconds "$WORK/re_pattern.curl" "$WORK/re_pattern.own"
R[re_pattern_curl]=$(percentile 0.5 <"$WORK/re_pattern.curl")
R[re_pattern_own]=$(percentile 0.5 <"$WORK/re_pattern.own")

log "redis_exporter without key checks (baseline: INFO etc. only)"
start_redis_exporter redis-exporter-nokeys -check-keys ''
collect_go_scrapes "$RE_URL" redis_exporter_last_scrape_duration_seconds "$WORK/re_nokeys.curl" "$WORK/re_nokeys.own"
R[re_nokeys_own]=$(percentile 0.5 <"$WORK/re_nokeys.own")
stop_pid "$RE_PID"

log "postgres_exporter"
PGE_PORT=$(free_port)
start_bg "$WORK/postgres-exporter.log" env DATA_SOURCE_NAME="$PG_URL" "$PG_EXPORTER" \
  --web.listen-address="127.0.0.1:$PGE_PORT"
PGE_PID=$LAST_PID
PGE_URL="http://127.0.0.1:$PGE_PORT/metrics"
wait_http "$PGE_URL" 30 "$PGE_PID"
grep -q '^pg_up 1' <(curl -fsS "$PGE_URL") || die "postgres_exporter reports pg_up != 1"
collect_go_scrapes "$PGE_URL" pg_exporter_last_scrape_duration_seconds "$WORK/pge.curl" "$WORK/pge.own"
R[pge_curl]=$(percentile 0.5 <"$WORK/pge.curl")
R[pge_own]=$(percentile 0.5 <"$WORK/pge.own")

# mysqld_exporter runs its collectors in parallel on a fresh connection per scrape and has no
# total-duration metric: "own" is its slowest collector (connection included), curl the scrape.
log "mysqld_exporter"
MYE_PORT=$(free_port)
start_bg "$WORK/mysqld-exporter.log" env DATA_SOURCE_NAME="root@unix($MARIADB_SOCKET)/" "$MYSQLD_EXPORTER" \
  --web.listen-address="127.0.0.1:$MYE_PORT"
MYE_PID=$LAST_PID
MYE_URL="http://127.0.0.1:$MYE_PORT/metrics"
wait_http "$MYE_URL" 30 "$MYE_PID"
grep -q '^mysql_up 1' <(curl -fsS "$MYE_URL") || die "mysqld_exporter reports mysql_up != 1"
: >"$WORK/mye.curl"
: >"$WORK/mye.own"
for _ in $(seq "$SAMPLES"); do
  t=$(curl -fsS -o "$WORK/scrape.txt" -w '%{time_total}' --max-time 60 "$MYE_URL") || die "scrape of $MYE_URL failed"
  echo "$t" >>"$WORK/mye.curl"
  awk '/^mysql_exporter_collector_duration_seconds/ { if ($NF > m) m = $NF } END { print m + 0 }' "$WORK/scrape.txt" >>"$WORK/mye.own"
done
R[mye_curl]=$(percentile 0.5 <"$WORK/mye.curl")
R[mye_own]=$(percentile 0.5 <"$WORK/mye.own")
stop_pid "$MYE_PID"

# (b, c) RSS after warm-up, 1,000 scrapes each (latency), RSS after; then wrk.
# apphealth keeps sampling in the background meanwhile (interval $INTERVAL).
for name in ah re pge; do
  case $name in
    ah) pid=$AH1_PID url=$AH1_URL ;;
    re) pid=$RE1_PID url=$RE1_URL ;;
    pge) pid=$PGE_PID url=$PGE_URL ;;
  esac
  for _ in $(seq 10); do curl -fsS -o /dev/null --max-time 60 "$url"; done
  R[${name}_rss_warm]=$(rss_kb "$pid")
  log "$SCRAPES scrapes of $url"
  scrape_loop "$url" "$WORK/$name.lat"
  R[${name}_rss_after]=$(rss_kb "$pid")
  mem_out=$(mem_detail "$pid")
  read -r "R[${name}_anon]" "R[${name}_pss]" <<<"$mem_out"
  R[${name}_p50]=$(percentile 0.5 <"$WORK/$name.lat")
  R[${name}_p99]=$(percentile 0.99 <"$WORK/$name.lat")
  R[${name}_bytes]=$(curl -fsS --max-time 60 "$url" | wc -c)
  log "wrk -c1 -t1 -d${WRK_SECONDS}s $url"
  wrk_out=$(wrk_run "$url")
  read -r "R[${name}_wrk50]" "R[${name}_wrk99]" "R[${name}_rps]" <<<"$wrk_out"
  R[${name}_rss_wrk]=$(rss_kb "$pid")
done
stop_pid "$RE1_PID"
stop_pid "$PGE_PID"
stop_pid "$AH1_PID"

# (a2) 1,000 explicit keys: apphealth vs redis_exporter -check-single-keys.
log "apphealth with $KEYS explicit keys"
start_apphealth "$WORK/explicit.yml" apphealth-explicit
collect_apphealth_samples "$AH_URL" 'collector="redis' "$WORK/ah_explicit.dur"
verify_apphealth_keys "$AH_URL"
R[ah_explicit]=$(percentile 0.5 <"$WORK/ah_explicit.dur")
R[ah2_rss]=$(rss_kb "$AH_PID")
stop_pid "$AH_PID"

# (a3) 1,000 queues through the presets, every state and the workers: apphealth vs the same
# redis_exporter figure as (a1) (1,000 queues; redis_exporter can only read key lengths).
log "apphealth with $((PRESET_QUEUES * 5)) queues through the presets (db 1)"
start_apphealth "$WORK/presets.yml" apphealth-presets
"${RCLI[@]}" CONFIG RESETSTAT >/dev/null
collect_apphealth_samples "$AH_URL" 'collector="redis' "$WORK/ah_presets.dur"
# How long the read scripts hold Redis (a script blocks every other client while it runs):
# calls and microseconds of EVALSHA/EVAL since the reset, over the samples taken meanwhile
# (each sample sends one PING).
read -r R[script_calls] R[script_usec] R[script_samples] < <("${RCLI[@]}" INFO commandstats | tr -d '\r' \
  | awk -F'[:=,]' '/^cmdstat_eval(sha)?:/ {c += $3; u += $5} /^cmdstat_ping:/ {n = $3} END {printf "%d %d %d\n", c, u, n}')
PRESET_TEXT=$(curl -fsS --max-time 5 "$AH_URL")
PRESET_SERIES=$(grep -c '^apphealth_queue_jobs{target="presets"' <<<"$PRESET_TEXT" || true)
PRESET_WORKERS=$(grep -c '^apphealth_queue_workers{target="presets"' <<<"$PRESET_TEXT" || true)
[[ "$PRESET_SERIES" -ge $((PRESET_QUEUES * 5 * 3)) && "$PRESET_WORKERS" -ge $((PRESET_QUEUES * 4)) ]] \
  || die "apphealth (presets) exports $PRESET_SERIES job series and $PRESET_WORKERS worker series"
grep -q '^apphealth_collector_up{collector="redis",target="presets"} 1' <<<"$PRESET_TEXT" \
  || die "apphealth's preset collector is not up"
R[ah_presets]=$(percentile 0.5 <"$WORK/ah_presets.dur")
stop_pid "$AH_PID"

log "redis_exporter -check-single-keys (${KEYS} keys)"
SINGLE_KEYS=$(awk -v n="$KEYS" 'BEGIN { for (k = 0; k < n; k++) printf "%squeue:%04d", (k ? "," : ""), k }')
start_redis_exporter redis-exporter-single -check-single-keys "$SINGLE_KEYS"
verify_redis_exporter_keys "$RE_URL"
collect_go_scrapes "$RE_URL" redis_exporter_last_scrape_duration_seconds "$WORK/re_single.curl" "$WORK/re_single.own"
R[re_single_curl]=$(percentile 0.5 <"$WORK/re_single.curl")
R[re_single_own]=$(percentile 0.5 <"$WORK/re_single.own")
stop_pid "$RE_PID"

# (b') The floor under any exporter built on Debian's shared libpq: a C program that holds one
# connection to the same PostgreSQL and does nothing else, and one that also initialises
# libcurl and hashes with libcrypto (the other two C libraries apphealth must link).
log "floor: C programs linking only Debian's libpq (+ libcurl, libcrypto)"
cat >"$WORK/floor.c" <<'CEOF'
#include <libpq-fe.h>
#include <stdio.h>
#include <unistd.h>
#ifdef WITH_CURL
#include <curl/curl.h>
#include <openssl/evp.h>
#endif
int main(int argc, char** argv) {
  PGconn* conn = PQconnectdb(argv[1]);
  if (argc < 2 || PQstatus(conn) != CONNECTION_OK) return 1;
#ifdef WITH_CURL
  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURL* easy = curl_easy_init();
  unsigned char md[32];
  unsigned int n;
  EVP_Digest("x", 1, md, &n, EVP_sha256(), NULL);
#endif
  puts("connected");
  fflush(stdout);
  pause();
  return 0;
}
CEOF
gcc -O2 -I"$(pg_config --includedir)" "$WORK/floor.c" -o "$WORK/floor_pq" -lpq || die "cannot build the libpq floor program"
gcc -O2 -DWITH_CURL -I"$(pg_config --includedir)" "$WORK/floor.c" -o "$WORK/floor_all" -lpq -lcurl -lcrypto \
  || die "cannot build the libpq+libcurl floor program"
for name in floor_pq floor_all; do
  start_bg "$WORK/$name.log" "$WORK/$name" "$PG_DSN"
  for _ in $(seq 50); do grep -q connected "$WORK/$name.log" 2>/dev/null && break; sleep 0.1; done
  grep -q connected "$WORK/$name.log" || die "$name did not connect to PostgreSQL"
  R[${name}_rss]=$(rss_kb "$LAST_PID")
  stop_pid "$LAST_PID"
done

# ---------------------------------------------------------------------------------------------
# 5. Report.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "nan" }'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r != "nan" && r <= t) ? "PASS" : "FAIL" }'; }

ratio_a1=$(ratio "${R[ah_pattern]}" "${R[re_pattern_own]}")
ratio_a2=$(ratio "${R[ah_explicit]}" "${R[re_single_own]}")
ratio_a3=$(ratio "${R[ah_presets]}" "${R[re_pattern_own]}")
ah_rss=$(( R[ah_rss_after] > R[ah_rss_warm] ? R[ah_rss_after] : R[ah_rss_warm] ))
re_rss=$(( R[re_rss_after] > R[re_rss_warm] ? R[re_rss_after] : R[re_rss_warm] ))
pge_rss=$(( R[pge_rss_after] > R[pge_rss_warm] ? R[pge_rss_after] : R[pge_rss_warm] ))
lighter=$(( re_rss < pge_rss ? re_rss : pge_rss ))
lighter_name=$([[ $re_rss -lt $pge_rss ]] && echo redis_exporter || echo postgres_exporter)
ratio_b=$(ratio "$ah_rss" "$lighter")

cat <<EOF

apphealth collectors benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(uname -r)
Redis 7: $KEYS lists queue:0000..queue:$(printf '%04d' $((KEYS - 1))), $EXPECTED_TOTAL elements; PostgreSQL 15; MariaDB 10.11; all on 127.0.0.1.
apphealth interval $INTERVAL; medians of $SAMPLES samples/scrapes; $SCRAPES keep-alive scrapes per exporter.
Verified: apphealth and redis_exporter each report $KEYS queue lengths summing to $EXPECTED_TOTAL.

(a) Time to sample all $KEYS queues (median)
  what                                   apphealth    redis_exporter (own / curl)   ratio   target  result
  key pattern "queue:*" (SCAN)          $(printf '%8s ms' "$(ms "${R[ah_pattern]}")")   $(printf '%9s / %9s ms' "$(ms "${R[re_pattern_own]}")" "$(ms "${R[re_pattern_curl]}")")   $(printf '%6s' "$ratio_a1")   <=0.2   $(verdict "$ratio_a1" 0.2)
  $KEYS explicit keys                     $(printf '%8s ms' "$(ms "${R[ah_explicit]}")")   $(printf '%9s / %9s ms' "$(ms "${R[re_single_own]}")" "$(ms "${R[re_single_curl]}")")   $(printf '%6s' "$ratio_a2")   <=0.2   $(verdict "$ratio_a2" 0.2)
  $((PRESET_QUEUES * 5)) queues via presets, workers  $(printf '%8s ms' "$(ms "${R[ah_presets]}")")   $(printf '%9s / %9s ms' "$(ms "${R[re_pattern_own]}")" "$(ms "${R[re_pattern_curl]}")")   $(printf '%6s' "$ratio_a3")   <=0.2   $(verdict "$ratio_a3" 0.2)
  (presets: db 1, $PRESET_KEYS keys; $PRESET_SERIES job series, $PRESET_WORKERS worker series; the reference is redis_exporter's ${KEYS}-queue scrape above)
  (presets' read scripts in Redis: $(awk -v c="${R[script_calls]}" -v u="${R[script_usec]}" -v n="${R[script_samples]}" 'BEGIN { if (c == 0) print "none ran (refused?)"; else printf "%.1f ms per sample, %.0f calls of <= 100 queues per sample, %.2f ms each on average", u / n / 1000, c / n, u / c / 1000 }'))
  (redis_exporter without key checks: $(ms "${R[re_nokeys_own]}") ms; PostgreSQL: apphealth sample $(ms "${R[ah_pg]}") ms vs postgres_exporter $(ms "${R[pge_own]}") / $(ms "${R[pge_curl]}") ms)
  (MariaDB 10.11: apphealth sample $(ms "${R[ah_mysql]}") ms vs mysqld_exporter $(ms "${R[mye_own]}") / $(ms "${R[mye_curl]}") ms (slowest collector / scrape), ratio to the slowest collector $(ratio "${R[ah_mysql]}" "${R[mye_own]}"))
  "own" = redis_exporter_last_scrape_duration_seconds (collection only); ratio uses "own".

(b) RSS (VmRSS, MB)        after warm-up   after $SCRAPES scrapes   after wrk   | after $SCRAPES: RssAnon    Pss
  apphealth_exporter       $(printf '%8s' "$(mb "${R[ah_rss_warm]}")")        $(printf '%8s' "$(mb "${R[ah_rss_after]}")")        $(printf '%8s' "$(mb "${R[ah_rss_wrk]}")")    |  $(printf '%15s %6s' "$(mb "${R[ah_anon]}")" "$(mb "${R[ah_pss]}")")
  redis_exporter           $(printf '%8s' "$(mb "${R[re_rss_warm]}")")        $(printf '%8s' "$(mb "${R[re_rss_after]}")")        $(printf '%8s' "$(mb "${R[re_rss_wrk]}")")    |  $(printf '%15s %6s' "$(mb "${R[re_anon]}")" "$(mb "${R[re_pss]}")")
  postgres_exporter        $(printf '%8s' "$(mb "${R[pge_rss_warm]}")")        $(printf '%8s' "$(mb "${R[pge_rss_after]}")")        $(printf '%8s' "$(mb "${R[pge_rss_wrk]}")")    |  $(printf '%15s %6s' "$(mb "${R[pge_anon]}")" "$(mb "${R[pge_pss]}")")
  apphealth (explicit-keys config, after sampling): $(mb "${R[ah2_rss]}") MB
  ratio apphealth / lighter Go exporter ($lighter_name): $ratio_b   target <=0.5   $(verdict "$ratio_b" 0.5)
  floor: a C program holding one libpq connection: $(mb "${R[floor_pq_rss]}") MB (ratio $(ratio "${R[floor_pq_rss]}" "$lighter")); with libcurl and libcrypto initialised too: $(mb "${R[floor_all_rss]}") MB (ratio $(ratio "${R[floor_all_rss]}" "$lighter"))
  (informational, after $SCRAPES scrapes: Pss ratio $(ratio "${R[ah_pss]}" "$( (( R[re_pss] < R[pge_pss] )) && echo "${R[re_pss]}" || echo "${R[pge_pss]}")"); apphealth env: ${APPHEALTH_ENV:-none})
  (the warm-up / $SCRAPES-scrape maxima are compared; wrk column is informational)

(c) /metrics latency (ms)   curl x$SCRAPES p50   p99     wrk -c1 ${WRK_SECONDS}s p50   p99      req/s   body bytes
EOF
for name in ah re pge; do
  case $name in ah) label=apphealth_exporter ;; re) label="redis_exporter" ;; pge) label=postgres_exporter ;; esac
  printf '  %-22s %10s %8s %14s %8s %8s %10s\n' "$label" "$(ms "${R[${name}_p50]}")" "$(ms "${R[${name}_p99]}")" \
    "${R[${name}_wrk50]}" "${R[${name}_wrk99]}" "${R[${name}_rps]}" "${R[${name}_bytes]}"
done
echo
echo "Targets: sampling ratio (pattern) $(verdict "$ratio_a1" 0.2), sampling ratio (explicit) $(verdict "$ratio_a2" 0.2), sampling ratio (presets) $(verdict "$ratio_a3" 0.2), RSS ratio $(verdict "$ratio_b" 0.5)"
exit 0

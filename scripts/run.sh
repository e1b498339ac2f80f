#!/usr/bin/env bash
# Builds the exporter and starts it with a working local stack on 127.0.0.1, from Debian
# packages (installed here if missing): a throwaway PostgreSQL, Redis with demo job queues,
# and a backup directory with a verified backup. Ctrl-C stops everything and removes the
# state directory.
#
#   exporter    http://127.0.0.1:${APPHEALTH_PORT:-10045}/
#   PostgreSQL  127.0.0.1:${APPHEALTH_PG_PORT:-15432}   Redis 127.0.0.1:${APPHEALTH_REDIS_PORT:-16379}
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
EXPORTER_PORT=${APPHEALTH_PORT:-10045}
PG_PORT=${APPHEALTH_PG_PORT:-15432}
REDIS_PORT=${APPHEALTH_REDIS_PORT:-16379}
PG_BIN=/usr/lib/postgresql/15/bin

bash scripts/install-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release --target apphealth_exporter

STATE=$(mktemp -d /tmp/apphealth-run-XXXXXX)
chmod 755 "$STATE"
as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  set +e
  [ -n "${EXPORTER_PID:-}" ] && kill "$EXPORTER_PID" 2>/dev/null && wait "$EXPORTER_PID" 2>/dev/null
  [ -f "$STATE/redis.pid" ] && kill "$(cat "$STATE/redis.pid")" 2>/dev/null
  [ -d "$STATE/pg/data" ] && as_postgres "$PG_BIN/pg_ctl" -D "$STATE/pg/data" -m fast -w stop >/dev/null
  rm -rf "$STATE"
}
trap cleanup EXIT INT TERM

echo "== PostgreSQL on 127.0.0.1:$PG_PORT"
mkdir -p "$STATE/pg"
[ "$(id -u)" -eq 0 ] && chown postgres "$STATE/pg"
as_postgres "$PG_BIN/initdb" -D "$STATE/pg/data" -U postgres --auth=trust >/dev/null
as_postgres "$PG_BIN/pg_ctl" -D "$STATE/pg/data" -l "$STATE/pg/pg.log" -w \
  -o "-p $PG_PORT -k $STATE/pg -c listen_addresses=127.0.0.1" start >/dev/null
# A monitoring role as a small team would create it: pg_monitor sees every session.
psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc \
  "CREATE ROLE apphealth LOGIN PASSWORD 'local-dev-only'; GRANT pg_monitor TO apphealth;"
echo "local-dev-only" > "$STATE/postgres_password"

echo "== Redis on 127.0.0.1:$REDIS_PORT with demo queues"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --pidfile "$STATE/redis.pid" \
  --dir "$STATE" --logfile "$STATE/redis.log" --save '' --appendonly no
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
now=$(date +%s)
redis-cli -p "$REDIS_PORT" rpush celery job1 job2 job3 >/dev/null
redis-cli -p "$REDIS_PORT" lpush queue:default "{\"class\":\"HardWorker\",\"enqueued_at\":$((now - 90))}" >/dev/null
redis-cli -p "$REDIS_PORT" zadd retry "$now" '{"class":"FlakyWorker"}' >/dev/null

echo "== a verified backup in $STATE/backups"
mkdir -p "$STATE/backups"
name="full-backup-$(date -u +%Y%m%d-%H%M%S).sql"
pg_dumpall -h 127.0.0.1 -p "$PG_PORT" -U postgres > "$STATE/backups/$name" 2>/dev/null \
  || echo "-- demo backup" > "$STATE/backups/$name"
(cd "$STATE/backups" && sha256sum "$name" > "$name.sha256")

cat > "$STATE/apphealth.yml" <<YAML
postgres:
  - name: main
    dsn: "host=127.0.0.1 port=$PG_PORT dbname=postgres user=apphealth"
    password_file: $STATE/postgres_password
redis:
  - name: jobs
    address: 127.0.0.1:$REDIS_PORT
    queues:
      - {preset: celery, queues: [celery]}
      - {preset: sidekiq, queues: [default]}
backups:
  - name: nightly
    directory: $STATE/backups
    glob: "full-backup-*"
    name_time_format: "full-backup-%Y%m%d-%H%M%S"
    verify_checksum: true
YAML

echo "== apphealth_exporter on http://127.0.0.1:$EXPORTER_PORT/ (Ctrl-C stops the stack)"
"$ROOT/build/release/exporter/apphealth_exporter" --config.file="$STATE/apphealth.yml" \
  --web.listen-address="127.0.0.1:$EXPORTER_PORT" &
EXPORTER_PID=$!
wait "$EXPORTER_PID"

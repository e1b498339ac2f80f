#!/bin/bash
# loadgen: makes the docker-compose demo stack's dashboards show data at once.
# Every TICK seconds it
#   - posts Web Vitals beacons (the web-vitals library's batched JSON array: LCP, FCP, TTFB,
#     CLS, INP with one pageViewId) to the exporter's /ingest/vitals, now and then a client
#     error report to /ingest/errors;
#   - pushes jobs onto Redis queues (Celery lists, a Sidekiq queue with enqueued_at) and
#     consumes a few of them, so queue depth and the oldest job's age move;
#   - appends nginx "combined + $request_time" lines (mostly 200, some 3xx/404, a few 5xx) to the
#     access log the exporter tails (about 0.3 % 5xx, 2 % slower than 2 s);
# and every BACKUP_EVERY seconds writes a pg_dump of the demo database with a .sha256 sidecar
# into the backup directory the exporter watches.
# Everything is configurable through the environment (defaults are the compose names).
set -uo pipefail
export TZ=UTC   # access-log timestamps are written as +0000

INGEST_URL=${INGEST_URL:-http://exporter:10046}   # the beacon listener (ingest.listen_address)
REDIS_HOST=${REDIS_HOST:-redis}
REDIS_PORT=${REDIS_PORT:-6379}
PGHOST=${PGHOST:-postgres}
PGUSER=${PGUSER:-postgres}
PGDATABASE=${PGDATABASE:-app}
PG_PASSWORD_FILE=${PG_PASSWORD_FILE:-/etc/apphealth/secrets/postgres_password}
ACCESS_LOG=${ACCESS_LOG:-/var/log/app/access.log}
BACKUP_DIR=${BACKUP_DIR:-/var/backups/app}
BACKUP_EVERY=${BACKUP_EVERY:-3600}
BACKUP_KEEP=${BACKUP_KEEP:-3}
TICK=${TICK:-2}
BEACONS_PER_TICK=${BEACONS_PER_TICK:-3}
LOG_LINES_PER_TICK=${LOG_LINES_PER_TICK:-20}

ROUTES=(/ /tutors/42 /tutors/7 /blog/hello-world /blog/2024/launch /checkout)
DEVICES=(mobile desktop tablet)
export PGHOST PGUSER PGDATABASE

log() { echo "loadgen: $*" >&2; }
# No command substitutions in the per-tick paths: forks are what makes a shell loop slow.
rnd() { printf -v "$1" '%d' $(( $2 + RANDOM % ($3 - $2 + 1) )); }  # rnd VAR LO HI: integer in [LO, HI]
pick() { local -n _a=$2; printf -v "$1" '%s' "${_a[RANDOM % ${#_a[@]}]}"; }  # pick VAR ARRAY
redis() { redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" "$@" >/dev/null; }

metric() {  # metric VAR name value pageViewId page device: one web-vitals Metric object
  printf -v "$1" '{"name":"%s","value":%s,"rating":"good","delta":%s,"id":"v4-%s-%s","navigationType":"navigate","pageViewId":"%s","page":"%s","device":"%s"}' \
    "$2" "$3" "$3" "$4" "$2" "$4" "$5" "$6"
}

seq_no=0
send_beacon() {
  local page device pv slow r ms_lcp ms_fcp ms_ttfb ms_inp cls m1 m2 m3 m4 m5
  pick page ROUTES; pick device DEVICES
  seq_no=$((seq_no + 1)); pv="pv-$EPOCHSECONDS-$$-$seq_no"
  # Mobile is slower; /checkout is the slow page. Milliseconds, as web-vitals reports them.
  slow=0; [ "$device" = mobile ] && slow=600; [ "$page" = /checkout ] && slow=$((slow + 1200))
  rnd r 80 900;  ms_ttfb=$(( r + slow / 4 ))
  rnd r 300 1500; ms_fcp=$(( ms_ttfb + r + slow / 2 ))
  rnd r 100 1800; ms_lcp=$(( ms_fcp + r + slow ))
  rnd r 40 350;  ms_inp=$(( r + slow / 5 ))
  rnd r 0 300;   printf -v cls '0.%03d' "$r"
  metric m1 LCP "$ms_lcp" "$pv" "$page" "$device"
  metric m2 FCP "$ms_fcp" "$pv" "$page" "$device"
  metric m3 TTFB "$ms_ttfb" "$pv" "$page" "$device"
  metric m4 CLS "$cls" "$pv" "$page" "$device"
  metric m5 INP "$ms_inp" "$pv" "$page" "$device"
  # sendBeacon posts strings as text/plain (no CORS preflight); do the same.
  curl -fsS -o /dev/null -m 5 -X POST -H 'Content-Type: text/plain;charset=UTF-8' \
    --data-binary "[$m1,$m2,$m3,$m4,$m5]" "$INGEST_URL/ingest/vitals" || log "beacon failed"
}

LEVELS=(global page component); SEVERITIES=(error error warning fatal)
send_error() {
  local page level severity
  pick page ROUTES; pick level LEVELS; pick severity SEVERITIES
  curl -fsS -o /dev/null -m 5 -X POST -H 'Content-Type: application/json' \
    --data-binary "{\"message\":\"TypeError: cannot read properties of undefined (loadgen)\",\"level\":\"$level\",\"component\":\"Cart\",\"page\":\"$page\",\"severity\":\"$severity\"}" \
    "$INGEST_URL/ingest/errors" || log "error report failed"
}

queue_jobs() {
  local now=$EPOCHSECONDS n i cmds="" a b
  rnd n 0 4
  for ((i = 0; i < n; i++)); do
    cmds+="LPUSH celery '{\"task\":\"send_report\",\"id\":\"$now-$i\"}'"$'\n'
    cmds+="LPUSH queue:default '{\"class\":\"HardWorker\",\"jid\":\"$now$i\",\"enqueued_at\":$now.0}'"$'\n'
  done
  cmds+="LPUSH emails '{\"task\":\"send_mail\",\"id\":\"$now\"}'"$'\n'
  # Workers take a few jobs from the oldest end (RPOP), a little faster than they arrive, but
  # pause for the first 60 ticks of every 300: the backlog and the oldest job's age build up,
  # then drain (well below the alert thresholds).
  if (( tick % 300 >= 60 )); then
    rnd a 1 4; rnd b 1 4
    cmds+="RPOP celery $a"$'\n'"RPOP queue:default $b"$'\n'"RPOP emails"$'\n'
  fi
  printf '%s' "$cmds" | redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" >/dev/null || log "redis failed"
}

STATUSES=(200 200 200 200 200 200 200 200 200 200 200 200 200 200 200 200 304 301 404 200)
METHODS=(GET GET GET GET GET POST)
PATHS=("${ROUTES[@]}" /static/app.js "/api/search?q=x")
ERRORS5XX=(500 502 503)
write_access_log() {
  local ts i path status method ms ip bytes line lines=""
  printf -v ts '%(%d/%b/%Y:%H:%M:%S +0000)T' -1
  for ((i = 0; i < LOG_LINES_PER_TICK; i++)); do
    pick path PATHS; pick status STATUSES; pick method METHODS
    # About 0.3 % 5xx: visible on the error-ratio panel, below the 99.9 % SLO's fast-burn pages.
    (( RANDOM % 300 == 0 )) && pick status ERRORS5XX
    rnd ms 5 400; (( RANDOM % 50 == 0 )) && rnd ms 2000 4000
    rnd ip 2 250; rnd bytes 200 40000
    printf -v line '172.20.0.%d - - [%s] "%s %s HTTP/1.1" %s %d "-" "Mozilla/5.0 (loadgen)" %d.%03d\n' \
      "$ip" "$ts" "$method" "$path" "$status" "$bytes" $((ms / 1000)) $((ms % 1000))
    lines+=$line
  done
  printf '%s' "$lines" >> "$ACCESS_LOG"
}

write_backup() {
  local name tmp
  mkdir -p "$BACKUP_DIR"
  name="app-$(date -u +%Y%m%d-%H%M%S).sql.gz"
  tmp="$BACKUP_DIR/.$name.tmp"
  if PGPASSWORD="$(tr -d '\n' < "$PG_PASSWORD_FILE")" pg_dump --no-owner | gzip -6 > "$tmp" && [ -s "$tmp" ]; then
    # Sidecar first, then the dump appears atomically under its final name.
    (cd "$BACKUP_DIR" && printf '%s  %s\n' "$(sha256sum < "$tmp" | cut -d' ' -f1)" "$name" > "$name.sha256")
    mv "$tmp" "$BACKUP_DIR/$name"
    log "backup $name written"
    # Keep the newest BACKUP_KEEP dumps (names sort by time).
    ls -1 "$BACKUP_DIR"/app-*.sql.gz 2>/dev/null | head -n -"$BACKUP_KEEP" | while read -r old; do
      rm -f "$old" "$old.sha256"
    done
  else
    rm -f "$tmp"
    log "backup failed (pg_dump); retrying next round"
    return 1
  fi
}

mkdir -p "$(dirname "$ACCESS_LOG")" "$BACKUP_DIR"
touch "$ACCESS_LOG"
log "beacons=$INGEST_URL redis=$REDIS_HOST:$REDIS_PORT postgres=$PGHOST log=$ACCESS_LOG backups=$BACKUP_DIR tick=${TICK}s"

last_backup=0
tick=0
while true; do
  now=$EPOCHSECONDS
  if (( now - last_backup >= BACKUP_EVERY )); then
    write_backup && last_backup=$now || last_backup=$(( now - BACKUP_EVERY + 60 ))
  fi
  for ((b = 0; b < BEACONS_PER_TICK; b++)); do send_beacon; done
  (( tick % 5 == 0 )) && send_error
  queue_jobs
  write_access_log
  tick=$((tick + 1))
  sleep "$TICK"
done

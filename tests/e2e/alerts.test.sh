#!/usr/bin/env bash
# End-to-end alerting test (issue 5): the real stack of scripts/stack.sh (PostgreSQL, Redis,
# nginx, the exporter, Prometheus with the repo's rules, Alertmanager with the repo's
# alertmanager.yml) on 127.0.0.1, with tests/e2e/receiver.py standing in for PagerDuty's
# Events API v2 and the Slack webhook.
#
#   1. the test database's probe query takes ~5 ms against a 1 ms probe_latency threshold, so
#      ApphealthDatabaseSlow really fires while PostgreSQL is up (and is not inhibited);
#   2. the newest backup is renamed to a time 2 h ago (max_age 10m) and PostgreSQL is stopped:
#      ApphealthBackupTooOld and ApphealthDatabaseDown fire in Prometheus; PagerDuty `trigger`
#      events arrive with the routing key from the secret file, payload.severity "critical"
#      and a summary naming the target; in Alertmanager ApphealthDatabaseSlow and the
#      postgres ApphealthCollectorFailing are now inhibited by ApphealthDatabaseDown;
#   3. PostgreSQL is started again and a fresh backup renamed to now: `resolve` events with the
#      same dedup_key arrive.
#   Then every dashboard query of tests/dashboards/print_queries.py (when it exists) must
#   return data from this Prometheus, after some traffic through nginx and the beacon endpoints.
#
# Test-only shortcuts (documented in scripts/stack.sh): every rule's `for:` becomes 3s in a
# copy of the rule files (APPHEALTH_RULES_FOR; checked below to be the only difference), and
# group_interval becomes 5s in the Alertmanager copy (APPHEALTH_AM_GROUP_INTERVAL; a resolve
# is sent on the group's next flush). 1 s scrape/evaluation, Prometheus
# --rules.alert.resend-delay=1s. group_wait (10s for critical) stays the repo's.
#
# Needs the exporter built (build/release; built here when missing). Bounded to 4 minutes.
#   bash tests/e2e/alerts.test.sh          APPHEALTH_E2E_KEEP=1 keeps the state directory
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
T0=$(date +%s)
PASSED=0
FAILED=0
LIMIT=${APPHEALTH_E2E_LIMIT:-225}

pass() { PASSED=$((PASSED + 1)); printf '  ok    %s\n' "$1"; }
fail() { FAILED=$((FAILED + 1)); printf '  FAIL  %s\n' "$1"; [ -z "${2:-}" ] || printf '        %s\n' "$2"; }
# check MESSAGE CMD...: pass if CMD succeeds.
check() { local msg=$1; shift; if "$@"; then pass "$msg"; else fail "$msg"; fi; }
starts_and_contains() { [[ $1 == "$2"* && $1 == *"$3"* ]]; }
elapsed() { echo $(($(date +%s) - T0)); }
step() { printf '== [%3ss] %s\n' "$(elapsed)" "$*"; }

# wait_for SECONDS CMD...: polls CMD every 0.5 s until it succeeds; false after SECONDS.
wait_for() {
  local until=$(($(date +%s) + $1)); shift
  while :; do
    "$@" >/dev/null 2>&1 && return 0
    [ "$(date +%s)" -ge "$until" ] && return 1
    sleep 0.5
  done
}

if [ ! -x build/release/exporter/apphealth_exporter ]; then
  step "building the exporter"
  cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build/release --target apphealth_exporter -j2 >/dev/null
  T0=$(date +%s)
fi

WORK=$(mktemp -d /tmp/apphealth-e2e-XXXXXX)
chmod 755 "$WORK"
RECEIVER_PID=""
STACK_STARTED=0
cleanup() {
  local rc=$?
  set +e
  [ -n "$WATCHDOG_PID" ] && kill "$WATCHDOG_PID" 2>/dev/null
  if [ "$FAILED" -gt 0 ] || [ "$rc" -ne 0 ]; then
    echo "--- logs (tails)"
    for f in "$WORK"/stack/exporter.log "$WORK"/stack/alertmanager/alertmanager.log "$WORK"/stack/prometheus/prometheus.log; do
      [ -f "$f" ] && { echo "# $f"; tail -n 15 "$f"; }
    done
    [ -f "$WORK/events.jsonl" ] && { echo "# received events"; cut -c1-400 "$WORK/events.jsonl"; }
  fi
  if [ "${APPHEALTH_E2E_KEEP:-0}" = 1 ]; then export APPHEALTH_STACK_KEEP=1; fi
  [ "$STACK_STARTED" = 1 ] && bash scripts/stack.sh stop "$WORK/stack"
  [ -n "$RECEIVER_PID" ] && kill "$RECEIVER_PID" 2>/dev/null && wait "$RECEIVER_PID" 2>/dev/null
  if [ "${APPHEALTH_E2E_KEEP:-0}" = 1 ]; then echo "state kept in $WORK"; else rm -rf "$WORK"; fi
  echo "$PASSED passed, $FAILED failed ($(elapsed) s)"
  [ "$FAILED" -eq 0 ] && [ "$rc" -eq 0 ] || exit 1
}
# The whole test is bounded: the watchdog interrupts it (cleanup still runs).
WATCHDOG_PID=""
trap 'fail "time limit of ${LIMIT}s reached"; exit 1' USR1
trap cleanup EXIT
trap 'exit 130' INT TERM
# (1 s sleeps, output to /dev/null: nothing outlives the test or holds a pipe open)
( end=$((SECONDS + LIMIT)); while [ "$SECONDS" -lt "$end" ]; do sleep 1; done; kill -USR1 $$ ) >/dev/null 2>&1 &
WATCHDOG_PID=$!

# ---------------------------------------------------------------------------------------------
step "receiver and stack"
python3 tests/e2e/receiver.py --out "$WORK/events.jsonl" --port-file "$WORK/receiver.port" &
RECEIVER_PID=$!
wait_for 10 test -s "$WORK/receiver.port"
RECEIVER=http://127.0.0.1:$(cat "$WORK/receiver.port")
touch "$WORK/events.jsonl"

read -r P1 P2 P3 P4 P5 P6 P7 P8 < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(8)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])
for s in ss: s.close()')
ROUTING_KEY="e2e$(od -An -N14 -tx1 /dev/urandom | tr -d ' \n')"
export APPHEALTH_STACK_DIR="$WORK/stack" APPHEALTH_STACK_FAST=1 \
  APPHEALTH_PORT=$P1 APPHEALTH_PG_PORT=$P2 APPHEALTH_REDIS_PORT=$P3 APPHEALTH_WEB_PORT=$P4 \
  APPHEALTH_PROMETHEUS_PORT=$P5 APPHEALTH_ALERTMANAGER_PORT=$P6 APPHEALTH_WEB_TLS_PORT=$P7 APPHEALTH_INGEST_PORT=$P8 \
  APPHEALTH_PAGERDUTY_URL="$RECEIVER/pagerduty/v2/enqueue" APPHEALTH_SLACK_URL="$RECEIVER/slack" \
  APPHEALTH_PAGERDUTY_ROUTING_KEY="$ROUTING_KEY" \
  APPHEALTH_RULES_FOR=3s APPHEALTH_AM_GROUP_INTERVAL=5s APPHEALTH_BACKUP_MAX_AGE=10m \
  APPHEALTH_PG_PROBE_QUERY="SELECT pg_sleep(0.005)" APPHEALTH_PG_PROBE_LATENCY=1ms
STACK_STARTED=1
ENV_FILE=$(bash scripts/stack.sh start)
# shellcheck disable=SC1090
. "$ENV_FILE"
step "stack up in $STACK_DIR"

# ---- helpers reading the live APIs --------------------------------------------------------
# prom_alert NAME TARGET: prints the alert's state in Prometheus (pending/firing), fails if absent.
prom_alert() {
  curl -fsS --max-time 2 "$PROMETHEUS_URL/api/v1/alerts" | python3 -c '
import json, sys
for a in json.load(sys.stdin)["data"]["alerts"]:
    if a["labels"]["alertname"] == sys.argv[1] and a["labels"].get("target") == sys.argv[2]:
        print(a["state"]); sys.exit(0)
sys.exit(1)' "$1" "$2"
}
prom_firing() { [ "$(prom_alert "$1" "$2")" = firing ]; }
prom_absent() { ! prom_alert "$1" "$2" >/dev/null; }
# am_alert NAME TARGET: "STATE INHIBITED_BY_COUNT" from Alertmanager's API, fails if absent.
am_alert() {
  curl -fsS --max-time 2 "$ALERTMANAGER_URL/api/v2/alerts" | python3 -c '
import json, sys
for a in json.load(sys.stdin):
    if a["labels"]["alertname"] == sys.argv[1] and a["labels"].get("target") == sys.argv[2]:
        print(a["status"]["state"], len(a["status"]["inhibitedBy"])); sys.exit(0)
sys.exit(1)' "$1" "$2"
}
am_active() { [ "$(am_alert "$1" "$2")" = "active 0" ]; }
am_inhibited() { local s; s=$(am_alert "$1" "$2") && [ "${s%% *}" = suppressed ] && [ "${s##* }" -gt 0 ]; }
# pd_event ACTION ALERTNAME: the first PagerDuty event (JSON) of that action whose
# payload.group (our alertname) matches; fails if none yet.
pd_event() {
  python3 -c '
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    b = e["body"]
    if "pagerduty" in e["path"] and isinstance(b, dict) and b.get("event_action") == sys.argv[2] \
       and b.get("payload", {}).get("group") == sys.argv[3]:
        print(json.dumps(b)); sys.exit(0)
sys.exit(1)' "$WORK/events.jsonl" "$1" "$2"
}
# json_get JSON PYTHON_EXPR (with `e` bound to the object)
json_get() { python3 -c 'import json,sys; e=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }
prom_query_nonempty() {
  curl -fsS --max-time 5 --get --data-urlencode "query=$1" "$PROMETHEUS_URL/api/v1/query" | python3 -c '
import json, sys
d = json.load(sys.stdin)
sys.exit(0 if d["status"] == "success" and d["data"]["result"] not in ([], None) else 1)'
}

# ---- 0. the stack runs the repo's own files ------------------------------------------------
step "0. configuration is the repo's"
rules_same=1
for f in rules/*.yml; do
  copy="$STACK_DIR/rules/$(basename "$f")"
  diff <(grep -Ev '^ +for: ' "$f") <(grep -Ev '^ +for: ' "$copy") >/dev/null \
    && [ "$(grep -c '^ *for: 3s$' "$copy")" = "$(grep -c '^ *for: ' "$f")" ] || rules_same=0
done
if [ "$rules_same" = 1 ]; then
  pass "test rules differ from rules/*.yml only in for: (all 3s)"
else
  fail "test rules differ from rules/*.yml in more than for:"
fi
changed=$(diff alertmanager/alertmanager.yml "$STACK_DIR/alertmanager/alertmanager.yml" | grep '^>' \
  | grep -Ev "^> +(#.*|pagerduty_url: $RECEIVER/pagerduty/v2/enqueue|smtp_smarthost: 127\.0\.0\.1:9|group_interval: 5s|- $ROOT/alertmanager/templates/\*\.tmpl|(- )?[a-z_]+_file: $STACK_DIR/secrets/[a-z_]+)\$" || true)
if [ -z "$changed" ]; then pass "alertmanager.yml copy changes only URLs, secret paths, template path, group_interval"
else fail "unexpected alertmanager.yml changes" "$changed"; fi
if [ "$(cat "$STACK_DIR/secrets/pagerduty_routing_key")" = "$ROUTING_KEY" ]; then pass "routing key secret file written"
else fail "routing key secret file"; fi
if wait_for 20 prom_query_nonempty 'up{job="apphealth"} == 1'; then pass "Prometheus scrapes the exporter (job apphealth)"
else fail "up{job=\"apphealth\"} != 1"; fi

# ---- 1. DatabaseSlow fires for real while the database is up -----------------------------
step "1. ApphealthDatabaseSlow fires while PostgreSQL is up (5 ms probe vs 1 ms threshold)"
bash scripts/stack.sh traffic "$STACK_DIR"
if wait_for 45 prom_firing ApphealthDatabaseSlow main; then pass "ApphealthDatabaseSlow{target=main} firing in Prometheus"
else fail "ApphealthDatabaseSlow{target=main} not firing" "$(prom_alert ApphealthDatabaseSlow main || echo absent)"; fi
if wait_for 15 am_active ApphealthDatabaseSlow main; then pass "ApphealthDatabaseSlow active (not inhibited) in Alertmanager"
else fail "ApphealthDatabaseSlow not active in Alertmanager" "$(am_alert ApphealthDatabaseSlow main || echo absent)"; fi
if prom_absent ApphealthDatabaseDown main && prom_absent ApphealthBackupTooOld nightly; then
  pass "no database-down or backup-too-old alert before the outage"
else fail "database-down or backup alert present before the outage"; fi

# ---- dashboards ----------------------------------------------------------------------------
step "dashboard queries"
bash scripts/stack.sh traffic "$STACK_DIR"
if [ -f tests/dashboards/print_queries.py ]; then
  # One PromQL expression per line, Grafana variables already replaced by the script.
  if queries=$(python3 tests/dashboards/print_queries.py); then
    n=$(printf '%s\n' "$queries" | grep -c .)
    # All queries in one process; those without data are retried for up to 20 s (rate()
    # needs two scrapes after the traffic).
    if empty=$(printf '%s\n' "$queries" | python3 -c '
import json, sys, time, urllib.parse, urllib.request
url = sys.argv[1] + "/api/v1/query?query="
todo = [q for q in sys.stdin.read().splitlines() if q.strip()]
deadline = time.time() + 20
while True:
    left = []
    for q in todo:
        try:
            with urllib.request.urlopen(url + urllib.parse.quote(q), timeout=5) as r:
                d = json.load(r)
            ok = d["status"] == "success" and d["data"]["result"] not in ([], None)
        except Exception as e:  # a syntax error answers 400: report it with the query
            ok = False
        if not ok:
            left.append(q)
    todo = left
    if not todo or time.time() > deadline:
        break
    time.sleep(1)
print("\n".join(todo))
sys.exit(1 if todo else 0)' "$PROMETHEUS_URL"); then
      pass "all $n dashboard queries (tests/dashboards/print_queries.py) return data"
    else
      fail "dashboard queries with no data: $(printf '%s\n' "$empty" | grep -c .) of $n" "$empty"
    fi
  else
    fail "tests/dashboards/print_queries.py failed"
  fi
else
  echo "  skip  tests/dashboards/print_queries.py does not exist yet; dashboard queries not checked"
  for q in 'apphealth_db_up' 'sum(rate(apphealth_http_requests_total[5m])) > 0' \
           'apphealth_web_vitals_page_views_total' 'apphealth_client_errors_total' \
           'apphealth_queue_jobs' 'apphealth_backup_verified == 1' 'apphealth_probe_success == 1'; do
    if wait_for 15 prom_query_nonempty "$q"; then pass "data for $q"; else fail "no data for $q"; fi
  done
fi

# ---- 2. outage: old backup, database stopped -----------------------------------------------
step "2. newest backup 2 h old (max_age 10m) and PostgreSQL stopped"
bash scripts/stack.sh backup-age 7200 "$STACK_DIR"
bash scripts/stack.sh pg-stop "$STACK_DIR"
OUTAGE=$(elapsed)
if wait_for 30 prom_firing ApphealthDatabaseDown main; then pass "ApphealthDatabaseDown{target=main} firing in Prometheus"
else fail "ApphealthDatabaseDown not firing" "$(prom_alert ApphealthDatabaseDown main || echo absent)"; fi
if wait_for 20 prom_firing ApphealthBackupTooOld nightly; then pass "ApphealthBackupTooOld{target=nightly} firing in Prometheus"
else fail "ApphealthBackupTooOld not firing" "$(prom_alert ApphealthBackupTooOld nightly || echo absent)"; fi

# The rule keeps firing (the probe histogram's 5 m rate still holds the slow probes), and the
# inhibition is what keeps it quiet.
if wait_for 15 am_inhibited ApphealthDatabaseSlow main && prom_firing ApphealthDatabaseSlow main; then
  pass "ApphealthDatabaseSlow still firing in Prometheus but inhibited in Alertmanager"
else fail "ApphealthDatabaseSlow not inhibited" "prometheus: $(prom_alert ApphealthDatabaseSlow main || echo absent); alertmanager: $(am_alert ApphealthDatabaseSlow main || echo absent)"; fi
if wait_for 15 am_inhibited ApphealthCollectorFailing main; then pass "ApphealthCollectorFailing{target=main} inhibited in Alertmanager"
else fail "ApphealthCollectorFailing{target=main} not inhibited" "$(am_alert ApphealthCollectorFailing main || echo absent)"; fi

check_trigger() {  # check_trigger ALERTNAME TARGET SUMMARY_PREFIX
  local ev
  if ! wait_for 40 pd_event trigger "$1"; then fail "no PagerDuty trigger for $1"; return; fi
  ev=$(pd_event trigger "$1")
  pass "PagerDuty trigger for $1 after $(($(elapsed) - OUTAGE)) s"
  local key sev summary
  key=$(json_get "$ev" 'e["routing_key"]')
  sev=$(json_get "$ev" 'e["payload"]["severity"]')
  summary=$(json_get "$ev" 'e["payload"]["summary"]')
  check "  routing_key is the secret file's (got $key)" [ "$key" = "$ROUTING_KEY" ]
  check "  payload.severity = critical (got $sev)" [ "$sev" = critical ]
  check "  payload.summary '$summary' starts '[FIRING:1] $3', names $2" \
    starts_and_contains "$summary" "[FIRING:1] $3" "$2"
  check "  payload.component = $2" [ "$(json_get "$ev" 'e["payload"]["component"]')" = "$2" ]
  check "  runbook link" [ -n "$(json_get "$ev" 'e["links"][0]["href"]')" ]
}
check_trigger ApphealthDatabaseDown main "Database main is down"
check_trigger ApphealthBackupTooOld nightly "Newest backup of nightly is"
if pd_event trigger ApphealthDatabaseSlow >/dev/null || pd_event trigger ApphealthCollectorFailing >/dev/null; then
  fail "an inhibited (warning) alert reached PagerDuty"
else pass "no PagerDuty event for the inhibited alerts"; fi

# ---- 3. recovery ---------------------------------------------------------------------------
step "3. PostgreSQL started again, fresh backup"
bash scripts/stack.sh pg-start "$STACK_DIR"
bash scripts/stack.sh backup-age 0 "$STACK_DIR"
RECOVERY=$(elapsed)
if wait_for 40 prom_absent ApphealthDatabaseDown main; then pass "ApphealthDatabaseDown resolved in Prometheus"
else fail "ApphealthDatabaseDown still active"; fi
check_resolve() {  # check_resolve ALERTNAME
  local trig ev
  if ! wait_for 45 pd_event resolve "$1"; then fail "no PagerDuty resolve for $1"; return; fi
  ev=$(pd_event resolve "$1"); trig=$(pd_event trigger "$1")
  pass "PagerDuty resolve for $1 after $(($(elapsed) - RECOVERY)) s"
  check "  same dedup_key as the trigger" [ "$(json_get "$ev" 'e["dedup_key"]')" = "$(json_get "$trig" 'e["dedup_key"]')" ]
  check "  routing_key is the secret file's" [ "$(json_get "$ev" 'e["routing_key"]')" = "$ROUTING_KEY" ]
}
check_resolve ApphealthDatabaseDown
check_resolve ApphealthBackupTooOld

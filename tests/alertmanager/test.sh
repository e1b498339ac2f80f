#!/usr/bin/env bash
# Tests for alertmanager/alertmanager.yml and alertmanager/templates/*.tmpl (Alertmanager 0.25):
#   1. amtool check-config
#   2. routing: `amtool config routes test --verify.receivers=...` for every severity and for
#      the labels of every inhibition case
#   3. templates: amtool template render on sample notifications (tests/alertmanager/data/)
#   4. inhibition, live: a throwaway Alertmanager on 127.0.0.1 (gossip off, notifications
#      pointed at a closed local port) gets the alerts of each inhibition case; the set of
#      inhibited alerts must be exactly the expected one. Skipped with AM_SKIP_LIVE=1.
# Prints one line per check and a final "N passed, M failed"; exits 1 if anything failed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
config="${AM_CONFIG:-$root/alertmanager/alertmanager.yml}"
templates="$root/alertmanager/templates/*.tmpl"
passed=0
failed=0

ok()   { passed=$((passed + 1)); echo "ok   - $*"; }
fail() { failed=$((failed + 1)); echo "FAIL - $*"; }

for tool in amtool prometheus-alertmanager; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "FAIL - $tool not on PATH (apt-get install -y prometheus-alertmanager)"
    echo "0 passed, 1 failed"
    exit 1
  fi
done

# 1. config ---------------------------------------------------------------------------------
if out=$(amtool check-config "$config" 2>&1); then
  ok "amtool check-config alertmanager/alertmanager.yml"
else
  fail "amtool check-config alertmanager/alertmanager.yml"; echo "$out" | sed 's/^/    /'
fi

# 2. routing --------------------------------------------------------------------------------
# route RECEIVER label=value ...
route() {
  local want="$1"; shift
  local out
  if out=$(amtool config routes test --config.file="$config" --verify.receivers="$want" "$@" 2>&1); then
    ok "route $* -> $want"
  else
    fail "route $* -> want $want, got: $(echo "$out" | tr '\n' ' ')"
  fi
}
E=(job=apphealth instance=app1:9911)
# every severity, and an alert without one
route pagerduty-critical alertname=AnyAlert severity=critical
route team-warning       alertname=AnyAlert severity=warning
route ui-only            alertname=AnyAlert severity=info
route team-warning       alertname=AnyAlert
# the alerts of the inhibition cases
route pagerduty-critical alertname=ApphealthExporterDown severity=critical "${E[@]}" target=app1:9911
route pagerduty-critical alertname=ApphealthDatabaseDown severity=critical "${E[@]}" target=main
route team-warning       alertname=ApphealthDatabaseSlow severity=warning "${E[@]}" target=main
route team-warning       alertname=ApphealthDatabaseConnectionsHigh severity=warning "${E[@]}" target=main
route pagerduty-critical alertname=ApphealthDatabaseConnectionsHigh severity=critical "${E[@]}" target=main
route team-warning       alertname=ApphealthDatabaseLongTransaction severity=warning "${E[@]}" target=main
route pagerduty-critical alertname=ApphealthRedisDown severity=critical "${E[@]}" target=jobs
route team-warning       alertname=ApphealthQueueBacklogHigh severity=warning "${E[@]}" target=jobs queue=emails state=waiting
route pagerduty-critical alertname=ApphealthHTTPErrorRatioHigh severity=critical "${E[@]}" target=web log=web
route team-warning       alertname=ApphealthHTTPErrorRatioHigh severity=warning "${E[@]}" target=web log=web
route pagerduty-critical alertname=ApphealthErrorBudgetBurn severity=critical "${E[@]}" target=web log=web long_window=1h
route team-warning       alertname=ApphealthErrorBudgetBurn severity=warning "${E[@]}" target=web log=web long_window=3d
route pagerduty-critical alertname=ApphealthBackupTooOld severity=critical "${E[@]}" target=nightly backup=nightly
route ui-only            alertname=ApphealthWebVitalNeedsImprovement severity=info "${E[@]}" route=/ device=mobile vital=LCP

# 3. templates ------------------------------------------------------------------------------
# render DATA TEMPLATE-NAME EXPECTED-SUBSTRING [type] [argument, default "."]
render() {
  local data="$1" name="$2" want="$3" type="${4:-text}" arg="${5:-.}" out
  if out=$(amtool template render --template.glob="$templates" --template.type="$type" \
             --template.text="{{ template \"$name\" $arg }}" --template.data="$here/data/$data" 2>&1) \
     && [[ "$out" == *"$want"* ]]; then
    ok "template $name ($data) contains '$want'"
  else
    fail "template $name ($data): want '$want', got: $(echo "$out" | head -5 | tr '\n' ' ')"
  fi
}
render database_down.json apphealth.title "[FIRING:1] Database main is down"
render database_down.json apphealth.pagerduty.severity "critical"
render database_down.json apphealth.runbook_url "docs/runbooks/database.md#apphealthdatabasedown"
render database_down.json apphealth.silence_url "/#/silences/new?filter=%7Balertname%3D%22ApphealthDatabaseDown%22"
render database_down.json apphealth.text "- [critical] Database main is down" text .Alerts.Firing
render queue_mixed.json   apphealth.title "[FIRING:1] ApphealthQueueBacklogHigh on jobs"
render availability_group.json apphealth.title "[FIRING:2] 10% of requests to web fail with 5xx (2 alerts)"
render availability_group.json apphealth.pagerduty.severity "critical"
render queue_mixed.json   apphealth.slack.text "*Resolved:*"
render queue_mixed.json   apphealth.slack.color "warning"
render queue_mixed.json   apphealth.email.text "resolved 2024-05-01 03:10:00 UTC"
render queue_mixed.json   apphealth.email.html '<a href="https://github.com/apphealth/apphealth/blob/main/docs/runbooks/queues.md#apphealthqueuebackloghigh">Runbook</a>' html

# 4. inhibition, live -----------------------------------------------------------------------
if [ "${AM_SKIP_LIVE:-0}" = 1 ]; then
  echo "skip - live inhibition test (AM_SKIP_LIVE=1)"
else
  tmp="$(mktemp -d)"
  am_pid=""
  cleanup() { if [ -n "$am_pid" ]; then kill "$am_pid" 2>/dev/null || true; wait "$am_pid" 2>/dev/null || true; fi; rm -rf "$tmp"; }
  trap cleanup EXIT
  # Same routes, receivers and inhibit rules; only the notification endpoints point at a closed
  # local port so that nothing leaves the machine.
  sed -e 's#^\(  smtp_smarthost:\).*#\1 127.0.0.1:1#' \
      -e 's#^\(  pagerduty_url:\).*#\1 http://127.0.0.1:1/v2/enqueue#' \
      "$config" > "$tmp/alertmanager.yml"
  cp -r "$root/alertmanager/templates" "$tmp/templates"
  port=""
  for _ in $(seq 1 20); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
  done
  prometheus-alertmanager --config.file="$tmp/alertmanager.yml" --storage.path="$tmp/data" \
    --web.listen-address="127.0.0.1:$port" --cluster.listen-address= >"$tmp/am.log" 2>&1 &
  am_pid=$!
  url="http://127.0.0.1:$port"
  up=0
  for _ in $(seq 1 50); do
    if amtool --alertmanager.url="$url" config show >/dev/null 2>&1; then up=1; break; fi
    sleep 0.1
  done
  if [ "$up" = 1 ]; then
    ok "throwaway Alertmanager started on 127.0.0.1:$port"
    add() { amtool --alertmanager.url="$url" alert add "$@" >/dev/null; }
    A1=(job=apphealth instance=app1:9911)
    A2=(job=apphealth instance=app2:9911)
    # exporter app2 is down: its alerts are inhibited, app1's are not
    add alertname=ApphealthExporterDown severity=critical "${A2[@]}" target=app2:9911
    add alertname=ApphealthBackupTooOld severity=critical "${A2[@]}" target=nightly backup=nightly
    add alertname=ApphealthIngestSilent severity=warning "${A2[@]}" target=app2:9911
    add alertname=ApphealthBackupTooOld severity=critical "${A1[@]}" target=weekly backup=weekly
    # database main on app1 is down: its latency/connection alerts are inhibited, replica's not
    add alertname=ApphealthDatabaseDown severity=critical "${A1[@]}" target=main
    add alertname=ApphealthDatabaseSlow severity=warning "${A1[@]}" target=main
    add alertname=ApphealthDatabaseConnectionsHigh severity=warning "${A1[@]}" target=main
    add alertname=ApphealthDatabaseSlow severity=warning "${A1[@]}" target=replica
    # critical silences the same alert's warning for the same target only
    add alertname=ApphealthHTTPErrorRatioHigh severity=critical "${A1[@]}" target=web log=web
    add alertname=ApphealthHTTPErrorRatioHigh severity=warning "${A1[@]}" target=web log=web
    add alertname=ApphealthHTTPErrorRatioHigh severity=warning "${A1[@]}" target=api log=api
    add alertname=ApphealthErrorBudgetBurn severity=critical "${A1[@]}" target=web log=web long_window=1h short_window=5m burn_rate=14.4
    add alertname=ApphealthErrorBudgetBurn severity=warning "${A1[@]}" target=web log=web long_window=3d short_window=6h burn_rate=1
    want="$(printf '%s\n' \
      'ApphealthBackupTooOld/nightly/app2:9911/critical' \
      'ApphealthIngestSilent/app2:9911/app2:9911/warning' \
      'ApphealthDatabaseSlow/main/app1:9911/warning' \
      'ApphealthDatabaseConnectionsHigh/main/app1:9911/warning' \
      'ApphealthHTTPErrorRatioHigh/web/app1:9911/warning' \
      'ApphealthErrorBudgetBurn/web/app1:9911/warning' | sort)"
    # The inhibitor learns source alerts asynchronously: poll for a few seconds.
    got=""
    for _ in $(seq 1 30); do
      got="$(curl -fsS "$url/api/v2/alerts?active=false&inhibited=true&silenced=false&unprocessed=false" \
        | grep -o '"labels":{[^}]*}' \
        | while read -r l; do
            n=$(echo "$l" | sed -E 's/.*"alertname":"([^"]*)".*/\1/')
            t=$(echo "$l" | sed -E 's/.*"target":"([^"]*)".*/\1/')
            i=$(echo "$l" | sed -E 's/.*"instance":"([^"]*)".*/\1/')
            s=$(echo "$l" | sed -E 's/.*"severity":"([^"]*)".*/\1/')
            echo "$n/$t/$i/$s"
          done | sort)"
      [ "$got" = "$want" ] && break
      sleep 0.2
    done
    if [ "$got" = "$want" ]; then
      ok "inhibition: exactly the expected $(echo "$want" | wc -l) of 13 alerts are inhibited"
    else
      fail "inhibition: want inhibited:"; echo "$want" | sed 's/^/      /'
      echo "    got:"; echo "$got" | sed 's/^/      /'
    fi
    # and the sources themselves (and unrelated alerts) stay active
    active="$(curl -fsS "$url/api/v2/alerts?active=true&inhibited=false&silenced=false&unprocessed=true" | grep -o '"alertname":"[^"]*"' | wc -l)"
    if [ "$active" -eq 7 ]; then
      ok "inhibition: the other 7 alerts (sources, other targets, other exporter) stay active"
    else
      fail "inhibition: want 7 active alerts, got $active"
    fi
  else
    fail "throwaway Alertmanager did not start on 127.0.0.1:$port"; sed 's/^/    /' "$tmp/am.log"
  fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# Sends one labelled test alert through Alertmanager's real routing, so a team can prove that a
# page reaches PagerDuty (or whichever receiver the route picks) after changing
# alertmanager.yml, a secret, or the PagerDuty service itself.
#
# Usage: scripts/test-page.sh [options] ALERTMANAGER_URL [ALERTMANAGER_URL...]
#
#   ALERTMANAGER_URL   e.g. http://alertmanager.internal:9093 (with its route prefix, if any;
#                      user:password@ in the URL for basic auth). Give every member of an
#                      Alertmanager cluster, as Prometheus does: the cluster sends one page.
#                      There is no default: nothing is sent anywhere you did not name.
#   --severity S       critical (default; pages), warning, info
#   --label NAME=VALUE an extra label (repeatable), to test a route that matches on it
#   --summary TEXT     default "Test page from USER@HOST (scripts/test-page.sh): no action needed"
#   --duration D       the test alert ends by itself after D (e.g. 90s, 10m, 1h; default 10m);
#                      the resolve follows on the route's next group_interval
#   --resolve          end the test alert now (send this after the page arrived)
#   --dry-run          print the alert JSON and send nothing
#
# The alert: alertname=ApphealthTestPage, severity, target=test-page, your labels. The labels
# are the same on every run, so a second run while the first test alert is still active is
# the same alert (no second page): resolve it first. PagerDuty groups by the same key.
# After sending, the script reads the alert back from each Alertmanager and prints the
# receivers it was routed to and whether a silence or an inhibition holds it.
# Exit status: 0 sent and routed, not suppressed; 1 not accepted by any Alertmanager, or
# suppressed; 2 usage error. Needs curl and GNU date.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-2}"; }
die() { echo "test-page: $*" >&2; exit 2; }

severity=critical
summary="Test page from ${USER:-$(id -un)}@$(hostname) (scripts/test-page.sh): no action needed"
duration=10m
resolve=0
dry_run=0
labels=()
urls=()
while [ $# -gt 0 ]; do
  case $1 in
    --severity) [ $# -ge 2 ] || die "--severity needs a value"; severity=$2; shift 2 ;;
    --severity=*) severity=${1#*=}; shift ;;
    --label) [ $# -ge 2 ] || die "--label needs NAME=VALUE"; labels+=("$2"); shift 2 ;;
    --label=*) labels+=("${1#*=}"); shift ;;
    --summary) [ $# -ge 2 ] || die "--summary needs a value"; summary=$2; shift 2 ;;
    --summary=*) summary=${1#*=}; shift ;;
    --duration) [ $# -ge 2 ] || die "--duration needs a value"; duration=$2; shift 2 ;;
    --duration=*) duration=${1#*=}; shift ;;
    --resolve) resolve=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) urls+=("${1%/}"); shift ;;
  esac
done
[ ${#urls[@]} -gt 0 ] || { echo "test-page: give the Alertmanager URL(s); nothing is sent by default" >&2; usage 2; }
for u in "${urls[@]}"; do
  [[ $u =~ ^https?://[^/]+ ]] || die "not an http(s) URL: $u"
done
case $severity in critical|warning|info) ;; *) die "--severity must be critical, warning or info (got '$severity')" ;; esac
[[ $duration =~ ^([0-9]+)([smh])$ ]] || die "--duration must look like 90s, 10m or 1h (got '$duration')"
declare -A unit=([s]=1 [m]=60 [h]=3600)
seconds=$((10#${BASH_REMATCH[1]} * ${unit[${BASH_REMATCH[2]}]}))
[ "$seconds" -gt 0 ] || die "--duration must be positive"

# JSON string: backslash and double quote escaped; control characters refused.
json_str() {
  local v=$1
  [[ $v != *[[:cntrl:]]* ]] || die "control characters are not allowed in '$v'"
  v=${v//\\/\\\\}; v=${v//\"/\\\"}
  printf '"%s"' "$v"
}

declare -A seen=([alertname]=1 [severity]=1 [target]=1)
label_json="\"alertname\":\"ApphealthTestPage\",\"severity\":$(json_str "$severity"),\"target\":\"test-page\""
# The same labels as Alertmanager API filters, to read the alert back.
filters=(--data-urlencode 'filter=alertname="ApphealthTestPage"' --data-urlencode "filter=severity=\"$severity\""
         --data-urlencode 'filter=target="test-page"')
for l in "${labels[@]}"; do
  name=${l%%=*}; value=${l#*=}
  [[ $l == *=* && $name =~ ^[a-zA-Z_][a-zA-Z0-9_]*$ ]] || die "--label must be NAME=VALUE with a Prometheus label name (got '$l')"
  [ -z "${seen[$name]:-}" ] || die "label $name is set already"
  seen[$name]=1
  label_json+=",\"$name\":$(json_str "$value")"
  filters+=(--data-urlencode "filter=$name=$(json_str "$value")")
done

now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
if [ "$resolve" = 1 ]; then
  starts=$now ends=$now
else
  starts=$now ends=$(date -u -d "+$seconds seconds" +%Y-%m-%dT%H:%M:%SZ)
fi
body="[{\"labels\":{$label_json},\"annotations\":{\"summary\":$(json_str "$summary"),"
body+="\"description\":\"A test alert sent with scripts/test-page.sh to check the notification path. It ends by itself at $ends.\","
body+="\"runbook_url\":\"https://github.com/apphealth/apphealth/blob/main/docs/runbooks/README.md#apphealthtestpage\"},"
body+="\"startsAt\":\"$starts\",\"endsAt\":\"$ends\"}]"

if [ "$dry_run" = 1 ]; then
  printf '%s\n' "$body"
  exit 0
fi

# Post to every Alertmanager at once, as Prometheus does: cluster members that get the same
# change at different moments can notify from different views (a resolve may be followed by
# a "firing" from the member that had not seen it yet at its flush).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for i in "${!urls[@]}"; do
  curl -sS --max-time 10 -o "$tmp/body.$i" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "$body" "${urls[$i]}/api/v2/alerts" > "$tmp/code.$i" 2> "$tmp/err.$i" &
done
wait

accepted=0
suppressed=0
for i in "${!urls[@]}"; do
  u=${urls[$i]}
  code=$(cat "$tmp/code.$i")
  if [ -s "$tmp/err.$i" ] && [ "$code" = 000 ]; then
    echo "test-page: $u: not reachable: $(head -n 1 "$tmp/err.$i")" >&2
    continue
  fi
  if [ "$code" != 200 ]; then
    echo "test-page: $u refused the test alert: HTTP $code $(head -c 300 "$tmp/body.$i")" >&2
    continue
  fi
  accepted=$((accepted + 1))
  # Read it back: which receivers the routing tree picked, and whether it is held.
  back=$(curl -sS --max-time 10 -G "${filters[@]}" "$u/api/v2/alerts" 2>/dev/null || true)
  receivers=$(grep -o '"receivers":\[[^]]*\]' <<<"$back" | grep -o '"name":"[^"]*"' | cut -d'"' -f4 | sort -u | paste -sd, - || true)
  state=$(grep -o '"state":"[a-z]*"' <<<"$back" | head -n 1 | cut -d'"' -f4 || true)
  if [ "$resolve" = 1 ]; then
    echo "test-page: $u: test alert ended; the resolve goes to ${receivers:-the same receivers} on the next group_interval"
  elif [ "$state" = suppressed ]; then
    suppressed=1
    echo "test-page: $u: accepted but SUPPRESSED (a silence or an inhibition holds it; see $u/#/alerts): no page will be sent" >&2
  else
    echo "test-page: $u: accepted, ${state:-state unknown}, routed to: ${receivers:-(no receiver listed)}"
  fi
done

if [ "$accepted" -eq 0 ]; then
  echo "test-page: no Alertmanager accepted the test alert" >&2
  exit 1
fi
[ "$suppressed" -eq 0 ] || exit 1
if [ "$resolve" = 0 ]; then
  echo "test-page: expect the page after the route's group_wait (10s for critical in alertmanager/alertmanager.yml)."
  again=(--resolve)
  [ "$severity" = critical ] || again+=(--severity "$severity")
  for l in "${labels[@]}"; do again+=(--label "$l"); done
  echo "test-page: then resolve it: $0$(printf ' %q' "${again[@]}" "${urls[@]}")"
fi

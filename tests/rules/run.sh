#!/usr/bin/env bash
# Runs every test of the alerting kit and prints one line per check, then "N passed, M failed".
# Exits non-zero on any failure.
#   - promtool check rules on rules/*.yml
#   - promtool test rules on each tests/rules/*.test.yml
#   - every alert has an annotation set (summary, description, runbook_url) and a severity
#   - every alert has a unit test where it fires and one where it does not
#   - every runbook_url points to an existing docs/runbooks/ file and heading
#   - tests/alertmanager/test.sh: amtool check-config, route tests, templates, live inhibition
# Needs promtool and amtool (Debian packages prometheus and prometheus-alertmanager); installs
# them with apt-get when missing, waiting for the apt lock if another apt is running.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
passed=0
failed=0
ok()   { passed=$((passed + 1)); echo "ok   - $*"; }
fail() { failed=$((failed + 1)); echo "FAIL - $*"; }

# --- tools ------------------------------------------------------------------------------------
if ! command -v promtool >/dev/null 2>&1 || ! command -v amtool >/dev/null 2>&1; then
  echo "run.sh: installing prometheus and prometheus-alertmanager (promtool, amtool)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  for attempt in $(seq 1 30); do
    if $SUDO apt-get -o DPkg::Lock::Timeout=60 update -qq \
       && $SUDO apt-get -o DPkg::Lock::Timeout=60 install -y -qq --no-install-recommends \
            prometheus prometheus-alertmanager >/dev/null; then
      break
    fi
    echo "run.sh: apt-get failed (lock held by another apt?), retry $attempt/30 in 10 s"
    sleep 10
  done
fi
for tool in promtool amtool; do
  command -v "$tool" >/dev/null 2>&1 || { echo "FAIL - $tool not found"; echo "0 passed, 1 failed"; exit 1; }
done

rule_files=(rules/*.yml)
test_files=(tests/rules/*.test.yml)

# --- promtool check rules ---------------------------------------------------------------------
if out=$(promtool check rules "${rule_files[@]}" 2>&1); then
  ok "promtool check rules ${rule_files[*]} ($(echo "$out" | grep -o '[0-9]* rules found' | paste -sd, -))"
else
  fail "promtool check rules"; echo "$out" | sed 's/^/    /'
fi

# --- promtool test rules ----------------------------------------------------------------------
for t in "${test_files[@]}"; do
  if out=$(promtool test rules "$t" 2>&1); then
    ok "promtool test rules $t"
  else
    fail "promtool test rules $t"; echo "$out" | sed 's/^/    /'
  fi
done

# --- every alert: severity, annotations ---------------------------------------------------------
# One record per rule: "alert NAME|has-severity|has-summary|has-description|has-runbook".
rules_table="$(awk '
  function flush() { if (name != "") print name "|" sev "|" sum "|" desc "|" rb; name = "" }
  /^[[:space:]]*- (alert|record):/ { flush(); if ($2 == "alert:") { name = $3; sev = sum = desc = rb = 0 } ; next }
  name != "" && /^[[:space:]]+severity: (critical|warning|info)[[:space:]]*$/ { sev = 1 }
  name != "" && /^[[:space:]]+summary:/     { sum = 1 }
  name != "" && /^[[:space:]]+description:/ { desc = 1 }
  name != "" && /^[[:space:]]+runbook_url:/ { rb = 1 }
  /^[[:space:]]*- name:/ { flush() }
  END { flush() }
' "${rule_files[@]}")"
alerts="$(echo "$rules_table" | cut -d'|' -f1 | sort -u)"
bad="$(echo "$rules_table" | grep -v '|1|1|1|1$' || true)"
if [ -n "$alerts" ] && [ -z "$bad" ]; then
  ok "all $(echo "$rules_table" | wc -l) alerting rules have severity, summary, description and runbook_url"
else
  fail "alerting rules missing severity/summary/description/runbook_url: $(echo "$bad" | cut -d'|' -f1 | tr '\n' ' ')"
fi

# --- every alert: a firing test and a non-firing test -----------------------------------------
# "NAME fires" / "NAME quiet" for each alert_rule_test entry.
cases="$(awk '
  /^[[:space:]]+alertname:/ { name = $2; next }
  name != "" && /^[[:space:]]+exp_alerts:/ { print name, ($2 == "[]" ? "quiet" : "fires"); name = "" }
' "${test_files[@]}" | sort -u)"
for a in $alerts; do
  if grep -qx "$a fires" <<<"$cases" && grep -qx "$a quiet" <<<"$cases"; then
    ok "unit tests cover $a firing and not firing"
  else
    fail "unit tests for $a: need a case where it fires and one where it does not"
  fi
done

# --- runbook links ----------------------------------------------------------------------------
base="https://github.com/apphealth/apphealth/blob/main/"
for url in $(grep -ho 'runbook_url: *[^ ]*' "${rule_files[@]}" | awk '{print $2}' | sort -u); do
  path="${url#"$base"}"; file="${path%%#*}"; anchor="${path#*#}"
  if [ "$path" = "$url" ] || [ ! -f "$file" ]; then
    fail "runbook $url: $file missing (or URL not under $base)"
  elif grep -E '^#+ ' "$file" | sed -E 's/^#+ +//' \
       | tr 'A-Z' 'a-z' | sed -E 's/[^a-z0-9 _-]//g; s/ /-/g' | grep -qx "$anchor"; then
    ok "runbook $file#$anchor exists"
  else
    fail "runbook $url: no heading for #$anchor in $file"
  fi
done

# --- Alertmanager -----------------------------------------------------------------------------
am_out="$(tests/alertmanager/test.sh 2>&1)" && am_rc=0 || am_rc=$?
echo "$am_out" | sed '$d'
am_summary="$(echo "$am_out" | tail -n 1)"
if [[ "$am_summary" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
  passed=$((passed + BASH_REMATCH[1])); failed=$((failed + BASH_REMATCH[2]))
  [ "$am_rc" -eq 0 ] || [ "${BASH_REMATCH[2]}" -gt 0 ] || fail "tests/alertmanager/test.sh exited $am_rc"
else
  fail "tests/alertmanager/test.sh did not finish: $am_summary"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

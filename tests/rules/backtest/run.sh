#!/usr/bin/env bash
# The alert backtest stage of the test command (issue 13): a realistic noisy week and injected
# incidents replayed through promtool; fails when a target is missed or README.md's alert table
# is not the one this backtest produces. Also the static Prometheus 3 check of rules and
# dashboards. Needs promtool (Debian's prometheus) and python3-yaml; installs them if missing.
# About 2-3 minutes of both cores (BACKTEST_JOBS promtool runs at a time, default 2).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
python3 -c 'import yaml' 2>/dev/null || missing+=(python3-yaml)
if [ ${#missing[@]} -gt 0 ]; then
  echo "backtest: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq
  $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

started=$SECONDS
passed=0
failed=0
for check in "check_promql3.py" "backtest.py --jobs ${BACKTEST_JOBS:-2} --readme check"; do
  # shellcheck disable=SC2086
  if python3 "$here"/$check; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "backtest stage: $((SECONDS - started)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

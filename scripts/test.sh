#!/usr/bin/env bash
# Runs every test of the project on a fresh Debian 12 machine (installs what it needs).
#
# Stages run in parallel where they do not depend on each other; each writes its output to
# build/test-logs/STAGE.log and is reported when it ends (PASS/FAIL, wall time, and the end
# of its log on failure). The two compilations run in the foreground, one after the other,
# because each already uses both cores; the stages overlap with them:
#
#   phase 1, beside the release build (need no build of ours):
#     rules       promtool/amtool rule and routing tests
#     static      dashboard and docker-compose checks
#     fuzz        the beacon parsers under libFuzzer (its own clang build)
#   phase 2, beside the ASan+UBSan build (need the release build of the exporter; the unit and
#   integration tests are built and run once, under ASan+UBSan, the stricter of the two: the
#   release binary itself is what browser, e2e, package and attack exercise):
#     browser     Web Vitals from the real web-vitals library in headless Chromium
#     e2e         the whole stack end to end, in HA mode: outages paged through two Prometheus
#                 and two clustered Alertmanagers to a stand-in PagerDuty (one page each, and
#                 still paged with an Alertmanager killed), inhibition, resolve, test page
#   phase 3 (need the ASan+UBSan build; attack runs here only to stay off the compilation):
#     ctest-asan  unit and integration tests against real servers, under ASan+UBSan
#     queues      the real Celery, RQ, Sidekiq, Laravel and BullMQ 5/6 against the ASan+UBSan
#                 exporter (tests/queues/run.sh)
#     attack      hostile clients against the release exporter, each with an honest client
#                 that must stay served, and the nginx recipe of deploy/nginx/ (about 1-2 min)
#
# Add a stage with one `stage NAME [--timeout SECONDS] COMMAND...` line in the phase whose
# build it needs. A stage is one command that exits non-zero on failure and is bounded in
# time (default limit 15 minutes, then it is killed and fails).
#
# Exits non-zero when any stage failed. APPHEALTH_FUZZ_SECONDS (default 60) bounds fuzzing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

bash scripts/install-deps.sh

LOGS=build/test-logs
rm -rf "$LOGS"
mkdir -p "$LOGS"
T0=$(date +%s)
elapsed() { echo $(($(date +%s) - T0)); }
say() { printf '[%4ss] %s\n' "$(elapsed)" "$*"; }

declare -A STAGE_OF_PID=() STAGE_START=() STAGE_RESULT=()
STAGES=()
FAILED=()

# stage NAME [--timeout SECONDS] COMMAND...: runs COMMAND (a program, not a shell function)
# in the background; `timeout` runs it in its own process group, so a timeout kills
# everything it started.
stage() {
  local name=$1; shift
  local limit=900
  if [ "${1:-}" = "--timeout" ]; then limit=$2; shift 2; fi
  timeout --kill-after=20 "$limit" "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  STAGE_OF_PID[$!]=$name
  STAGE_START[$name]=$(date +%s)
  STAGES+=("$name")
  say "started $name"
}

report() {  # report NAME STATUS
  local name=$1 rc=$2
  local took=$(($(date +%s) - STAGE_START[$name]))
  if [ "$rc" -eq 0 ]; then
    STAGE_RESULT[$name]="PASS  ${took}s"
    say "PASS $name (${took}s)"
  else
    FAILED+=("$name")
    [ "$rc" -eq 124 ] && STAGE_RESULT[$name]="FAIL  ${took}s (timed out)" || STAGE_RESULT[$name]="FAIL  ${took}s (exit $rc)"
    say "FAIL $name (${took}s, exit $rc); last 150 lines of $LOGS/$name.log:"
    tail -n 150 "$LOGS/$name.log" | sed 's/^/    | /'
  fi
}

# Reports every stage that has ended, without waiting for the others.
reap() {
  local pid name rc
  for pid in "${!STAGE_OF_PID[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      name=${STAGE_OF_PID[$pid]}
      unset "STAGE_OF_PID[$pid]"
      if wait "$pid"; then rc=0; else rc=$?; fi
      report "$name" "$rc"
    fi
  done
}

wait_all() {
  local pid name rc
  while [ ${#STAGE_OF_PID[@]} -gt 0 ]; do
    if wait -n -p pid "${!STAGE_OF_PID[@]}"; then rc=0; else rc=$?; fi
    name=${STAGE_OF_PID[$pid]}
    unset "STAGE_OF_PID[$pid]"
    report "$name" "$rc"
  done
}

# build NAME DIR [--target T...] -- CMAKE-ARGS...: configures and builds (all targets, or the
# named ones) in the foreground (both cores).
build() {
  local name=$1 dir=$2; shift 2
  local targets=()
  while [ "$1" != "--" ]; do targets+=("$1"); shift; done
  shift
  local start; start=$(date +%s)
  say "building $name"
  if cmake -S . -B "$dir" -G Ninja "$@" >"$LOGS/build-$name.log" 2>&1 \
     && cmake --build "$dir" -j 2 "${targets[@]}" >>"$LOGS/build-$name.log" 2>&1; then
    say "built $name ($(($(date +%s) - start))s)"
    reap
  else
    say "FAIL build $name; last 80 lines of $LOGS/build-$name.log:"
    tail -n 80 "$LOGS/build-$name.log" | sed 's/^/    | /'
    wait_all
    exit 1
  fi
}

# ctest runs two test processes at a time; each integration test starts its own servers on
# free loopback ports, so they do not collide.
CTEST=(ctest --output-on-failure --timeout 180 -j 2 --test-dir)

RELEASE_EXPORTER=$ROOT/build/release/exporter/apphealth_exporter
ASAN_EXPORTER=$ROOT/build/sanitize/exporter/apphealth_exporter
# The exporter child processes inherit these: a leak or UB in the exporter makes it exit
# non-zero, which the tests that check its exit status report.
ASAN_ENV=(ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1"
          UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")

# ---- phase 1: no build needed --------------------------------------------------------------
stage rules bash tests/rules/run.sh
stage backtest --timeout 1500 bash tests/rules/backtest/run.sh
stage static bash -c 'python3 tests/dashboards/check.py && bash tests/compose/check.sh'
stage fuzz bash scripts/fuzz.sh "${APPHEALTH_FUZZ_SECONDS:-60}"
build release build/release --target apphealth_exporter apphealth_attack_tests -- -DCMAKE_BUILD_TYPE=RelWithDebInfo

# ---- phase 2: the release build ------------------------------------------------------------
stage browser env APPHEALTH_EXPORTER="$RELEASE_EXPORTER" bash tests/browser/run.sh
stage e2e env APPHEALTH_EXPORTER="$RELEASE_EXPORTER" bash tests/e2e/alerts.test.sh
stage package env APPHEALTH_BUILD_DIR="$ROOT/build/release" bash tests/package/run.sh
build sanitize build/sanitize -- -DCMAKE_BUILD_TYPE=Debug -DAPPHEALTH_SANITIZE=ON

# ---- phase 3: the ASan+UBSan build ---------------------------------------------------------
stage ctest-asan env "${ASAN_ENV[@]}" "${CTEST[@]}" build/sanitize
stage queues env "${ASAN_ENV[@]}" APPHEALTH_EXPORTER="$ASAN_EXPORTER" bash tests/queues/run.sh
stage attack --timeout 600 env APPHEALTH_BUILD_DIR=build/release bash tests/attack/run.sh

wait_all
echo
echo "== summary ($(elapsed)s in all; logs in $LOGS/)"
for name in "${STAGES[@]}"; do printf '  %-12s %s\n' "$name" "${STAGE_RESULT[$name]}"; done
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "== FAILED: ${FAILED[*]}"
  exit 1
fi
echo "== all tests passed"

#!/usr/bin/env bash
# Runs every test of the project on a fresh Debian 12 machine (installs what it needs):
#   1. unit and integration tests (real PostgreSQL, Redis, the exporter binary) on a normal build;
#   2. the same tests again with AddressSanitizer + UndefinedBehaviorSanitizer;
#   3. the beacon parsers under libFuzzer (clang, ASan + UBSan) for a bounded time;
#   4. the Web Vitals ingest fed by the real web-vitals library in headless Chromium;
#   5. the Prometheus rule and Alertmanager routing tests (promtool, amtool);
#   6. static checks of the Grafana dashboards and the docker-compose file;
#   7. the whole stack end to end: an outage fires the rules, Alertmanager pages a stand-in
#      PagerDuty, inhibits the database's latency alert, and resolves on recovery.
# Exits non-zero on the first failing stage.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

# ctest runs two test processes at a time (the machine has 2 cores); each integration test
# starts its own servers on free loopback ports, so they do not collide.
run_ctest() {
  ctest --test-dir "$1" --output-on-failure --timeout 180 -j 2
}

echo "== build and test (RelWithDebInfo)"
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release
run_ctest build/release

echo "== build and test under ASan + UBSan"
cmake -S . -B build/sanitize -G Ninja -DCMAKE_BUILD_TYPE=Debug -DAPPHEALTH_SANITIZE=ON >/dev/null
cmake --build build/sanitize
# The exporter child processes inherit these: a leak or UB in the exporter makes it exit
# non-zero, which the tests that check its exit status report.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
run_ctest build/sanitize

echo "== fuzzing the beacon parsers"
bash scripts/fuzz.sh "${APPHEALTH_FUZZ_SECONDS:-60}"

echo "== Web Vitals from headless Chromium"
APPHEALTH_EXPORTER="$PWD/build/release/exporter/apphealth_exporter" bash tests/browser/run.sh

echo "== Prometheus rules and Alertmanager routing"
bash tests/rules/run.sh

echo "== Grafana dashboards and the docker-compose stack (static checks)"
python3 tests/dashboards/check.py
bash tests/compose/check.sh

echo "== end to end: backup and database outage paged through Prometheus and Alertmanager"
APPHEALTH_EXPORTER="$PWD/build/release/exporter/apphealth_exporter" bash tests/e2e/alerts.test.sh
echo "== all tests passed"

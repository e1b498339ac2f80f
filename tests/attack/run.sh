#!/usr/bin/env bash
# The attack suite (issue 8): slow bodies and headers, floods of connections and of client
# addresses, a full disk, browser-driven reloads, huge bodies, smuggling-shaped framing and
# out-of-range numbers, each against the built exporter on 127.0.0.1 with an honest client
# asserted to stay served; plus the nginx recipe in deploy/nginx/ holding 1,000 slow sockets.
# Every case is its own process; APPHEALTH_ATTACK_JOBS of them run at once (default 3).
# Bounded: each case has a hard timeout, the whole stage takes about 1-2 minutes.
#
#   tests/attack/run.sh                 builds build/release (or $APPHEALTH_BUILD_DIR) and runs all
#   tests/attack/run.sh 'Attack.Slow*'  only the matching cases (a gtest filter)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${APPHEALTH_BUILD_DIR:-build/release}
JOBS=${APPHEALTH_ATTACK_JOBS:-3}
FILTER=${1:-*}

bash scripts/install-deps.sh
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j 2 --target apphealth_exporter apphealth_attack_tests >/dev/null
BIN="$BUILD/tests/apphealth_attack_tests"

# 1,000 slow sockets on each side of a connection need more than the usual 1,024 descriptors.
ulimit -n "$(ulimit -Hn)"

LOGS=$(mktemp -d /tmp/apphealth-attack-XXXXXX)
trap 'rm -rf "$LOGS"' EXIT
mapfile -t CASES < <("$BIN" --gtest_list_tests --gtest_filter="$FILTER" |
                     awk '/^[^ ]/{suite=$1} /^  /{print suite $1}')
[ ${#CASES[@]} -gt 0 ] || { echo "attack: no case matches '$FILTER'" >&2; exit 1; }
echo "attack: ${#CASES[@]} cases, $JOBS at a time"

started=$SECONDS
printf '%s\n' "${CASES[@]}" |
  xargs -P "$JOBS" -I{} sh -c 'timeout -k 5 150 "$0" --gtest_filter="$1" >"$2/$1.log" 2>&1 && echo "  ok    $1" || echo "  FAIL  $1"' \
    "$BIN" {} "$LOGS" | tee "$LOGS/summary"
failed=$(grep -c '  FAIL  ' "$LOGS/summary" || true)
for f in $(grep '  FAIL  ' "$LOGS/summary" | awk '{print $2}'); do
  echo "---- $f"
  grep -vE '^\[ *(RUN|OK) *\]' "$LOGS/$f.log" | tail -n 60
done
echo "attack: $(( ${#CASES[@]} - failed )) of ${#CASES[@]} cases passed in $(( SECONDS - started )) s"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# Builds the libFuzzer target for the beacon parsers with clang (ASan + UBSan) and runs it
# for a bounded time on the seed corpus in tests/fuzz/corpus. Any crash, leak, sanitizer
# report or timeout fails the run. Usage: scripts/fuzz.sh [seconds] (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-60}
OUT=build/fuzz
mkdir -p "$OUT/corpus"
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I exporter/src tests/fuzz/BeaconFuzzer.cpp exporter/src/ingest/BeaconParser.cpp \
  exporter/src/ingest/Sanitize.cpp exporter/src/routes/RoutePatterns.cpp \
  $(pkg-config --cflags --libs simdjson) -o "$OUT/beacon_fuzzer"
# New inputs go to a scratch corpus; the seeds in the repo stay as they are.
"$OUT/beacon_fuzzer" "$OUT/corpus" tests/fuzz/corpus -max_total_time="$SECONDS_TO_RUN" -max_len=8192 \
  -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$OUT/" 2>&1 | tail -15
echo "fuzz: no crash in ${SECONDS_TO_RUN}s"

#!/usr/bin/env bash
# The README's run command: installs what is missing, builds the exporter, and starts the whole
# stack in the foreground on 127.0.0.1 with scripts/stack.sh (PostgreSQL, Redis with demo
# queues, nginx as a demo web app, a verified backup, the exporter, Prometheus with the
# repo's rules, Alertmanager with the repo's routing). Prints the URLs; Ctrl-C stops
# everything and removes the state directory.
#
# Ports and intervals: see the options at the top of scripts/stack.sh (APPHEALTH_PORT=10045,
# APPHEALTH_PROMETHEUS_PORT=19090, APPHEALTH_ALERTMANAGER_PORT=19093, ...).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release --target apphealth_exporter -j2
exec bash scripts/stack.sh run

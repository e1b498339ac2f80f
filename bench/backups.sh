#!/usr/bin/env bash
# What does checking a ~1 GB backup cost the exporter? (issue 9)
#
# Makes one gzip'd plain-SQL backup of about BACKUP_MB MB in a temp directory, with its
# sha256 sidecar (written by sha256sum), reads it once so that every measurement below finds it
# in the page cache, then, RUNS times:
#   - the exporter, started with one `backups[]` entry on that directory, until its first
#     sample has published the verdict: once with verify_checksum only, once with check_complete
#     only, once with both (what a production config does). Figures: the sample's duration
#     (apphealth_collector_duration_seconds), the process's CPU time, and its peak RSS (VmHWM);
#     plus an exporter on an empty directory, for its RSS without any check;
#   - the references on the same file: `sha256sum -c` (coreutils), `openssl dgst -sha256` (the
#     same libcrypto SHA-256 as the exporter), `gzip -t` (gzip's own inflate), and
#     `gzip -dc | tail -c 4096` (inflate plus the look at the end for pg_dump's trailer), each
#     under /usr/bin/time for wall time, CPU time and peak RSS.
# Prints every figure and the ratios exporter / reference (below 1: the exporter is faster or
# smaller). A wrong verdict (not verified, not complete) exits non-zero.
#
# The backup is pg_dump's plain shape (header, one COPY block, the "dump complete" trailer)
# around random base64 lines, not a real pg_dump: producing 1 GB of compressed dump from
# PostgreSQL takes many minutes here, and the checks read bytes, not SQL.
#
# Usage: bench/backups.sh           (Debian 12)
# Environment: BACKUP_MB (930: MB of random bytes; as base64 through gzip -1 they make a .sql.gz
#              about 10 % larger, about 1 GB), RUNS (2),
#              SKIP_BUILD=1 (use the existing binary in BUILD), BUILD (build-bench),
#              JOBS (2: compile jobs).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-"$ROOT/build-bench"}
BIN="$BUILD/exporter/apphealth_exporter"
BACKUP_MB=${BACKUP_MB:-930}
RUNS=${RUNS:-2}
source "$ROOT/bench/lib.sh"

for tool in gzip sha256sum openssl base64 curl python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || die "$tool missing: apt-get install -y gzip coreutils openssl curl python3 time"
done
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  log "building apphealth_exporter (Release) in $BUILD"
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DAPPHEALTH_BUILD_TESTS=OFF >/dev/null
  cmake --build "$BUILD" -j "${JOBS:-2}" --target apphealth_exporter >/dev/null
fi
[[ -x "$BIN" ]] || die "no binary at $BIN"

bench_workdir backup
mkdir -p "$WORK/backups" "$WORK/empty"
NAME=nightly-20261122-020000.sql.gz
FILE="$WORK/backups/$NAME"

log "making $NAME from $BACKUP_MB MB of random bytes (gzip -1)"
{
  printf -- '--\n-- PostgreSQL database dump\n--\n\nCOPY public.attachments (data) FROM stdin;\n'
  head -c "${BACKUP_MB}M" /dev/urandom | base64 -w 76
  printf '\\.\n\n\n--\n-- PostgreSQL database dump complete\n--\n\n'
} | gzip -1 >"$FILE"
(cd "$WORK/backups" && sha256sum "$NAME" >"$NAME.sha256")
SIZE=$(stat -c %s "$FILE")
log "backup: $SIZE bytes; reading it once into the page cache"
cat "$FILE" >/dev/null

# metric NAME: the value of the first series named NAME in the last scrape ("" if absent).
SCRAPE=""
metric() { awk -v n="$1" 'index($0, n) == 1 && substr($0, length(n) + 1, 1) ~ /[{ ]/ { print $NF; exit }' <<<"$SCRAPE"; }

# exporter_run LABEL DIRECTORY VERIFY COMPLETE: starts the exporter on DIRECTORY and waits for
# its first backup sample; prints "duration_s cpu_s peak_rss_kb".
exporter_run() {
  local label=$1 dir=$2 verify=$3 complete=$4 port deadline clk ticks
  port=$(free_port)
  cat >"$WORK/config.yml" <<EOF
backups:
  - name: bench
    directory: $dir
    glob: "*.sql.gz"
    verify_checksum: $verify
    check_complete: $complete
    settle_time: 0s
    interval: 1h
    check_timeout: 1h
EOF
  "$BIN" --config.file="$WORK/config.yml" --web.listen-address="127.0.0.1:$port" >"$WORK/exporter-$label.log" 2>&1 &
  EXPORTER_PID=$!
  deadline=$((SECONDS + 1800))
  while :; do
    ((SECONDS < deadline)) || die "$label: no sample within 30 minutes"
    kill -0 "$EXPORTER_PID" 2>/dev/null || die "$label: exporter exited: $(tail -n 5 "$WORK/exporter-$label.log")"
    SCRAPE=$(curl -fsS --max-time 5 "http://127.0.0.1:$port/metrics" 2>/dev/null || true)
    [[ -n "$(metric apphealth_collector_last_success_timestamp_seconds)" ]] && break
    sleep 0.2
  done
  if [[ "$verify" == true && "$(metric apphealth_backup_verified)" != 1 ]]; then die "$label: not verified"; fi
  if [[ "$complete" == true && "$(metric apphealth_backup_complete)" != 1 ]]; then die "$label: not complete"; fi
  clk=$(getconf CLK_TCK)
  ticks=$(awk '{print $14 + $15}' "/proc/$EXPORTER_PID/stat")
  echo "$(awk -v d="$(metric apphealth_collector_duration_seconds)" 'BEGIN {printf "%.2f", d}') $(awk -v t="$ticks" -v c="$clk" 'BEGIN {printf "%.2f", t / c}') $(awk '/^VmHWM:/ {print $2}' "/proc/$EXPORTER_PID/status")"
  kill -TERM "$EXPORTER_PID"
  wait "$EXPORTER_PID" 2>/dev/null || true
  EXPORTER_PID=""
}

# reference COMMAND: runs it under /usr/bin/time; prints "wall_s cpu_s peak_rss_kb".
reference() {
  /usr/bin/time -f '%e %U %S %M' -o "$WORK/time.out" bash -c "$1" >/dev/null 2>"$WORK/reference.err" \
    || die "reference failed: $1: $(cat "$WORK/reference.err")"
  awk '{printf "%.2f %.2f %d\n", $1, $2 + $3, $4}' "$WORK/time.out"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f MB", k / 1024 }'; }

declare -a ROWS=()
row() { ROWS+=("$(printf '%-44s %9s %9s %10s' "$@")"); }

for run in $(seq "$RUNS"); do
  log "run $run/$RUNS"
  read -r idle_s idle_cpu idle_rss < <(exporter_run idle "$WORK/empty" false false)
  read -r sum_s sum_cpu sum_rss < <(exporter_run checksum "$WORK/backups" true false)
  read -r gz_s gz_cpu gz_rss < <(exporter_run complete "$WORK/backups" false true)
  read -r both_s both_cpu both_rss < <(exporter_run both "$WORK/backups" true true)
  # gzip -dc reads to the end like the exporter's check; the pipe also looks at the last 4 KB
  # for the trailer, as the exporter does.
  read -r ref_sum_s ref_sum_cpu ref_sum_rss < <(reference "cd '$WORK/backups' && sha256sum -c --quiet '$NAME.sha256'")
  read -r ref_ossl_s ref_ossl_cpu ref_ossl_rss < <(reference "openssl dgst -sha256 '$FILE'")
  read -r ref_gzt_s ref_gzt_cpu ref_gzt_rss < <(reference "gzip -t '$FILE'")
  read -r ref_tail_s ref_tail_cpu ref_tail_rss < <(reference "gzip -dc '$FILE' | tail -c 4096 | grep -q 'PostgreSQL database dump complete'")

  ROWS=()
  row "" "wall s" "CPU s" "peak RSS"
  row "exporter, no backup to check" "-" "$idle_cpu" "$(mb "$idle_rss")"
  row "exporter, verify_checksum (sha256)" "$sum_s" "$sum_cpu" "$(mb "$sum_rss")"
  row "  sha256sum -c" "$ref_sum_s" "$ref_sum_cpu" "$(mb "$ref_sum_rss")"
  row "  openssl dgst -sha256" "$ref_ossl_s" "$ref_ossl_cpu" "$(mb "$ref_ossl_rss")"
  row "exporter, check_complete (gzip + trailer)" "$gz_s" "$gz_cpu" "$(mb "$gz_rss")"
  row "  gzip -t" "$ref_gzt_s" "$ref_gzt_cpu" "$(mb "$ref_gzt_rss")"
  row "  gzip -dc | tail -c 4096 | grep" "$ref_tail_s" "$ref_tail_cpu" "$(mb "$ref_tail_rss")"
  row "exporter, both" "$both_s" "$both_cpu" "$(mb "$both_rss")"
  row "  sha256sum -c, then gzip -t" "$(awk -v a="$ref_sum_s" -v b="$ref_gzt_s" 'BEGIN{printf "%.2f", a+b}')" \
      "$(awk -v a="$ref_sum_cpu" -v b="$ref_gzt_cpu" 'BEGIN{printf "%.2f", a+b}')" "-"
  echo
  echo "== run $run: $NAME, $SIZE bytes, in the page cache"
  printf '%s\n' "${ROWS[@]}"
  echo "ratios (exporter / reference; wall, CPU):"
  echo "  sha256 vs sha256sum -c:           $(ratio "$sum_s" "$ref_sum_s"), $(ratio "$sum_cpu" "$ref_sum_cpu")"
  echo "  sha256 vs openssl dgst:           $(ratio "$sum_s" "$ref_ossl_s"), $(ratio "$sum_cpu" "$ref_ossl_cpu")"
  echo "  gzip check vs gzip -t:            $(ratio "$gz_s" "$ref_gzt_s"), $(ratio "$gz_cpu" "$ref_gzt_cpu")"
  echo "  gzip check vs gzip -dc | tail:    $(ratio "$gz_s" "$ref_tail_s"), $(ratio "$gz_cpu" "$ref_tail_cpu")"
  echo "  both vs sha256sum -c + gzip -t:   $(ratio "$both_s" "$(awk -v a="$ref_sum_s" -v b="$ref_gzt_s" 'BEGIN{print a+b}')"), $(ratio "$both_cpu" "$(awk -v a="$ref_sum_cpu" -v b="$ref_gzt_cpu" 'BEGIN{print a+b}')")"
  echo "  peak RSS added by both checks:    $(mb $((both_rss - idle_rss)))"
done

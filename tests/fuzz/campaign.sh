#!/bin/sh
# A long local fuzzing campaign (docs/security.md, "Executions run so far"): runs each TARGET
# in turn, under nice, until SECONDS have passed or 10 million inputs have run, keeping its
# corpus and any failing input in OUT/TARGET/, and appends one line per target to
# OUT/summary.txt: exit status, seconds, executions. Run from the project root after building
# the fuzzers (`cmake --build build-fuzz --target fuzzers`) and their seeds
# (`tests/fuzz/make_seeds.sh build-fuzz/fuzz-seeds`).
# Usage: tests/fuzz/campaign.sh BUILD_DIR SECONDS OUT TARGET...
set -u
[ $# -ge 4 ] || { echo "usage: tests/fuzz/campaign.sh BUILD_DIR SECONDS OUT TARGET..." >&2; exit 2; }
dir=$1 seconds=$2 out=$3
shift 3
for t in "$@"; do
  mkdir -p "$out/$t/corpus" "$out/$t/artifacts"
  start=$(date +%s)
  nice -n 19 "$dir/tests/fuzz/$t" -dict=tests/fuzz/stopscan.dict -max_total_time="$seconds" \
    -runs=10000000 -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$out/$t/artifacts/" "$out/$t/corpus" "$dir/fuzz-seeds/$t" >"$out/$t/log" 2>&1
  status=$?
  echo "$t exit=$status seconds=$(( $(date +%s) - start )) $(grep -E '^stat::number_of_executed_units' "$out/$t/log")" \
    >> "$out/summary.txt"
done

#!/bin/sh
# Builds the fuzzers' seed corpora from the shipped files into DIR/<target>/ (one file per
# seed): scenario INI files (scenarios/, tests/bad_inputs/ and its good/ cases) for
# fuzz_scenario_ini; every key of scenarios/*.ini as a `section.key=value` override for
# fuzz_set_override; tests/fuzz/seeds/ for fuzz_distribution and fuzz_cli, plus each scenario
# file followed by a NUL and `--print-cells` for fuzz_cli; scenarios/sweeps/*.ini and
# tests/fuzz/seeds/sweep/ for fuzz_sweep_file; every shipped CSV (git ls-files '*.csv') behind
# a counts, a population and a few suppression-option bytes, and tests/fuzz/seeds/foi/, for
# fuzz_foi_table; tests/fuzz/seeds/audit/ for fuzz_audit_log. Run from the project root.
# Usage: tests/fuzz/make_seeds.sh DIR
set -eu
dir=$1
rm -rf "$dir"
mkdir -p "$dir/fuzz_scenario_ini" "$dir/fuzz_set_override" "$dir/fuzz_distribution" "$dir/fuzz_cli" \
  "$dir/fuzz_sweep_file" "$dir/fuzz_foi_table" "$dir/fuzz_audit_log"
n=0
for f in scenarios/*.ini tests/bad_inputs/*.ini tests/bad_inputs/good/*.ini; do
  n=$((n + 1))
  cp "$f" "$dir/fuzz_scenario_ini/$n.ini"
  { cat "$f"; printf '\000--print-cells'; } > "$dir/fuzz_cli/$n.ini-args"
done
# `[section]` + `key = value  # comment` -> `section.key=value`, one seed per key.
awk -v out="$dir/fuzz_set_override" '
  FNR == 1 { file++ }
  /^[ \t]*\[/ { s = $0; gsub(/^[ \t]*\[|\][ \t\r]*$/, "", s); next }
  /^[ \t]*[A-Za-z]/ && index($0, "=") {
    line = $0; sub(/[ \t]+#.*$/, "", line); sub(/\r$/, "", line)
    k = substr(line, 1, index(line, "=") - 1); v = substr(line, index(line, "=") + 1)
    gsub(/^[ \t]+|[ \t]+$/, "", k); gsub(/^[ \t]+|[ \t]+$/, "", v)
    f = out "/" FNR "-" file ".set"; printf "%s.%s=%s", s, k, v > f; close(f)
  }' scenarios/*.ini
cp tests/fuzz/seeds/distribution/* "$dir/fuzz_distribution/"
cp tests/fuzz/seeds/cli/* "$dir/fuzz_cli/"
n=0
for f in scenarios/sweeps/*.ini; do
  n=$((n + 1))
  cp "$f" "$dir/fuzz_sweep_file/$n.ini"
done
cp tests/fuzz/seeds/sweep/* "$dir/fuzz_sweep_file/"
# The first byte of a fuzz_foi_table input: bit 0 population, bits 1.. the suppression
# options (tests/fuzz/fuzz_foi_table.cpp: 0 the default; 1 smallest 1; 5 the CLI's largest
# threshold and smallest; 12 the API's largest threshold). Each CSV's first 4 KiB are enough
# (libFuzzer grows no input beyond its largest seed, and tests/regression's are 300 KiB).
n=0
for f in $(git ls-files '*.csv'); do
  n=$((n + 1))
  for byte in 000 001 002 012 030; do
    # shellcheck disable=SC2059 # the format is the octal escape of the byte
    { printf "\\$byte"; head -c 4096 "$f"; } > "$dir/fuzz_foi_table/$n-$byte.csv"
  done
done
cp tests/fuzz/seeds/foi/* "$dir/fuzz_foi_table/"
cp tests/fuzz/seeds/audit/* "$dir/fuzz_audit_log/"

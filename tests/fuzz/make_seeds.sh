#!/bin/sh
# Builds the fuzzers' seed corpora from the shipped files into DIR/<target>/ (one file per
# seed): scenario INI files (scenarios/, tests/bad_inputs/ and its good/ cases) for
# fuzz_scenario_ini; every key of scenarios/*.ini as a `section.key=value` override for
# fuzz_set_override; tests/fuzz/seeds/ for fuzz_distribution and fuzz_cli, plus each scenario
# file followed by a NUL and `--print-cells` for fuzz_cli. Run from the project root.
# Usage: tests/fuzz/make_seeds.sh DIR
set -eu
dir=$1
rm -rf "$dir"
mkdir -p "$dir/fuzz_scenario_ini" "$dir/fuzz_set_override" "$dir/fuzz_distribution" "$dir/fuzz_cli"
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

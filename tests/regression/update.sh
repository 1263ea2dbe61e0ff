#!/bin/sh
# Regenerates the regression outputs of tests/regression/ after an intended change of results.
# Usage (from the project root, after building): tests/regression/update.sh [path/to/stopscan]
# Review the diff (git diff tests/regression) before committing it.
set -eu
binary=${1:-build/stopscan}
here=$(dirname "$0")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$binary" run --replications 20 --seed 1 --out "$tmp/out" --quiet
mkdir -p "$here/default"
cp "$tmp/out/summary.csv" "$tmp/out/effects.csv" "$here/default/"
echo "updated $here/default/summary.csv and effects.csv"

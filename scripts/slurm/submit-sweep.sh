#!/bin/sh
# Submits a stopscan sweep to Slurm: a job array of N shards, then a merge that waits for
# them (docs/cluster.md). Prints the two job ids.
#
#   scripts/slurm/submit-sweep.sh SWEEP.ini OUT N
#
# The merge is cancelled, not left pending, if a shard fails (--kill-on-invalid-dep); fix
# the cause and submit again: the shards resume where they stopped.
set -eu
if [ $# -ne 3 ]; then
  echo "usage: $0 SWEEP.ini OUT N" >&2
  exit 2
fi
sweep=$1
out=$2
shards=$3
here=$(dirname "$0")
mkdir -p "$out"
array=$(sbatch --parsable --array=1-"$shards" --chdir="$PWD" \
  --output="$out/slurm-%A_%a.out" "$here/sweep-array.sbatch" "$sweep" "$out")
array=${array%%;*}
merge=$(sbatch --parsable --dependency=afterok:"$array" --kill-on-invalid-dep=yes \
  --chdir="$PWD" --output="$out/slurm-merge-%j.out" "$here/sweep-merge.sbatch" "$out")
echo "array $array"
echo "merge ${merge%%;*}"

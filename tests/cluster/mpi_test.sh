#!/bin/sh
# CI: runs stopscan-mpi (docs/cluster.md#mpi) with Open MPI on this machine, on loopback and
# shared memory, and checks that its outputs are byte-identical to `stopscan sweep` run
# serially by the same build: with 2 ranks, 1 rank and 3 oversubscribed ranks, after a resume,
# and after rank 0 was stopped by SIGTERM and resumed. Also: a bad sweep file gives one error
# line (not one per rank) and exit code 2, and so does a worker that builds another sweep.
# Needs Debian's openmpi-bin and a build with -DSTOPSCAN_WITH_MPI=ON.
# Usage: tests/cluster/mpi_test.sh [BUILD_DIR]   (default build-mpi; uses its stopscan and
# stopscan-mpi, so that both write the same build type and commit into the manifest)
set -eu
cd "$(dirname "$0")/../.."
root=$PWD
build=$(realpath "${1:-build-mpi}")
mpi="$build/stopscan-mpi"
serial="$build/stopscan"
for exe in "$mpi" "$serial"; do
  test -x "$exe" || { echo "mpi_test: no executable $exe (build the stopscan and stopscan-mpi targets)" >&2; exit 2; }
done
command -v mpirun >/dev/null 2>&1 || { echo "mpi_test: no mpirun: apt-get install openmpi-bin" >&2; exit 2; }

# TOOLCHAIN.md: root needs --allow-run-as-root; 3 ranks on 2 cores need --oversubscribe; stay on
# shared memory and loopback; Open MPI binds each rank to one core when np <= 2, so that TBB
# would see one thread per rank: --bind-to none. -q drops mpirun's banners about non-zero exit
# codes, so that an error is the one line stopscan-mpi prints.
run_mpi() {
  np=$1
  shift
  mpirun -q --allow-run-as-root --oversubscribe --bind-to none \
    --mca btl self,vader --mca oob_tcp_if_include lo -np "$np" "$mpi" "$@"
}

# Committed point directories (not the .tmp-* ones being written) under $1.
finished() {
  find "$1" -mindepth 1 -maxdepth 1 -name '[0-9]*' 2>/dev/null | wc -l
}

work=$(mktemp -d /tmp/stopscan-mpi-XXXXXX)
cleanup() {
  status=$?
  [ $status -eq 0 ] || echo "mpi_test: FAILED" >&2
  rm -rf "$work"
  exit $status
}
trap cleanup EXIT INT TERM
cd "$work"

# scenarios/sweeps/iabs-errors.ini (5 x 4 grid, 4 policies), made small: 3 replications of
# 5000 stops per point.
sed -e "s|^scenario = .*|scenario = $root/scenarios/default.ini|" \
  -e 's/^replications = .*/replications = 3/' "$root/scenarios/sweeps/iabs-errors.ini" > iabs.ini
printf '[set]\nstops.total = 5000\n' >> iabs.ini

"$serial" sweep iabs.ini --out serial --quiet
points=$(finished serial/points)

run_mpi 2 sweep iabs.ini --out np2 --quiet
diff -r serial np2
echo "mpi_test: 2 ranks equal the serial sweep ($points points, every file)"

run_mpi 1 sweep iabs.ini --out np1 --quiet
diff -r serial np1
echo "mpi_test: 1 rank equals the serial sweep"

run_mpi 3 sweep iabs.ini --out np3 --quiet --threads 1
diff -r serial np3
echo "mpi_test: 3 ranks (oversubscribed, --threads 1) equal the serial sweep"

# Resume: a sweep that lost some points and its assembled files runs only those points.
rm -rf np2/points/000003 np2/points/000017 np2/sweep.csv np2/report.html
run_mpi 2 sweep iabs.ini --out np2 --resume --quiet
diff -r serial np2
echo "mpi_test: --resume with 2 ranks equals the serial sweep"

# A bad sweep file: exit 2 and exactly one line, the serial error's, nothing written.
printf '[sweep]\nreplications = 2\n[axes]\nstops.dispersion = list 1, -1\n' > bad.ini
code=0
"$serial" sweep bad.ini --out bad-serial 2> serial.err || code=$?
[ $code -eq 2 ] || { echo "mpi_test: serial bad sweep exited $code, not 2" >&2; exit 1; }
code=0
run_mpi 2 sweep bad.ini --out bad-mpi 2> mpi-all.err || code=$?
# Open MPI's hwloc warns on machines without sysfs (a build sandbox): not stopscan's output.
grep -v '^\[hwloc/' mpi-all.err > mpi.err || true
cat mpi.err
[ $code -eq 2 ] || { echo "mpi_test: bad sweep exited $code, not 2" >&2; exit 1; }
[ "$(wc -l < mpi.err)" -eq 1 ] || { echo "mpi_test: bad sweep printed $(wc -l < mpi.err) lines, not 1" >&2; exit 1; }
[ "$(sed 's/^stopscan-mpi:/stopscan:/' mpi.err)" = "$(cat serial.err)" ] ||
  { echo "mpi_test: the error differs from stopscan sweep's: $(cat serial.err)" >&2; exit 1; }
[ ! -e bad-mpi ] || { echo "mpi_test: a bad sweep wrote bad-mpi" >&2; exit 1; }
echo "mpi_test: a bad sweep file: exit 2, one line"

# A worker's error: rank 1 runs in another directory whose base scenario differs, so it builds
# another sweep from the same sweep text; rank 0 reports it once, exit 2, no point written.
mkdir -p a b
printf '[sweep]\nscenario = base.ini\nreplications = 2\n[set]\nstops.total = 3000\n[axes]\ndatabase.IABS.false_flag = list 0.01, 0.02\n' > a/sw.ini
cp a/sw.ini b/sw.ini
cp "$root/scenarios/default.ini" a/base.ini
printf '\n# another base scenario\n' | cat "$root/scenarios/default.ini" - > b/base.ini
code=0
mpirun -q --allow-run-as-root --oversubscribe --bind-to none --mca btl self,vader \
  --mca oob_tcp_if_include lo -np 1 -wdir "$work/a" "$mpi" sweep sw.ini --out "$work/split" : \
  -np 1 -wdir "$work/b" "$mpi" sweep sw.ini --out "$work/split" 2> split-all.err || code=$?
grep -v '^\[hwloc/' split-all.err > split.err || true
cat split.err
[ $code -eq 2 ] || { echo "mpi_test: a worker's error exited $code, not 2" >&2; exit 1; }
if [ "$(wc -l < split.err)" -ne 1 ] || ! grep -q 'rank 1 builds another sweep' split.err; then
  echo "mpi_test: a worker's error was not reported once by rank 0" >&2
  exit 1
fi
[ "$(finished split/points)" -eq 0 ] || { echo "mpi_test: points written despite the error" >&2; exit 1; }
echo "mpi_test: a worker's error: exit 2, one line"

# SIGTERM to rank 0 (as a batch system's time limit sends it): the dealing stops, exit 143,
# the finished points are kept, and --resume gives the serial bytes. 24 points of about 50 ms
# on one thread each: time to stop it half-way (the polls have deadlines, not timed asserts).
printf '[sweep]\nreplications = 4\nseed = 3\npolicies = dual-search, firewall\nmetrics = exposure_per_100k, wrongful_outcomes\n[set]\nstops.total = 20000\n[axes]\ndatabase.IABS.false_flag = linear 0.005 0.05 6\ndatabase.IDENT1.false_flag = list 0.001, 0.002, 0.004, 0.008\n' > slow.ini
"$serial" sweep slow.ini --out slow-serial --quiet
run_mpi 2 sweep slow.ini --out slow --quiet --threads 1 2> slow.err &
job=$!
rank0=""
i=0
while [ -z "$rank0" ] && [ $i -lt 200 ]; do
  for pid in $(pgrep -f "$mpi sweep slow.ini" || true); do
    if tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=0'; then rank0=$pid; fi
  done
  i=$((i + 1))
  sleep 0.05
done
[ -n "$rank0" ] || { echo "mpi_test: rank 0 not found" >&2; exit 1; }
i=0
until [ "$(finished slow/points)" -ge 2 ] || [ $i -ge 600 ]; do
  i=$((i + 1))
  sleep 0.05
done
kill -TERM "$rank0"
code=0
wait $job || code=$?
cat slow.err
kept=$(finished slow/points)
[ $code -eq 143 ] || { echo "mpi_test: rank 0 stopped by SIGTERM exited $code, not 143" >&2; exit 1; }
if [ "$kept" -lt 2 ] || [ "$kept" -ge 24 ] || [ -e slow/sweep.csv ]; then
  echo "mpi_test: $kept points kept after SIGTERM (want 2..23, no sweep.csv)" >&2
  exit 1
fi
run_mpi 2 sweep slow.ini --out slow --resume --quiet
diff -r slow-serial slow
echo "mpi_test: SIGTERM to rank 0: exit 143 with $kept points kept; --resume equals the serial sweep"

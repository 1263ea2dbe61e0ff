#!/bin/sh
# CI: runs a sharded sweep through Slurm exactly as docs/cluster.md tells users to, on a
# one-node cluster started here on localhost from Debian's packages, and checks that the
# merged result is byte-identical to the same sweep run in one go. Stops the daemons it
# started. Needs root (Debian 12); also works in a chroot without /sys (docs/cluster.md).
# Usage: tests/cluster/slurm_test.sh [path/to/stopscan]
set -eu
cd "$(dirname "$0")/../.."
root=$PWD
stopscan=$(realpath "${1:-build/stopscan}")
test -x "$stopscan" || { echo "slurm_test: no executable $stopscan" >&2; exit 2; }

missing=""
for p in slurmd slurmctld slurm-client munge; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "slurm_test: installing Debian packages:$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  if ! apt-get install -y -qq --no-install-recommends $missing >/dev/null; then
    # In a sandbox where no user but root may run programs, munge's post-installation script
    # fails (it runs mungekey through `su munge`). Its files are unpacked; only that step is
    # skipped, and this test makes its own key below. Other packages can then be configured.
    echo "slurm_test: munge's post-installation failed (no non-root users here?); configuring without it" >&2
    printf '#!/bin/sh\nexit 0\n' > /var/lib/dpkg/info/munge.postinst
    dpkg --configure -a >/dev/null
  fi
fi

work=$(mktemp -d /tmp/stopscan-slurm-XXXXXX)
started_munge=""
cleanup() {
  status=$?
  # Only the daemons this script started, by the PIDs in their pid files; then wait (up to
  # 10 s) until they are gone, so that the next run finds the ports free.
  pids=""
  for f in "$work/slurmd.pid" "$work/slurmctld.pid" "$work/munge/munged.pid"; do
    if [ -s "$f" ]; then pids="$pids $(cat "$f")"; fi
  done
  if [ -n "$started_munge" ] && [ -s /run/munge/munged.pid ]; then
    pids="$pids $(cat /run/munge/munged.pid)"
  fi
  for pid in $pids; do kill "$pid" 2>/dev/null || true; done
  for pid in $pids; do
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
      sleep 0.1
      i=$((i + 1))
    done
  done
  if [ $status -ne 0 ]; then
    echo "slurm_test: FAILED; daemon logs:" >&2
    tail -n 20 "$work"/slurmctld.log "$work"/slurmd.log "$work"/out/slurm-*.out 2>/dev/null >&2 || true
  fi
  rm -rf "$work"
  exit $status
}
trap cleanup EXIT INT TERM

# munge: no systemd here, so start it by hand (its run directory first).
auth_info=""
if runuser -u munge -- /bin/true 2>/dev/null; then
  if ! pgrep -x munged >/dev/null 2>&1; then
    mkdir -p /run/munge
    chown munge:munge /run/munge
    chmod 0755 /run/munge
    runuser -u munge -- /usr/sbin/munged
    started_munge=yes
  fi
else
  # No program may run as another user here (a build sandbox): a private munged as root, with
  # its own key and socket, which slurm.conf names.
  echo "slurm_test: user munge cannot run programs here; starting a private munged as root" >&2
  mkdir -p "$work/munge"
  chmod 0700 "$work/munge"
  mungekey --create --keyfile="$work/munge/munge.key"
  chmod 0600 "$work/munge/munge.key"
  /usr/sbin/munged --force --key-file="$work/munge/munge.key" \
    --socket="$work/munge/munge.socket" --pid-file="$work/munge/munged.pid" \
    --log-file="$work/munge/munged.log" --seed-file="$work/munge/munged.seed"
  auth_info="AuthInfo=socket=$work/munge/munge.socket"
fi

host=$(hostname -s)
node=$(slurmd -C | head -n 1)
mkdir -p "$work/state" "$work/spool" "$work/out"
cat > "$work/slurm.conf" <<CONF
ClusterName=stopscan-ci
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
$auth_info
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MailProg=/bin/true
ReturnToService=2
SchedulerParameters=batch_sched_delay=0
DependencyParameters=kill_invalid_depend
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=ci Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
# slurmd 22.05 autodetects the cgroup version at start-up and gives up when /sys/fs/cgroup
# is not mounted (a build sandbox or chroot). Naming the plugin skips the detection; with
# proctrack/linuxproc and task/none nothing then touches cgroups.
if ! grep -qs ' /sys/fs/cgroup ' /proc/mounts; then
  echo "slurm_test: no cgroup filesystem here; cgroup.conf names cgroup/v1 so that slurmd does not look for one" >&2
  printf 'CgroupPlugin=cgroup/v1\nCgroupAutomount=no\n' > "$work/cgroup.conf"
fi
export SLURM_CONF="$work/slurm.conf"
slurmctld -c -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF" || { timeout 10 slurmd -D -vvv -f "$SLURM_CONF" 2>&1 | tail -n 15 >&2; exit 1; }
i=0
until sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; do
  i=$((i + 1))
  [ $i -le 60 ] || { echo "slurm_test: the node did not come up" >&2; exit 1; }
  sleep 0.5
done

# A small 3 x 4 grid over the default scenario, in 3 shards.
sweep="$work/sweep.ini"
cat > "$sweep" <<'INI'
[sweep]
replications = 3
seed = 11
policies = dual-search, firewall
metrics = exposure_per_100k, wrongful_outcomes
[set]
stops.total = 5000
[axes]
database.IABS.false_flag = list 0.005, 0.01, 0.05
database.IABS.size = list 3000000, 5000000, 10000000, 20000000
INI

cd "$work"
ids=$(STOPSCAN="$stopscan" "$root/scripts/slurm/submit-sweep.sh" "$sweep" "$work/out" 3)
echo "$ids"
merge=$(echo "$ids" | sed -n 's/^merge //p')
i=0
while :; do
  state=$(scontrol -o show job "$merge" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
  case "$state" in
    COMPLETED) break ;;
    FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY)
      echo "slurm_test: merge job $merge ended $state" >&2; exit 1 ;;
  esac
  i=$((i + 1))
  [ $i -le 240 ] || { echo "slurm_test: merge job $merge still $state after 120 s" >&2; exit 1; }
  sleep 0.5
done

"$stopscan" sweep "$sweep" --out "$work/serial" --quiet
diff -r "$work/serial" "$work/out/merged"
echo "slurm_test: merged Slurm array equals the serial sweep ($(ls "$work/serial/points" | wc -l) points)"

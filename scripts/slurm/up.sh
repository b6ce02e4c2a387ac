#!/usr/bin/env bash
# Bring up a single-node Slurm cluster on this machine (CI and developer machines, as root).
#
#   bash scripts/slurm/up.sh      # install slurm-wlm + munge if missing, configure, start, wait for idle
#   bash scripts/slurm/down.sh    # stop the daemons this script started (by PID)
#
# No systemd: munged, slurmctld and slurmd are started directly and their PIDs are recorded
# in $GML_SLURM_STATE/pids (default /tmp/gml-slurm). The config is written to
# /etc/slurm/slurm.conf (where sbatch/squeue look by default) unless a slurm.conf not written
# by this script is already there, in which case the script stops rather than overwrite it.
# Idempotent: a second run with the cluster already up only checks that the node is idle.
set -euo pipefail

STATE=${GML_SLURM_STATE:-/tmp/gml-slurm}
CONF=${SLURM_CONF:-/etc/slurm/slurm.conf}
MARK="# written by gml scripts/slurm/up.sh"
NODE=$(hostname -s)
CPUS=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)  # nproc honours OMP_NUM_THREADS=1: a 1-CPU node
WAIT_S=${GML_SLURM_WAIT_S:-90}

log() { echo "[slurm-up] $*"; }
die() { echo "[slurm-up] error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (installs packages and starts daemons)"

alive() { [ -f "$STATE/pids/$1.pid" ] && kill -0 "$(cat "$STATE/pids/$1.pid")" 2>/dev/null; }

node_state() { sinfo -h -n "$NODE" -o '%t' 2>/dev/null | head -n1 || true; }

if alive munged && alive slurmctld && alive slurmd && [ "$(node_state)" = idle ]; then
    log "already up: node $NODE idle"
    exit 0
fi

# -- packages ------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
    log "installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends slurm-wlm munge >/dev/null 2>&1 || {
        apt-get update -qq >/dev/null
        apt-get install -y --no-install-recommends slurm-wlm munge >/dev/null
    }
fi

# -- directories and config ----------------------------------------------------------------
mkdir -p "$STATE/pids" "$STATE/log" "$STATE/ctld" "$STATE/d" /run/munge "$(dirname "$CONF")"
chown slurm:slurm "$STATE/ctld" "$STATE/log"
chmod 755 "$STATE" "$STATE/log"
chown munge:munge /run/munge
chmod 755 /run/munge

if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    die "$CONF exists and was not written by this script; refusing to overwrite it"
fi
cat >"$CONF.tmp" <<EOF
$MARK; single node, no accounting, for tests.
ClusterName=gml
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
KillWait=5
MinJobAge=300
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
mv "$CONF.tmp" "$CONF"
chmod 644 "$CONF"

# -- munge ---------------------------------------------------------------------------------
if [ ! -s /etc/munge/munge.key ]; then
    log "creating munge key"
    runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
fi
if ! alive munged; then
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    for _ in $(seq 50); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done
    cp /run/munge/munged.pid "$STATE/pids/munged.pid"
fi
munge -n | unmunge >/dev/null || die "munge does not work (see /var/log/munge/munged.log)"

# -- slurm daemons (they daemonise and write their pid files) ------------------------------
start_daemon() {  # name binary
    local name=$1 bin=$2
    if alive "$name"; then return; fi
    rm -f "$STATE/$name.pid"
    "$bin" -f "$CONF" </dev/null >>"$STATE/log/$name.out" 2>&1 || die "$name failed to start (see $STATE/log)"
    for _ in $(seq 100); do [ -s "$STATE/$name.pid" ] && break; sleep 0.1; done
    [ -s "$STATE/$name.pid" ] || die "$name wrote no pid file (see $STATE/log/$name.log)"
    cp "$STATE/$name.pid" "$STATE/pids/$name.pid"
}
start_daemon slurmctld /usr/sbin/slurmctld
start_daemon slurmd /usr/sbin/slurmd

# -- wait for the node to be idle ----------------------------------------------------------
deadline=$((SECONDS + WAIT_S))
state=""
while [ $SECONDS -lt $deadline ]; do
    state=$(node_state)
    case "$state" in
        idle) log "up in ${SECONDS}s: node $NODE idle, $CPUS CPUs, partition debug, config $CONF"; exit 0 ;;
        down*|drain*|unk*) scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 1
done
die "node $NODE not idle after ${WAIT_S}s (state '$state'); logs in $STATE/log"

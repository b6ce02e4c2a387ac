#!/usr/bin/env bash
# Stop the single-node Slurm cluster started by scripts/slurm/up.sh: slurmd, slurmctld, munged,
# each by the PID up.sh recorded (SIGTERM, then SIGKILL after a grace period). Other processes
# are never touched. Safe to run when nothing is up.
set -uo pipefail

STATE=${GML_SLURM_STATE:-/tmp/gml-slurm}
GRACE_S=${GML_SLURM_GRACE_S:-10}

stop() {  # name
    local f="$STATE/pids/$1.pid" pid
    [ -f "$f" ] || return 0
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq $((GRACE_S * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "[slurm-down] $1 ($pid) ignored SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null
        fi
        echo "[slurm-down] stopped $1 ($pid)"
    fi
    rm -f "$f"
}

stop slurmd
stop slurmctld
stop munged
exit 0

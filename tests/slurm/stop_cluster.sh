#!/usr/bin/env bash
# Stop the daemons tests/slurm/start_cluster.sh started (slurmd, slurmctld, munged), by their pid
# files; the packages, config and job state stay (start_cluster.sh brings the cluster back).
set -euo pipefail
stop() {
    local pidfile=$1 pid
    [ -s "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    kill -0 "$pid" 2>/dev/null || return 0
    echo "[stop_cluster] stopping $(basename "$pidfile" .pid) (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
}
if [ -f /etc/slurm/slurm.conf ] && [ "$(head -n 1 /etc/slurm/slurm.conf)" != "# one-node test cluster written by tests/slurm/start_cluster.sh" ]; then
    echo "[stop_cluster] /etc/slurm/slurm.conf is not the test cluster's; nothing stopped" >&2
    exit 1
fi
stop /run/slurm/slurmd.pid
stop /run/slurm/slurmctld.pid
stop /run/munge/munged.pid

#!/usr/bin/env bash
# Bring up a one-node Slurm cluster on this Debian/Ubuntu machine (as root; containers included):
# install slurmctld, slurmd, slurm-client and munge, write a minimal slurm.conf for this host (its
# real CPU count and memory, one partition "debug", no cgroups), start munged, slurmctld and
# slurmd, and wait until `sinfo` shows the node idle. Rerunnable: a cluster that is already up
# with the same slurm.conf is left alone; otherwise our daemons are restarted from their pid files.
# See tests/slurm/README.md.
set -euo pipefail

READY_TIMEOUT_S=${SLURM_READY_TIMEOUT_S:-90}
PARTITION=${SLURM_PARTITION:-debug}
CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
RUN_DIR=/run/slurm
SPOOL=/var/spool/slurm
LOG_DIR=/var/log/slurm

say() { echo "[start_cluster $(date +%T)] $*"; }
die() { echo "[start_cluster] error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it installs packages and starts daemons)"
command -v apt-get >/dev/null || die "needs apt-get (Debian/Ubuntu)"
MARKER="# one-node test cluster written by tests/slurm/start_cluster.sh"
if [ -f "$CONF" ] && [ "$(head -n 1 "$CONF")" != "$MARKER" ] && [ "${SLURM_TEST_OVERWRITE:-0}" != 1 ]; then
    die "$CONF exists and was not written by this script; not touching a real cluster's config (SLURM_TEST_OVERWRITE=1 to replace it)"
fi


# ---------------------------------------------------------------- install
packages=(slurmctld slurmd slurm-client munge)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    # no init system here: keep the packages' scripts from starting daemons; we start them below
    policy_added=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy_added=1
    fi
    trap '[ "$policy_added" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
        || { timeout 120 apt-get update -q >/dev/null && \
             timeout 300 apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; } \
        || die "apt-get install ${missing[*]} failed"
    [ "$policy_added" = 1 ] && rm -f /usr/sbin/policy-rc.d
    trap - EXIT
fi

# ---------------------------------------------------------------- munge
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    say "creating /etc/munge/munge.key"
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile=/etc/munge/munge.key --force
    else
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    fi
fi
chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
if ! pid_alive /run/munge/munged.pid || ! timeout 5 munge -n </dev/null | timeout 5 unmunge >/dev/null 2>&1; then
    say "starting munged"
    runuser -u munge -- /usr/sbin/munged --force
    for _ in $(seq 50); do timeout 5 munge -n </dev/null 2>/dev/null | timeout 5 unmunge >/dev/null 2>&1 && break; sleep 0.2; done
    timeout 5 munge -n </dev/null | timeout 5 unmunge >/dev/null || die "munged does not answer (see /var/log/munge/munged.log)"
fi

# ---------------------------------------------------------------- slurm.conf
host=$(hostname -s)
cpus=$(nproc --all)
# the node's usable memory in MiB (cgroup limit if lower), minus 5% for the daemons
mem_mib=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 ))
for limit_file in /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes; do
    if [ -r "$limit_file" ] && limit=$(cat "$limit_file") && [ "$limit" != max ] && [ "$limit" -lt $(( mem_mib * 1048576 )) ]; then
        mem_mib=$(( limit / 1048576 ))
    fi
done
mem_mib=$(( mem_mib * 95 / 100 ))
install -d -m 0755 "$CONF_DIR" "$RUN_DIR" "$SPOOL" "$SPOOL/ctld" "$SPOOL/d" "$LOG_DIR"
new_conf=$(cat <<EOF
$MARKER
ClusterName=dmlbench
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
# no cgroups: plain process tracking works inside containers
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
StateSaveLocation=$SPOOL/ctld
SlurmdSpoolDir=$SPOOL/d
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=10
MinJobAge=3600
SchedulerType=sched/backfill
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mib State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
)

node_state() { timeout 10 sinfo -h -N -n "$host" -o %T 2>/dev/null | head -1 | tr -d '*~#!%$@^-'; }

if [ -f "$CONF" ] && [ "$(cat "$CONF")" = "$new_conf" ] && pid_alive "$RUN_DIR/slurmctld.pid" \
        && pid_alive "$RUN_DIR/slurmd.pid" && [[ "$(node_state)" =~ ^(idle|mixed|allocated)$ ]]; then
    say "cluster already up: node $host $(node_state), partition $PARTITION"
    exit 0
fi
printf '%s\n' "$new_conf" > "$CONF"

# ---------------------------------------------------------------- daemons
stop_daemon() {  # our daemon from its pid file, SIGTERM then SIGKILL after 10 s
    local pidfile=$1 pid
    pid_alive "$pidfile" || return 0
    pid=$(cat "$pidfile")
    say "stopping $(basename "$pidfile" .pid) (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
}
stop_daemon "$RUN_DIR/slurmd.pid"
stop_daemon "$RUN_DIR/slurmctld.pid"

say "starting slurmctld and slurmd ($host: $cpus CPUs, $mem_mib MiB, partition $PARTITION)"
/usr/sbin/slurmctld -i || die "slurmctld did not start (see $LOG_DIR/slurmctld.log)"
for _ in $(seq 100); do timeout 5 scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.2; done
timeout 5 scontrol ping | grep -q UP || die "slurmctld does not answer (see $LOG_DIR/slurmctld.log)"
/usr/sbin/slurmd || die "slurmd did not start (see $LOG_DIR/slurmd.log)"

deadline=$(( SECONDS + READY_TIMEOUT_S ))
state=
while [ $SECONDS -lt $deadline ]; do
    state=$(node_state)
    case "$state" in
        idle|mixed|allocated) break ;;
        down|drain|drained|draining|fail)  # e.g. left down by an earlier run: bring it back
            timeout 10 scontrol update NodeName="$host" State=RESUME 2>/dev/null || true ;;
    esac
    sleep 0.5
done
case "$state" in
    idle|mixed|allocated) ;;
    *) tail -n 20 "$LOG_DIR/slurmd.log" >&2 || true
       die "node $host is '$state' after ${READY_TIMEOUT_S} s (logs in $LOG_DIR)" ;;
esac
say "cluster up: node $host $state, partition $PARTITION"
timeout 10 sinfo

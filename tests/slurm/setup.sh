#!/usr/bin/env bash
# Start a single-node SLURM cluster on this machine, for tests/workflow/test_slurm.py and
# bench/groups.py: munged, MariaDB, slurmdbd (so that `sacct` works), slurmctld and slurmd.
# There is no systemd: every daemon is started here by hand, as root, in the foreground of a
# background process, and its PID is written to STATE/pids; tests/slurm/teardown.sh stops
# exactly those PIDs.
#
# Usage (as root):  tests/slurm/setup.sh [STATE]      STATE defaults to /tmp/optreg-slurm
# Needs Debian's packages slurm-wlm, slurmdbd, munge and mariadb-server (.ci/run installs them).
#
# Facts this script encodes (each cost a hang or a cryptic error when missing):
# - The configuration must be /etc/slurm/slurm.conf: the executor plugin's jobstep removes
#   every SLURM_* variable, SLURM_CONF included, before its inner `srun`.
# - Without slurmdbd, `sacct` fails ("accounting storage is disabled"), the executor plugin
#   drops the jobs and the workflow hangs.
# - munged wants its socket folder mode 755 and its key mode 400; slurmctld reaches slurmdbd
#   through a non-default munge socket only with AccountingStoragePass=<socket>; slurmdbd.conf
#   must be mode 600; the host is not called `localhost`, hence `slurmd -N localhost` and
#   NodeAddr=127.0.0.1.
set -euo pipefail

STATE=${1:-${OPTREG_SLURM_STATE:-/tmp/optreg-slurm}}
CPUS=${OPTREG_SLURM_CPUS:-$(nproc)}
# Must exceed every job's mem_mb: profiles/slurm asks 2000 per job, a group job 1000 per train
# job it runs at once.
MEM_MB=${OPTREG_SLURM_MEM_MB:-16000}
CONF_DIR=/etc/slurm
MARK="# written by optreg tests/slurm/setup.sh"
DB_PORT=6833 DBD_PORT=6819 CTLD_PORT=6817 SLURMD_PORT=6818

die() { echo "setup.sh: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "run as root (the daemons and /etc/slurm need it)"
for cmd in munged mariadbd mariadb-install-db slurmdbd slurmctld slurmd sacctmgr sinfo; do
    command -v "$cmd" >/dev/null || die "$cmd not found: apt-get install slurm-wlm slurmdbd munge mariadb-server"
done
if [[ -s $STATE/pids ]]; then
    while read -r pid name; do
        if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]]; then
            die "$name ($pid) from an earlier setup still runs: run tests/slurm/teardown.sh $STATE first"
        fi
    done < "$STATE/pids"
fi
# Fixed ports: a second cluster on this machine (another setup.sh, a real SLURM) cannot start.
for port in $DB_PORT $DBD_PORT $CTLD_PORT $SLURMD_PORT; do
    if (: > "/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        die "port $port is in use: is another SLURM (or this script's cluster) running here?"
    fi
done
# STATE is emptied below: refuse a folder that holds anything but an earlier cluster's state.
if [[ -d $STATE && -n $(ls -A "$STATE") && ! -e $STATE/pids ]]; then
    die "$STATE is not empty and holds no earlier cluster state; give an empty or new folder"
fi
for f in slurm.conf slurmdbd.conf; do
    if [[ -e $CONF_DIR/$f ]] && ! grep -qF "$MARK" "$CONF_DIR/$f"; then
        die "$CONF_DIR/$f exists and was not written by this script; not overwriting it"
    fi
done

rm -rf "$STATE"
mkdir -p "$STATE"/{munge,mysql,ctld,slurmd,logs} "$CONF_DIR"
chmod 755 "$STATE" "$STATE/munge"
: > "$STATE/pids"

# Start "$@" in the background, its output to logs/<name>.log, and record its PID.
start() {
    local name=$1; shift
    nohup "$@" > "$STATE/logs/$name.log" 2>&1 < /dev/null &
    echo "$! $name" >> "$STATE/pids"
}

# Wait up to $1 seconds until the command "${@:2}" succeeds.
wait_for() {
    local seconds=$1; shift
    for ((i = 0; i < seconds * 5; i++)); do
        if "$@" > /dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    echo "setup.sh: timed out waiting for: $*" >&2
    tail -n 20 "$STATE"/logs/*.log >&2 || true
    return 1
}

# ---- munge: a fresh key and a private socket
SOCKET=$STATE/munge/munge.socket
dd if=/dev/urandom of="$STATE/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$STATE/munge/munge.key"
start munged munged --foreground --force --socket="$SOCKET" \
    --key-file="$STATE/munge/munge.key" --log-file="$STATE/logs/munged-daemon.log" \
    --pid-file="$STATE/munge/munged.pid" --seed-file="$STATE/munge/munged.seed"
wait_for 10 test -S "$SOCKET"

# ---- MariaDB: a private data folder, TCP on localhost only
mariadb-install-db --no-defaults --user=mysql --datadir="$STATE/mysql" \
    --auth-root-authentication-method=socket --skip-test-db > "$STATE/logs/mariadb-install.log" 2>&1
chown -R mysql:mysql "$STATE/mysql"
start mariadbd mariadbd --no-defaults --user=mysql --datadir="$STATE/mysql" \
    --socket="$STATE/mysql/mysqld.sock" --pid-file="$STATE/mysql/mysqld.pid" \
    --bind-address=127.0.0.1 --port=$DB_PORT --innodb-buffer-pool-size=64M
wait_for 30 mariadb-admin --no-defaults --socket="$STATE/mysql/mysqld.sock" -uroot ping
DB_PASS=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
mariadb --no-defaults --socket="$STATE/mysql/mysqld.sock" -uroot <<SQL
CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
CREATE USER 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
SQL

# ---- configuration
umask 077
cat > "$CONF_DIR/slurmdbd.conf" <<CONF
$MARK (state in $STATE)
AuthType=auth/munge
AuthInfo=socket=$SOCKET
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
PidFile=$STATE/slurmdbd.pid
LogFile=$STATE/logs/slurmdbd-daemon.log
CONF
chmod 600 "$CONF_DIR/slurmdbd.conf"
umask 022
cat > "$CONF_DIR/slurm.conf" <<CONF
$MARK (state in $STATE)
ClusterName=optreg
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$SOCKET
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/logs/slurmctld-daemon.log
SlurmdLogFile=$STATE/logs/slurmd-daemon.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=5
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
AccountingStoragePass=$SOCKET
MinJobAge=300
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF

# ---- the SLURM daemons
start slurmdbd slurmdbd -D
wait_for 30 sacctmgr -n list cluster
sacctmgr -i add cluster optreg > /dev/null
start slurmctld slurmctld -D -i
wait_for 30 scontrol ping
start slurmd slurmd -D -N localhost
# shellcheck disable=SC2016 # expanded by the inner bash, on every try
wait_for 30 bash -c '[[ $(sinfo -h -n localhost -o %t) == idle ]]'
echo "setup.sh: SLURM is up ($CPUS CPUs, $MEM_MB MB; state in $STATE; stop with teardown.sh $STATE)"
sinfo

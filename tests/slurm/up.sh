#!/usr/bin/env bash
# Start a throw-away single-node SLURM 22.05 cluster on this host, for tests/test_slurm.py.
# Debian/Ubuntu, run as root. Idempotent: a second call while it runs only prints its state.
#
#   SLURM_ROOT=DIR  state, logs, pid files and the real config files (default $TMPDIR/vaebench-slurm)
#   NGPU=N          fake GPUs declared as GRES gpu (links to /dev/null; no real GPU needed)
#   WITH_DBD=1      also MariaDB + slurmdbd, so that `sacct` works (slower; off by default:
#                   the profile then needs  slurm-status-command: squeue  and a long MinJobAge)
#
# Every daemon this script starts has its PID in $SLURM_ROOT/run/<daemon>.pid; down.sh stops
# exactly those. The config lives in $SLURM_ROOT/etc and is symlinked into /etc/slurm, because
# the slurm executor strips SLURM_CONF (with all SLURM_* variables) before its in-job `srun`.
# This script refuses to touch an /etc/slurm/slurm.conf that is not one of its own links.
set -euo pipefail
SLURM_ROOT=${SLURM_ROOT:-${TMPDIR:-/tmp}/vaebench-slurm}
WITH_DBD=${WITH_DBD:-0}
NGPU=${NGPU:-1}
export DEBIAN_FRONTEND=noninteractive
t() { echo "[$(date +%T)] up.sh: $*"; }
die() { echo "up.sh: $*" >&2; exit 1; }
alive() { [ -s "$SLURM_ROOT/run/$1.pid" ] && kill -0 "$(cat "$SLURM_ROOT/run/$1.pid")" 2>/dev/null; }
# the node's state; every SLURM client call is bounded (a dead controller makes them hang ~10 s)
node_idle() { timeout 5 sinfo -h -o %T 2>/dev/null | grep -qx idle; }

[ "$(id -u)" = 0 ] || die "needs root (starts munged, slurmctld, slurmd)"

# --- 1. packages (apt-get update only when something is missing) ------------------------------
PKGS="munge slurmctld slurmd slurm-client"
[ "$WITH_DBD" = 1 ] && PKGS="$PKGS slurmdbd mariadb-server"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  command -v apt-get >/dev/null || die "apt-get not found; install$missing yourself"
  t "apt-get update + install$missing"
  apt-get update -q >/dev/null || die "apt-get update failed"
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $missing >/dev/null || die "apt-get install$missing failed"
fi

# --- 2. already up? ----------------------------------------------------------------------------
if alive slurmctld && alive slurmd && node_idle; then
  t "already running (SLURM_ROOT=$SLURM_ROOT)"
  timeout 10 sinfo -o '%P %a %D %T %N %G'
  exit 0
fi
for f in slurm.conf gres.conf slurmdbd.conf; do
  if [ -e "/etc/slurm/$f" ] || [ -L "/etc/slurm/$f" ]; then
    [ -L "/etc/slurm/$f" ] && [[ "$(readlink "/etc/slurm/$f")" == "$SLURM_ROOT"/* ]] \
      || die "/etc/slurm/$f exists and is not ours: this host already has a SLURM config; not touching it"
  fi
done
for d in slurmctld slurmd; do
  if alive "$d"; then die "$d from a previous up.sh is still running but the node is not idle; run down.sh first"; fi
done

# --- 3. config ---------------------------------------------------------------------------------
HOST=$(hostname -s)
mkdir -p "$SLURM_ROOT"/{etc,spool/ctld,spool/d,log,run,dev} /etc/slurm
# the node line from the real hardware, with RealMemory 2 GB below what slurmd detects
NODE_HW=$(slurmd -C | head -1 | sed -E 's/ RealMemory=[0-9]+//')
MEM=$(( $(slurmd -C | head -1 | sed -E 's/.*RealMemory=([0-9]+).*/\1/') - 2048 ))
if [ "$NGPU" -gt 0 ]; then
  # GRES with Count but no File drains the node; plain files give no CUDA_VISIBLE_DEVICES
  for i in $(seq 0 $((NGPU - 1))); do ln -sfn /dev/null "$SLURM_ROOT/dev/fakegpu$i"; done
  NODE_GRES="Gres=gpu:$NGPU"
  printf 'AutoDetect=off\nNodeName=%s Name=gpu File=%s/dev/fakegpu[0-%d]\n' \
    "$HOST" "$SLURM_ROOT" $((NGPU - 1)) > "$SLURM_ROOT/etc/gres.conf"
else
  NODE_GRES=""
  : > "$SLURM_ROOT/etc/gres.conf"
fi
if [ "$WITH_DBD" = 1 ]; then
  # gres/gpu as a tracked TRES: sacct shows each job's GPUs (slurmctld refuses it without slurmdbd)
  ACCT="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/linux"
else
  ACCT="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
fi
cat > "$SLURM_ROOT/etc/slurm.conf" <<CONF
ClusterName=vaebench
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$SLURM_ROOT/spool/ctld
SlurmdSpoolDir=$SLURM_ROOT/spool/d
SlurmctldPidFile=$SLURM_ROOT/run/slurmctld.pid
SlurmdPidFile=$SLURM_ROOT/run/slurmd.pid
SlurmctldLogFile=$SLURM_ROOT/log/slurmctld.log
SlurmdLogFile=$SLURM_ROOT/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
$ACCT
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# without it a job with no --mem takes the whole node's memory
DefMemPerCPU=1000
GresTypes=gpu
ReturnToService=2
# finished jobs stay visible to squeue/scontrol for 10 min: the executor's squeue status
# command needs MinJobAge >= 3 x slurm-init-seconds-before-status-checks, and the test reads
# each job's GPU request back with scontrol after the run
MinJobAge=600
MpiDefault=none
$NODE_HW RealMemory=$MEM $NODE_GRES State=UNKNOWN
PartitionName=main Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
for f in slurm.conf gres.conf; do ln -sfn "$SLURM_ROOT/etc/$f" "/etc/slurm/$f"; done

# --- 4. daemons --------------------------------------------------------------------------------
t "munged"
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key
  chmod 400 /etc/munge/munge.key
fi
mkdir -p /run/munge && chown munge:munge /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.2; done
  cp /run/munge/munged.pid "$SLURM_ROOT/run/munged.pid" # recorded only when we started it
fi
munge -n 2>/dev/null | unmunge >/dev/null 2>&1 || die "munged does not answer"

if [ "$WITH_DBD" = 1 ]; then
  t "mariadb"
  mkdir -p /run/mysqld && chown mysql:root /run/mysqld
  if ! mariadb-admin ping >/dev/null 2>&1; then
    nohup /usr/sbin/mariadbd --user=mysql --pid-file=/run/mysqld/mysqld.pid \
      --socket=/run/mysqld/mysqld.sock --bind-address=127.0.0.1 > "$SLURM_ROOT/log/mariadb.log" 2>&1 &
    echo $! > "$SLURM_ROOT/run/mariadb.pid"
    for _ in $(seq 120); do mariadb-admin ping >/dev/null 2>&1 && break; sleep 0.5; done
  fi
  mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
              CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmpw';
              GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
  t "slurmdbd"
  cat > "$SLURM_ROOT/etc/slurmdbd.conf" <<CONF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
LogFile=$SLURM_ROOT/log/slurmdbd.log
PidFile=$SLURM_ROOT/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurmpw
StorageLoc=slurm_acct_db
CONF
  chmod 600 "$SLURM_ROOT/etc/slurmdbd.conf"
  ln -sfn "$SLURM_ROOT/etc/slurmdbd.conf" /etc/slurm/slurmdbd.conf
  alive slurmdbd || slurmdbd
  for _ in $(seq 120); do (echo > /dev/tcp/127.0.0.1/6819) 2>/dev/null && break; sleep 0.5; done
fi

t "slurmctld + slurmd"
# -c: start from a clean state (no jobs left over from an earlier cluster in this SLURM_ROOT)
alive slurmctld || slurmctld -c
alive slurmd || slurmd
deadline=$((SECONDS + 60))
until node_idle; do
  if ! alive slurmctld || ! alive slurmd || [ $SECONDS -ge $deadline ]; then
    for f in "$SLURM_ROOT"/log/*.log; do echo "== $f" >&2; tail -n 15 "$f" >&2; done
    die "the node did not become idle (slurmctld or slurmd died or hangs; logs above)"
  fi
  sleep 0.5
done
timeout 10 sinfo -o '%P %a %D %T %N %G'
if [ "$WITH_DBD" = 1 ]; then
  for _ in $(seq 60); do timeout 5 sacctmgr -n show cluster format=cluster | grep -qw vaebench && break; sleep 0.5; done
fi
t "cluster up (SLURM_ROOT=$SLURM_ROOT)"

#!/usr/bin/env bash
# Stop exactly the daemons tests/slurm/up.sh started, by the PIDs it recorded, and remove its
# /etc/slurm links (a stale slurm.conf pointing at a dead controller costs ~9 s on every later
# snakemake call that loads the slurm executor). Safe to run twice or without up.sh.
SLURM_ROOT=${SLURM_ROOT:-${TMPDIR:-/tmp}/vaebench-slurm}
t() { echo "[$(date +%T)] down.sh: $*"; }

# cancel what is still queued or running, only if it is our controller that answers
if [ -s "$SLURM_ROOT/run/slurmctld.pid" ] && kill -0 "$(cat "$SLURM_ROOT/run/slurmctld.pid")" 2>/dev/null; then
  timeout 10 scancel --user="$(id -un)" 2>/dev/null || true
fi
for d in slurmd slurmctld slurmdbd mariadb munged; do
  f="$SLURM_ROOT/run/$d.pid"
  [ -s "$f" ] || continue
  p=$(cat "$f")
  if kill -0 "$p" 2>/dev/null; then
    kill -TERM "$p"
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$p" 2>/dev/null; then
      t "$d ($p) still alive after 10 s, SIGKILL"
      kill -KILL "$p"
    fi
    t "stopped $d ($p)"
  fi
  rm -f "$f"
done
for f in slurm.conf gres.conf slurmdbd.conf; do
  if [ -L "/etc/slurm/$f" ] && [[ "$(readlink "/etc/slurm/$f")" == "$SLURM_ROOT"/* ]]; then
    rm -f "/etc/slurm/$f"
  fi
done
true

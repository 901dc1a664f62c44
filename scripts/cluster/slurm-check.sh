#!/usr/bin/env bash
# Runs the study's Slurm recipe (scripts/cluster/study.sbatch) on a one-node Slurm cluster
# started on this machine, then checks that `report` over the union of the 4 array tasks'
# shards gives the same table.csv as the same study run in one process; and the same for a
# two-point sweep whose 4 shards span both points.
#
# Usage: scripts/cluster/slurm-check.sh XTASK_BINARY
# Needs root, Debian's slurm-wlm and munge, and MNIST_DIR pointing at MNIST.
set -euo pipefail
xtask=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
started=$(date +%s)

stop() {
  for daemon in slurmd slurmctld; do
    pid=$(cat "$work/$daemon.pid" 2>/dev/null) || continue
    kill "$pid" 2>/dev/null || continue
    # Slurm's daemons save their state as they stop: wait, then remove it.
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
  done
  rm -rf "$work" || true
}
trap stop EXIT

# Munge authenticates Slurm's daemons and commands; its package made the key.
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  mkdir -p /run/munge
  chown munge:munge /run/munge
  runuser -u munge -- /usr/sbin/munged
fi

host=$(hostname -s)
mkdir -p "$work/state" "$work/spool"
export SLURM_CONF="$work/slurm.conf"
cat >"$SLURM_CONF" <<CONF
ClusterName=check
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=check Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
slurmctld
slurmd
for _ in $(seq 60); do
  [ "$(sinfo -h -o %T 2>/dev/null)" = idle ] && break
  sleep 1
done
if [ "$(sinfo -h -o %T 2>/dev/null)" != idle ]; then
  echo "the Slurm node did not come up:" >&2
  tail -n 20 "$work/slurmctld.log" "$work/slurmd.log" >&2
  exit 1
fi

# A small study: 12 runs of 4 iterations.
study_args="--props 0.005,0.01 --protocols raw,frozen,dropout --reps 2 --iters 4 --eval-every 4 --pretrain-iters 4"
# The recipe of docs/study.md, one CPU a task so that two shards run at once.
if ! XTASK="$xtask" OUT="$work/sharded" STUDY_ARGS="$study_args" \
  sbatch --wait --cpus-per-task=1 --chdir="$work" --output="$work/task-%a.out" "$here/study.sbatch"; then
  echo "the job array failed:" >&2
  tail -n 20 "$work"/task-*.out >&2
  exit 1
fi
"$xtask" report --out "$work/sharded"
# shellcheck disable=SC2086 # a word list
"$xtask" study $study_args --out "$work/whole" --quiet --no-estimate >/dev/null
if ! cmp "$work/whole/table.csv" "$work/sharded/table.csv"; then
  diff "$work/whole/table.csv" "$work/sharded/table.csv" >&2 || true
  exit 1
fi

# The same study swept over two pretraining lengths: one array, its shards across both points.
sweep_args="$study_args --axis pretrain-iters=4,8"
if ! XTASK="$xtask" OUT="$work/sweep-sharded" COMMAND=sweep STUDY_ARGS="$sweep_args" \
  sbatch --wait --cpus-per-task=1 --chdir="$work" --output="$work/sweep-task-%a.out" "$here/study.sbatch"; then
  echo "the sweep's job array failed:" >&2
  tail -n 20 "$work"/sweep-task-*.out >&2
  exit 1
fi
"$xtask" report --out "$work/sweep-sharded"
# shellcheck disable=SC2086 # a word list
"$xtask" sweep $sweep_args --out "$work/sweep-whole" --quiet --no-estimate >/dev/null
for point in pretrain-iters=4 pretrain-iters=8; do
  if ! cmp "$work/sweep-whole/$point/table.csv" "$work/sweep-sharded/$point/table.csv"; then
    diff "$work/sweep-whole/$point/table.csv" "$work/sweep-sharded/$point/table.csv" >&2 || true
    exit 1
  fi
done
[ -f "$work/sweep-sharded/sweep.md" ] || { echo "the sharded sweep wrote no sweep.md" >&2; exit 1; }
echo "Slurm: 4 array tasks into one results directory; their report's table.csv equals the unsharded study's; a two-point sweep's 4 tasks give each point the unsharded sweep's table.csv ($(($(date +%s) - started)) s)"

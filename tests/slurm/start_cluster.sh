#!/usr/bin/env bash
# Start a single-node SLURM cluster on this machine (idempotent), with two fake GPUs declared
# through GRES so that GPU requests are accepted. For tests, CI and trying profiles/slurm.
#   sudo bash tests/slurm/start_cluster.sh        # prints the SLURM_CONF to export
# Needs root (it installs Debian packages and starts daemons). No systemd, no cgroups.
set -euo pipefail

STATE=${SLURM_TEST_STATE:-/var/tmp/trajfusion-slurm}
CONF_DIR=$STATE/etc
HOST=$(hostname -s)
CPUS=$(nproc)
MEM_MB=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))

install_packages() {
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      slurm-wlm slurmctld slurmd slurm-client munge >/dev/null
  fi
}

start_munge() {
  if pgrep -x munged >/dev/null; then return; fi
  mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
  [[ -s /etc/munge/munge.key ]] || mungekey --create --keyfile /etc/munge/munge.key
  chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
  chmod 0400 /etc/munge/munge.key
  runuser -u munge -- munged
}

write_config() {
  mkdir -p "$CONF_DIR" "$STATE/spool/ctld" "$STATE/spool/d" "$STATE/log" "$STATE/gpus"
  for i in 0 1; do [[ -c $STATE/gpus/fake$i ]] || mknod "$STATE/gpus/fake$i" c 1 3; done
  cat > "$CONF_DIR/slurm.conf" <<CONF
ClusterName=trajfusion-test
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
MinJobAge=600
ReturnToService=2
MpiDefault=none
GresTypes=gpu
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB Gres=gpu:fake:2 State=UNKNOWN
PartitionName=main Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
  cat > "$CONF_DIR/gres.conf" <<CONF
NodeName=$HOST Name=gpu Type=fake File=$STATE/gpus/fake0
NodeName=$HOST Name=gpu Type=fake File=$STATE/gpus/fake1
CONF
  # The executor plugin's job step drops SLURM_CONF before its inner srun: keep a copy
  # where SLURM looks by default too.
  mkdir -p /etc/slurm
  ln -sf "$CONF_DIR/slurm.conf" /etc/slurm/slurm.conf
  ln -sf "$CONF_DIR/gres.conf" /etc/slurm/gres.conf
}

start_slurm() {
  export SLURM_CONF=$CONF_DIR/slurm.conf
  pgrep -x slurmctld >/dev/null || slurmctld
  pgrep -x slurmd >/dev/null || slurmd
  for _ in $(seq 60); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then return; fi
    sleep 1
  done
  echo "SLURM did not become ready; logs in $STATE/log" >&2
  sinfo >&2 || true
  exit 1
}

install_packages
start_munge
write_config
start_slurm
echo "SLURM_CONF=$CONF_DIR/slurm.conf"

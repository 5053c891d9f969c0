"""The DAG through profiles/slurm on a real single-node SLURM cluster (tests/slurm/start_cluster.sh).

CI starts the cluster before the tests and sets TRAJFUSION_REQUIRE_SLURM=1, so a missing
cluster fails there; on a developer machine without one the test is skipped.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO, e2e_config

DEFAULT_SLURM_CONF = "/var/tmp/trajfusion-slurm/etc/slurm.conf"

# Sampling, verification, statistics, fusion, one training run and one evaluation.
TARGETS = ["results/stats/tiny/e2e.parquet", "results/fused/tiny/e2e/rft.jsonl",
           "results/fused/tiny/e2e/tf.jsonl", "results/eval/tiny/tiny/e2e/e2e/tf/final/gsm8k.parquet"]
COMPARED = ["results/pools/e2e.parquet", "results/samples/tiny/e2e.parquet", "results/verified/tiny/e2e.parquet",
            *TARGETS]


# The profile sizes jobs for GPU nodes (8-64 CPUs); a 2-CPU test node would leave them
# pending forever, so the test scales them down with the documented command-line override.
SMALL_NODE = ["--default-resources", "mem_mb=2000", "cpus_per_task=1", "runtime=30",
              "--set-resources", "sample_shard:cpus_per_task=2", "evaluate:cpus_per_task=2",
              "verify:cpus_per_task=2", "stats:cpus_per_task=1", "calibrate_alpha:cpus_per_task=1",
              "fuse:cpus_per_task=1", "prepare_model:cpus_per_task=1", "train_e2e:cpus_per_task=2",
              "--set-threads", "verify=2", "sample_shard=2", "evaluate=2", "train_e2e=2"]


@pytest.fixture(scope="module")
def slurm_env():
    env = dict(os.environ, SLURM_CONF=os.environ.get("SLURM_CONF", DEFAULT_SLURM_CONF))
    try:
        ready = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True, timeout=20)
        available = ready.returncode == 0 and ready.stdout.strip() in ("idle", "mixed", "allocated")
    except (FileNotFoundError, subprocess.TimeoutExpired):
        available = False
    if not available:
        message = "no SLURM cluster; start one with `bash tests/slurm/start_cluster.sh`"
        if os.environ.get("TRAJFUSION_REQUIRE_SLURM"):
            pytest.fail(message)
        pytest.skip(message)
    return env


@pytest.mark.slurm
@pytest.mark.slow
def test_dag_runs_through_sbatch_and_matches_a_local_run(slurm_env, warmed_model, e2e_local_run, tmp_path):
    _, configfile = e2e_config(warmed_model, tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", *TARGETS, "--snakefile", str(REPO / "Snakefile"),
         "--directory", str(tmp_path),
         "--configfile", str(configfile), "--profile", str(REPO / "profiles" / "slurm"),
         "--slurm-init-seconds-before-status-checks", "5", "--latency-wait", "10", *SMALL_NODE],
        env=slurm_env, capture_output=True, text=True, timeout=1800)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]

    # Every job went through sbatch: the plugin logs one file per SLURM job id.
    job_ids = sorted({int(m) for m in re.findall(r"SLURM run ID: \S+|Job \d+ has been submitted with SLURM jobid (\d+)",
                                                 output) if m})
    logs = list((tmp_path / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert job_ids and len(logs) >= len(job_ids), output[-3000:]
    known = subprocess.run(["squeue", "--states=all", "-h", "-o", "%i"], env=slurm_env, capture_output=True,
                           text=True, timeout=30).stdout.split()
    assert set(map(str, job_ids)) <= set(known)

    # The artifacts are byte-identical to the local run's.
    local_dir = e2e_local_run[0]
    for relative in COMPARED:
        assert (tmp_path / relative).read_bytes() == (local_dir / relative).read_bytes(), relative

"""The whole DAG, end to end, on a tiny model: every rule runs for real through Snakemake."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from trajfusion.io import write_jsonl

REPO = Path(__file__).resolve().parents[1]
E2E_CONFIG = REPO / "tests" / "e2e" / "config.yaml"


def trajfusion(*args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "trajfusion.cli", *args], capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, f"trajfusion {args[0]} failed:\n{result.stderr[-3000:]}"


def snakemake(workdir: Path, configfile: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
                           "--directory", str(workdir), "--configfile", str(configfile), "--cores", "2",
                           *extra], capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def warmed_model(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny random model, trained briefly to answer the e2e pool's problems in the
    "\\boxed{}" format, so that sampling it gives both correct and incorrect answers."""
    work = tmp_path_factory.mktemp("warmup")
    spec = yaml.safe_load(E2E_CONFIG.read_text())["pools"]["e2e"]
    trajfusion("build-pool", "--spec", json.dumps(spec), "--data-dir", str(REPO / "data"), "--seed", "0",
               "--output", str(work / "pool.parquet"), "--report", str(work / "pool.json"))
    pool = pd.read_parquet(work / "pool.parquet")
    write_jsonl(({"problem_id": row.problem_id,
                  "messages": [{"role": "user", "content": row.problem},
                               {"role": "assistant", "content": f"The answer is \\boxed{{{row.answer}}}."}]}
                 for row in pool.itertuples()), work / "warmup.jsonl")
    trajfusion("train", "--model", str(tiny_model_dir), "--dataset", str(work / "warmup.jsonl"),
               "--template", "chat", "--output-dir", str(work / "warm"), "--epochs", "40",
               "--learning-rate", "3e-3", "--per-device-batch-size", "5", "--grad-accum", "1",
               "--max-length", "256", "--no-packing", "--precision", "fp32", "--seed", "0",
               "--lr-scheduler", "constant", "--warmup-ratio", "0", "--num-gpus", "0")
    return work / "warm" / "final"


@pytest.fixture(scope="module")
def e2e_run(warmed_model, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("e2e")
    config = yaml.safe_load(E2E_CONFIG.read_text())
    config["models"]["tiny"]["path"] = str(warmed_model)
    config["data_dir"] = str(REPO / "data")
    configfile = workdir / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    result = snakemake(workdir, configfile)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    return workdir, configfile, config


@pytest.mark.slow
def test_every_rule_ran_and_the_report_is_complete(e2e_run):
    workdir, _, config = e2e_run
    report = workdir / "results" / "report"
    for name in ("table1.md", "table2.md", "table3.md", "figure1.png", "figure3.png", "figure4.png",
                 "significance.md", "metrics.csv", "index.md"):
        path = report / name
        assert path.exists() and path.stat().st_size > 0, name
    assert "smoke test" in (report / "table1.md").read_text().lower()
    # Every job wrote a log and a benchmark (cost) file.
    assert list((workdir / "results" / "logs").rglob("*.log"))
    assert list((workdir / "results" / "cost").rglob("*.tsv"))


@pytest.mark.slow
def test_artifacts_between_stages_are_consistent(e2e_run):
    workdir, _, config = e2e_run
    results = workdir / "results"
    pool = pd.read_parquet(results / "pools" / "e2e.parquet")
    verified = pd.read_parquet(results / "verified" / "tiny" / "e2e.parquet")
    k = config["sampling"]["k"]
    assert len(verified) == len(pool) * k
    assert set(verified["status"].str.split(":").str[0]) <= {"ok", "filtered", "timeout", "error"}
    assert not verified.loc[verified["status"] != "ok", "correct"].any()
    stats = pd.read_parquet(results / "stats" / "tiny" / "e2e.parquet")
    assert len(stats) == len(pool)
    # The warmed-up model gives mixed outcomes, so fusion has material to work with.
    mixed = stats[(stats["n_correct"] > 0) & (stats["n_incorrect"] > 0)]
    assert len(mixed) > 0, stats[["problem_id", "n_correct", "n_incorrect"]]
    rft = [json.loads(line) for line in (results / "fused" / "tiny" / "e2e" / "rft.jsonl").read_text().splitlines()]
    tf = [json.loads(line) for line in (results / "fused" / "tiny" / "e2e" / "tf.jsonl").read_text().splitlines()]
    assert rft and len(rft) == len(tf)
    assert all(row["n_errors"] == 0 for row in rft)
    assert any(row["n_errors"] > 0 for row in tf)
    # The controlled comparison: RFT and TrajFusion share the correct trajectory y*.
    assert [r["correct_index"] for r in rft] == [r["correct_index"] for r in tf]
    run = results / "train" / "tiny" / "tiny" / "e2e" / "e2e" / "tf"
    for checkpoint in ("final", "ckpt-2", "ckpt-4"):
        assert (run / checkpoint / "model.safetensors").exists(), checkpoint
    long_config = json.loads((results / "train" / "tiny" / "tiny" / "e2e" / "e2e-long" / "tf" / "final"
                              / "config.json").read_text())
    assert "yarn" in json.dumps(long_config)


@pytest.mark.slow
def test_nothing_reruns_and_a_config_change_reruns_only_what_it_touches(e2e_run):
    workdir, configfile, config = e2e_run
    result = snakemake(workdir, configfile, "-n", "--quiet", "rules")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr

    changed = json.loads(json.dumps(config))
    changed["evaluation"]["temperature"] = 0.7
    path = workdir / "changed.yaml"
    path.write_text(yaml.safe_dump(changed))
    result = snakemake(workdir, path, "-n", "--quiet", "rules")
    assert result.returncode == 0, result.stderr
    planned = result.stdout
    assert "evaluate" in planned and "report" in planned
    for upstream in ("sample_shard", "verify", "fuse", "train_e2e"):
        assert upstream not in planned, planned

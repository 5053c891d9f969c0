"""Reproducibility (issue 9): the same config and seed give byte-identical artifacts, another
seed changes only what the design says it changes, and artifacts record their provenance.

The runs are of the reduced DAG (tests/reliability/config.yaml on the warmed-up tiny model):
``reliability_run`` (conftest.py, the reference), a second run of the same config in
another working directory, and a run with another ``fusion.seed`` that stops at fusion.

How the seeds flow (rules/*.smk): ``seed`` reaches every command that draws random numbers
except ``fuse``: pool and benchmark selection (build-pool, prepare-benchmark), tiny-model
initialisation (prepare-model), sampling, training, evaluation and the report's bootstrap.
``fusion.seed`` (default: ``seed``; the config sets it) reaches ``fuse`` only, where it picks
each problem's correct trajectory y*, the errors fused with it and their phrases.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import reliability_config, run_reliability_dag
from trajfusion.io import read_parquet_metadata

# Files under results/ that are not compared, each with the reason.
NOT_COMPARED = {
    "logs/*": "job logs: timestamps, progress rates and wall times",
    "cost/*": "Snakemake's benchmark files: wall time, CPU time and memory of each job",
    "report/cost.md": "the cost/ files as a table",
    "report/cost.csv": "the cost/ files as a table",
    "train/*/trainer/README.md": "TRL's model card lists its tags from a Python set, in an order that differs "
                                 "between processes; no stage reads it",
}


def _drop_provenance_command(text: str) -> str:
    manifest = json.loads(text)
    del manifest["provenance"]["command"]
    return json.dumps(manifest, sort_keys=True)


def _drop_command_line(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not line.lstrip().startswith('"command":'))


def drop_keys(*keys: str):
    def drop(text: str) -> str:
        meta = json.loads(text)
        for key in keys:
            del meta[key]
        return json.dumps(meta, sort_keys=True)
    return drop


# Files compared after removing one part, each with the reason.
NORMALIZED = {
    "report/manifest.json": (_drop_provenance_command,
                             "provenance.command: Snakemake's command line, which names a random temporary "
                             "directory (its source cache)"),
    "report/index.md": (_drop_command_line, "the same provenance, shown in the index"),
    "train/*/final/train_meta.json": (drop_keys("timing"), "timing: wall-clock seconds and tokens per second"),
}


def comparable_artifacts(results: Path, normalized: dict = NORMALIZED) -> dict[str, str]:
    """SHA-256 of every file under ``results`` (relative path -> digest), as compared."""
    digests = {}
    for path in sorted(p for p in results.rglob("*") if p.is_file()):
        relative = path.relative_to(results).as_posix()
        if any(fnmatch(relative, pattern) for pattern in NOT_COMPARED):
            continue
        data = path.read_bytes()
        for pattern, (normalize, _) in normalized.items():
            if fnmatch(relative, pattern):
                data = normalize(data.decode("utf-8")).encode("utf-8")
        digests[relative] = hashlib.sha256(data).hexdigest()
    return digests


def differing(first: dict[str, str], second: dict[str, str]) -> list[str]:
    return sorted(path for path in first.keys() & second.keys() if first[path] != second[path])


# At least one file of each kind of artifact takes part in the comparison.
ARTIFACT_KINDS = ["pools/rel.parquet", "pools/rel.report.json", "benchmarks/gsm8k.parquet",
                  "benchmarks/synthetic_arith_test.parquet", "models/tiny/model.safetensors",
                  "samples/tiny/rel/shard-*.parquet", "samples/tiny/rel.parquet", "verified/tiny/rel.parquet",
                  "stats/tiny/rel.parquet", "fused/tiny/rel/tf.jsonl", "fused/tiny/rel/tf.summary.json",
                  "train/*/final/model.safetensors", "train/*/final/train_meta.json",
                  "train/*/ckpt-2/model.safetensors", "train/*/trainer/checkpoint-*/optimizer.pt",
                  "eval/*/final/gsm8k.parquet", "eval/*/final/synthetic_arith_test.parquet",
                  "report/table1.md", "report/table1.csv", "report/table1.tex", "report/significance.csv",
                  "report/metrics.csv", "report/figure1.png", "report/figure3.pdf", "report/manifest.json",
                  "report/index.md", "report/config.yaml"]


@pytest.fixture(scope="module")
def second_run(reliability_run, warmed_model, snakemake_env, tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("reliability-second")
    run_reliability_dag(workdir, reliability_config(warmed_model, workdir), snakemake_env)
    return workdir


@pytest.mark.slow
def test_a_second_run_with_the_same_seed_is_byte_identical(reliability_run, second_run):
    reference = comparable_artifacts(reliability_run[0] / "results")
    again = comparable_artifacts(second_run / "results")
    assert sorted(again) == sorted(reference)
    for kind in ARTIFACT_KINDS:
        assert any(fnmatch(path, kind) for path in reference), kind
    assert differing(reference, again) == []


FUSED = "fused/tiny/rel/tf.jsonl"
FUSION_TARGETS = [f"results/{FUSED}", "results/fused/tiny/rel/tf.summary.json", "results/stats/tiny/rel.parquet",
                  "results/benchmarks/gsm8k.parquet", "results/benchmarks/synthetic_arith_test.parquet"]


@pytest.fixture(scope="module")
def other_fusion_seed_run(reliability_run, warmed_model, snakemake_env, tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("reliability-fusion-seed")
    configfile = reliability_config(warmed_model, workdir, {"fusion.seed": 1})
    run_reliability_dag(workdir, configfile, snakemake_env, *FUSION_TARGETS)
    return workdir


def _fused_rows(results: Path) -> list[dict]:
    return [json.loads(line) for line in (results / FUSED).read_text().splitlines()]


@pytest.mark.slow
def test_another_fusion_seed_changes_the_fused_datasets_and_nothing_upstream(reliability_run, other_fusion_seed_run):
    reference_dir, other_dir = reliability_run[0] / "results", other_fusion_seed_run / "results"
    reference, other = comparable_artifacts(reference_dir), comparable_artifacts(other_dir)
    assert set(other) <= set(reference)
    for kind in ("pools/rel.parquet", "benchmarks/*.parquet", "models/tiny/model.safetensors",
                 "samples/tiny/rel/shard-*.parquet", "verified/tiny/rel.parquet", "stats/tiny/rel.parquet"):
        assert any(fnmatch(path, kind) for path in other), kind
    assert differing(reference, other) == [FUSED, "fused/tiny/rel/tf.summary.json"]

    before, after = _fused_rows(reference_dir), _fused_rows(other_dir)
    # The seed picks which trajectories are fused, not how many errors each problem gets.
    assert [(r["problem_id"], r["n_errors"]) for r in before] == [(r["problem_id"], r["n_errors"]) for r in after]
    assert {r["seed"] for r in before} == {0} and {r["seed"] for r in after} == {1}
    assert [(r["correct_index"], r["error_indices"]) for r in before] != \
        [(r["correct_index"], r["error_indices"]) for r in after]
    assert [r["messages"] for r in before] != [r["messages"] for r in after]
    summary = {name: json.loads((d / "fused/tiny/rel/tf.summary.json").read_text())
               for name, d in (("before", reference_dir), ("after", other_dir))}
    changed = {key for key in summary["before"] if summary["before"][key] != summary["after"][key]}
    # config_hash: the seed is one of the settings it hashes.
    assert "seed" in changed and changed <= {"seed", "config_hash", "mean_response_chars", "mean_fused_tokens"}


# Two samplings of shard 0 in one process (the imports dominate): the rule's command line
# (rules/sample.smk with tests/reliability/config.yaml), once with each seed.
SAMPLE_TWICE = ("import json, sys\nfrom trajfusion.cli import main\n"
                "for argv in json.loads(sys.argv[1]):\n    assert main(argv) == 0, argv\n")


def _sample_argv(results: Path, config: dict, seed: int, output: Path) -> list[str]:
    teacher, sampling = config["teachers"]["tiny"], config["sampling"]
    return ["sample", "--pool", str(results / "pools/rel.parquet"), "--model", str(results / "models/tiny"),
            "--threads", "2", "--teacher", "tiny", "--backend", teacher["backend"], "--template", teacher["template"],
            "--k", str(sampling["k"]), "--temperature", str(sampling["temperature"]), "--top-p", str(sampling["top_p"]),
            "--max-new-tokens", str(teacher["max_new_tokens"]), "--batch-size", str(teacher["batch_size"]),
            "--dtype", teacher["dtype"], "--num-shards", str(sampling["shards"]), "--shard", "0",
            "--seed", str(seed), "--output", str(output)]


@pytest.mark.slow
def test_another_seed_changes_the_samples(reliability_run, tmp_path):
    workdir, configfile = reliability_run
    results = workdir / "results"
    config = yaml.safe_load(configfile.read_text())
    outputs = {seed: tmp_path / f"seed-{seed}.parquet" for seed in (0, 1)}
    argvs = [_sample_argv(results, config, seed, output) for seed, output in outputs.items()]
    subprocess.run([sys.executable, "-c", SAMPLE_TWICE, json.dumps(argvs)], check=True, capture_output=True,
                   env={**os.environ, "OMP_NUM_THREADS": "2"}, timeout=600)
    shard = results / "samples/tiny/rel/shard-0.parquet"
    assert outputs[0].read_bytes() == shard.read_bytes()  # the command line above is the rule's
    same_seed, other_seed = pd.read_parquet(outputs[0]), pd.read_parquet(outputs[1])
    keys = ["problem_id", "sample_idx"]
    assert other_seed[keys].equals(same_seed[keys])
    assert (other_seed["response"] != same_seed["response"]).mean() > 0.5


# --------------------------------------------------------------------------- provenance


def _has_hash_and_versions(record: dict) -> bool:
    return bool(re.fullmatch(r"[0-9a-f]{16}", str(record.get("config_hash", "")))) and \
        {"trajfusion", "torch", "pandas"} <= set(record.get("versions", {}))


def test_every_parquet_artifact_records_its_config_hash_and_library_versions(reliability_run):
    tables = sorted((reliability_run[0] / "results").rglob("*.parquet"))
    assert len(tables) == 10  # pool, 2 benchmarks, 2 shards, merged samples, verified, stats, 2 evaluations
    lacking = [str(path) for path in tables if not _has_hash_and_versions(read_parquet_metadata(path))]
    assert lacking == []


def test_the_report_manifest_records_the_config_hash_and_library_versions(reliability_run):
    manifest = json.loads((reliability_run[0] / "results/report/manifest.json").read_text())
    assert _has_hash_and_versions(manifest["provenance"])


RUN = "train/tiny/tiny/rel/rel/tf"
# The JSON artifacts, each with the code that writes it.
JSON_WITH_PROVENANCE = [
    "fused/tiny/rel/tf.summary.json",          # trajfusion.fuse.fuse_file
    "pools/rel.report.json",                   # build-pool --report
    "models/tiny/prepare_meta.json",           # trajfusion.model.prepare.prepare_model
    f"{RUN}/final/train_meta.json",            # trajfusion.train.trainer.build_meta
    f"{RUN}/ckpt-2/ckpt_meta.json",            # trajfusion.train.progress.DataProgress._save
]


@pytest.mark.parametrize("relative", JSON_WITH_PROVENANCE)
def test_json_artifacts_record_their_config_hash_and_library_versions(reliability_run, relative):
    assert _has_hash_and_versions(json.loads((reliability_run[0] / "results" / relative).read_text()))

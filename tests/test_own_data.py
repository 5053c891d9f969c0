"""A researcher's own problems, benchmark and experiment, declared in a config only: the
whole DAG from a temporary directory, without touching code, the schema or data/."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from tests.conftest import E2E_CONFIG, REPO, snakemake
from trajfusion.data import build_pool, load_source

OWN_CONFIG = """
smoke_test: true
seed: 0
data_dir: {data_dir}

models:
  tiny: {{source: local, path: {model}}}

datasets:
  my_problems:  # JSONL with columns of its own naming
    path: my_problems.jsonl
    columns: {{problem: question, answer: final, id: uid}}
    license: CC0-1.0
  my_test:  # JSONL too, the gold after '####', no id column
    path: my_test.jsonl
    columns: {{problem: prompt, answer: worked_solution}}
    answer_rule: gsm8k

pools:
  mine:
    sources: [{{name: my_problems}}]

benchmarks:
  my_bench: {{dataset: my_test, template: chat}}

teachers:
  tiny: {{model: tiny, template: chat, backend: hf, max_new_tokens: 16, batch_size: 5, dtype: float32}}

sampling: {{k: 6, temperature: 1.0, top_p: 0.95, shards: 2}}
verify: {{workers: 1, timeout: 5}}

fusion:
  seed: 0
  variants:
    rft: {{k_max: 0}}
    tf: {{k_max: 2, alpha: 2.0, strategy: highdiv}}

backbones:
  tiny: {{model: tiny, template: chat}}

training:
  learning_rate: 1.0e-3
  epochs: 1
  per_device_batch_size: 2
  grad_accum: 1
  num_gpus: 0
  max_length: 256
  packing: true
  gradient_checkpointing: false
  precision: fp32
  warmup_ratio: 0.0
  lr_scheduler: constant
  save_steps: 8

training_profiles:
  own: {{checkpoints: []}}

evaluation:
  backend: hf
  temperature: 0.6
  top_p: 0.95
  max_new_tokens: 16
  batch_size: 8
  dtype: float32
  samples: {{default: 2}}

report:
  figure1_sources: [my_problems]

experiments:
  my_study:
    teacher: tiny
    pool: mine
    backbones: [tiny]
    variants: [rft, tf]
    training_profile: own
    benchmarks: [my_bench]

evaluations:
  teacher-greedy:  # the teacher itself, greedy, on the own benchmark and a built-in one
    model: tiny
    template: chat
    benchmarks: [my_bench]
    generation: {{temperature: 0.0, samples: 1, max_new_tokens: 8}}
  tf-checkpoint:  # a checkpoint the experiment trains, with more samples than the experiment draws
    run: {{experiment: my_study, backbone: tiny, variant: tf}}
    benchmarks: [my_bench]
    generation: {{samples: 3}}
    label: TF final, 3 samples
"""


def write_own_data(workdir):
    """Ten training problems as JSONL under other column names (those the warmed-up model
    was trained on, so that its samples mix correct and incorrect answers), and four test
    problems as JSONL with GSM8K-style worked solutions (the other file types:
    tests/test_declared_data.py)."""
    spec = yaml.safe_load(E2E_CONFIG.read_text())["pools"]["e2e"]
    train, _ = build_pool(spec, REPO / "data", seed=0)
    with open(workdir / "my_problems.jsonl", "w") as out:
        for i, row in enumerate(train.itertuples()):
            out.write(json.dumps({"uid": f"q{i:02d}", "question": row.problem, "final": int(row.answer)}) + "\n")
    test = load_source("synthetic_arith_test", REPO / "data").head(4)
    with open(workdir / "my_test.jsonl", "w") as out:
        for row in test.itertuples():
            out.write(json.dumps({"prompt": row.problem, "worked_solution": f"Work it out.\n#### {row.answer}"}) + "\n")
    return train, test


@pytest.mark.slow
def test_own_dataset_pool_benchmark_and_experiment_run_end_to_end(warmed_model, tmp_path):
    train, test = write_own_data(tmp_path)
    configfile = tmp_path / "config.yaml"
    configfile.write_text(OWN_CONFIG.format(data_dir=REPO / "data", model=warmed_model))
    result = snakemake(tmp_path, configfile)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]

    pool = pd.read_parquet(tmp_path / "results" / "pools" / "mine.parquet")
    assert sorted(pool["problem_id"]) == [f"my_problems/q{i:02d}" for i in range(10)]
    assert sorted(pool["answer"]) == sorted(train["answer"])
    assert set(pool["source"]) == {"my_problems"}
    report = json.loads((tmp_path / "results" / "pools" / "mine.report.json").read_text())
    from trajfusion.io import sha256_file

    assert report["datasets"]["my_problems"]["sha256"] == sha256_file(tmp_path / "my_problems.jsonl")

    bench = pd.read_parquet(tmp_path / "results" / "benchmarks" / "my_bench.parquet")
    assert list(bench["problem_id"]) == ["my_bench/0", "my_bench/1", "my_bench/2", "my_bench/3"]
    assert list(bench["answer"]) == list(test["answer"])

    table = (tmp_path / "results" / "report" / "results-my_study.md").read_text()
    assert "Pass@1 my_bench" in table and "Avg@k my_bench" in table
    assert "Vanilla RFT" in table and "TrajFusion" in table
    metrics = pd.read_csv(tmp_path / "results" / "report" / "metrics.csv")
    assert set(metrics[metrics["experiment"] == "my_study"]["tables"]) == {"results-my_study"}
    assert set(metrics[metrics["experiment"].str.startswith("evaluation:")]["tables"]) == {"evaluations"}

    evaluations = (tmp_path / "results" / "report" / "evaluations.md").read_text()
    assert "| tiny" in evaluations and "TF final, 3 samples" in evaluations and "Pass@1 my_bench" in evaluations
    greedy = pd.read_parquet(tmp_path / "results" / "eval" / "models" / "teacher-greedy" / "my_bench.parquet")
    sampled = pd.read_parquet(tmp_path / "results" / "eval" / "models" / "tf-checkpoint" / "my_bench.parquet")
    assert len(greedy) == 4 and len(sampled) == 12 and greedy["n_tokens"].max() <= 8

    # The data file is a declared input: editing it reruns the pool and what depends on it.
    with open(tmp_path / "my_problems.jsonl", "a") as out:
        out.write(json.dumps({"uid": "q10", "question": "Tom has 2 pens. He finds 3 more. How many pens does "
                              "Tom have now?", "final": 5}) + "\n")
    plan = snakemake(tmp_path, configfile, "-n", "--quiet", "rules")
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert "build_pool" in plan.stdout and "prepare_benchmark" not in plan.stdout


def test_bad_declared_data_names_the_key_before_any_job(tmp_path):
    config = yaml.safe_load(OWN_CONFIG.format(data_dir=REPO / "data", model=tmp_path))
    config["pools"]["mine"]["sources"] = [{"name": "my_problemz"}]
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, configfile, "-n")
    assert result.returncode != 0
    assert "config error at 'pools.mine.sources[0].name': unknown source 'my_problemz'" in result.stdout + result.stderr

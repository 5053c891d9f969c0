"""The distillation runs of the plan (experiments.*.distillation) and their Snakemake jobs."""

from __future__ import annotations

import copy
import re
import subprocess
import sys

import yaml

from tests.conftest import REPO, local_snakemake_env
from tests.test_plan import load
from trajfusion.plan import JOBS, PATHS, DistillRun, Plan, Run, path


def test_the_paper_config_plans_each_student_and_method_once():
    plan = Plan.from_config(load("config/paper.yaml"))
    runs = plan.distill_runs
    assert len(runs) == len(set(runs)) == 9
    assert {(r.student, r.method) for r in runs} == {(s, m) for s in ("base", "rft", "tf")
                                                     for m in ("opd", "opd_filter", "topd")}
    assert {(r.backbone, r.teacher, r.pool, r.profile) for r in runs} == {
        ("qwen25-math-7b", "qwen25-math-7b-instruct", "p15k", "qwen-4k")}
    from_rft = next(r for r in runs if r.student == "rft")
    assert from_rft.sft_run == Run("qwen25-math-7b", "qwen25-math-7b-instruct", "p15k", "qwen-4k", "rft")
    assert from_rft.sft_run in plan.runs  # the SFT run it starts from is trained by the plan
    assert next(r for r in runs if r.student == "base").sft_run is None


def test_configs_without_distillation_plan_none():
    for config in ("config/config.yaml", "tests/e2e/config.yaml"):
        assert Plan.from_config(load(config)).distill_runs == []


def test_students_default_to_the_base_model():
    config = copy.deepcopy(load("config/config.yaml"))
    name, exp = next(iter(config["experiments"].items()))
    exp["distillation"] = {"methods": ["topd"]}
    config = _validated(config)
    assert [r.student for r in Plan.from_config(config).distill_runs] == ["base"] * len(exp["backbones"])


def test_distill_paths_and_job_keys_share_wildcards():
    run = DistillRun("b", "t", "p", "f", "rft", "topd")
    assert path("distilled", **run.wildcards()) == "results/distill/b/t/p/f/rft/topd/final"
    fields = set(re.findall(r"{(\w+)}", PATHS["distilled"]))
    assert fields == set(re.findall(r"{(\w+)}", JOBS["distill"])) == set(run.wildcards())


def _validated(config: dict) -> dict:
    from snakemake.utils import validate

    validate(config, str(REPO / "config" / "schema.yaml"))
    return config


def _dry_run(configfile, *targets) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", *targets, "-n", "--snakefile", str(REPO / "Snakefile"),
                           "--directory", str(configfile.parent), "--configfile", str(configfile)],
                          env=local_snakemake_env(), capture_output=True, text=True, timeout=300)


def test_snakemake_plans_the_distillation_jobs_of_the_paper_config(tmp_path):
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    config["data_dir"] = str(REPO / "data")
    (tmp_path / "paper.yaml").write_text(yaml.safe_dump(config))
    result = _dry_run(tmp_path / "paper.yaml", "distill")
    assert result.returncode == 0, result.stderr[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", result.stdout, re.M))
    assert counts["distill_run"] == "9" and counts["train_qwen_4k"] == "2"
    # a student from the TrajFusion SFT run reads that run's final checkpoint
    assert "input: results/train/qwen25-math-7b/qwen25-math-7b-instruct/p15k/qwen-4k/tf/final," in result.stdout


def test_a_student_that_is_no_variant_of_the_experiment_is_refused(tmp_path):
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    config["data_dir"] = str(REPO / "data")
    config["experiments"]["table3-4k"]["distillation"]["students"] = ["base", "lowdiv"]
    (tmp_path / "paper.yaml").write_text(yaml.safe_dump(config))
    result = _dry_run(tmp_path / "paper.yaml", "distill")
    assert result.returncode != 0
    assert "experiments.table3-4k.distillation.students[1]" in result.stdout + result.stderr
    assert "'lowdiv' is neither 'base' nor one of the experiment's variants" in result.stdout + result.stderr

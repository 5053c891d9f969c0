"""The distillation runs of the plan (experiments.*.distillation) and their Snakemake jobs."""

from __future__ import annotations

import copy
import re
import subprocess
import sys

import pytest
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


def test_the_embedded_default_distils_into_the_trajfusion_run_and_evaluates_on_one_benchmark():
    plan = Plan.from_config(load("config/config.yaml"))
    assert [(r.student, r.method) for r in plan.distill_runs] == [("tf", m) for m in ("opd", "topd")]
    assert [(e.run.method, e.benchmark) for e in plan.distill_evaluations] == [
        (m, "synthetic_arith_test") for m in ("opd", "topd")]
    evals = [e for e in plan.manifest()["evals"] if e["method"] == "topd"]
    assert {e["variant_label"] for e in evals} == {"TOPD (from TrajFusion)"}
    assert {e["variant"] for e in evals} == {"tf/topd"} and {tuple(e["tables"]) for e in evals} == {("table1",)}
    assert evals[0]["path"] == \
        "results/eval/distill/smollm2-135m/smollm2-135m/embedded/embedded/tf/topd/synthetic_arith_test.parquet"
    assert all(e.path in plan.eval_paths for e in plan.distill_evaluations)  # the report (all) reads them
    assert [r["label"] for r in plan.manifest()["distill_runs"]] == ["OPD (from TrajFusion)", "TOPD (from TrajFusion)"]
    assert plan.distill_tables() == ["distill-table1", "significance-distill"]
    cost = plan.cost_files()
    assert "distill/smollm2-135m/smollm2-135m/embedded/embedded/tf/opd.tsv" in cost
    assert "evaluate/distill/smollm2-135m/smollm2-135m/embedded/embedded/tf/opd/synthetic_arith_test.tsv" in cost


def test_a_base_student_is_labelled_from_the_base_model():
    plan = Plan.from_config(load("config/paper.yaml"))
    labels = {(r.student, r.method): plan.distill_label(r) for r in plan.distill_runs}
    assert labels[("base", "opd_filter")] == "OPD-filter (from base model)"
    assert labels[("rft", "opd")] == "OPD (from Vanilla RFT)"
    # without `distillation.benchmarks`, the experiment's own
    assert {e.benchmark for e in plan.distill_evaluations} == {"aime24", "aime25", "math500"}


def test_configs_without_distillation_plan_none():
    config = copy.deepcopy(load("config/config.yaml"))
    del config["experiments"]["table1"]["distillation"]
    plan = Plan.from_config(config)
    assert plan.distill_runs == [] and plan.distill_tables() == [] and plan.manifest()["distill_runs"] == []


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


def test_snakemake_plans_distillation_and_its_evaluations_in_the_embedded_default(tmp_path):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["data_dir"] = str(REPO / "data")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = _dry_run(tmp_path / "config.yaml")  # the default target, all
    assert result.returncode == 0, result.stderr[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", result.stdout, re.M))
    assert counts["distill_run"] == "2" and counts["evaluate_distilled"] == "2"
    assert "input: results/distill/smollm2-135m/smollm2-135m/embedded/embedded/tf/topd/final," in result.stdout
    assert "results/report/distill-table1.png" in result.stdout
    assert "results/report/significance-distill.csv" in result.stdout


def test_unknown_distillation_benchmarks_are_refused(tmp_path):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["data_dir"] = str(REPO / "data")
    config["experiments"]["table1"]["distillation"]["benchmarks"] = ["gsm8k", "nope"]  # [1] is unknown
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = _dry_run(tmp_path / "config.yaml")
    assert result.returncode != 0
    assert "experiments.table1.distillation.benchmarks[1]" in result.stdout + result.stderr


def test_a_student_that_is_no_variant_of_the_experiment_is_refused(tmp_path):
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    config["data_dir"] = str(REPO / "data")
    config["experiments"]["table3-4k"]["distillation"]["students"] = ["base", "lowdiv"]
    (tmp_path / "paper.yaml").write_text(yaml.safe_dump(config))
    result = _dry_run(tmp_path / "paper.yaml", "distill")
    assert result.returncode != 0
    assert "experiments.table3-4k.distillation.students[1]" in result.stdout + result.stderr
    assert "'lowdiv' is neither 'base' nor one of the experiment's variants" in result.stdout + result.stderr


def test_vllm_sampling_runs_in_the_vllm_env_and_needs_a_gpu(tmp_path):
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    config["data_dir"] = str(REPO / "data")
    assert config["distillation"]["backend"] == "vllm"
    (tmp_path / "paper.yaml").write_text(yaml.safe_dump(config))
    result = _dry_run(tmp_path / "paper.yaml", "distill", "--printshellcmds")
    assert result.returncode == 0, result.stderr[-3000:]
    assert '"backend": "vllm"' in result.stdout and '"vllm_gpu_memory_utilization": 0.3' in result.stdout

    config["distillation"]["num_gpus"] = 0
    (tmp_path / "paper.yaml").write_text(yaml.safe_dump(config))
    result = _dry_run(tmp_path / "paper.yaml", "distill")
    assert result.returncode != 0
    assert "config error at 'distillation.backend': vllm samples on a GPU" in result.stdout + result.stderr


def test_distillation_settings_are_checked_before_any_job(tmp_path):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["data_dir"] = str(REPO / "data")
    config["distillation"]["backend"] = "sglang"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = _dry_run(tmp_path / "config.yaml")
    assert result.returncode != 0 and "backend" in result.stdout + result.stderr


def test_the_vllm_backend_configures_trls_colocated_generation(tmp_path):
    from trajfusion.distill.settings import DistillSettings
    from trajfusion.distill.trainer import build_config, check_backend
    from trajfusion.io import InputError

    settings = DistillSettings(template="chat", seed=0, backend="vllm", vllm_gpu_memory_utilization=0.4)
    args = build_config(settings, tmp_path)
    assert (args.use_vllm, args.vllm_mode, args.vllm_gpu_memory_utilization) == (True, "colocate", 0.4)
    assert build_config(DistillSettings(template="chat", seed=0), tmp_path).use_vllm is False
    import torch

    if not torch.cuda.is_available():  # this machine: refused before any model is loaded
        with pytest.raises(InputError, match="vLLM samples on a GPU and this job sees none"):
            check_backend(settings)

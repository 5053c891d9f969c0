"""trajfusion.plan: the jobs each shipped config asks for, each once, as the rules listed them.

tests/fixtures/plan_baseline.json holds the job lists the Snakemake helpers gave before the plan
existed (experiment_runs, experiment_evals, sampling_pairs, fused_datasets in rules/common.smk
and the report manifest of rules/report.smk), for the three configs below; TAPO's variants (kind
reflect) and its experiment came later, so the comparison leaves them out and
``test_tapo_adds_its_runs_only`` checks what they add.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from trajfusion.plan import (
    JOBS,
    PATHS,
    REFLECT,
    Plan,
    RLRun,
    Run,
    path,
    rl_checkpoint,
    rl_run_of,
    rl_settings,
    variant_kind,
)

REPO = Path(__file__).resolve().parents[1]
BASELINE = json.loads((REPO / "tests" / "fixtures" / "plan_baseline.json").read_text())
CONFIGS = ["config/config.yaml", "config/paper.yaml", "tests/e2e/config.yaml"]


def load(relative: str) -> dict:
    """The config as the Snakefile sees it: validated, with the schema's defaults filled in."""
    config = yaml.safe_load((REPO / relative).read_text())
    validate(config, str(REPO / "config" / "schema.yaml"))
    return config


# Experiments added to a config after the fixture was recorded; their plans are tested on their own.
AFTER_FIXTURE = {"config/paper.yaml": ("grpo-vs-tapo",)}


def load_as_recorded(relative: str) -> dict:
    """The config without the experiments added after the fixture."""
    config = load(relative)
    for name in AFTER_FIXTURE.get(relative, ()):
        del config["experiments"][name]
    return config


def before_tapo(config: dict) -> dict:
    """The config without TAPO's variants, and without the experiments left with only the others'
    runs (they add no job), as the rules before TAPO saw it."""
    config = copy.deepcopy(config)
    tapo = {v for v in config["fusion"]["variants"] if variant_kind(config, v) == REFLECT}
    for name, exp in list(config["experiments"].items()):
        if tapo & set(exp["variants"]):
            exp["variants"] = [v for v in exp["variants"] if v not in tapo]
            if not exp.get("table"):
                del config["experiments"][name]
    return config


@pytest.fixture(scope="module", params=CONFIGS)
def plan_and_baseline(request):
    return Plan.from_config(before_tapo(load_as_recorded(request.param))), BASELINE[request.param]


@pytest.mark.parametrize("relative, runs", [
    ("config/config.yaml", [["smollm2-135m", "smollm2-135m", "embedded", "embedded", "tapo"]]),
    ("config/paper.yaml", [["llama3-8b", "qwen25-math-7b-instruct", "p15k", "base-15k", "tapo"]])])
def test_tapo_adds_its_runs_only(relative, runs):
    plan = Plan.from_config(load_as_recorded(relative))
    before = Plan.from_config(before_tapo(load_as_recorded(relative)))
    added = [run for run in plan.runs if run not in before.runs]
    assert [list(vars(run).values()) for run in added] == runs
    assert set(before.runs) <= set(plan.runs) and set(before.eval_paths) <= set(plan.eval_paths)
    assert [v for *_, v in plan.fused_datasets if v not in {v for *_, v in before.fused_datasets}] == ["tapo"]
    entries = [e for e in plan.manifest()["evals"] if e["variant"] == "tapo"]
    assert entries and {(e["method"], e["variant_label"]) for e in entries} == {("tapo", "TAPO-SFT")}
    assert [f"{JOBS['reflect']}.tsv".format(teacher=t, pool=p, variant=v)
            for t, p, v in plan.fused_datasets if v == "tapo"][0] in plan.cost_files()
    assert all(e["variant"] != "tapo" for e in plan.exports)


def test_runs_pairs_and_fused_datasets_match_the_rules_before_the_plan(plan_and_baseline):
    plan, baseline = plan_and_baseline
    assert [list(vars(run).values()) for run in plan.runs] == baseline["runs"]
    assert [list(pair) for pair in plan.sampling_pairs] == baseline["sampling_pairs"]
    fused = [path("fused", teacher=t, pool=p, variant=v) for t, p, v in plan.fused_datasets]
    assert fused == baseline["fused_datasets"]


def test_evaluations_match_the_rules_before_the_plan(plan_and_baseline):
    plan, baseline = plan_and_baseline
    evaluations = [[e.experiment, *vars(e.run).values(), e.checkpoint, e.samples_seen, e.benchmark]
                   for e in plan.evaluations]
    assert evaluations == baseline["evaluations"]


def test_every_job_is_listed_once(plan_and_baseline):
    plan, _ = plan_and_baseline
    for jobs in (plan.runs, plan.eval_paths, plan.sampling_pairs, plan.fused_datasets, plan.calibrations,
                 plan.models, plan.benchmarks, plan.cost_files(),
                 [s["path"] for s in plan.fusion_summaries()], [s["path"] for s in plan.stats()]):
        assert len(jobs) == len(set(jobs)) > 0
    manifest_paths = {e["path"] for e in plan.manifest()["evals"]}
    assert manifest_paths == set(plan.eval_paths)


def test_the_e2e_manifest_is_the_one_the_report_rule_wrote():
    """The trained runs' entries as the rule wrote them; the baselines (config `baselines`) and
    the distilled models (experiments.*.distillation), added after the fixture, come after them."""
    plan = Plan.from_config(load("tests/e2e/config.yaml"))
    manifest = json.loads(json.dumps(plan.manifest()))
    trained = len(plan.evaluations)
    distill_runs = manifest.pop("distill_runs")
    assert {**manifest, "evals": manifest["evals"][:trained]} == BASELINE["tests/e2e/config.yaml"]["manifest"]
    assert [e["path"] for e in manifest["evals"][trained:]] == [
        "results/eval/baseline/icl-tiny/gsm8k.parquet",
        "results/eval/distill/tiny/tiny/e2e/e2e/tf/topd/gsm8k.parquet"]
    assert [r["path"] for r in distill_runs] == ["results/distill/tiny/tiny/e2e/e2e/tf/topd/diagnostics.jsonl"]


def test_paper_plan_counts():
    plan = Plan.from_config(load_as_recorded("config/paper.yaml"))
    assert len(plan.runs) == 18 and len(plan.sampling_pairs) == 3 and len(plan.fused_datasets) == 12
    # Finals of Tables 1-3 plus the Figure 3/4 checkpoints (4 runs x 5 checkpoints x 2 benchmarks),
    # plus Table 1's three baselines on its six benchmarks, plus the TAPO-SFT run on six, plus
    # table3-4k's nine distilled models (3 students x 3 methods) on its three benchmarks.
    assert len(plan.eval_paths) == 8 * 6 + 5 * 2 + 4 * 3 + 4 * 5 * 2 + 3 * 6 + 6 + 9 * 3
    assert len(plan.models) == 5 + 1
    # One calibration per (teacher, pool) and alpha_target variant; tf_k1/2/6 reuse tf's alpha.
    assert plan.calibrations == [("qwen25-math-7b-instruct", "p15k", "tf"), ("qwen25-math-7b-instruct", "p100k", "tf"),
                                 ("qwen25-math-7b-instruct", "p15k", "lowdiv"),
                                 ("qwen25-math-7b-instruct", "p15k", "highdiv"), ("r1-distill-qwen-7b", "p100k", "tf")]


def test_rl_runs_start_from_the_named_variant_and_are_evaluated_as_checkpoints():
    config = load("config/paper.yaml")
    plan = Plan.from_config(config)
    start = Run("qwen3-8b", "qwen3-8b", "deepscaler", "qwen3-cold", "tapo")  # TAPO-SFT cold start
    assert plan.rl_runs == [RLRun(start, "grpo"), RLRun(start, "tapo-grpo")]
    assert start in plan.runs  # the cold start is trained and evaluated like any SFT run
    run_dir = "results/eval/qwen3-8b/qwen3-8b/deepscaler/qwen3-cold/tapo"
    assert plan.rl_eval_paths == [f"{run_dir}/rl-{rl}/{bench}.parquet"
                                  for rl in ("grpo", "tapo-grpo")
                                  for bench in config["experiments"]["grpo-vs-tapo"]["benchmarks"]]
    assert not set(plan.rl_eval_paths) & set(plan.eval_paths)  # not in the report manifest yet
    assert rl_run_of(rl_checkpoint("tapo-grpo")) == "tapo-grpo" and rl_run_of("final") is None
    assert path("rl_final", **RLRun(start, "grpo").wildcards()) == \
        "results/rl/qwen3-8b/qwen3-8b/deepscaler/qwen3-cold/tapo/grpo/final"
    tapo = rl_settings(config, "tapo-grpo")
    assert tapo["mode"] == "tapo" and tapo["learning_rate"] == 1.0e-6 and plan.rl_gpus("tapo-grpo") == 8
    assert plan.rl_resources("grpo") == config["rl"]["resources"]
    assert Plan.from_config(load("config/config.yaml")).rl_runs == []  # not in the embedded default


def test_cost_files_name_every_job_with_its_gpus():
    config = load("config/paper.yaml")
    plan = Plan.from_config(config)
    files = plan.cost_files()
    shards = config["sampling"]["shards"]
    stages = [file.split("/")[0] for file in files]
    assert stages.count("sample") == len(plan.sampling_pairs) * shards
    assert stages.count("train") == len(plan.runs) and stages.count("evaluate") == len(plan.eval_paths)
    assert "report" not in stages  # the report's own benchmark file is written after it ran
    patterns = dict(map(tuple, plan.gpu_patterns()))
    assert patterns["train/*/*/*/base-15k/*"] == 8 and patterns["evaluate/*"] == 1


def test_a_profile_without_num_gpus_trains_on_and_requests_the_schema_default():
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    del config["training"]["num_gpus"]
    validate(config, str(REPO / "config" / "schema.yaml"))
    plan = Plan.from_config(config)
    assert plan.training_gpus("base-15k") == 1


def test_a_profile_setting_overrides_the_training_block_default():
    config = copy.deepcopy(load("tests/e2e/config.yaml"))
    config["training_profiles"]["e2e"]["num_gpus"] = 4
    plan = Plan.from_config(config)
    assert plan.training_gpus("e2e") == 4 and plan.training_gpus("e2e-long") == 0


def test_path_patterns_and_job_keys_share_wildcards():
    assert PATHS["checkpoint"] == PATHS["run"] + "/{checkpoint}"
    assert path("eval", backbone="b", teacher="t", pool="p", profile="f", variant="v", checkpoint="final",
                bench="math") == "results/eval/b/t/p/f/v/final/math.parquet"
    assert set(JOBS) >= {"sample", "train", "evaluate", "report"}


def test_paper_config_plans_the_table1_baselines_as_untrained_evaluations():
    plan = Plan.from_config(load("config/paper.yaml"))
    benches = ["math", "gsm8k", "college_math", "deepmind_math", "olympiadbench", "theoremqa"]
    baselines = ["icl-llama3-8b", "icl-deepseekmath-7b", "deepseekmath-7b-instruct"]
    planned = [(e.baseline, e.benchmark) for e in plan.baseline_evaluations]
    assert planned == [(b, x) for b in baselines for x in benches]
    assert f"{PATHS['eval'].split('{')[0]}baseline/icl-llama3-8b/gsm8k.parquet" in plan.eval_paths
    assert "deepseekmath-7b-instruct" in plan.models  # the Instruct model is prepared; ICL reuses the backbones'
    assert "evaluate/baseline/deepseekmath-7b-instruct/theoremqa.tsv" in plan.cost_files()
    entries = [e for e in plan.manifest()["evals"] if e["experiment"].startswith("baseline:")]
    assert len(entries) == 18 and {e["tables"][0] for e in entries} == {"table1"}
    by_name = {e["variant"]: e for e in entries}
    assert (by_name["icl-deepseekmath-7b"]["method"], by_name["icl-deepseekmath-7b"]["backbone"],
            by_name["icl-deepseekmath-7b"]["data_size"]) == ("icl", "deepseekmath-7b", None)
    assert (by_name["deepseekmath-7b-instruct"]["method"], by_name["deepseekmath-7b-instruct"]["data_size"]) == \
        ("instruct", "780k")


def test_a_baseline_evaluates_its_backbones_model_with_per_benchmark_templates():
    from trajfusion.plan import baseline_model, baseline_template

    config = load("config/paper.yaml")
    assert baseline_model(config, "icl-llama3-8b") == "llama3-8b-base"
    assert baseline_model(config, "deepseekmath-7b-instruct") == "deepseekmath-7b-instruct"
    assert baseline_template(config, "icl-llama3-8b", "gsm8k") == "few_shot_cot_gsm8k"
    assert baseline_template(config, "icl-llama3-8b", "theoremqa") == "few_shot_cot_math"
    assert baseline_template(config, "deepseekmath-7b-instruct", "gsm8k") == "deepseek_math"
    without = copy.deepcopy(config)
    del without["baselines"]
    validate(without, str(REPO / "config" / "schema.yaml"))
    assert Plan.from_config(without).baseline_evaluations == ()


def test_generation_jobs_ask_for_the_gpus_their_backend_uses():
    from trajfusion.plan import generation_env, generation_gpus

    assert generation_gpus({"backend": "vllm"}) == 1
    assert generation_gpus({"backend": "vllm", "tensor_parallel_size": 4}) == 4
    assert generation_gpus({"backend": "hf"}) == 0
    # openai: the server generates; the job renders prompts and waits for answers.
    assert generation_gpus({"backend": "openai", "tensor_parallel_size": 4}) == 0
    assert generation_env({"backend": "openai"}) == "../envs/core.yaml"

"""The config schema and the Snakefile's cross-reference checks reject bad values before any job."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import local_snakemake_env

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def load(name: str) -> dict:
    return yaml.safe_load((REPO / "config" / name).read_text())


def dry_run(tmp_path: Path, config: dict | None = None, configfile: str | None = None) -> subprocess.CompletedProcess:
    args = [*SNAKEMAKE, "-n", "--quiet", "rules", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path)]
    if config is not None:
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        args += ["--configfile", str(path)]
    elif configfile:
        args += ["--configfile", str(REPO / "config" / configfile)]
    return subprocess.run(args, env=local_snakemake_env(), capture_output=True, text=True, timeout=120)


def job_counts(output: str) -> dict[str, int]:
    block = output.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.M)}


def test_embedded_default_plans_the_full_dag(tmp_path):
    result = dry_run(tmp_path)
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    cfg = load("config.yaml")
    assert counts["sample_shard"] == cfg["sampling"]["shards"]
    assert counts["prepare_benchmark"] == len(cfg["benchmarks"])
    variants = cfg["fusion"]["variants"]
    tapo = [name for name, spec in variants.items() if spec.get("kind") == "reflect"]
    assert counts["fuse"] == len(variants) - len(tapo) and counts["reflect"] == len(tapo) == 1
    # rft, tf, lowdiv, highdiv, tapo on the embedded profile; rft, tf on the long-context one.
    assert counts["train_embedded"] == 5 and counts["train_embedded_long"] == 2
    for rule in ("build_pool", "prepare_model", "merge_samples", "verify", "stats", "report"):
        assert counts[rule] == 1, rule
    # The ICL row of the embedded model, on Table 1's benchmarks.
    assert counts["evaluate_baseline"] == len(cfg["baselines"]["icl-smollm2-135m"]["benchmarks"])


def test_paper_config_plans_the_paper_matrix(tmp_path):
    result = dry_run(tmp_path, configfile="paper.yaml")
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    # Three (teacher, pool) pairs sampled in 64 shards each, and Qwen3-8B on DeepScaleR (TAPO).
    assert counts["sample_shard"] == 4 * 64
    assert counts["verify"] == 4 and counts["stats"] == 4
    # Table 1 (2 backbones x 2 methods x 2 sizes) + Table 2's five extra variants + Table 3 (2 x 2),
    # + TAPO-SFT on LLaMA3-8B (its rft and tf runs are Table 1's).
    assert counts["train_base_15k"] == 4 + 5 + 1
    # TAPO data: LLaMA3-8B's experiment (p15k) and Qwen3-8B's (DeepScaleR).
    assert counts["reflect"] == 2
    assert counts["train_base_100k"] == 4
    assert counts["train_qwen_4k"] == 2 and counts["train_qwen_32k"] == 2
    # Qwen3-8B: RFT, TF and the TAPO-SFT cold start; one run of each RL method from TAPO-SFT.
    assert counts["train_qwen3_cold"] == 3 and counts["grpo_grpo"] == 1 and counts["grpo_tapo_grpo"] == 1
    # Finals: T1 8 runs x 6 benchmarks + T2 5 extra runs x 2 + T3 4 runs x 3;
    # Figure 3/4 checkpoints: 4 runs x 5 checkpoints x 2 benchmarks; TAPO-SFT 1 run x 6; Qwen3-8B's
    # RFT, TF and TAPO-SFT runs and the two RL runs on AIME24/25 and HMMT25.
    assert counts["evaluate"] == 8 * 6 + 5 * 2 + 4 * 3 + 4 * 5 * 2 + 6 + 5 * 3
    # Table 1's baselines: ICL of LLaMA3-8B and DeepSeekMath-7B, DeepSeekMath-7B-Instruct, 6 benchmarks each.
    assert counts["evaluate_baseline"] == 3 * 6
    assert counts["prepare_model"] == 5 + 1 + 1  # + deepseek-ai/deepseek-math-7b-instruct, Qwen/Qwen3-8B


@pytest.mark.parametrize("mutate, key_pattern", [
    (lambda c: c["fusion"]["variants"]["tf"].__setitem__("k_max", -1), r"k_max"),
    (lambda c: c["fusion"]["variants"]["tf"].__setitem__("alpha", 0), r"alpha"),
    (lambda c: c["fusion"]["variants"]["tf"].__setitem__("alpha", -0.5), r"alpha"),
    (lambda c: c["fusion"]["variants"]["tf"].__setitem__("strategy", "middiv"), r"strategy"),
    (lambda c: c["pools"]["embedded"]["sources"][0].__setitem__("name", "gsm9k_train"), r"name"),
    (lambda c: c["benchmarks"].__setitem__("mathh", {}), r"mathh"),
    (lambda c: c["sampling"].__setitem__("k", 0), r"\bk\b"),
    (lambda c: c["sampling"].__setitem__("top_p", 0), r"top_p"),
    (lambda c: c["report"].__setitem__("figure1_sources", ["deepmth_103k"]), r"figure1_sources"),
    (lambda c: c["experiments"]["tapo-sft"].__setitem__("reflection_metrics", {"pass_k": [0]}), r"pass_k"),
])
def test_schema_rejects_bad_values_naming_the_key(tmp_path, mutate, key_pattern):
    config = copy.deepcopy(load("config.yaml"))
    mutate(config)
    result = dry_run(tmp_path, config)
    assert result.returncode != 0
    message = result.stdout + result.stderr
    assert "Error validating config" in message or "config error" in message, message[-2000:]
    assert re.search(key_pattern, message), message[-2000:]
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("mutate, key", [
    (lambda c: c["experiments"]["table1"]["variants"].append("tf_k9"), "experiments.table1.variants[2]"),
    (lambda c: c["reflect"].__setitem__("model_teacher", "gpt"), "reflect.model_teacher"),
    (lambda c: c["experiments"]["table2"].__setitem__("teacher", "gpt"), "experiments.table2.teacher"),
    (lambda c: c["teachers"]["smollm2-135m"].__setitem__("model", "nope"), "teachers.smollm2-135m.model"),
    (lambda c: c["fusion"]["variants"]["tf"].pop("alpha"), "fusion.variants.tf"),
    (lambda c: c["fusion"]["variants"]["tf"].__setitem__("alpha_from", "rft"), "fusion.variants.tf"),
    # a registry source the embedded pool does not have (the paper's Figure 1 subset)
    (lambda c: c["report"].__setitem__("figure1_sources", ["synthetic_arith", "deepmath_103k"]),
     "report.figure1_sources[1]"),
    (lambda c: c["report"].__setitem__("figure1_teacher", "gpt"), "report.figure1_teacher"),
    (lambda c: c["baselines"]["icl-smollm2-135m"].__setitem__("backbone", "gpt"),
     "baselines.icl-smollm2-135m.backbone"),
    (lambda c: c["baselines"]["icl-smollm2-135m"].__setitem__("model", "gpt"), "baselines.icl-smollm2-135m.model"),
    (lambda c: c["models"]["smollm2-135m"].__setitem__("cache", "copy"), "models.smollm2-135m"),
    # Pass@2 on benchmarks that draw one sample per problem
    (lambda c: c["experiments"]["tapo-sft"].__setitem__("reflection_metrics", {"pass_k": [1, 2]}),
     "experiments.tapo-sft.reflection_metrics.pass_k[1]"),
])
def test_cross_references_are_checked_before_any_job(tmp_path, mutate, key):
    config = copy.deepcopy(load("config.yaml"))
    mutate(config)
    result = dry_run(tmp_path, config)
    assert result.returncode != 0
    assert f"config error at '{key}'" in result.stdout + result.stderr


def planned_jobs(tmp_path: Path, config: dict) -> list[dict]:
    """The dry run's jobs: rule name, the rule display's fields (input, resources, ...) and
    the shell command."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run([*SNAKEMAKE, "-n", "-p", "--snakefile", str(REPO / "Snakefile"), "--directory",
                             str(tmp_path), "--configfile", str(path)],
                            env=local_snakemake_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = []
    for block in result.stdout.split("\n\n"):
        rule = re.search(r"^(?:local)?rule (\w+):", block, re.M)
        if rule:
            shell = re.search(r"^Shell command: (.*)$", block, re.M)
            jobs.append({"rule": rule.group(1), **dict(re.findall(r"^    (\w+): (.*)$", block, re.M)),
                         "shell": shell.group(1) if shell else ""})
    return jobs


def test_defaults_reach_the_flags_and_the_resources_alike(tmp_path):
    config = copy.deepcopy(load("config.yaml"))
    del config["training"]["num_gpus"]  # the schema default: one GPU, requested and used
    config["verify"]["workers"] = 0  # inline verification stays inline
    jobs = planned_jobs(tmp_path, config)
    train = [job for job in jobs if job["rule"].startswith("train_")]
    assert train and all('"num_gpus": 1' in job["shell"] and "gpu=1" in job["resources"] for job in train)
    (verify,) = [job for job in jobs if job["rule"] == "verify"]
    assert '"workers": 0' in verify["shell"]


def test_every_file_a_rule_reads_is_an_input(tmp_path):
    config = copy.deepcopy(load("config.yaml"))
    (tmp_path / "my_phrases.yaml").write_text((REPO / "src" / "trajfusion" / "resources" / "phrases.yaml").read_text())
    config["fusion"]["phrases"] = "my_phrases.yaml"
    config["training_profiles"]["embedded"]["deepspeed"] = "config/deepspeed/zero1.json"
    jobs = planned_jobs(tmp_path, config)
    by_rule = {}
    for job in jobs:
        by_rule.setdefault(job["rule"], []).append(job)
    for rule in ("fuse", "evaluate", "evaluate_baseline"):
        assert all("my_phrases.yaml" in job["input"] and "--phrases my_phrases.yaml" in job["shell"]
                   for job in by_rule[rule]), rule
    for rule in ("sample_shard", "train_embedded", "train_embedded_long", "evaluate", "evaluate_baseline"):
        assert all("resources/templates.yaml" in job["input"] for job in by_rule[rule]), rule
    assert all("resources/few_shot.yaml" in job["input"] and '"template": "few_shot_cot_' in job["shell"]
               for job in by_rule["evaluate_baseline"])
    assert all("config/deepspeed/zero1.json" in job["input"] for job in by_rule["train_embedded"])
    assert not any("zero1.json" in job["input"] for job in by_rule["train_embedded_long"])
    for rule in ("build_pool", "prepare_benchmark", "report_manifest"):
        assert all(job["input"].endswith("data/SHA256SUMS") for job in by_rule[rule]), rule


def test_dense_attention_mask_over_long_packed_rows_is_refused_before_any_job(tmp_path):
    config = load("paper.yaml")
    config["training"]["attn_implementation"] = "sdpa"  # 8 rows x 4,096 tokens packed into one
    result = dry_run(tmp_path, config)
    assert result.returncode != 0
    assert ("': --attn-implementation sdpa with --packing attends "
            "through a dense mask over each packed row of --per-device-batch-size x --max-length = 8 x 4096 = "
            "32768 tokens") in result.stdout + result.stderr
    assert "config error at 'training_profiles.base-1" in result.stdout + result.stderr  # the first profile
    assert "Job stats" not in result.stdout


def _gpu_memory_gb(params: float, layers: int, hidden: int, vocab: int, row_tokens: int, gpus: int) -> float:
    """The per-GPU estimate of config/paper.yaml's qwen-32k comment (bf16, ZeRO-1, gradient checkpointing)."""
    states = 2 * params + 2 * params + 12 * params / gpus  # weights, gradients, sharded fp32 master + Adam
    activations = layers * row_tokens * hidden * 2 + 5e9 + 2 * row_tokens * vocab * 2  # checkpoints, one layer, logits
    return (states + activations) / 1e9


def test_paper_profiles_keep_the_global_batch_and_the_32k_profile_fits_80_gb():
    config = load("paper.yaml")
    for name, profile in config["training_profiles"].items():
        settings = {**config["training"], **profile}
        assert settings["per_device_batch_size"] * settings["grad_accum"] * settings["num_gpus"] == 64, name
    long = {**config["training"], **config["training_profiles"]["qwen-32k"]}
    assert long["attn_implementation"] == "flash_attention_2" and long["gradient_checkpointing"]
    assert long["per_device_batch_size"] == 1 and long["max_length"] == 32768
    estimate = _gpu_memory_gb(7.6e9, 28, 3584, 152_064, long["per_device_batch_size"] * long["max_length"],
                              long["num_gpus"])
    assert 70 < estimate < 80  # the comment's ~74 GB
    # Two packed rows per device would not fit: the reason for one row and 8 accumulation steps.
    assert _gpu_memory_gb(7.6e9, 28, 3584, 152_064, 2 * long["max_length"], long["num_gpus"]) > 80
def test_teacher_answer_format_is_validated_and_defaulted():
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    schema = str(REPO / "config" / "schema.yaml")
    paper = load("paper.yaml")
    validate(paper, schema)
    assert {spec["answer_format"] for spec in paper["teachers"].values()} == {"boxed"}  # paper A.1
    assert paper["verify"]["filters"]["min_reasoning_steps"] == 1
    config = load("config.yaml")
    del config["teachers"]["smollm2-135m"]["answer_format"]
    validate(config, schema)
    assert config["teachers"]["smollm2-135m"]["answer_format"] == "lenient"  # the schema default
    config["teachers"]["smollm2-135m"]["answer_format"] = "box"
    with pytest.raises(WorkflowError, match="'box' is not one of"):
        validate(config, schema)
    config["teachers"]["smollm2-135m"]["answer_format"] = "boxed"
    config["verify"]["filters"] = {"enabled": ["no_reasoning", "unclosed_think"], "min_reasoning_steps": -1}
    with pytest.raises(WorkflowError, match="min_reasoning_steps"):
        validate(config, schema)


def planned_job_resources(output: str) -> list[tuple[str, dict]]:
    """(rule, resources) of every job a dry run prints."""
    jobs = []
    for block in re.split(r"^(?=rule \w+:$)", output, flags=re.M)[1:]:
        rule = block.split(":", 1)[0].removeprefix("rule ")
        line = re.search(r"^\s+resources: (.*)$", block, re.M)
        pairs = (item.split("=", 1) for item in line.group(1).split(", ")) if line else ()
        jobs.append((rule, dict(pairs)))
    return jobs


def test_every_paper_job_on_slurm_has_its_own_resources(tmp_path):
    """No job of the paper config runs on a SLURM profile's defaults: a rule is sized in the
    profile's set-resources, or (training) from its profile's `resources` in the config."""
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "profile.yaml").read_text())
    result = subprocess.run([*SNAKEMAKE, "-n", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
                             "--configfile", str(REPO / "config" / "paper.yaml"),
                             "--profile", str(REPO / "profiles" / "slurm")],
                            env=local_snakemake_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = planned_job_resources(result.stdout)
    assert len(jobs) > 300
    sized_by_profile = set(profile["set-resources"])
    paper = load("paper.yaml")
    for rule, resources in jobs:
        if rule == "all":  # the target: no action, never submitted
            continue
        if rule.startswith("train_"):
            name = next(p for p in paper["training_profiles"] if rule == "train_" + re.sub(r"[-.]", "_", p))
            expected = {**paper["training"]["resources"], **paper["training_profiles"][name].get("resources", {})}
            assert rule not in sized_by_profile, f"{rule}: sized by hand in the profile, not from the config"
        elif rule.startswith("grpo_"):
            name = next(r for r in paper["rl_runs"] if rule == "grpo_" + re.sub(r"[-.]", "_", r))
            expected = {**paper["rl"]["resources"], **paper["rl_runs"][name].get("resources", {})}
            assert rule not in sized_by_profile, f"{rule}: sized by hand in the profile, not from the config"
        elif rule == "distill_run":
            expected = paper["distillation"]["resources"]
            assert rule not in sized_by_profile, f"{rule}: sized by hand in the profile, not from the config"
        else:
            assert rule in sized_by_profile, f"{rule}: runs on the SLURM profile's default resources"
            expected = {**profile["default-resources"], **profile["set-resources"][rule]}
        got = {key: int(resources[key]) for key in ("cpus_per_task", "mem_mb", "runtime")}
        assert got == {key: expected[key] for key in got}, rule
    by_rule = dict(jobs)
    assert by_rule["train_qwen_32k"]["mem_mb"] == "768000" and by_rule["train_base_100k"]["runtime"] == "4320"


def test_an_openai_teacher_and_evaluation_reach_their_jobs(tmp_path):
    """The server's settings reach the jobs' --settings (the tuning options of other backends
    do not), the jobs ask for no GPU, and the local model directory stays an input (its
    tokenizer renders the prompts)."""
    config = copy.deepcopy(load("config.yaml"))
    served = {"backend": "openai", "base_url": "http://127.0.0.1:8001/v1", "served_model": "teacher",
              "api_key_env": "MY_KEY", "concurrency": 4, "per_sample_requests": True}
    for teacher in config["teachers"].values():
        teacher.update(served)
    config["evaluation"].update({**served, "served_model": "student"})
    jobs = planned_jobs(tmp_path, config)
    for rule, model in (("sample_shard", "teacher"), ("evaluate", "student"), ("evaluate_baseline", "student")):
        chosen = [job for job in jobs if job["rule"] == rule]
        assert chosen, rule
        for job in chosen:
            assert "gpu=0" in job["resources"]
            assert re.search(r"--model (\S+)", job["shell"]).group(1) in job["input"].split(", ")
            assert '"base_url": "http://127.0.0.1:8001/v1"' in job["shell"], job["shell"]
            assert f'"served_model": "{model}"' in job["shell"] and '"api_key_env": "MY_KEY"' in job["shell"]
            assert '"dtype"' not in job["shell"] and '"threads"' not in job["shell"]

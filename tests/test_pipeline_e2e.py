"""The whole DAG, end to end, on a tiny model: every rule runs for real through Snakemake."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from tests.conftest import snakemake


@pytest.mark.slow
def test_every_rule_ran_and_the_report_is_complete(e2e_local_run):
    workdir, _, config = e2e_local_run
    report = workdir / "results" / "report"
    for name in ("table1.md", "table2.md", "table3.md", "figure1.png", "figure3.png", "figure4.png", "cost.md",
                 "significance.md", "metrics.csv", "index.md", "graders.md", "graders.csv"):
        path = report / name
        assert path.exists() and path.stat().st_size > 0, name
    assert "smoke test" in (report / "table1.md").read_text().lower()
    parity = pd.read_csv(report / "graders.csv")  # per verdict table, both graders' verdicts counted
    assert len(parity) > 0 and (parity["n_responses"] > 0).all()
    assert set(parity["grader"]) == {"math_verify"} and set(parity["other_grader"]) == {"qwen25_math"}
    assert "- Figure 1: tiny on synthetic_arith (pool e2e), 10 problems" in (report / "index.md").read_text()
    metrics = pd.read_csv(report / "metrics.csv")
    assert {"reflections_per_1k_tokens", "markers_per_1k_tokens"} <= set(metrics["metric"])
    # The untrained baseline (config `baselines`) is evaluated and shown as a reproduced ICL row.
    assert (workdir / "results" / "eval" / "baseline" / "icl-tiny" / "gsm8k.parquet").exists()
    table1 = pd.read_csv(report / "table1.csv")
    icl = table1[(table1["row"] == "ICL") & (table1["source"] == "reproduced") & (table1["column"] == "gsm8k")]
    assert icl["path"].tolist() == ["results/eval/baseline/icl-tiny/gsm8k.parquet"]
    # The distillation run (TOPD from the TrajFusion run): trained, evaluated, a row of Table 1,
    # paired with the SFT runs, its diagnostics plotted.
    distilled = workdir / "results" / "distill" / "tiny" / "tiny" / "e2e" / "e2e" / "tf" / "topd"
    assert (distilled / "final" / "model.safetensors").exists() and (distilled / "diagnostics.jsonl").exists()
    topd = table1[(table1["variant"] == "TOPD (from TrajFusion)") & (table1["column"] == "gsm8k")]
    assert topd["path"].tolist() == ["results/eval/distill/tiny/tiny/e2e/e2e/tf/topd/gsm8k.parquet"]
    assert set(pd.read_csv(report / "significance-distill.csv")["sft_variant"]) == {"rft", "tf"}
    for name in ("distill-table1.png", "distill-table1.md"):
        assert (report / name).stat().st_size > 0, name
    assert pd.read_csv(report / "distill-table1.csv")["steps_logged"].tolist() == [2]
    # Every job wrote a log and a benchmark (cost) file.
    assert list((workdir / "results" / "logs").rglob("*.log"))
    assert list((workdir / "results" / "cost").rglob("*.tsv"))


@pytest.mark.slow
def test_artifacts_between_stages_are_consistent(e2e_local_run):
    workdir, _, config = e2e_local_run
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
def test_nothing_reruns_and_a_config_change_reruns_only_what_it_touches(e2e_local_run):
    workdir, configfile, config = e2e_local_run
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


@pytest.mark.slow
def test_adding_a_variant_adds_fusion_training_and_evaluation_jobs_only(e2e_local_run):
    from tests.test_config import job_counts

    workdir, _, config = e2e_local_run
    changed = json.loads(json.dumps(config))
    changed["fusion"]["variants"]["tf_k1"] = {"k_max": 1, "alpha": 2.0, "strategy": "highdiv"}
    changed["experiments"]["table2"]["variants"].append("tf_k1")
    path = workdir / "added_variant.yaml"
    path.write_text(yaml.safe_dump(changed))
    result = snakemake(workdir, path, "-n", "--quiet", "rules")
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    assert counts.pop("fuse") == 1 and counts.pop("train_e2e") == 1
    assert counts.pop("evaluate") == len(changed["experiments"]["table2"]["benchmarks"])
    assert set(counts) <= {"report", "report_manifest", "all"}, counts


@pytest.mark.slow
def test_editing_a_stage_code_reruns_that_stage_and_downstream_only(e2e_local_run):
    import os

    from tests.conftest import REPO
    from tests.test_config import job_counts

    workdir, configfile, _ = e2e_local_run
    package = REPO / "src" / "trajfusion"
    fuse_module = next(p for p in (package / "fuse.py", package / "fuse" / "__init__.py") if p.exists())
    original, stat = fuse_module.read_bytes(), fuse_module.stat()
    # A real edit: Snakemake ignores a newer input whose checksum is unchanged (a mere touch).
    fuse_module.write_bytes(original + b"\n# an edit\n")
    try:
        result = snakemake(workdir, configfile, "-n", "--quiet", "rules")
    finally:
        fuse_module.write_bytes(original)
        os.utime(fuse_module, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    assert counts["fuse"] == 3 and counts["calibrate_alpha"] == 1
    for upstream in ("build_pool", "sample_shard", "merge_samples", "verify", "stats", "prepare_model"):
        assert upstream not in counts, counts


@pytest.mark.slow
def test_touching_stage_code_without_changing_it_reruns_nothing(e2e_local_run):
    """Stage code is tracked by content: a touch (or a checkout of the same content) is no edit."""
    import os

    from tests.conftest import REPO

    workdir, configfile, _ = e2e_local_run
    package = REPO / "src" / "trajfusion"
    files = [*package.rglob("*.py"), *(package / "resources").glob("*.yaml")]
    times = {path: path.stat() for path in files}
    try:
        for path in files:
            os.utime(path)  # now, content unchanged
        result = snakemake(workdir, configfile, "-n", "--quiet", "rules")
    finally:
        for path, stat in times.items():
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert result.returncode == 0, result.stderr
    assert "Nothing to be done" in result.stdout + result.stderr, result.stdout


@pytest.mark.slow
def test_the_cost_table_counts_the_plans_jobs_only(e2e_local_run):
    """A benchmark file an earlier config left under results/cost/ is not in cost.md|csv."""
    import copy
    import shutil

    from snakemake.utils import validate

    from tests.conftest import REPO
    from trajfusion.plan import Plan

    workdir, configfile, config = e2e_local_run
    config = copy.deepcopy(config)
    cost = workdir / "results" / "cost"
    earlier = cost / "train" / "earlier-backbone" / "tiny" / "e2e" / "e2e" / "tf.tsv"
    earlier.parent.mkdir(parents=True)
    shutil.copy(next((cost / "train").rglob("*.tsv")), earlier)
    result = snakemake(workdir, configfile, "--forcerun", "report")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    table = pd.read_csv(workdir / "results" / "report" / "cost.csv").set_index("stage")
    validate(config, str(REPO / "config" / "schema.yaml"))
    plan = Plan.from_config(config)
    assert table.loc["train", "jobs"] == len(plan.runs)
    # Every job of the plan once; the report's own benchmark file is written after it ran.
    assert table.loc["total", "jobs"] == len(plan.cost_files())

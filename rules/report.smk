# Report stage: Tables 1-3, Figures 1, 3 and 4, significance tests and provenance.
import platform
import subprocess


def run_label(run):
    backbone, teacher, pool, profile, variant = run
    return {"backbone": backbone, "teacher": teacher, "pool": pool, "profile": profile, "variant": variant}


def report_manifest():
    """What the report needs: every evaluation with its labels, fusion summaries, statistics."""
    evals = []
    for entry in experiment_evals():
        exp = config["experiments"][entry["experiment"]]
        variant = config["fusion"]["variants"][entry["run"][4]]
        evals.append({
            **run_label(entry["run"]),
            "experiment": entry["experiment"],
            "tables": [exp["table"]] + list(exp.get("figures", [])),
            "method": "rft" if variant["k_max"] == 0 else "trajfusion",
            "variant_label": variant.get("label", entry["run"][4]),
            "backbone_label": config["backbones"][entry["run"][0]].get("label", entry["run"][0]),
            "data_size": exp.get("data_size", exp["pool"]),
            "context": exp.get("context", ""),
            "checkpoint": entry["checkpoint"],
            "samples_seen": entry["samples_seen"],
            "benchmark": entry["benchmark"],
            "path": entry["path"],
        })
    summaries = []
    for exp in config["experiments"].values():
        for variant in exp["variants"]:
            spec = config["fusion"]["variants"][variant]
            item = {"teacher": exp["teacher"], "pool": exp["pool"], "variant": variant,
                    "variant_label": spec.get("label", variant), "k_max": spec["k_max"],
                    "strategy": spec.get("strategy", "highdiv"),
                    "path": fused_path(exp["teacher"], exp["pool"], variant).replace(".jsonl", ".summary.json")}
            if item not in summaries:
                summaries.append(item)
    stats = [{"teacher": t, "pool": p, "path": stats_path(t, p)} for t, p in sampling_pairs()]
    return {"evals": evals, "fusion_summaries": summaries, "stats": stats,
            "smoke_test": bool(config.get("smoke_test", False))}


REPORT_DIR = f"{RESULTS}/report"
_CAPTIONS = os.path.join(workflow.basedir, "docs", "report")


def report_item(path):
    """Tables and figures go into `snakemake --report`'s self-contained HTML report."""
    if path.endswith(".png"):
        return report(path, caption=f"{_CAPTIONS}/figure.rst", category="Figures")
    if path.endswith(".csv") and "metrics" not in path:
        return report(path, caption=f"{_CAPTIONS}/table.rst", category="Tables")
    return path


def gpus_per_job():
    """[cost-file pattern, GPUs per job] pairs, the same numbers the rules request as resources."""
    e = config["evaluation"]
    patterns = [["evaluate/*", e.get("tensor_parallel_size", 1) if e["backend"] == "vllm" else 0]]
    for name, teacher in config["teachers"].items():
        gpus = teacher.get("tensor_parallel_size", 1) if teacher["backend"] == "vllm" else 0
        patterns.append([f"sample/{name}/*", gpus])
    for profile in config["training_profiles"]:
        patterns.append([f"train/*/*/*/{profile}/*", profile_settings(profile).get("num_gpus", 0)])
    return patterns


REPORT_OUTPUTS = [f"{REPORT_DIR}/{name}" for name in (
    "index.md", "metrics.csv", "cost.md", "cost.csv",
    *(f"{table}.{ext}" for table in ("table1", "table2", "table3", "significance") for ext in ("md", "csv", "tex")),
    *(f"{figure}.{ext}" for figure in ("figure1", "figure3", "figure4") for ext in ("png", "pdf")))]


def provenance():
    """Recorded at run time (not a param, so a new commit does not rerun the report)."""
    from trajfusion.io import config_hash, library_versions

    try:
        commit = subprocess.run(["git", "-C", workflow.basedir, "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip() or None
    except OSError:
        commit = None
    executor = workflow.executor_plugin.name if workflow.executor_plugin is not None else "local"
    return {"config_hash": config_hash(config), "git_commit": commit, "versions": library_versions(),
            "python": platform.python_version(), "platform": platform.platform(),
            "executor": executor, "command": " ".join(sys.argv),
            "models": config["models"], "data_sha256sums": open(os.path.join(DATA_DIR, "SHA256SUMS")).read()}


rule report_manifest:
    output:
        manifest=report(f"{REPORT_DIR}/manifest.json", caption=f"{_CAPTIONS}/provenance.rst", category="Provenance"),
        config=report(f"{REPORT_DIR}/config.yaml", caption=f"{_CAPTIONS}/provenance.rst", category="Provenance"),
    params:
        manifest=report_manifest(),
    localrule: True
    log:
        f"{LOGS}/report_manifest.log",
    run:
        import yaml

        from trajfusion.io import write_json, write_text

        write_json({**params.manifest, "provenance": provenance()}, output.manifest)
        write_text(yaml.safe_dump(config, sort_keys=False), output.config)


rule report:
    input:
        manifest=f"{REPORT_DIR}/manifest.json",
        evals=[entry["path"] for entry in experiment_evals()],
        summaries=[p.replace(".jsonl", ".summary.json") for p in fused_datasets()],
        stats=[stats_path(t, p) for t, p in sampling_pairs()],
        code=code("report"),
    output:
        [report_item(path) for path in REPORT_OUTPUTS],
    log:
        f"{LOGS}/report.log",
    benchmark:
        f"{BENCH}/report.tsv"
    conda:
        "../envs/core.yaml"
    params:
        seed=config["seed"],
        gpus=lambda w: as_json(gpus_per_job()),
    shell:
        "trajfusion report --manifest {input.manifest} --out-dir {REPORT_DIR} --seed {params.seed}"
        " --cost-dir {BENCH} --gpus-per-job {params.gpus:q} > {log} 2>&1"

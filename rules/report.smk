# Report stage: Tables 1-3, Figures 1, 3 and 4, significance tests and provenance.
import platform


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
REPORT_OUTPUTS = [f"{REPORT_DIR}/{name}" for name in (
    "index.md", "table1.md", "table2.md", "table3.md", "significance.md", "metrics.csv",
    "figure1.png", "figure3.png", "figure4.png")]


rule report_manifest:
    output:
        f"{REPORT_DIR}/manifest.json",
    params:
        manifest=report_manifest(),
    log:
        f"{LOGS}/report_manifest.log",
    run:
        from trajfusion.io import write_json

        write_json(params.manifest, output[0])


rule report:
    input:
        manifest=f"{REPORT_DIR}/manifest.json",
        evals=[entry["path"] for entry in experiment_evals()],
        summaries=[p.replace(".jsonl", ".summary.json") for p in fused_datasets()],
        stats=[stats_path(t, p) for t, p in sampling_pairs()],
    output:
        REPORT_OUTPUTS,
    log:
        f"{LOGS}/report.log",
    benchmark:
        f"{BENCH}/report.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "trajfusion report --manifest {input.manifest} --out-dir {REPORT_DIR} > {log} 2>&1"

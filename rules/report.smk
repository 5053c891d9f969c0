# Report stage: Tables 1-3, Figures 1, 3 and 4, significance tests, cost and provenance; with
# distillation runs, their diagnostics (a figure and a table per experiment) and paired tests.

REPORT_OUTPUTS = [
    path("report", name=name)
    for name in (
        "index.md",
        "metrics.csv",
        "cost.md",
        "cost.csv",
        *(
            f"{table}.{ext}"
            for table in (
                "table1",
                "table2",
                "table3",
                "significance",
                *PLAN.results_tables(),
                *PLAN.reflection_tables(),
                *PLAN.distill_tables(),
            )
            for ext in ("md", "csv", "tex")
        ),
        *(
            f"{figure}.{ext}"
            for figure in ("figure1", "figure3", "figure4", *PLAN.distill_figures())
            for ext in ("png", "pdf")
        ),
    )
]


rule report_manifest:
    input:
        checksums=DATA_CHECKSUMS,
    output:
        manifest=provenance_item(path("report", name="manifest.json")),
        config=provenance_item(path("report", name="config.yaml")),
    log:
        log_pattern("report_manifest"),
    localrule: True
    params:
        manifest=PLAN.manifest(),
    run:
        write_report_manifest(params.manifest, input, output)


rule report:
    input:
        manifest=path("report", name="manifest.json"),
        evals=PLAN.eval_paths,
        summaries=[summary["path"] for summary in PLAN.fusion_summaries()],
        # The final model directories, whose train_meta.json gives Table 2's trained #Err.
        trained=sorted(
            {
                os.path.dirname(e["train_meta"])
                for e in PLAN.manifest()["evals"]
                if e.get("train_meta")  # baselines are not trained
            }
        ),
        stats=[stats["path"] for stats in PLAN.stats()],
        distill_diagnostics=[run["path"] for run in PLAN.distill_diagnostics()],
        paper_results=PAPER_RESULTS,
    output:
        [report_item(file) for file in REPORT_OUTPUTS],
    log:
        log_pattern("report"),
    benchmark:
        cost_pattern("report")
    conda:
        "../envs/core.yaml"
    params:
        out_dir=lambda w, input: os.path.dirname(input.manifest),
        settings=lambda w: report_settings(),
        # The cost table sums the benchmark: files of this plan's jobs only, not those an
        # earlier config left in the same folder.
        cost_dir=COST,
        cost_files=PLAN.cost_files(),
        code=code("report"),
    shell:
        "trajfusion report --manifest {input.manifest} --out-dir {params.out_dir} --settings {params.settings:q}"
        " --cost-dir {params.cost_dir} --cost-files {params.cost_files}"
        " > {log} 2>&1"

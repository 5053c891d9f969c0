# Data stage: bundled raw files -> normalized training pools and evaluation benchmarks.


rule build_pool:
    input:
        checksums=DATA_CHECKSUMS,
        datasets=pool_dataset_files,
    output:
        pool=PATHS["pool"],
        report=PATHS["pool_report"],
    log:
        log_pattern("build_pool"),
    benchmark:
        cost_pattern("build_pool")
    conda:
        "../envs/core.yaml"
    params:
        settings=lambda w: pool_settings(w.pool),
        data_dir=lambda w: DATA_DIR,  # a callable: Snakemake reads braces in a string as wildcards
        code=code("data"),
    shell:
        "trajfusion build-pool --settings {params.settings:q} --data-dir {params.data_dir:q}"
        " --output {output.pool} --report {output.report} > {log} 2>&1"


rule prepare_benchmark:
    input:
        checksums=DATA_CHECKSUMS,
        datasets=benchmark_dataset_files,
    output:
        PATHS["benchmark"],
    log:
        log_pattern("prepare_benchmark"),
    benchmark:
        cost_pattern("prepare_benchmark")
    conda:
        "../envs/core.yaml"
    params:
        settings=lambda w: benchmark_settings(w.bench),
        data_dir=lambda w: DATA_DIR,  # a callable: Snakemake reads braces in a string as wildcards
        code=code("data"),
    shell:
        "trajfusion prepare-benchmark --name {wildcards.bench} --data-dir {params.data_dir:q}"
        " --settings {params.settings:q} --output {output} > {log} 2>&1"

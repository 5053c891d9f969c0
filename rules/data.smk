# Data stage: bundled raw files -> normalized training pools and evaluation benchmarks.


rule build_pool:
    input:
        code=code("data"),
    output:
        pool=f"{RESULTS}/pools/{{pool}}.parquet",
        report=f"{RESULTS}/pools/{{pool}}.report.json",
    params:
        spec=lambda w: as_json(config["pools"][w.pool]),
        seed=config["seed"],
        data_dir=lambda w: DATA_DIR,  # a callable: Snakemake would read braces in a string as wildcards
    log:
        f"{LOGS}/build_pool/{{pool}}.log",
    benchmark:
        f"{BENCH}/build_pool/{{pool}}.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "trajfusion build-pool --spec {params.spec:q} --data-dir {params.data_dir:q} --seed {params.seed}"
        " --output {output.pool} --report {output.report} > {log} 2>&1"


rule prepare_benchmark:
    input:
        code=code("data"),
    output:
        f"{RESULTS}/benchmarks/{{bench}}.parquet",
    params:
        limit=lambda w: f"--limit {config['benchmarks'][w.bench]['limit']}" if config["benchmarks"][w.bench].get("limit") else "",
        select=lambda w: f"--select {config['benchmarks'][w.bench]['select']}" if "select" in config["benchmarks"][w.bench] else "",
        pictures=lambda w: "--keep-pictures" if config["benchmarks"][w.bench].get("keep_pictures") else "",
        seed=config["seed"],
        data_dir=lambda w: DATA_DIR,  # a callable: Snakemake would read braces in a string as wildcards
    log:
        f"{LOGS}/prepare_benchmark/{{bench}}.log",
    benchmark:
        f"{BENCH}/prepare_benchmark/{{bench}}.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "trajfusion prepare-benchmark --name {wildcards.bench} --data-dir {params.data_dir:q}"
        " {params.limit} {params.select} --seed {params.seed} {params.pictures}"
        " --output {output} > {log} 2>&1"

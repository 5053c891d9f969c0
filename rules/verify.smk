# Verification stage: output filters, answer extraction, math-verify, per-problem statistics.


rule verify:
    input:
        samples=f"{RESULTS}/samples/{{teacher}}/{{pool}}.parquet",
        code=code("verify"),
    output:
        f"{RESULTS}/verified/{{teacher}}/{{pool}}.parquet",
    params:
        timeout=config["verify"].get("timeout", 5),
        filters=lambda w: as_json(config["verify"].get("filters", {})),
    # The worker pool follows the job's CPUs (threads locally, cpus_per_task on SLURM).
    threads: max(1, config["verify"].get("workers", 2))
    log:
        f"{LOGS}/verify/{{teacher}}/{{pool}}.log",
    benchmark:
        f"{BENCH}/verify/{{teacher}}/{{pool}}.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "trajfusion verify --input {input.samples} --output {output} --workers {threads}"
        " --timeout {params.timeout} --filters {params.filters:q} > {log} 2>&1"


rule stats:
    input:
        verified=f"{RESULTS}/verified/{{teacher}}/{{pool}}.parquet",
        code=code("verify"),
    output:
        f"{RESULTS}/stats/{{teacher}}/{{pool}}.parquet",
    log:
        f"{LOGS}/stats/{{teacher}}/{{pool}}.log",
    benchmark:
        f"{BENCH}/stats/{{teacher}}/{{pool}}.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "trajfusion stats --input {input.verified} --output {output} > {log} 2>&1"

# Verification stage: output filters, answer extraction, math-verify, per-problem statistics.


rule verify:
    input:
        PATHS["samples"],
    output:
        PATHS["verified"],
    log:
        log_pattern("verify"),
    benchmark:
        cost_pattern("verify")
    conda:
        "../envs/core.yaml"
    threads: max(1, config["verify"]["workers"])
    params:
        timeout=config["verify"]["timeout"],
        filters=lambda w: as_json(config["verify"]["filters"]),
        # The worker pool follows the job's CPUs (threads locally, cpus_per_task on SLURM);
        # workers: 0 verifies inline and stays 0.
        workers=lambda w, threads: threads if config["verify"]["workers"] else 0,
        code=code("verify"),
    shell:
        "trajfusion verify --input {input} --output {output} --workers {params.workers}"
        " --timeout {params.timeout} --filters {params.filters:q} > {log} 2>&1"


rule stats:
    input:
        PATHS["verified"],
    output:
        PATHS["stats"],
    log:
        log_pattern("stats"),
    benchmark:
        cost_pattern("stats")
    conda:
        "../envs/core.yaml"
    params:
        code=code("verify"),
    shell:
        "trajfusion stats --input {input} --output {output} > {log} 2>&1"

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
        settings=lambda w, threads: verify_settings(w.teacher, threads),
        code=code("verify"),
    shell:
        "trajfusion verify --input {input} --output {output} --settings {params.settings:q} > {log} 2>&1"


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

# Fusion stage: one dataset per configured variant (vanilla RFT is k_max = 0), from the
# verified table; alpha is fixed or calibrated to a target mean number of fused errors.


rule calibrate_alpha:
    input:
        PATHS["verified"],
    output:
        PATHS["alpha"],
    log:
        log_pattern("calibrate_alpha"),
    benchmark:
        cost_pattern("calibrate_alpha")
    conda:
        "../envs/core.yaml"
    params:
        settings=lambda w: calibration_settings(w.variant),
        code=code("fuse"),
    shell:
        "trajfusion calibrate-alpha --input {input} --output {output} --settings {params.settings:q}"
        " > {log} 2>&1"


rule fuse:
    input:
        unpack(fuse_inputs),
    output:
        data=PATHS["fused"],
        summary=PATHS["fusion_summary"],
    log:
        log_pattern("fuse"),
    benchmark:
        cost_pattern("fuse")
    wildcard_constraints:
        variant=variant_pattern("fuse"),
    conda:
        "../envs/core.yaml"
    params:
        settings=lambda w: fusion_settings(w.variant),
        alpha=alpha_flag,
        phrases=phrases_flag(),
        code=code("fuse"),
    shell:
        "trajfusion fuse --input {input.verified} --output {output.data} --summary {output.summary}"
        " --settings {params.settings:q} {params.alpha}{params.phrases} > {log} 2>&1"

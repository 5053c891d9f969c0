# TAPO micro-reflective trajectories: the fusion variants of kind reflect, built from the
# verified table by `trajfusion reflect` (rule-based or model constructor) and written where
# fused datasets go, so the train rules train them unchanged.


rule reflect:
    input:
        unpack(reflect_inputs),
    output:
        data=PATHS["fused"],
        summary=PATHS["fusion_summary"],
    log:
        log_pattern("reflect"),
    benchmark:
        cost_pattern("reflect")
    wildcard_constraints:
        variant=variant_pattern(REFLECT),
    conda:
        reflect_env
    threads: 2
    resources:
        gpu=reflect_gpus,
    params:
        settings=lambda w, threads: reflect_settings(w.teacher, threads),
        model=reflect_model_flags,
        code=code("reflect"),
    shell:
        "OMP_NUM_THREADS={threads} trajfusion reflect --input {input.verified} --output {output.data}"
        " --summary {output.summary} --settings {params.settings:q}{params.model} > {log} 2>&1"

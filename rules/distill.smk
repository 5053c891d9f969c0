# Distillation stage: on-policy distillation (OPD, OPD-filter, TOPD) of an experiment's teacher
# into a student that starts from a backbone's model or from an SFT run's final checkpoint.
# `snakemake distill` trains them; `all` evaluates them too (rules/evaluate.smk: evaluate_distilled).


rule distill_run:
    input:
        unpack(distill_inputs),
    output:
        final=directory(PATHS["distilled"]),
        diagnostics=PATHS["distill_diagnostics"],
    log:
        log_pattern("distill"),
    benchmark:
        cost_pattern("distill")
    wildcard_constraints:
        method="|".join(METHODS),
    conda:
        generation_env(config["distillation"])
    threads: config["distillation"]["resources"]["cpus_per_task"]
    resources:
        **config["distillation"]["resources"],
        gpu=config["distillation"]["num_gpus"],
    params:
        settings=distill_settings,
        out_dir=lambda w, output: os.path.dirname(output.final),
        code=code("distill"),
    shell:
        "OMP_NUM_THREADS={threads} trajfusion distill --student {input.student} --teacher {input.teacher}"
        " --pool {input.pool} --output-dir {params.out_dir} --settings {params.settings:q} > {log} 2>&1"


rule distill:
    input:
        distill_targets(),

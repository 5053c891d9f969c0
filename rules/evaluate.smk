# Evaluation stage: generate with each trained model (and its first-epoch checkpoints) on
# each benchmark, then score with the same extraction and verifier as the sampling stage;
# the untrained baselines of Table 1 (config `baselines`) the same way, with their own prompt;
# the distilled models (rules/distill.smk) like the SFT runs they are compared with.

# The command of every evaluation rule (trained runs, baselines, `evaluations:` entries).
EVALUATE_COMMAND = (
    "OMP_NUM_THREADS={threads} trajfusion evaluate --model {input.model} --benchmark {input.benchmark}"
    " --settings {params.settings:q} --workers {threads}{params.phrases} --output {output} > {log} 2>&1"
)


rule evaluate:
    input:
        model=evaluated_model,
        benchmark=PATHS["benchmark"],
        templates=TEMPLATES,
        phrases=PHRASES,
    output:
        PATHS["eval"],
    log:
        log_pattern("evaluate"),
    benchmark:
        cost_pattern("evaluate")
    conda:
        PLAN.evaluation_env()
    threads: config["evaluation"]["threads"]
    resources:
        gpu=PLAN.evaluation_gpus(),
    params:
        settings=evaluation_settings,
        phrases=phrases_flag(),
        code=code("evaluate"),
    shell:
        EVALUATE_COMMAND


rule evaluate_baseline:
    input:
        model=lambda w: path("model", model=baseline_model(config, w.baseline)),
        benchmark=PATHS["benchmark"],
        templates=TEMPLATES,
        few_shot=FEW_SHOT,
        phrases=PHRASES,
    output:
        PATHS["baseline_eval"],
    log:
        log_pattern("evaluate_baseline"),
    benchmark:
        cost_pattern("evaluate_baseline")
    conda:
        PLAN.evaluation_env()
    threads: config["evaluation"]["threads"]
    resources:
        gpu=PLAN.evaluation_gpus(),
    params:
        settings=baseline_evaluation_settings,
        phrases=phrases_flag(),
        code=code("evaluate"),
    shell:
        EVALUATE_COMMAND


rule evaluate_model:
    input:
        model=model_evaluation_input,
        benchmark=PATHS["benchmark"],
        templates=TEMPLATES,
        few_shot=FEW_SHOT,
        phrases=PHRASES,
    output:
        PATHS["model_eval"],
    log:
        log_pattern("evaluate_model"),
    benchmark:
        cost_pattern("evaluate_model")
    conda:
        PLAN.evaluation_env()
    threads: config["evaluation"]["threads"]
    resources:
        gpu=PLAN.evaluation_gpus(),
    params:
        settings=model_evaluation_settings,
        phrases=phrases_flag(),
        code=code("evaluate"),
    shell:
        EVALUATE_COMMAND


rule evaluate_distilled:
    input:
        model=PATHS["distilled"],
        benchmark=PATHS["benchmark"],
        templates=TEMPLATES,
        phrases=PHRASES,
    output:
        PATHS["distill_eval"],
    log:
        log_pattern("evaluate_distilled"),
    benchmark:
        cost_pattern("evaluate_distilled")
    wildcard_constraints:
        method="|".join(METHODS),
    conda:
        PLAN.evaluation_env()
    threads: config["evaluation"]["threads"]
    resources:
        gpu=PLAN.evaluation_gpus(),
    params:
        settings=evaluation_settings,
        phrases=phrases_flag(),
        code=code("evaluate"),
    shell:
        EVALUATE_COMMAND

# Sampling stage: K teacher trajectories per pool problem, one job per shard.


rule sample_shard:
    input:
        pool=PATHS["pool"],
        model=lambda w: path("model", model=teacher_spec(w.teacher)["model"]),
        templates=TEMPLATES,
    output:
        PATHS["shard"],
    log:
        log_pattern("sample"),
    benchmark:
        cost_pattern("sample")
    conda:
        lambda w: PLAN.sampling_env(w.teacher)
    threads: 2
    resources:
        gpu=lambda w: PLAN.sampling_gpus(w.teacher),
    params:
        settings=lambda w, threads: sample_settings(w.teacher, threads),
        code=code("sample"),
    shell:
        "OMP_NUM_THREADS={threads} trajfusion sample --pool {input.pool} --model {input.model}"
        " --settings {params.settings:q} --shard {wildcards.shard} --output {output} > {log} 2>&1"


rule merge_samples:
    input:
        pool=PATHS["pool"],
        shards=lambda w: expand(
            PATHS["shard"],
            teacher=w.teacher,
            pool=w.pool,
            shard=range(config["sampling"]["shards"]),
        ),
    output:
        PATHS["samples"],
    log:
        log_pattern("merge_samples"),
    benchmark:
        cost_pattern("merge_samples")
    conda:
        "../envs/core.yaml"
    params:
        settings=lambda w: merge_settings(),
        code=code("sample"),
    shell:
        "trajfusion merge-samples --pool {input.pool} --inputs {input.shards} --settings {params.settings:q}"
        " --output {output} > {log} 2>&1"

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
        "../envs/vllm.yaml"
    threads: 2
    resources:
        gpu=lambda w: PLAN.sampling_gpus(w.teacher),
    params:
        flags=lambda w: sampling_flags(w.teacher),
        seed=config["seed"],
        threads=lambda w, threads: torch_threads_flag(w.teacher, threads),
        code=code("sample"),
    shell:
        "OMP_NUM_THREADS={threads} trajfusion sample --pool {input.pool} --model {input.model} {params.threads}"
        " --teacher {wildcards.teacher} {params.flags} --shard {wildcards.shard} --seed {params.seed}"
        " --output {output} > {log} 2>&1"


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
        k=config["sampling"]["k"],
        code=code("sample"),
    shell:
        "trajfusion merge-samples --pool {input.pool} --inputs {input.shards} --k {params.k}"
        " --output {output} > {log} 2>&1"

# Sampling stage: K teacher trajectories per pool problem, one job per shard.


def teacher_settings(teacher):
    spec = config["teachers"][teacher]
    return {"backend": spec["backend"], "template": spec["template"], "max_new_tokens": spec["max_new_tokens"],
            "batch_size": spec.get("batch_size", 8), "dtype": spec.get("dtype", "auto"),
            "tensor_parallel_size": spec.get("tensor_parallel_size", 1),
            "max_model_len": spec.get("max_model_len", 0),
            "gpu_memory_utilization": spec.get("gpu_memory_utilization", 0.9), **config["sampling"]}


def sampling_flags(teacher):
    s = teacher_settings(teacher)
    flags = (f"--backend {s['backend']} --template {s['template']} --k {s['k']} --temperature {s['temperature']}"
             f" --top-p {s['top_p']} --max-new-tokens {s['max_new_tokens']} --batch-size {s['batch_size']}"
             f" --dtype {s['dtype']} --num-shards {s['shards']}")
    if s["backend"] == "vllm":
        flags += (f" --tensor-parallel-size {s['tensor_parallel_size']}"
                  f" --gpu-memory-utilization {s['gpu_memory_utilization']}")
        if s["max_model_len"]:
            flags += f" --max-model-len {s['max_model_len']}"
    return flags


rule sample_shard:
    input:
        pool=lambda w: pool_path(w.pool),
        model=lambda w: model_dir(config["teachers"][w.teacher]["model"]),
        code=code("sample"),
    output:
        f"{RESULTS}/samples/{{teacher}}/{{pool}}/shard-{{shard}}.parquet",
    params:
        flags=lambda w: sampling_flags(w.teacher),
        seed=config["seed"],
        threads=lambda w, threads: f"--threads {threads}" if config["teachers"][w.teacher]["backend"] == "hf" else "",
    threads: 2
    resources:
        gpu=lambda w: config["teachers"][w.teacher].get("tensor_parallel_size", 1)
        if config["teachers"][w.teacher]["backend"] == "vllm" else 0,
    log:
        f"{LOGS}/sample/{{teacher}}/{{pool}}/shard-{{shard}}.log",
    benchmark:
        f"{BENCH}/sample/{{teacher}}/{{pool}}/shard-{{shard}}.tsv"
    conda:
        "../envs/vllm.yaml"
    shell:
        "OMP_NUM_THREADS={threads} trajfusion sample --pool {input.pool} --model {input.model} {params.threads}"
        " --teacher {wildcards.teacher} {params.flags} --shard {wildcards.shard} --seed {params.seed}"
        " --output {output} > {log} 2>&1"


rule merge_samples:
    input:
        pool=lambda w: pool_path(w.pool),
        shards=lambda w: expand(f"{RESULTS}/samples/{w.teacher}/{w.pool}/shard-{{shard}}.parquet",
                                shard=range(config["sampling"]["shards"])),
        code=code("sample"),
    output:
        f"{RESULTS}/samples/{{teacher}}/{{pool}}.parquet",
    params:
        k=config["sampling"]["k"],
    log:
        f"{LOGS}/merge_samples/{{teacher}}/{{pool}}.log",
    benchmark:
        f"{BENCH}/merge_samples/{{teacher}}/{{pool}}.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "trajfusion merge-samples --pool {input.pool} --inputs {input.shards} --k {params.k}"
        " --output {output} > {log} 2>&1"

# Evaluation stage: generate with each trained model (and its first-epoch checkpoints) on
# each benchmark, then score with the same extraction and verifier as the sampling stage.


def eval_flags(bench, profile):
    e = config["evaluation"]
    samples = e["samples"].get(bench, e["samples"]["default"])
    profile_cfg = profile_settings(profile)
    max_new = profile_cfg.get("eval_max_new_tokens", e["max_new_tokens"])
    max_len = profile_cfg.get("eval_max_model_len", e.get("max_model_len"))
    flags = (f"--backend {e['backend']} --samples {samples} --temperature {e['temperature']}"
             f" --top-p {e['top_p']} --max-new-tokens {max_new} --batch-size {e.get('batch_size', 8)}"
             f" --dtype {e.get('dtype', 'auto')} --timeout {e.get('timeout', 5)}")
    if e["backend"] == "vllm":
        flags += f" --tensor-parallel-size {e.get('tensor_parallel_size', 1)}"
        if max_len:
            flags += f" --max-model-len {max_len}"
    return flags


rule evaluate:
    input:
        model=f"{RESULTS}/train/{{backbone}}/{{teacher}}/{{pool}}/{{profile}}/{{variant}}/{{checkpoint}}",
        benchmark=f"{RESULTS}/benchmarks/{{bench}}.parquet",
        code=code("evaluate"),
    output:
        f"{RESULTS}/eval/{{backbone}}/{{teacher}}/{{pool}}/{{profile}}/{{variant}}/{{checkpoint}}/{{bench}}.parquet",
    params:
        flags=lambda w: eval_flags(w.bench, w.profile),
        template=lambda w: config["backbones"][w.backbone]["template"],
        seed=config["seed"],
    threads: config["evaluation"].get("threads", 2)
    resources:
        gpu=lambda w: config["evaluation"].get("tensor_parallel_size", 1)
        if config["evaluation"]["backend"] == "vllm" else 0,
    log:
        f"{LOGS}/evaluate/{{backbone}}/{{teacher}}/{{pool}}/{{profile}}/{{variant}}/{{checkpoint}}/{{bench}}.log",
    benchmark:
        f"{BENCH}/evaluate/{{backbone}}/{{teacher}}/{{pool}}/{{profile}}/{{variant}}/{{checkpoint}}/{{bench}}.tsv"
    conda:
        "../envs/vllm.yaml"
    shell:
        "OMP_NUM_THREADS={threads} trajfusion evaluate --model {input.model} --benchmark {input.benchmark}"
        " --template {params.template} {params.flags} --seed {params.seed} --workers {threads}"
        " --output {output} > {log} 2>&1"

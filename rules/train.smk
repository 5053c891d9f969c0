# Training stage: SFT per (backbone, teacher, pool, training profile, variant). One rule per
# training profile, so that each first-epoch checkpoint is an output of its own that the
# evaluation rules depend on.


for _profile in config["training_profiles"]:

    rule:
        name:
            f"train_{_profile.replace('-', '_').replace('.', '_')}"
        input:
            **training_inputs(_profile),
        output:
            **training_outputs(_profile),
        log:
            partly(log_pattern("train"), profile=_profile),
        benchmark:
            partly(cost_pattern("train"), profile=_profile)
        conda:
            "../envs/train.yaml"
        threads: PLAN.training_threads(_profile)
        resources:
            **PLAN.training_resources(_profile),
            gpu=PLAN.training_gpus(_profile),
        params:
            settings=lambda w, _p=_profile: train_settings(w, _p),
            deepspeed=deepspeed_flag(_profile),
            out_dir=lambda w, output: os.path.dirname(output.final),
            code=code("train"),
        shell:
            "OMP_NUM_THREADS={threads} trajfusion train --model {input.model} --dataset {input.dataset}"
            " --output-dir {params.out_dir} --settings {params.settings:q}{params.deepspeed} > {log} 2>&1"

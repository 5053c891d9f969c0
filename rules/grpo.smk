# RL stage: GRPO / TAPO-GRPO per (backbone, teacher, pool, training profile, variant, RL run),
# from the final checkpoint of the experiment's `rl_from` variant (the cold start) on the
# experiment's pool. One rule per `rl_runs` entry, so that each has its own resources. The
# evaluate rule reads the result as checkpoint rl-{rl_run} of the starting run.


for _rl_run in config["rl_runs"]:

    rule:
        name:
            f"grpo_{_rl_run.replace('-', '_').replace('.', '_')}"
        input:
            **grpo_inputs(),
        output:
            final=directory(partly(PATHS["rl_final"], rl_run=_rl_run)),
        log:
            partly(log_pattern("grpo"), rl_run=_rl_run),
        benchmark:
            partly(cost_pattern("grpo"), rl_run=_rl_run)
        conda:
            "../envs/train.yaml"
        threads: PLAN.rl_resources(_rl_run)["cpus_per_task"]
        resources:
            **PLAN.rl_resources(_rl_run),
            gpu=PLAN.rl_gpus(_rl_run),
        params:
            settings=lambda w, _r=_rl_run: grpo_settings(w, _r),
            out_dir=lambda w, output: os.path.dirname(output.final),
            code=code("rl"),
        shell:
            "OMP_NUM_THREADS={threads} trajfusion grpo --model {input.model} --pool {input.pool}"
            " --output-dir {params.out_dir} --settings {params.settings:q} > {log} 2>&1"

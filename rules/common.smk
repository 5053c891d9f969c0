# Shared helpers: config validation (defaults filled in from the schema), the plan of jobs,
# artifact paths, stage code digests and the files every stage reads.
import functools
import hashlib
import json
import os
import sys
from glob import glob

from snakemake.utils import validate

# The plan and the path patterns of this checkout, whichever trajfusion is installed.
sys.path.insert(0, os.path.join(workflow.basedir, "src"))

from trajfusion.plan import (
    BASE_STUDENT,
    COST,
    PATHS,
    DistillRun,
    Plan,
    backbone_template,
    baseline_model,
    baseline_template,
    cost_pattern,
    evaluation_model,
    evaluation_run,
    evaluation_template,
    generation_env,
    hub_model_name,
    log_pattern,
    path,
    profile_settings,
    rl_checkpoint,
    rl_run_of,
    rl_settings,
)

validate(config, schema=workflow.source_path("../config/schema.yaml"))


# Rules call the `trajfusion` console script; make the one beside this Python visible even
# when the virtualenv is not activated (a conda env's own bin, when used, comes first), and
# pass that PATH on to jobs that run elsewhere.
envvars:
    "PATH",


search_path = os.environ["PATH"]
os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), search_path])

PACKAGE = os.path.join(workflow.basedir, "src", "trajfusion")
DATA_DIR = (
    config["data_dir"]
    if os.path.isabs(config["data_dir"])
    else os.path.join(workflow.basedir, config["data_dir"])
)
# Every bundled raw file is checked against SHA256SUMS before it is parsed, so a raw file's
# content cannot change without this file changing too.
DATA_CHECKSUMS = os.path.join(DATA_DIR, "SHA256SUMS")
TEMPLATES = os.path.join(PACKAGE, "resources", "templates.yaml")
# The few-shot demonstrations the `few_shot` templates render (the ICL baselines).
FEW_SHOT = os.path.join(PACKAGE, "resources", "few_shot.yaml")
PAPER_RESULTS = os.path.join(PACKAGE, "resources", "paper_results.yaml")
# The license of each pool source, for the dataset cards of exported data.
LICENSES = os.path.join(PACKAGE, "resources", "licenses.yaml")
PHRASES = config["fusion"]["phrases"] or os.path.join(
    PACKAGE, "resources", "phrases.yaml"
)


wildcard_constraints:
    model="[^/]+",
    pool="[^/]+",
    teacher="[^/]+",
    shard=r"\d+",
    variant="[^/]+",
    backbone="[^/]+",
    profile="[^/]+",
    checkpoint=r"final|ckpt-\d+|rl-[^/]+",
    rl_run="[^/]+",
    bench="[^/]+",
    baseline="[^/]+",
    template="[^/]+",


def _fail(key, message):
    raise ValueError(f"config error at '{key}': {message}")


def check_references(cfg):
    """Cross-references the JSON schema cannot express, each error naming its key (data
    names: check_data_references)."""
    for name, teacher in cfg["teachers"].items():
        if teacher["model"] not in cfg["models"]:
            _fail(
                f"teachers.{name}.model",
                f"unknown model {teacher['model']!r}; known: {sorted(cfg['models'])}",
            )
    for name, backbone in cfg["backbones"].items():
        if backbone["model"] not in cfg["models"]:
            _fail(
                f"backbones.{name}.model",
                f"unknown model {backbone['model']!r}; known: {sorted(cfg['models'])}",
            )
    constructor = cfg["reflect"]["model_teacher"]
    if constructor is not None and constructor not in cfg["teachers"]:
        _fail(
            "reflect.model_teacher",
            f"unknown teacher {constructor!r}; known: {sorted(cfg['teachers'])}",
        )
    variants = cfg["fusion"]["variants"]
    for name, variant in variants.items():
        given = [
            key for key in ("alpha", "alpha_target", "alpha_from") if key in variant
        ]
        if variant.get("k_max", 0) > 0 and len(given) != 1:
            _fail(
                f"fusion.variants.{name}",
                f"a variant with k_max > 0 needs exactly one of alpha, alpha_target, alpha_from (has {given})",
            )
        source = variant.get("alpha_from")
        if source is not None and "alpha_target" not in variants.get(source, {}):
            _fail(
                f"fusion.variants.{name}.alpha_from",
                f"{source!r} must name a variant that has alpha_target; variants: {sorted(variants)}",
            )
    for name, exp in cfg["experiments"].items():
        for key, known in (
            ("teacher", cfg["teachers"]),
            ("pool", cfg["pools"]),
            ("training_profile", cfg["training_profiles"]),
        ):
            if exp[key] not in known:
                _fail(
                    f"experiments.{name}.{key}",
                    f"unknown {key} {exp[key]!r}; known: {sorted(known)}",
                )
        for key, known in (
            ("backbones", cfg["backbones"]),
            ("variants", cfg["fusion"]["variants"]),
            ("benchmarks", cfg["benchmarks"]),
            ("checkpoint_benchmarks", cfg["benchmarks"]),
        ):
            for i, item in enumerate(exp.get(key, [])):
                if item not in known:
                    _fail(
                        f"experiments.{name}.{key}[{i}]",
                        f"unknown name {item!r}; known: {sorted(known)}",
                    )
        if (
            exp["checkpoint_benchmarks"]
            and not profile_settings(cfg, exp["training_profile"])["checkpoints"]
        ):
            _fail(
                f"experiments.{name}.checkpoint_benchmarks",
                f"training profile {exp['training_profile']!r} defines no checkpoints",
            )
        for i, bench in enumerate(exp.get("distillation", {}).get("benchmarks", [])):
            if bench not in cfg["benchmarks"]:
                _fail(
                    f"experiments.{name}.distillation.benchmarks[{i}]",
                    f"unknown name {bench!r}; known: {sorted(cfg['benchmarks'])}",
                )
        students = exp.get("distillation", {}).get("students", [])
        for i, student in enumerate(students):
            if student != BASE_STUDENT and student not in exp["variants"]:
                _fail(
                    f"experiments.{name}.distillation.students[{i}]",
                    f"{student!r} is neither {BASE_STUDENT!r} nor one of the experiment's variants "
                    f"{exp['variants']}",
                )
    for name, baseline in cfg["baselines"].items():
        for key, known in (
            ("backbone", cfg["backbones"]),
            ("model", cfg["models"]),
        ):
            if baseline[key] is not None and baseline[key] not in known:
                _fail(
                    f"baselines.{name}.{key}",
                    f"unknown {key} {baseline[key]!r}; known: {sorted(known)}",
                )


def check_training_profiles(cfg):
    """Each training profile's settings, checked as the train command will check them (e.g. a
    dense attention mask over long packed rows), so a bad profile fails before any job.
    """
    from trajfusion.io import InputError
    from trajfusion.train.settings import TrainSettings

    for profile in cfg["training_profiles"]:
        settings = TrainSettings.pick(profile_settings(cfg, profile))
        try:
            TrainSettings.from_dict({**settings, "template": "-", "seed": cfg["seed"]})
        except InputError as exc:
            _fail(f"training_profiles.{profile}", str(exc))


def check_rl_runs(cfg):
    """Experiments' RL runs exist and start from one of their variants; each run's settings pass
    the grpo command's own checks."""
    from trajfusion.io import InputError
    from trajfusion.rl.settings import GRPOSettings

    for name, exp in cfg["experiments"].items():
        for i, rl_run in enumerate(exp["rl_runs"]):
            if rl_run not in cfg["rl_runs"]:
                _fail(
                    f"experiments.{name}.rl_runs[{i}]",
                    f"unknown RL run {rl_run!r}; known: {sorted(cfg['rl_runs'])}",
                )
        if exp["rl_runs"] and exp.get("rl_from") not in exp["variants"]:
            _fail(
                f"experiments.{name}.rl_from",
                f"must name one of the experiment's variants {exp['variants']} (the cold start), "
                f"got {exp.get('rl_from')!r}",
            )
    for rl_run in cfg["rl_runs"]:
        settings = GRPOSettings.pick(rl_settings(cfg, rl_run))
        try:
            GRPOSettings.from_dict({**settings, "template": "-", "seed": cfg["seed"]})
        except InputError as exc:
            _fail(f"rl_runs.{rl_run}", str(exc))


def check_distillation(cfg):
    """The distillation section, checked as the distill command will check it, and vLLM
    sampling only where the job gets a GPU."""
    from trajfusion.distill.settings import DistillSettings
    from trajfusion.io import InputError

    section = cfg["distillation"]
    try:
        DistillSettings.from_dict(
            {**DistillSettings.pick(section), "template": "-", "seed": cfg["seed"]}
        )
    except InputError as exc:
        _fail("distillation", str(exc))
    if section["backend"] == "vllm" and section["num_gpus"] < 1:
        _fail(
            "distillation.backend",
            "vllm samples on a GPU; set distillation.num_gpus: 1 (or backend: hf)",
        )


def check_data_references(cfg):
    """Pool sources, benchmarks and benchmark lists name built-in data (the registry's) or
    `datasets:` entries; a dataset may not take a built-in name."""
    from trajfusion.data import BENCHMARKS, SOURCES

    datasets = cfg["datasets"]
    for name in datasets:
        if name in SOURCES or name in BENCHMARKS:
            _fail(
                f"datasets.{name}",
                "the name of a built-in source or benchmark; choose another",
            )
    for name, bench in cfg["benchmarks"].items():
        if "dataset" not in bench and name not in BENCHMARKS:
            _fail(
                f"benchmarks.{name}",
                f"not a built-in benchmark {list(BENCHMARKS)}; a benchmark of one's own names its `dataset:`",
            )
        if "dataset" in bench and bench["dataset"] not in datasets:
            _fail(
                f"benchmarks.{name}.dataset",
                f"unknown dataset {bench['dataset']!r}; known: {sorted(datasets)}",
            )
    own_benchmarks = [n for n, b in cfg["benchmarks"].items() if "dataset" in b]
    for name, pool in cfg["pools"].items():
        for i, source in enumerate(pool["sources"]):
            if source["name"] not in SOURCES and source["name"] not in datasets:
                _fail(
                    f"pools.{name}.sources[{i}].name",
                    f"unknown source {source['name']!r}; built-in: {list(SOURCES)}, datasets: {sorted(datasets)}",
                )
        for i, bench in enumerate(pool.get("decontaminate_against", [])):
            if bench not in BENCHMARKS and bench not in own_benchmarks:
                _fail(
                    f"pools.{name}.decontaminate_against[{i}]",
                    f"unknown benchmark {bench!r}; built-in: {list(BENCHMARKS)}, own: {own_benchmarks}",
                )
    for bench in cfg["evaluation"]["samples"]:
        if bench != "default" and bench not in cfg["benchmarks"]:
            _fail(
                f"evaluation.samples.{bench}",
                f"not a benchmark of this config; benchmarks: {sorted(cfg['benchmarks'])}",
            )
    for name, baseline in cfg["baselines"].items():
        for key in ("benchmarks", "benchmark_templates"):
            for i, bench in enumerate(baseline[key]):
                if bench not in cfg["benchmarks"]:
                    _fail(
                        f"baselines.{name}.{key}[{i}]",
                        f"unknown benchmark {bench!r}; known: {sorted(cfg['benchmarks'])}",
                    )


def check_evaluations(cfg):
    """`evaluations:` name known models, experiments' runs and checkpoints, and benchmarks; a
    Hub id becomes a models entry (hub--<org>--<name>) prepared like any other."""
    for name, spec in cfg["evaluations"].items():
        where = f"evaluations.{name}"
        if "model" in spec and spec["model"] not in cfg["models"]:
            _fail(
                f"{where}.model",
                f"unknown model {spec['model']!r}; known: {sorted(cfg['models'])}",
            )
        if "run" not in spec and "template" not in spec:
            _fail(where, "a model or hub evaluation needs its `template`")
        for i, bench in enumerate(spec["benchmarks"]):
            if bench not in cfg["benchmarks"]:
                _fail(
                    f"{where}.benchmarks[{i}]",
                    f"unknown benchmark {bench!r}; known: {sorted(cfg['benchmarks'])}",
                )
        if "hub" in spec:
            cfg["models"].setdefault(
                hub_model_name(spec["hub"]),
                {"source": "hub", "hub_id": spec["hub"], "cache": "hub"},
            )
        if "run" in spec:
            check_evaluation_run(cfg, where, spec["run"])


def check_evaluation_run(cfg, where, run):
    exp = cfg["experiments"].get(run["experiment"])
    if exp is None:
        _fail(
            f"{where}.run.experiment",
            f"unknown experiment {run['experiment']!r}; known: {sorted(cfg['experiments'])}",
        )
    for key, listed in (("backbone", "backbones"), ("variant", "variants")):
        if run[key] not in exp[listed]:
            _fail(
                f"{where}.run.{key}",
                f"{run[key]!r} is not one of experiment {run['experiment']!r}'s {listed} {exp[listed]}",
            )
    saved = [
        f"ckpt-{n}"
        for n in profile_settings(cfg, exp["training_profile"])["checkpoints"]
    ]
    if run["checkpoint"] not in ["final", *saved]:
        _fail(
            f"{where}.run.checkpoint",
            f"the experiment's training saves {['final', *saved]}, not {run['checkpoint']!r}",
        )


def check_models(cfg):
    """Each model source checked as prepare-model will check it, before any job."""
    from trajfusion.model.settings import model_spec

    for name, spec in cfg["models"].items():
        try:
            model_spec(spec)
        except ValueError as exc:
            _fail(f"models.{name}", str(exc))


def check_figure1(cfg):
    """Figure 1's teacher, pool and sources name a sampled (teacher, pool) pair and sources
    of every pool it shows."""
    chosen = cfg["report"]
    teacher, pool = chosen["figure1_teacher"], chosen["figure1_pool"]
    pairs = sorted({(e["teacher"], e["pool"]) for e in cfg["experiments"].values()})
    shown = [p for p in pairs if teacher in (None, p[0]) and pool in (None, p[1])]
    if not shown:
        key = "report.figure1_teacher" if teacher is not None else "report.figure1_pool"
        _fail(
            key,
            f"no experiment samples teacher {teacher!r} on pool {pool!r}; sampled (teacher, pool) pairs: {pairs}",
        )
    for i, source in enumerate(chosen["figure1_sources"]):
        for _, shown_pool in shown:
            names = [s["name"] for s in cfg["pools"][shown_pool]["sources"]]
            if source not in names:
                _fail(
                    f"report.figure1_sources[{i}]",
                    f"{source!r} is not a source of pool {shown_pool!r} (its sources: {names})",
                )


def check_reflection_metrics(cfg):
    """Each Pass@k of an experiment's reflection metrics has at least k samples per problem on
    every benchmark of the experiment (evaluation.samples)."""
    samples = cfg["evaluation"]["samples"]
    for name, exp in cfg["experiments"].items():
        for i, k in enumerate((exp.get("reflection_metrics") or {}).get("pass_k", [])):
            for bench in exp["benchmarks"]:
                n = samples.get(bench, samples["default"])
                if k > n:
                    _fail(
                        f"experiments.{name}.reflection_metrics.pass_k[{i}]",
                        f"pass@{k} needs at least {k} samples per problem; benchmark {bench!r} draws {n} "
                        f"(evaluation.samples)",
                    )


check_references(config)
check_data_references(config)
check_evaluations(config)
check_models(config)
check_figure1(config)
check_reflection_metrics(config)
PLAN = Plan.from_config(config)
check_training_profiles(config)
check_rl_runs(config)
check_distillation(config)


# ---- stage code, tracked by content ----------------------------------------------------

# Modules under src/trajfusion/ per stage: `name` is name.py or the package folder name/.
# Shared plumbing (io.py, cli.py, plan.py, settings.py, contracts.py) is left out on purpose, so that a change there does
# not rerun the whole DAG.
STAGE_CODE = {
    "data": ["data"],
    "models": ["model"],
    "sample": ["sample", "templates"],
    "verify": ["verify"],
    "fuse": ["fuse", "phrases"],
    "reflect": ["reflect", "fuse", "verify", "sample", "templates"],
    "train": ["train", "model", "templates"],
    "distill": ["distill", "train", "templates"],
    "rl": ["rl", "train", "model", "templates", "verify"],
    "evaluate": ["evaluate", "sample", "verify", "templates", "phrases"],
    "report": ["report", "reflection_tags"],
    "export": ["export", "templates"],
}


def module_files(module):
    single = os.path.join(PACKAGE, f"{module}.py")
    if os.path.isfile(single):
        return [single]
    package = os.path.join(PACKAGE, module)
    if os.path.isdir(package):
        return glob(os.path.join(package, "**", "*.py"), recursive=True)
    raise ValueError(
        f"STAGE_CODE names {module!r}, neither {module}.py nor a package folder under {PACKAGE}"
    )


@functools.cache
def code(stage):
    """SHA-256 over the stage's source files (names and contents), a `params:` entry: an edit
    reruns the stage and what depends on it, a touch or a checkout of the same content does not.
    """
    files = sorted(
        {file for module in STAGE_CODE[stage] for file in module_files(module)}
    )
    listing = "".join(
        f"{_sha256(file)}  {os.path.relpath(file, PACKAGE)}\n" for file in files
    )
    return hashlib.sha256(listing.encode()).hexdigest()


def _sha256(file):
    with open(file, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


# ---- small helpers ---------------------------------------------------------------------


def as_json(obj):
    return json.dumps(obj, sort_keys=True)


def partly(pattern, **values):
    """``pattern`` with some wildcards filled in, the others left for Snakemake."""
    return expand(pattern, **values, allow_missing=True)[0]


def benchmark_spec(bench):
    return config["benchmarks"][bench]


def teacher_spec(teacher):
    return config["teachers"][teacher]


def variant_spec(variant):
    return config["fusion"]["variants"][variant]

# Shared helpers: config validation, derived job lists and artifact paths.
import json
import os
import shlex
import sys

from snakemake.utils import validate

validate(config, schema=workflow.source_path("../config/schema.yaml"))

# Rules call the `trajfusion` console script; make the one beside this Python visible even
# when the virtualenv is not activated (a conda env's own bin, when used, comes first).
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")

RESULTS = "results"
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/cost"  # per-job wall time and memory (Snakemake benchmark: files)
DATA_DIR = config["data_dir"] if os.path.isabs(config["data_dir"]) else os.path.join(workflow.basedir, config["data_dir"])

wildcard_constraints:
    model="[^/]+",
    pool="[^/]+",
    teacher="[^/]+",
    shard=r"\d+",
    variant="[^/]+",
    backbone="[^/]+",
    profile="[^/]+",
    checkpoint=r"final|ckpt-\d+",
    bench="[^/]+",


def _fail(key, message):
    raise ValueError(f"config error at '{key}': {message}")


def check_references(cfg):
    """Cross-references the JSON schema cannot express, each error naming its key."""
    for name, teacher in cfg["teachers"].items():
        if teacher["model"] not in cfg["models"]:
            _fail(f"teachers.{name}.model", f"unknown model {teacher['model']!r}; known: {sorted(cfg['models'])}")
    for name, backbone in cfg["backbones"].items():
        if backbone["model"] not in cfg["models"]:
            _fail(f"backbones.{name}.model", f"unknown model {backbone['model']!r}; known: {sorted(cfg['models'])}")
    variants = cfg["fusion"]["variants"]
    for name, variant in variants.items():
        given = [key for key in ("alpha", "alpha_target", "alpha_from") if key in variant]
        if variant["k_max"] > 0 and len(given) != 1:
            _fail(f"fusion.variants.{name}",
                  f"a variant with k_max > 0 needs exactly one of alpha, alpha_target, alpha_from (has {given})")
        source = variant.get("alpha_from")
        if source is not None and "alpha_target" not in variants.get(source, {}):
            _fail(f"fusion.variants.{name}.alpha_from",
                  f"{source!r} must name a variant that has alpha_target; variants: {sorted(variants)}")
    for name, pool in cfg["pools"].items():
        for i, bench in enumerate(pool.get("decontaminate_against", [])):
            if bench not in cfg["benchmarks"] and bench not in BENCHMARK_NAMES:
                _fail(f"pools.{name}.decontaminate_against[{i}]", f"unknown benchmark {bench!r}")
    for name, exp in cfg["experiments"].items():
        for key, known in (("teacher", cfg["teachers"]), ("pool", cfg["pools"]),
                           ("training_profile", cfg["training_profiles"])):
            if exp[key] not in known:
                _fail(f"experiments.{name}.{key}", f"unknown {key} {exp[key]!r}; known: {sorted(known)}")
        for key, known in (("backbones", cfg["backbones"]), ("variants", cfg["fusion"]["variants"]),
                           ("benchmarks", cfg["benchmarks"]), ("checkpoint_benchmarks", cfg["benchmarks"])):
            for i, item in enumerate(exp.get(key, [])):
                if item not in known:
                    _fail(f"experiments.{name}.{key}[{i}]", f"unknown name {item!r}; known: {sorted(known)}")
        if exp.get("checkpoint_benchmarks") and not profile_settings(exp["training_profile"], cfg).get("checkpoints"):
            _fail(f"experiments.{name}.checkpoint_benchmarks",
                  f"training profile {exp['training_profile']!r} defines no checkpoints")


BENCHMARK_NAMES = ["gsm8k", "math", "math500", "college_math", "deepmind_math", "olympiadbench",
                   "theoremqa", "aime24", "aime25", "synthetic_arith_test"]


STAGE_CODE = {
    "data": ["data/*.py"],
    "models": ["model.py"],
    "sample": ["sample.py", "generation/*.py", "templates.py", "resources/templates.yaml"],
    "verify": ["verify/*.py"],
    "fuse": ["fuse.py", "resources/phrases.yaml"],
    "train": ["train.py", "training/*.py", "templates.py", "resources/templates.yaml"],
    "evaluate": ["evaluate.py", "generation/*.py", "verify/*.py", "templates.py", "resources/templates.yaml",
                 "resources/phrases.yaml"],
    "report": ["report/*.py", "metrics.py", "resources/paper_results.yaml"],
}


def code(stage):
    """A stage's own source files, declared as inputs: editing them reruns that stage and
    what depends on it (Snakemake's mtime trigger). Shared plumbing (io.py, cli.py) is left
    out on purpose, so that a change there does not rerun the whole DAG."""
    from glob import glob

    package = os.path.join(workflow.basedir, "src", "trajfusion")
    return sorted(path for pattern in STAGE_CODE[stage] for path in glob(os.path.join(package, pattern)))


def profile_settings(profile, cfg=config):
    return {**cfg["training"], **cfg["training_profiles"][profile]}


check_references(config)


def as_json(obj):
    return json.dumps(obj, sort_keys=True)


# ---- paths ---------------------------------------------------------------------------

def model_dir(name):
    return f"{RESULTS}/models/{name}"


def pool_path(pool):
    return f"{RESULTS}/pools/{pool}.parquet"


def benchmark_path(bench):
    return f"{RESULTS}/benchmarks/{bench}.parquet"


def verified_path(teacher, pool):
    return f"{RESULTS}/verified/{teacher}/{pool}.parquet"


def stats_path(teacher, pool):
    return f"{RESULTS}/stats/{teacher}/{pool}.parquet"


def fused_path(teacher, pool, variant):
    return f"{RESULTS}/fused/{teacher}/{pool}/{variant}.jsonl"


def run_dir(backbone, teacher, pool, profile, variant):
    return f"{RESULTS}/train/{backbone}/{teacher}/{pool}/{profile}/{variant}"


def eval_path(backbone, teacher, pool, profile, variant, checkpoint, bench):
    return f"{RESULTS}/eval/{backbone}/{teacher}/{pool}/{profile}/{variant}/{checkpoint}/{bench}.parquet"


# ---- what the configured experiments need -------------------------------------------

def experiment_runs():
    """Distinct training runs (backbone, teacher, pool, profile, variant) over all experiments."""
    runs = []
    for exp in config["experiments"].values():
        for backbone in exp["backbones"]:
            for variant in exp["variants"]:
                run = (backbone, exp["teacher"], exp["pool"], exp["training_profile"], variant)
                if run not in runs:
                    runs.append(run)
    return runs


def experiment_evals():
    """One entry per evaluation the report needs: the experiment, the run, checkpoint and benchmark."""
    entries = []
    for exp_name, exp in config["experiments"].items():
        checkpoints = profile_settings(exp["training_profile"]).get("checkpoints", [])
        for backbone in exp["backbones"]:
            for variant in exp["variants"]:
                run = (backbone, exp["teacher"], exp["pool"], exp["training_profile"], variant)
                points = [("final", None, exp["benchmarks"])]
                points += [(f"ckpt-{n}", n, exp.get("checkpoint_benchmarks", [])) for n in checkpoints]
                for checkpoint, seen, benches in points:
                    for bench in benches:
                        entries.append({"experiment": exp_name, "run": run, "checkpoint": checkpoint,
                                        "samples_seen": seen, "benchmark": bench,
                                        "path": eval_path(*run, checkpoint, bench)})
    return entries


def sampling_pairs():
    pairs = []
    for exp in config["experiments"].values():
        if (exp["teacher"], exp["pool"]) not in pairs:
            pairs.append((exp["teacher"], exp["pool"]))
    return pairs


def fused_datasets():
    paths = []
    for exp in config["experiments"].values():
        for variant in exp["variants"]:
            path = fused_path(exp["teacher"], exp["pool"], variant)
            if path not in paths:
                paths.append(path)
    return paths

"""The pipeline's plan: every artifact path pattern, and the jobs a config asks for, each once.

``PATHS`` maps an artifact name to its path pattern (``{wildcard}`` fields, relative to the
working directory); the Snakemake rules use the patterns as outputs and fill them for inputs,
and ``Plan`` fills them for the report manifest. ``JOBS`` maps a job kind to the key that
names its log (``results/logs/KEY.log``) and its Snakemake ``benchmark:`` file
(``results/cost/KEY.tsv``); the first folder of the key is the cost table's stage.

``Plan.from_config(config)`` takes a config validated against ``config/schema.yaml`` with the
schema's defaults filled in (``snakemake.utils.validate`` does both) and lists the distinct
training runs, evaluations, sampling pairs, fused datasets, fusion summaries, statistics
tables and exports, in the order the experiments name them. Pure Python: no Snakemake import.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import PurePath

from trajfusion.contracts import DISTILL_SIGNIFICANCE, distill_report, reflection_table, results_table
from trajfusion.vocabulary import DISTILL_METHOD_LABELS, EVALUATED_METHOD

RESULTS = "results"
LOGS = f"{RESULTS}/logs"
COST = f"{RESULTS}/cost"

_RUN = "{backbone}/{teacher}/{pool}/{profile}/{variant}"
# A distillation run: the student (`base` or the experiment's SFT variant, under its profile) and the method.
_DISTILL = "{backbone}/{teacher}/{pool}/{profile}/{student}/{method}"
# One folder per exported file: a dataset card (README.md) describes one file, as on the Hugging Face Hub.
_EXPORT = f"{RESULTS}/export/{{teacher}}/{{pool}}/{{variant}}/{{template}}/{{format}}"

PATHS = {
    "model": f"{RESULTS}/models/{{model}}",
    "pool": f"{RESULTS}/pools/{{pool}}.parquet",
    "pool_report": f"{RESULTS}/pools/{{pool}}.report.json",
    "benchmark": f"{RESULTS}/benchmarks/{{bench}}.parquet",
    "shard": f"{RESULTS}/samples/{{teacher}}/{{pool}}/shard-{{shard}}.parquet",
    "samples": f"{RESULTS}/samples/{{teacher}}/{{pool}}.parquet",
    "verified": f"{RESULTS}/verified/{{teacher}}/{{pool}}.parquet",
    "stats": f"{RESULTS}/stats/{{teacher}}/{{pool}}.parquet",
    "alpha": f"{RESULTS}/fused/{{teacher}}/{{pool}}/{{variant}}.alpha.json",
    "fused": f"{RESULTS}/fused/{{teacher}}/{{pool}}/{{variant}}.jsonl",
    "fusion_summary": f"{RESULTS}/fused/{{teacher}}/{{pool}}/{{variant}}.summary.json",
    "run": f"{RESULTS}/train/{_RUN}",
    "checkpoint": f"{RESULTS}/train/{_RUN}/{{checkpoint}}",
    "train_meta": f"{RESULTS}/train/{_RUN}/final/train_meta.json",
    "distilled": f"{RESULTS}/distill/{_DISTILL}/final",
    "distill_diagnostics": f"{RESULTS}/distill/{_DISTILL}/diagnostics.jsonl",
    # RL from a run's final checkpoint (rules/grpo.smk); evaluated as checkpoint rl-{rl_run}.
    "rl_run": f"{RESULTS}/rl/{_RUN}/{{rl_run}}",
    "rl_final": f"{RESULTS}/rl/{_RUN}/{{rl_run}}/final",
    "eval": f"{RESULTS}/eval/{_RUN}/{{checkpoint}}/{{bench}}.parquet",
    "baseline_eval": f"{RESULTS}/eval/baseline/{{baseline}}/{{bench}}.parquet",
    "model_eval": f"{RESULTS}/eval/models/{{evaluation}}/{{bench}}.parquet",
    "distill_eval": f"{RESULTS}/eval/distill/{_DISTILL}/{{bench}}.parquet",
    "report": f"{RESULTS}/report/{{name}}",
    "export": f"{_EXPORT}/train.jsonl",
    "export_card": f"{_EXPORT}/README.md",
    "export_dataset_info": f"{_EXPORT}/dataset_info.json",
}

JOBS = {
    "build_pool": "build_pool/{pool}",
    "prepare_benchmark": "prepare_benchmark/{bench}",
    "prepare_model": "prepare_model/{model}",
    "sample": "sample/{teacher}/{pool}/shard-{shard}",
    "merge_samples": "merge_samples/{teacher}/{pool}",
    "verify": "verify/{teacher}/{pool}",
    "stats": "stats/{teacher}/{pool}",
    "calibrate_alpha": "calibrate_alpha/{teacher}/{pool}/{variant}",
    "fuse": "fuse/{teacher}/{pool}/{variant}",
    "reflect": "reflect/{teacher}/{pool}/{variant}",
    "train": f"train/{_RUN}",
    "distill": f"distill/{_DISTILL}",
    "grpo": f"grpo/{_RUN}/{{rl_run}}",
    "evaluate": f"evaluate/{_RUN}/{{checkpoint}}/{{bench}}",
    "evaluate_baseline": "evaluate/baseline/{baseline}/{bench}",
    "evaluate_model": "evaluate/models/{evaluation}/{bench}",
    "evaluate_distilled": f"evaluate/distill/{_DISTILL}/{{bench}}",
    "report_manifest": "report_manifest",
    "report": "report",
    "export": "export/{teacher}/{pool}/{variant}/{template}/{format}",
}


def path(artifact: str, /, **wildcards) -> str:
    """The path of ``artifact`` (a ``PATHS`` name) for the given wildcard values."""
    return PATHS[artifact].format(**wildcards)


def match(artifact: str, file: str | PurePath) -> dict | None:
    """The wildcards of ``file`` when it ends in a path of ``artifact`` (relative, or below any
    folder), else None: ``match("fused", "/w/results/fused/t/p/tf.jsonl")`` gives teacher, pool and variant."""
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(PATHS[artifact]))
    found = re.search(f"(?:^|/){pattern}$", PurePath(file).as_posix())
    return found.groupdict() if found else None


def log_pattern(job: str) -> str:
    return f"{LOGS}/{JOBS[job]}.log"


def cost_pattern(job: str) -> str:
    """The pattern of the job's Snakemake ``benchmark:`` file (wall time, memory)."""
    return f"{COST}/{JOBS[job]}.tsv"


def generation_gpus(spec: dict) -> int:
    """GPUs of a generation job: vLLM's tensor-parallel size (its default when unset); hf: none
    requested (it uses a GPU only where the job has one); openai: none (the server generates)."""
    if spec["backend"] != "vllm":
        return 0
    from trajfusion.sample.backends.options import BACKEND_DEFAULTS

    return spec.get("tensor_parallel_size") or BACKEND_DEFAULTS["vllm"]["tensor_parallel_size"]


def generation_env(spec: dict) -> str:
    """The conda env file (relative to ``rules/``) of a generation job with this backend."""
    from trajfusion.sample.backends import BACKEND_ENVS

    return f"../envs/{BACKEND_ENVS[spec['backend']]}.yaml"


# An RL run's model is evaluated as checkpoint `rl-{rl_run}` of the SFT run it starts from.
RL_CHECKPOINT_PREFIX = "rl-"


def rl_checkpoint(rl_run: str) -> str:
    return f"{RL_CHECKPOINT_PREFIX}{rl_run}"


def rl_run_of(checkpoint: str) -> str | None:
    """The RL run a checkpoint name stands for (None: an SFT checkpoint)."""
    return checkpoint[len(RL_CHECKPOINT_PREFIX):] if checkpoint.startswith(RL_CHECKPOINT_PREFIX) else None


def rl_settings(config: dict, rl_run: str) -> dict:
    """An RL run's settings: the ``rl`` block overridden by the run's own (resources key by key)."""
    own = config["rl_runs"][rl_run]
    resources = {**config["rl"]["resources"], **own.get("resources", {})}
    return {**config["rl"], **own, "resources": resources}
REFLECT = "reflect"  # the `kind` of a fusion variant that `trajfusion reflect` builds (TAPO)


def variant_kind(config: dict, variant: str) -> str:
    """``fuse`` (RFT, TrajFusion) or ``reflect`` (TAPO's micro-reflective data)."""
    return config["fusion"]["variants"][variant].get("kind", "fuse")


def variant_method(config: dict, variant: str) -> str:
    """How a variant's training data is built: the manifest's ``method``."""
    if variant_kind(config, variant) == REFLECT:
        return "tapo"
    return "rft" if config["fusion"]["variants"][variant]["k_max"] == 0 else "trajfusion"


def profile_settings(config: dict, profile: str) -> dict:
    """A training profile's settings: the ``training`` block overridden by the profile's own."""
    return {**config["training"], **config["training_profiles"][profile]}


@dataclass(frozen=True)
class Run:
    """One training run: a backbone fine-tuned on one fused dataset with one profile."""

    backbone: str
    teacher: str
    pool: str
    profile: str
    variant: str

    def wildcards(self) -> dict:
        return asdict(self)


BASE_STUDENT = "base"  # a distillation student that starts from the backbone's own model


@dataclass(frozen=True)
class DistillRun:
    """One distillation run: the experiment's teacher into a student on the experiment's pool.
    ``student`` is ``base`` (the backbone's model) or a variant of the experiment, whose SFT
    run's final checkpoint the student starts from."""

    backbone: str
    teacher: str
    pool: str
    profile: str
    student: str
    method: str

    def wildcards(self) -> dict:
        return asdict(self)

    @property
    def sft_run(self) -> Run | None:
        if self.student == BASE_STUDENT:
            return None
        return Run(self.backbone, self.teacher, self.pool, self.profile, self.student)


@dataclass(frozen=True)
class RLRun:
    """One RL run (``rl_runs`` entry) from the final checkpoint of an SFT run (the cold start)."""

    start: Run
    rl_run: str

    def wildcards(self) -> dict:
        return {**self.start.wildcards(), "rl_run": self.rl_run}


@dataclass(frozen=True)
class DistillEvaluation:
    """A distilled model (final weights) of an experiment on one of its benchmarks."""

    experiment: str
    run: DistillRun
    benchmark: str

    def wildcards(self) -> dict:
        return {**self.run.wildcards(), "bench": self.benchmark}

    @property
    def path(self) -> str:
        return path("distill_eval", **self.wildcards())


@dataclass(frozen=True)
class Evaluation:
    """One evaluation an experiment asks for (two experiments may share the same job)."""

    experiment: str
    run: Run
    checkpoint: str
    samples_seen: int | None
    benchmark: str

    def wildcards(self) -> dict:
        return {**self.run.wildcards(), "checkpoint": self.checkpoint, "bench": self.benchmark}

    @property
    def path(self) -> str:
        return path("eval", **self.wildcards())


@dataclass(frozen=True)
class BaselineEvaluation:
    """One untrained model (``baselines`` entry) evaluated on one benchmark for Table 1."""

    baseline: str
    benchmark: str

    def wildcards(self) -> dict:
        return {"baseline": self.baseline, "bench": self.benchmark}

    @property
    def path(self) -> str:
        return path("baseline_eval", **self.wildcards())


@dataclass(frozen=True)
class ModelEvaluation:
    """One `evaluations:` entry on one benchmark."""

    evaluation: str
    benchmark: str

    def wildcards(self) -> dict:
        return {"evaluation": self.evaluation, "bench": self.benchmark}

    @property
    def path(self) -> str:
        return path("model_eval", **self.wildcards())


def hub_model_name(hub_id: str) -> str:
    """The `models:` name an evaluation's Hub id is prepared under."""
    return "hub--" + hub_id.replace("/", "--")


def evaluation_run(config: dict, evaluation: str) -> tuple[Run, str] | None:
    """An evaluation of an experiment's checkpoint: the run and the checkpoint (else None)."""
    spec = config["evaluations"][evaluation].get("run")
    if spec is None:
        return None
    exp = config["experiments"][spec["experiment"]]
    run = Run(spec["backbone"], exp["teacher"], exp["pool"], exp["training_profile"], spec["variant"])
    return run, spec["checkpoint"]


def evaluation_model(config: dict, evaluation: str) -> str | None:
    """The `models:` entry an evaluation evaluates (None: a run's checkpoint)."""
    spec = config["evaluations"][evaluation]
    return spec.get("model") or (hub_model_name(spec["hub"]) if "hub" in spec else None)


def evaluation_template(config: dict, evaluation: str) -> str:
    spec = config["evaluations"][evaluation]
    found = evaluation_run(config, evaluation)
    return spec.get("template") or backbone_template(config, found[0].backbone)


def baseline_model(config: dict, baseline: str) -> str:
    """The models entry a baseline evaluates: its own ``model``, else its backbone's."""
    spec = config["baselines"][baseline]
    return spec["model"] or config["backbones"][spec["backbone"]]["model"]


def backbone_template(config: dict, backbone: str) -> str:
    """The prompt template a backbone is trained and evaluated with."""
    return config["backbones"][backbone]["template"]


def baseline_template(config: dict, baseline: str, bench: str) -> str:
    spec = config["baselines"][baseline]
    return spec["benchmark_templates"].get(bench, spec["template"])


def _distillations(exp: dict) -> list[tuple[DistillRun, list[str]]]:
    """An experiment's distillation runs (backbone x student x method) and the benchmarks each
    is evaluated on (``distillation.benchmarks``, else the experiment's)."""
    spec = exp.get("distillation")
    if not spec:
        return []
    benches = spec.get("benchmarks") or exp["benchmarks"]
    return [(DistillRun(backbone, exp["teacher"], exp["pool"], exp["training_profile"], student, method), benches)
            for backbone in exp["backbones"] for student in spec["students"] for method in spec["methods"]]


def _distinct(items) -> list:
    """``items`` without repeats, in first-seen order."""
    return list(dict.fromkeys(items))


@dataclass(frozen=True)
class Plan:
    """Every evaluation the experiments ask for; the other job lists derive from them."""

    config: dict
    evaluations: tuple[Evaluation, ...]
    baseline_evaluations: tuple[BaselineEvaluation, ...] = ()
    model_evaluations: tuple[ModelEvaluation, ...] = ()
    # The RL runs' evaluations (checkpoint rl-{rl_run}); not in the report manifest yet.
    rl_evaluations: tuple[Evaluation, ...] = ()
    distill_evaluations: tuple[DistillEvaluation, ...] = ()

    @classmethod
    def from_config(cls, config: dict) -> Plan:
        evaluations, rl_evaluations, distilled = [], [], []
        for name, exp in config["experiments"].items():
            checkpoints = profile_settings(config, exp["training_profile"])["checkpoints"]
            points = [("final", None, exp["benchmarks"])]
            points += [(f"ckpt-{n}", n, exp["checkpoint_benchmarks"]) for n in checkpoints]
            for backbone in exp["backbones"]:
                for variant in exp["variants"]:
                    run = Run(backbone, exp["teacher"], exp["pool"], exp["training_profile"], variant)
                    evaluations += [Evaluation(name, run, checkpoint, seen, bench)
                                    for checkpoint, seen, benches in points for bench in benches]
            for backbone in exp["backbones"] if exp["rl_runs"] else ():
                start = Run(backbone, exp["teacher"], exp["pool"], exp["training_profile"], exp["rl_from"])
                rl_evaluations += [Evaluation(name, start, rl_checkpoint(rl_run), None, bench)
                                   for rl_run in exp["rl_runs"] for bench in exp["benchmarks"]]
            distilled += [DistillEvaluation(name, run, bench) for run, benches in _distillations(exp)
                          for bench in benches]
        baselines = [BaselineEvaluation(name, bench) for name, spec in config["baselines"].items()
                     for bench in spec["benchmarks"]]
        models = [ModelEvaluation(name, bench) for name, spec in config["evaluations"].items()
                  for bench in spec["benchmarks"]]
        return cls(config, tuple(evaluations), tuple(baselines), tuple(models), tuple(rl_evaluations),
                   tuple(distilled))

    # ---- the distinct jobs -----------------------------------------------------------

    @property
    def runs(self) -> list[Run]:
        return _distinct(e.run for e in self.evaluations)

    @property
    def distill_runs(self) -> list[DistillRun]:
        """Every distillation run the experiments' ``distillation`` entries ask for (each backbone
        x student x method), each once (``snakemake distill`` trains them; ``all`` evaluates them)."""
        return _distinct(e.run for e in self.distill_evaluations)

    @property
    def distill_evaluation_jobs(self) -> list[DistillEvaluation]:
        return list({e.path: e for e in self.distill_evaluations}.values())

    @property
    def rl_runs(self) -> list[RLRun]:
        return _distinct(RLRun(e.run, rl_run_of(e.checkpoint)) for e in self.rl_evaluations)

    @property
    def rl_eval_paths(self) -> list[str]:
        """The RL runs' verdict tables (targets of `rule all`; the report does not read them yet)."""
        return _distinct(e.path for e in self.rl_evaluations)

    def rl_gpus(self, rl_run: str) -> int:
        return rl_settings(self.config, rl_run)["num_gpus"]

    def rl_resources(self, rl_run: str) -> dict:
        return rl_settings(self.config, rl_run)["resources"]

    @property
    def evaluation_jobs(self) -> list[Evaluation]:
        """One per evaluation job: the manifest lists a job once per experiment that asks for it."""
        return list({e.path: e for e in self.evaluations}.values())

    @property
    def eval_paths(self) -> list[str]:
        """Every verdict table the report reads: the trained models' and the baselines'."""
        return [e.path for e in (*self.evaluation_jobs, *self.baseline_evaluations, *self.model_evaluations,
                                 *self.distill_evaluation_jobs)]

    @property
    def sampling_pairs(self) -> list[tuple[str, str]]:
        return _distinct((exp["teacher"], exp["pool"]) for exp in self.config["experiments"].values())

    @property
    def fused_datasets(self) -> list[tuple[str, str, str]]:
        """(teacher, pool, variant) of every fused dataset, in the order experiments name them."""
        return _distinct((exp["teacher"], exp["pool"], variant)
                         for exp in self.config["experiments"].values() for variant in exp["variants"])

    def export_templates(self, teacher: str, pool: str, variant: str) -> list[str]:
        """The templates whose system prompt an export of this fused dataset carries: the config's
        ``export.template``, else the template of every backbone trained on it (one export each)."""
        chosen = self.config["export"]["template"]
        if chosen is not None:
            return [chosen]
        return _distinct(backbone_template(self.config, run.backbone) for run in self.runs
                         if (run.teacher, run.pool, run.variant) == (teacher, pool, variant))

    @property
    def exports(self) -> list[dict]:
        """The wildcards (teacher, pool, variant, template, format) of every exported file."""
        return [{"teacher": teacher, "pool": pool, "variant": variant, "template": template, "format": fmt}
                for teacher, pool, variant in self.fused_datasets if variant_kind(self.config, variant) != REFLECT
                for template in self.export_templates(teacher, pool, variant)
                for fmt in self.config["export"]["formats"]]

    @property
    def calibrations(self) -> list[tuple[str, str, str]]:
        """(teacher, pool, variant) of every calibrated alpha a fused dataset uses."""
        return _distinct((teacher, pool, source) for teacher, pool, variant in self.fused_datasets
                         if (source := self.alpha_source(variant)))

    @property
    def models(self) -> list[str]:
        teachers = [self.config["teachers"][teacher]["model"] for teacher, _ in self.sampling_pairs]
        backbones = [self.config["backbones"][run.backbone]["model"] for run in self.runs]
        baselines = [baseline_model(self.config, e.baseline) for e in self.baseline_evaluations]
        evaluated = [model for e in self.config["evaluations"] if (model := evaluation_model(self.config, e))]
        return _distinct(teachers + backbones + baselines + evaluated)

    @property
    def benchmarks(self) -> list[str]:
        return _distinct(e.benchmark for e in (*self.evaluations, *self.baseline_evaluations,
                                               *self.model_evaluations, *self.distill_evaluations))

    def alpha_source(self, variant: str) -> str | None:
        """The variant whose calibrated alpha ``variant`` uses; None for a fixed alpha or RFT."""
        spec = self.config["fusion"]["variants"][variant]
        if variant_kind(self.config, variant) == REFLECT or spec["k_max"] == 0:
            return None
        return variant if "alpha_target" in spec else spec.get("alpha_from")

    # ---- GPUs per job, for the rules' resources and the cost table ----------------------

    def sampling_gpus(self, teacher: str) -> int:
        return generation_gpus(self.config["teachers"][teacher])

    def evaluation_gpus(self) -> int:
        return generation_gpus(self.config["evaluation"])

    def sampling_env(self, teacher: str) -> str:
        return generation_env(self.config["teachers"][teacher])

    def evaluation_env(self) -> str:
        return generation_env(self.config["evaluation"])

    def training_gpus(self, profile: str) -> int:
        return profile_settings(self.config, profile)["num_gpus"]

    def training_resources(self, profile: str) -> dict:
        """A training job's ``cpus_per_task``, ``mem_mb`` and ``runtime``: the training block's
        resources overridden key by key by the profile's own."""
        own = self.config["training_profiles"][profile].get("resources", {})
        return {**self.config["training"]["resources"], **own}

    def training_threads(self, profile: str) -> int:
        return self.training_resources(profile)["cpus_per_task"]

    def gpu_patterns(self) -> list[list]:
        """[cost-file pattern, GPUs per job] pairs, relative to ``COST``; other jobs use none."""
        patterns = [["evaluate/*", self.evaluation_gpus()]]
        patterns += [[f"sample/{teacher}/*", self.sampling_gpus(teacher)] for teacher in self.config["teachers"]]
        patterns += [[f"train/*/*/*/{profile}/*", self.training_gpus(profile)]
                     for profile in self.config["training_profiles"]]
        patterns += [["distill/*", self.config["distillation"]["num_gpus"]]]
        return patterns

    def cost_files(self) -> list[str]:
        """The ``benchmark:`` file of every job the report depends on, relative to ``COST``."""
        shards = range(self.config["sampling"]["shards"])
        pairs = [{"teacher": teacher, "pool": pool} for teacher, pool in self.sampling_pairs]
        jobs = [("build_pool", {"pool": pool}) for pool in _distinct(p["pool"] for p in pairs)]
        jobs += [("prepare_benchmark", {"bench": bench}) for bench in self.benchmarks]
        jobs += [("prepare_model", {"model": model}) for model in self.models]
        jobs += [("sample", {**pair, "shard": shard}) for pair in pairs for shard in shards]
        jobs += [(job, pair) for job in ("merge_samples", "verify", "stats") for pair in pairs]
        jobs += [("calibrate_alpha", dict(zip(("teacher", "pool", "variant"), key))) for key in self.calibrations]
        jobs += [(variant_kind(self.config, key[2]), dict(zip(("teacher", "pool", "variant"), key)))
                 for key in self.fused_datasets]
        jobs += [("train", run.wildcards()) for run in self.runs]
        jobs += [("evaluate", e.wildcards()) for e in self.evaluation_jobs]
        jobs += [("evaluate_baseline", e.wildcards()) for e in self.baseline_evaluations]
        jobs += [("evaluate_model", e.wildcards()) for e in self.model_evaluations]
        jobs += [("distill", run.wildcards()) for run in self.distill_runs]
        jobs += [("evaluate_distilled", e.wildcards()) for e in self.distill_evaluation_jobs]
        return [f"{JOBS[job]}.tsv".format(**wildcards) for job, wildcards in jobs]

    # ---- what the report reads ---------------------------------------------------------

    def fusion_summaries(self) -> list[dict]:
        summaries = []
        for teacher, pool, variant in self.fused_datasets:
            spec = self.config["fusion"]["variants"][variant]
            summaries.append({"teacher": teacher, "pool": pool, "variant": variant,
                              "variant_label": spec.get("label", variant), "k_max": spec.get("k_max", 0),
                              "strategy": spec["strategy"],
                              "path": path("fusion_summary", teacher=teacher, pool=pool, variant=variant)})
        return summaries

    def stats(self) -> list[dict]:
        return [{"teacher": teacher, "pool": pool, "path": path("stats", teacher=teacher, pool=pool)}
                for teacher, pool in self.sampling_pairs]

    def eval_entry(self, evaluation: Evaluation) -> dict:
        """An evaluation with the labels the report's tables and figures group it by."""
        exp = self.config["experiments"][evaluation.experiment]
        run = evaluation.run
        variant = self.config["fusion"]["variants"][run.variant]
        return {**run.wildcards(), "experiment": evaluation.experiment,
                "tables": [exp.get("table") or results_table(evaluation.experiment), *exp["figures"]],
                "method": variant_method(self.config, run.variant),
                "variant_label": variant.get("label", run.variant),
                "backbone_label": self.config["backbones"][run.backbone].get("label", run.backbone),
                "data_size": exp.get("data_size", exp["pool"]), "context": exp["context"],
                "checkpoint": evaluation.checkpoint, "samples_seen": evaluation.samples_seen,
                "benchmark": evaluation.benchmark, "path": evaluation.path,
                "train_meta": path("train_meta", **run.wildcards())}

    def distill_label(self, run: DistillRun) -> str:
        """``TOPD (from TrajFusion)``: the method and where the student started."""
        start = "base model" if run.sft_run is None else \
            self.config["fusion"]["variants"][run.student].get("label", run.student)
        return f"{DISTILL_METHOD_LABELS[run.method]} (from {start})"

    def distill_eval_entry(self, evaluation: DistillEvaluation) -> dict:
        """A distilled model's evaluation, in its experiment's table beside the SFT runs (no
        figures: it has no checkpoints); ``variant`` is ``student/method``, so it matches no
        fusion summary."""
        exp = self.config["experiments"][evaluation.experiment]
        run = evaluation.run
        return {"backbone": run.backbone, "teacher": run.teacher, "pool": run.pool, "profile": run.profile,
                "experiment": evaluation.experiment,
                "tables": [exp.get("table") or results_table(evaluation.experiment)],
                "method": run.method, "variant": f"{run.student}/{run.method}",
                "variant_label": self.distill_label(run),
                "backbone_label": self.config["backbones"][run.backbone].get("label", run.backbone),
                "data_size": exp.get("data_size", exp["pool"]), "context": exp["context"],
                "checkpoint": "final", "samples_seen": None, "benchmark": evaluation.benchmark,
                "path": evaluation.path}

    def distill_diagnostics(self) -> list[dict]:
        """Each experiment's distillation runs with their ``diagnostics.jsonl`` (the report's
        diagnostics figure and table)."""
        return list({(e.experiment, e.run): {
            "experiment": e.experiment, "backbone": e.run.backbone, "student": e.run.student,
            "method": e.run.method, "label": self.distill_label(e.run),
            "path": path("distill_diagnostics", **e.run.wildcards())} for e in self.distill_evaluations}.values())

    def distill_figures(self) -> list[str]:
        """The diagnostics figure (and table) of each experiment with distillation runs."""
        return _distinct(distill_report(e.experiment) for e in self.distill_evaluations)

    def distill_tables(self) -> list[str]:
        """The diagnostics tables and, with distilled models, their paired tests."""
        return self.distill_figures() + ([DISTILL_SIGNIFICANCE] if self.distill_evaluations else [])

    def model_evaluation_entry(self, evaluation: ModelEvaluation) -> dict:
        """An `evaluations:` entry on one benchmark, for the report's evaluations table."""
        spec = self.config["evaluations"][evaluation.evaluation]
        found = evaluation_run(self.config, evaluation.evaluation)
        model = "/".join(found[0].wildcards().values()) + f"/{found[1]}" if found else \
            evaluation_model(self.config, evaluation.evaluation)
        return {"experiment": f"evaluation:{evaluation.evaluation}", "tables": ["evaluations"],
                "backbone": model, "backbone_label": spec.get("label", model), "variant": evaluation.evaluation,
                "method": EVALUATED_METHOD, "pool": "", "data_size": None, "context": "",
                "checkpoint": found[1] if found else "final", "samples_seen": None,
                "benchmark": evaluation.benchmark, "path": evaluation.path}

    def baseline_entry(self, evaluation: BaselineEvaluation) -> dict:
        """A baseline's evaluation with the labels Table 1 groups and matches it by: no pool,
        variant or context (nothing was trained), the backbone whose row group it joins."""
        spec = self.config["baselines"][evaluation.baseline]
        backbone = self.config["backbones"][spec["backbone"]]
        return {"experiment": f"baseline:{evaluation.baseline}", "tables": list(spec["tables"]),
                "backbone": spec["backbone"], "backbone_label": backbone.get("label", spec["backbone"]),
                "variant": evaluation.baseline, "variant_label": spec.get("label", evaluation.baseline),
                "method": spec["method"], "pool": "", "data_size": spec["data_size"], "context": "",
                "checkpoint": "final", "samples_seen": None, "benchmark": evaluation.benchmark,
                "path": evaluation.path}

    def results_tables(self) -> list[str]:
        """The results tables of the experiments without `table:` (one each) and, with
        `evaluations:`, the evaluations table."""
        own = [results_table(name) for name, exp in self.config["experiments"].items() if not exp.get("table")]
        return own + (["evaluations"] if self.model_evaluations else [])

    def reflection_metrics(self) -> list[dict]:
        """The experiments with `reflection_metrics:` and their Pass@k list, in config order."""
        return [{"experiment": name, "pass_k": list(exp["reflection_metrics"]["pass_k"])}
                for name, exp in self.config["experiments"].items() if exp.get("reflection_metrics") is not None]

    def reflection_tables(self) -> list[str]:
        return [reflection_table(spec["experiment"]) for spec in self.reflection_metrics()]

    def manifest(self) -> dict:
        """The report manifest (trajfusion.report's input) without its run-time provenance;
        ``reflection_metrics`` only when an experiment asks for them."""
        reflection = self.reflection_metrics()
        return {"evals": [self.eval_entry(e) for e in self.evaluations]
                + [self.baseline_entry(e) for e in self.baseline_evaluations]
                + [self.model_evaluation_entry(e) for e in self.model_evaluations]
                + [self.distill_eval_entry(e) for e in self.distill_evaluations],
                "fusion_summaries": self.fusion_summaries(), "stats": self.stats(),
                "distill_runs": self.distill_diagnostics(),
                "smoke_test": self.config["smoke_test"], **({"reflection_metrics": reflection} if reflection else {})}

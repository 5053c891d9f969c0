"""Settings declared once for the training, model and data stages: TrainSettings (and TrainJob),
ModelSettings, PoolSettings, BenchmarkSettings; and the rules' settings built from every
shipped config."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import yaml

from trajfusion import data, model, train
from trajfusion.data.settings import BenchmarkSettings, PoolSettings
from trajfusion.io import InputError
from trajfusion.model.settings import ModelSettings
from trajfusion.train import TrainJob, TrainSettings

REPO = Path(__file__).resolve().parents[1]
CONFIGS = [REPO / "config" / "config.yaml", REPO / "config" / "paper.yaml", REPO / "tests" / "e2e" / "config.yaml",
           REPO / "tests" / "reliability" / "config.yaml"]
# Keys of the config's `training` section that are not training settings: the DeepSpeed config is
# an input file (the --deepspeed flag), the eval_* keys belong to evaluation.
# Config keys of a training profile that reach the rule, not `trajfusion train` (resources: the SLURM job size).
NOT_TRAIN_SETTINGS = {"deepspeed", "eval_max_new_tokens", "eval_max_model_len", "resources"}
REQUIRED = {"template": "chat", "epochs": 1, "learning_rate": 1e-4, "per_device_batch_size": 1, "grad_accum": 1,
            "max_length": 64, "precision": "fp32", "seed": 0}


def parse(register, command: str, *argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args([command, *map(str, argv)])


def train_job(*argv: str) -> TrainJob:
    return TrainJob.from_args(parse(train.register, "train", "--model", "m", "--dataset", "d.jsonl",
                                    "--output-dir", "out", *argv))


# -- the rules' settings, from the config ------------------------------------------------------

def train_rule_settings(config: dict, profile: str, backbone: str) -> dict:
    return TrainSettings.pick(config["training"], config["training_profiles"][profile],
                              {"seed": config["seed"], "template": config["backbones"][backbone]["template"]})


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_config_gives_valid_stage_settings(path):
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    names = {name for name in TrainSettings.defaults()} | set(REQUIRED)
    for profile, overrides in config["training_profiles"].items():
        assert set(config["training"]) | set(overrides) <= names | NOT_TRAIN_SETTINGS, profile
        for backbone in config["backbones"]:
            TrainSettings.from_dict(train_rule_settings(config, profile, backbone))
    for entry in config["benchmarks"].values():
        BenchmarkSettings.from_dict(BenchmarkSettings.pick(entry, {"seed": config["seed"]}))
    for spec in config["models"].values():
        ModelSettings.from_dict({"spec": spec, "seed": config["seed"]})
    for spec in config["pools"].values():
        PoolSettings.from_dict({"spec": spec, "seed": config["seed"]})


# -- train ------------------------------------------------------------------------------------

def test_train_defaults_are_declared_once():
    defaults = TrainSettings.defaults()
    assert defaults["num_gpus"] == 1  # the schema default: what the rule requests from SLURM and the cost table counts
    assert (defaults["packing"], defaults["checkpoints"], defaults["rope_scaling"]) == (True, (), None)
    assert set(REQUIRED) == {name for name in TrainSettings.__dataclass_fields__} - set(defaults)
    with pytest.raises(InputError, match=r"missing required setting\(s\) \['--template'"):
        train_job()


def test_train_flags_override_the_settings_json():
    settings_json = json.dumps({**REQUIRED, "epochs": 3, "checkpoints": [16, 8, 8],
                                "rope_scaling": {"rope_type": "yarn", "factor": 2.0}})
    job = train_job("--settings", settings_json, "--epochs", "2", "--no-packing")
    settings = job.settings
    assert (settings.epochs, settings.packing, settings.checkpoints) == (2.0, False, (8, 16))
    assert settings.rope_scaling == {"rope_type": "yarn", "factor": 2.0}
    relaunched = TrainJob.from_args(parse(train.register, "train", *job.to_argv()))
    assert relaunched == job  # the relaunch's --settings carries every setting


def test_train_provenance_leaves_out_what_cannot_change_the_weights():
    settings = TrainSettings(**REQUIRED)
    left_out = set(settings.to_dict()) - set(settings.provenance())
    assert left_out == {"logging_steps", "save_steps", "save_total_limit", "keep_trainer_checkpoints",
                        "main_process_port", "report_to"}
    assert TrainSettings(**REQUIRED, save_steps=7).provenance() == settings.provenance()


def test_train_job_keeps_paths_out_of_the_settings(tmp_path):
    job = train_job(*sum(([f"--{k.replace('_', '-')}", v] for k, v in REQUIRED.items()), []),
                    "--deepspeed", tmp_path / "ds.json")
    assert job.inputs() == {"model": "m", "dataset": "d.jsonl", "deepspeed": str(tmp_path / "ds.json")}
    assert not {"model", "dataset", "output_dir", "deepspeed"} & set(job.settings.to_dict())
    assert job.to_argv()[-2:] == ["--deepspeed", str(tmp_path / "ds.json")]


@pytest.mark.parametrize("change, message", [
    ({"checkpoints": "8,0"}, "--checkpoints: '0' is not a positive integer example count"),
    ({"checkpoints": [8, True]}, "--checkpoints: True is not a positive integer example count"),
    ({"rope_scaling": {"factor": 2.0}}, "--rope-scaling: expected a JSON object with a 'rope_type', got"),
    ({"rope_scaling": "[1]"}, "--rope-scaling: expected a JSON object, got list"),
    ({"warmup_ratio": 1.0}, r"--warmup-ratio: must be in \[0, 1\), got 1.0"),
    ({"max_steps": 0}, "--max-steps: must be positive or -1, got 0"),
    ({"precision": "fp16"}, r"--precision: expected one of \['fp32', 'bf16'\], got 'fp16'"),
    ({"num_gpus": -1}, "--num-gpus: must be at least 0, got -1"),
    ({"lr_scheduler": "step"}, "--lr-scheduler: expected one of"),
    ({"learning_rate": 0}, "--learning-rate: must be positive, got 0.0"),
])
def test_bad_train_settings_name_the_flag(change, message):
    with pytest.raises(InputError, match=message):
        TrainSettings.from_dict({**REQUIRED, **change})


# -- model and data -----------------------------------------------------------------------------

def test_prepare_model_settings_from_flags_or_json():
    spec = {"source": "hub", "hub_id": "org/name"}
    flags = ModelSettings.from_args(parse(model.register, "prepare-model", "--spec", json.dumps(spec), "--output", "o"))
    assert flags == ModelSettings(spec=spec, seed=0)
    as_json = parse(model.register, "prepare-model", "--settings", json.dumps({"spec": spec, "seed": 3}),
                    "--output", "o")
    # the hub cache mode's default is filled in, so the provenance names it
    assert ModelSettings.from_args(as_json).provenance() == {"spec": {**spec, "cache": "hub"}, "seed": 3}
    with pytest.raises(InputError, match=r"--spec: field 'path' \(a non-empty string\) is required for source"):
        ModelSettings(spec={"source": "local"})


def test_pool_settings_hold_the_spec_and_seed():
    spec = {"sources": [{"name": "synthetic_arith"}]}
    args = parse(data.register, "build-pool", "--spec", json.dumps(spec), "--seed", "4", "--data-dir", "d",
                 "--output", "p.parquet", "--report", "r.json")
    assert PoolSettings.from_args(args).provenance() == {"spec": spec, "seed": 4, "datasets": None,
                                                         "own_benchmarks": None}
    with pytest.raises(InputError, match=r"missing required setting\(s\) \['--seed'\]"):
        PoolSettings.from_dict({"spec": spec})
    with pytest.raises(InputError, match="--spec: expected a JSON object, got list"):
        PoolSettings(spec="[1]", seed=0)


@pytest.mark.parametrize("values, selection", [({}, "all"), ({"limit": 3}, "random"),
                                                ({"limit": 3, "select": "shortest"}, "shortest")])
def test_benchmark_selection_defaults(values, selection):
    assert BenchmarkSettings(**values).selection == selection


@pytest.mark.parametrize("values, message", [
    ({"limit": 0}, "--limit: must be positive, got 0"),
    ({"select": "first"}, r"--select: expected one of \['all', 'random', 'shortest'\], got 'first'"),
    ({"limit": 5, "select": "all"}, "--select all cannot be combined with --limit 5"),
    ({"keep_pictures": "yes"}, "--keep-pictures: expected true or false, got 'yes'"),
])
def test_bad_benchmark_settings_name_the_flag(values, message):
    with pytest.raises(InputError, match=message):
        BenchmarkSettings(**values)

"""The settings of the generating stages: ``GenerationSettings`` declared once and extended by
``SampleSettings`` and ``EvaluateSettings`` (plus ``MergeSettings``), the backend defaults in
one table, the backend options they pass, provenance, and the rules' ``--settings`` objects."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import logging

import pytest

from trajfusion.evaluate.settings import EvaluateSettings
from trajfusion.io import InputError
from trajfusion.sample.backends.hf import HFBackend
from trajfusion.sample.backends.openai import OpenAIBackend
from trajfusion.sample.backends.options import BACKEND_DEFAULTS, GenerationSettings, for_backend
from trajfusion.sample.backends.vllm import VLLMBackend
from trajfusion.sample.settings import MergeSettings, SampleSettings

GENERATION = {"template": "chat", "backend": "hf", "temperature": 0.7, "top_p": 0.95, "max_new_tokens": 8,
              "seed": 13}
SAMPLE = {**GENERATION, "teacher": "tiny", "num_shards": 2, "k": 4}
EVALUATE = {**GENERATION, "samples": 2}

# The flags of sample and evaluate before their settings were declared as dataclasses.
SHARED_FLAGS = ["--template", "--backend", "--temperature", "--top-p", "--max-new-tokens", "--seed",
                "--batch-size", "--dtype", "--device", "--threads", "--trust-remote-code",
                "--tensor-parallel-size", "--max-model-len", "--gpu-memory-utilization"]
OPENAI_FLAGS = ["--base-url", "--served-model", "--api-key-env", "--concurrency", "--max-retries", "--retry-backoff",
                "--request-timeout", "--prompt-format", "--per-sample-requests"]
SHARED_FLAGS += OPENAI_FLAGS
SAMPLE_FLAGS = [*SHARED_FLAGS, "--pool", "--model", "--teacher", "--num-shards", "--shard", "--k", "--output"]
EVALUATE_FLAGS = [*SHARED_FLAGS, "--model", "--benchmark", "--samples", "--workers", "--timeout", "--phrases",
                  "--output"]


def names(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def parser_of(command: str) -> argparse.ArgumentParser:
    from trajfusion.evaluate import cli as evaluate_cli
    from trajfusion.sample import cli as sample_cli

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    (sample_cli if command == "sample" else evaluate_cli).register(sub)
    return sub.choices[command]


def parse(cls, *argv: str):
    parser = argparse.ArgumentParser()
    cls.add_arguments(parser)
    return cls.from_args(parser.parse_args(list(argv)))


def test_generation_settings_are_declared_once_and_extended():
    shared = names(GenerationSettings)
    assert shared <= names(SampleSettings) and shared <= names(EvaluateSettings)
    assert names(MergeSettings) <= names(SampleSettings)
    for cls in (SampleSettings, EvaluateSettings, MergeSettings):
        assert not set(cls.__annotations__) & shared, f"{cls.__name__} redeclares a generation setting"
    assert set(SampleSettings.__annotations__) == {"teacher", "num_shards"}
    assert "shard" not in names(SampleSettings)  # which part of the work, not how: a plain flag


@pytest.mark.parametrize("command, flags", [("sample", SAMPLE_FLAGS), ("evaluate", EVALUATE_FLAGS)])
def test_every_flag_is_kept(command, flags):
    options = set(parser_of(command)._option_string_actions)
    assert set(flags) | {"--settings"} <= options


def test_backend_defaults_are_the_constructors_defaults():
    for name, backend in (("hf", HFBackend), ("vllm", VLLMBackend), ("openai", OpenAIBackend)):
        parameters = inspect.signature(backend).parameters
        tuning = set(parameters) - {"model_dir", "seed", "trust_remote_code", "progress"}
        assert tuning == set(BACKEND_DEFAULTS[name])
        assert {option: parameters[option].default for option in tuning} == BACKEND_DEFAULTS[name]


def test_help_shows_each_backends_default():
    text = " ".join(parser_of("sample").format_help().split())
    assert "prompts per generate call (unset: hf 8; vllm all prompts at once; openai 32)" in text
    assert "(vllm only; unset: 0.9)" in text and "(hf only; unset: cuda if available, else cpu)" in text
    assert "requests in flight at once (openai only; unset: 8)" in text
    assert "(openai only; unset: the --model directory as given" in text


def test_settings_json_and_flags_build_the_same_object():
    from_flags = parse(SampleSettings, "--template", "chat", "--temperature", "0.7", "--top-p", "0.95",
                       "--max-new-tokens", "8", "--seed", "13", "--teacher", "tiny", "--num-shards", "2",
                       "--k", "4", "--batch-size", "3")
    from_json = parse(SampleSettings, "--settings", SampleSettings(**SAMPLE, batch_size=5).to_json(),
                      "--batch-size", "3")
    assert from_flags == from_json and from_json.batch_size == 3
    assert isinstance(from_json.temperature, float)


def test_unset_backend_options_are_left_to_the_backend():
    assert GenerationSettings(**GENERATION).backend_options() == {"trust_remote_code": False}
    vllm = GenerationSettings(**{**GENERATION, "backend": "vllm"}, max_model_len=4096)
    assert vllm.backend_options() == {"max_model_len": 4096, "seed": 13, "trust_remote_code": False}


def test_openai_options_reach_the_openai_backend_only(caplog):
    settings = GenerationSettings(**{**GENERATION, "backend": "openai"}, base_url="http://127.0.0.1:9/v1",
                                  concurrency=2, per_sample_requests=True, batch_size=4)
    assert settings.backend_options() == {"batch_size": 4, "base_url": "http://127.0.0.1:9/v1", "concurrency": 2,
                                          "per_sample_requests": True, "trust_remote_code": False}
    with caplog.at_level(logging.WARNING):
        hf = GenerationSettings(**GENERATION, concurrency=2).backend_options()
    assert hf == {"trust_remote_code": False} and "backend hf ignores option(s) ['concurrency']" in caplog.text
    section = {"backend": "openai", "base_url": "http://h:1/v1", "dtype": "float32", "served_model": "m"}
    assert for_backend(section) == {"backend": "openai", "base_url": "http://h:1/v1", "served_model": "m"}
    assert for_backend({**section, "backend": "hf"}) == {"backend": "hf", "dtype": "float32"}


def test_options_the_backend_does_not_take_are_left_out_with_a_warning(caplog):
    settings = EvaluateSettings(**EVALUATE, device="cpu", threads=1, gpu_memory_utilization=0.5,
                                tensor_parallel_size=2)
    with caplog.at_level(logging.WARNING):
        assert settings.backend_options() == {"device": "cpu", "threads": 1, "trust_remote_code": False}
    assert "backend hf ignores option(s) ['gpu_memory_utilization', 'tensor_parallel_size']" in caplog.text


def test_provenance_leaves_out_how_the_work_is_run():
    sample = SampleSettings(**SAMPLE, threads=2)
    assert "threads" not in sample.provenance() and sample.to_dict()["threads"] == 2
    assert sample.provenance()["device"] is None  # the device can change numerics
    evaluate = EvaluateSettings(**EVALUATE, workers=4)
    assert "workers" not in evaluate.provenance() and evaluate.provenance()["timeout"] == 5.0
    assert EvaluateSettings(**EVALUATE, workers=0).provenance() == evaluate.provenance()
    # Where the server is and how it is asked leave the samples as they are; the model it serves does not.
    served = SampleSettings(**{**SAMPLE, "backend": "openai"}, base_url="http://h:1/v1", api_key_env="KEY",
                            concurrency=4, max_retries=1, retry_backoff=0.5, request_timeout=9, served_model="m")
    assert served.provenance() == SampleSettings(**{**SAMPLE, "backend": "openai"}, served_model="m").provenance()
    assert served.provenance()["served_model"] == "m" and served.shard_block() == 1


@pytest.mark.parametrize("cls, values, message", [
    (SampleSettings, {**SAMPLE, "k": 0}, "--k: must be at least 1, got 0"),
    (SampleSettings, {**SAMPLE, "num_shards": 0}, "--num-shards: must be at least 1, got 0"),
    (SampleSettings, {**SAMPLE, "top_p": 1.5}, "--top-p: must be in (0, 1], got 1.5"),
    (SampleSettings, {**SAMPLE, "temperature": -1}, "--temperature: must be at least 0, got -1.0"),
    (SampleSettings, {**SAMPLE, "dtype": "fp7"},
     "--dtype: expected one of ['float32', 'bfloat16', 'float16', 'auto'], got 'fp7'"),
    (SampleSettings, {**SAMPLE, "backend": "tgi"}, "--backend: expected one of ['hf', 'vllm', 'openai'], got 'tgi'"),
    (SampleSettings, {**SAMPLE, "prompt_format": "ids"}, "--prompt-format: expected one of ['text', 'tokens']"),
    (SampleSettings, {**SAMPLE, "concurrency": 0}, "--concurrency: must be at least 1, got 0"),
    (SampleSettings, {**SAMPLE, "request_timeout": 0}, "--request-timeout: must be positive, got 0.0"),
    (SampleSettings, {**SAMPLE, "batch_size": 0}, "--batch-size: must be at least 1, got 0"),
    (EvaluateSettings, {**EVALUATE, "samples": 0}, "--samples: must be at least 1, got 0"),
    (EvaluateSettings, {**EVALUATE, "timeout": 0}, "--timeout: must be positive, got 0.0"),
    (EvaluateSettings, {**EVALUATE, "gpu_memory_utilization": 2}, "--gpu-memory-utilization: must be in (0, 1]"),
    (EvaluateSettings, {k: v for k, v in EVALUATE.items() if k != "template"},
     "--settings: missing required setting(s) ['--template']"),
    (MergeSettings, {"k": 2, "shards": 2}, "--settings: unknown setting(s) ['shards']"),
])
def test_bad_settings_name_the_flag(cls, values, message):
    with pytest.raises(InputError) as caught:
        cls.from_dict(values)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


# The e2e configuration's sections, and the rules' settings objects built from them (see the
# expressions reported for rules/sample.smk and rules/evaluate.smk).
CONFIG = {"seed": 0, "sampling": {"k": 6, "shards": 2, "temperature": 1.0, "top_p": 0.95},
          "teachers": {"tiny": {"backend": "hf", "batch_size": 10, "dtype": "float32", "max_new_tokens": 16,
                                "model": "tiny", "template": "chat"}},
          "evaluation": {"backend": "hf", "batch_size": 8, "dtype": "float32", "max_new_tokens": 16, "threads": 2,
                         "samples": {"aime24": 2, "default": 1}, "temperature": 0.6, "top_p": 0.95},
          "backbones": {"tiny": {"model": "tiny", "template": "chat"}}}


def test_the_rules_settings_objects_build_from_the_config():
    sampling = CONFIG["sampling"]
    sample = SampleSettings.from_dict(SampleSettings.pick(
        CONFIG["teachers"]["tiny"], sampling,
        {"num_shards": sampling["shards"], "teacher": "tiny", "seed": CONFIG["seed"]}))
    assert (sample.k, sample.num_shards, sample.batch_size, sample.dtype) == (6, 2, 10, "float32")
    assert MergeSettings.from_dict(MergeSettings.pick(sampling)).k == 6
    e = CONFIG["evaluation"]
    evaluate = EvaluateSettings.from_dict(EvaluateSettings.pick(
        e, {"samples": e["samples"].get("aime24", e["samples"]["default"]), "max_new_tokens": 16,
            "template": CONFIG["backbones"]["tiny"]["template"], "seed": CONFIG["seed"]}))
    assert (evaluate.samples, evaluate.threads, evaluate.timeout, evaluate.template) == (2, 2, 5.0, "chat")


def test_the_schema_states_the_openai_defaults_the_backend_uses():
    """The schema describes each openai option with its unset value; those values live in
    BACKEND_DEFAULTS, so the descriptions are checked against them."""
    from pathlib import Path

    import yaml

    schema = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "schema.yaml").read_text())
    for option, default in BACKEND_DEFAULTS["openai"].items():
        if option == "batch_size" or default is None:
            continue
        whole = isinstance(default, float) and default.is_integer()
        shown = str(int(default)) if whole else str(default).lower()
        description = " ".join(schema["$defs"][option]["description"].split()).lower()
        assert f"unset: {shown}" in description, (option, description)
    from trajfusion.sample.backends.openai import MAX_DELAY

    assert f"at most {MAX_DELAY:g}" in schema["$defs"]["retry_backoff"]["description"]

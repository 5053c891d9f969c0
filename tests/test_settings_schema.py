"""config/schema.yaml and the stages' settings dataclasses declare the same defaults.

The schema fills in a default for a setting the config leaves out (the rules read one value),
and a stage's settings dataclass has its own default for a command run by hand; the two must
agree wherever both declare one. Each case names the schema object whose properties are (in
part) fields of a settings dataclass.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from trajfusion.data.settings import BenchmarkSettings
from trajfusion.distill.settings import DistillSettings
from trajfusion.evaluate.settings import EvaluateSettings
from trajfusion.export.settings import ExportSettings
from trajfusion.fuse.settings import FuseSettings
from trajfusion.reflect.settings import ReflectSettings
from trajfusion.report.settings import ReportSettings
from trajfusion.rl.settings import GRPOSettings
from trajfusion.sample.settings import SampleSettings
from trajfusion.settings import Settings
from trajfusion.train.settings import TrainSettings
from trajfusion.verify.settings import VerifySettings

SCHEMA = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "schema.yaml").read_text())

# (path of a schema object, the settings dataclass whose fields its properties set)
CASES = [
    (("properties", "benchmarks", "additionalProperties"), BenchmarkSettings),
    (("properties", "teachers", "additionalProperties"), SampleSettings),
    (("properties", "teachers", "additionalProperties"), VerifySettings),
    (("properties", "sampling"), SampleSettings),
    (("properties", "verify"), VerifySettings),
    (("properties", "fusion"), FuseSettings),
    (("$defs", "variant"), FuseSettings),
    (("properties", "reflect"), ReflectSettings),
    (("$defs", "training_settings"), TrainSettings),
    (("properties", "training"), TrainSettings),
    (("properties", "evaluation"), EvaluateSettings),
    (("properties", "report"), ReportSettings),
    (("properties", "export"), ExportSettings),
    (("properties", "distillation"), DistillSettings),
    (("properties", "rl"), GRPOSettings),
]

# Schema properties named like a settings field that are not that setting, each with the reason.
NOT_THE_SETTING = {
    ("properties", "evaluation", "threads"): "the evaluation job's CPUs (threads:), given to the command as "
                                             "--workers and OMP_NUM_THREADS, not the hf backend's torch threads",
}


def schema_node(path: tuple[str, ...]) -> dict:
    node = SCHEMA
    for key in path:
        node = node[key]
    return node


def shared_defaults(path: tuple[str, ...], cls: type[Settings]) -> list[tuple[str, object, object]]:
    """(name, schema default, dataclass default) of each property both declare a default for."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    shared = []
    for name, prop in schema_node(path).get("properties", {}).items():
        if name in fields and "default" in prop and (*path, name) not in NOT_THE_SETTING:
            shared.append((name, prop["default"], fields[name].default))
    return shared


@pytest.mark.parametrize("path, cls", CASES, ids=[".".join(p) for p, _ in CASES])
def test_schema_and_settings_defaults_agree(path, cls):
    for name, in_schema, in_dataclass in shared_defaults(path, cls):
        where = f"{'.'.join(path)}.{name}"
        assert in_dataclass is not dataclasses.MISSING, f"{where}: the schema has a default, {cls.__name__} has none"
        # a tuple default is a list in YAML
        expected = list(in_dataclass) if isinstance(in_dataclass, tuple) else in_dataclass
        assert in_schema == expected, f"{where}: schema {in_schema!r}, {cls.__name__} {in_dataclass!r}"


def test_every_case_compares_something():
    for path, cls in CASES:
        properties = schema_node(path).get("properties", {})
        assert set(properties) & {f.name for f in dataclasses.fields(cls)}, (path, cls)
    assert sum(len(shared_defaults(path, cls)) for path, cls in CASES) >= 10

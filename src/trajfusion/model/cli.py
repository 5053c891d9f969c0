"""``trajfusion prepare-model``: build a transformers model directory from a model source
(``trajfusion.model.prepare``)."""

from __future__ import annotations

import argparse
import json

from trajfusion.io import InputError
from trajfusion.model.prepare import prepare_model

# Fields each model source needs (config/schema.yaml checks the same for configs).
_REQUIRED_FIELDS = {"gguf_package": ("package", "gguf_file"), "tiny": ("package", "gguf_file"),
                    "hub": ("hub_id",), "local": ("path",)}


def parse_spec(text: str) -> dict:
    """The ``--spec`` JSON of a model source, with its source and required fields checked."""
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"--spec: malformed JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(spec, dict):
        raise InputError(f"--spec: expected a JSON object, got {text!r}")
    source = spec.get("source")
    if source not in _REQUIRED_FIELDS:
        raise InputError(f"--spec: field 'source' must be one of {list(_REQUIRED_FIELDS)}, got {source!r}")
    for field in _REQUIRED_FIELDS[source]:
        if not isinstance(spec.get(field), str) or not spec[field].strip():
            raise InputError(f"--spec: field {field!r} (a non-empty string) is required for source {source!r}")
    return spec


def run_prepare_model(args: argparse.Namespace) -> int:
    prepare_model(parse_spec(args.spec), args.output, seed=args.seed)
    return 0


def register(sub) -> None:
    parser = sub.add_parser("prepare-model", help="build a transformers model directory from a model source")
    parser.add_argument("--spec", required=True, help="JSON model spec (source, package/gguf_file, hub_id, config)")
    parser.add_argument("--output", required=True, help="output model directory")
    parser.add_argument("--seed", type=int, default=0, help="seed for random-init (tiny) models")
    parser.set_defaults(func=run_prepare_model)

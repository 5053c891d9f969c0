"""The ``reflect`` subcommand."""

from __future__ import annotations

import argparse

from trajfusion.reflect.build import reflect_file
from trajfusion.reflect.settings import ReflectSettings


def _run_reflect(args: argparse.Namespace) -> int:
    settings = ReflectSettings.from_args(args)
    reflect_file(args.input, args.output, args.summary, settings, args.model, args.prompt)
    return 0


def register(sub) -> None:
    from trajfusion import reflect as stage  # the package docstring states the rule

    p = sub.add_parser("reflect", help="build TAPO micro-reflective trajectories from a verified table",
                       description=stage.__doc__.splitlines()[0])
    p.add_argument("--input", required=True, help="verified table (.parquet or .jsonl)")
    p.add_argument("--output", required=True, help="micro-reflective dataset (.jsonl, the fused dataset's columns)")
    p.add_argument("--summary", required=True, help="summary JSON")
    p.add_argument("--model", help="constructor=model: the generation model's directory")
    p.add_argument("--prompt", help="constructor=model: prompt YAML (default: resources/reflect_prompt.yaml)")
    ReflectSettings.add_arguments(p)
    p.set_defaults(func=_run_reflect)

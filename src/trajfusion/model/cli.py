"""``trajfusion prepare-model``: build a transformers model directory from a model source
(``trajfusion.model.prepare``)."""

from __future__ import annotations

import argparse

from trajfusion.model.prepare import prepare_model
from trajfusion.model.settings import ModelSettings


def run_prepare_model(args: argparse.Namespace) -> int:
    settings = ModelSettings.from_args(args)
    prepare_model(settings.spec, args.output, seed=settings.seed)
    return 0


def register(sub) -> None:
    parser = sub.add_parser("prepare-model", help="build a transformers model directory from a model source")
    ModelSettings.add_arguments(parser)
    parser.add_argument("--output", required=True, help="output model directory")
    parser.set_defaults(func=run_prepare_model)

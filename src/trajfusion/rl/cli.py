"""``trajfusion grpo``: GRPO or TAPO-GRPO from a starting model on a training pool."""

from __future__ import annotations

import argparse

from trajfusion.rl.settings import GRPOJob, add_arguments


def register(sub) -> None:
    p = sub.add_parser("grpo", help="GRPO / TAPO-GRPO from a base model or an SFT checkpoint",
                       description=__doc__.splitlines()[0])
    add_arguments(p)
    p.set_defaults(func=run_grpo_command)


def run_grpo_command(args: argparse.Namespace) -> int:
    from trajfusion.rl.run import run_grpo

    run_grpo(GRPOJob.from_args(args))
    return 0

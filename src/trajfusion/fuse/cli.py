"""The ``fuse`` and ``calibrate-alpha`` subcommands."""

from __future__ import annotations

import argparse
import logging

from trajfusion.fuse.build import fuse_file
from trajfusion.fuse.calibrate import calibrate, calibration_record, read_alpha_file
from trajfusion.fuse.inputs import read_verified
from trajfusion.fuse.settings import STRATEGIES, FuseSettings, check_k_max
from trajfusion.io import InputError, write_json

log = logging.getLogger(__name__)


def _run_fuse(args: argparse.Namespace) -> int:
    if args.alpha_file:
        if hasattr(args, "alpha"):
            raise InputError("--alpha-file: not allowed with --alpha")
        args.alpha = read_alpha_file(args.alpha_file)
    settings = FuseSettings.from_args(args)
    fuse_file(args.input, args.output, settings, args.phrases, args.summary)
    return 0


def _run_calibrate(args: argparse.Namespace) -> int:
    meta, _ = read_verified(args.input)
    result = calibrate(meta, args.k_max, args.target_errors, args.strategy, str(args.input))
    record = calibration_record(result, args.target_errors, check_k_max(args.k_max), args.strategy)
    write_json(record, args.output)
    log.info("alpha %s reaches mean #Err %.4f (target %s; just below: %.4f)", record["alpha"],
             record["achieved_mean_errors"], args.target_errors, record["mean_errors_below"])
    return 0


def register(sub) -> None:
    from trajfusion import fuse as stage  # the package docstring states the rule; loaded by the time this runs

    fuse = sub.add_parser("fuse", help="build a vanilla RFT / TrajFusion dataset from a verified table",
                          description=stage.__doc__.splitlines()[0])
    fuse.add_argument("--input", required=True, help="verified table (.parquet or .jsonl)")
    fuse.add_argument("--output", required=True, help="fused dataset (.jsonl)")
    FuseSettings.add_arguments(fuse)
    fuse.add_argument("--alpha-file", help="JSON written by calibrate-alpha (instead of --alpha)")
    fuse.add_argument("--phrases", help="phrase repository YAML (default: the paper's Table 5)")
    fuse.add_argument("--summary", help="summary JSON (default: OUTPUT with .summary.json)")
    fuse.set_defaults(func=_run_fuse)

    cal = sub.add_parser("calibrate-alpha", help="find the alpha reaching a target mean #Err")
    cal.add_argument("--input", required=True, help="verified table (.parquet or .jsonl)")
    cal.add_argument("--k-max", type=int, required=True)
    cal.add_argument("--target-errors", required=True, help="target mean fused errors per problem")
    cal.add_argument("--strategy", choices=STRATEGIES, default="highdiv",
                     help="recorded only: the number of fused errors does not depend on it")
    cal.add_argument("--output", required=True, help="ALPHA.json")
    cal.set_defaults(func=_run_calibrate)

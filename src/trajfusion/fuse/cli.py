"""The ``fuse`` and ``calibrate-alpha`` subcommands."""

from __future__ import annotations

import argparse
import logging

from trajfusion.fuse.build import fuse_file
from trajfusion.fuse.calibrate import calibrate, calibration_record, read_alpha_file
from trajfusion.fuse.inputs import read_verified
from trajfusion.fuse.settings import CalibrateSettings, FuseSettings
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
    settings = CalibrateSettings.from_args(args)
    meta, _ = read_verified(args.input)
    record = calibration_record(calibrate(meta, settings, str(args.input)), settings)
    write_json(record, args.output)
    log.info("alpha %s reaches mean #Err %.4f (target %s; just below: %.4f)", record["alpha"],
             record["achieved_mean_errors"], record["target"], record["mean_errors_below"])
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
    CalibrateSettings.add_arguments(cal)
    cal.add_argument("--output", required=True, help="ALPHA.json")
    cal.set_defaults(func=_run_calibrate)

"""The ``fuse`` and ``calibrate-alpha`` subcommands."""

from __future__ import annotations

import argparse
import logging

from trajfusion.fuse.build import fuse_file
from trajfusion.fuse.calibrate import calibrate, calibration_record, read_alpha_file
from trajfusion.fuse.inputs import read_verified
from trajfusion.fuse.settings import STRATEGIES, FuseSettings, check_k_max, parse_alpha
from trajfusion.io import write_json

log = logging.getLogger(__name__)


def _run_fuse(args: argparse.Namespace) -> int:
    alpha = read_alpha_file(args.alpha_file) if args.alpha_file else (
        parse_alpha(args.alpha, "--alpha") if args.alpha is not None else None)
    settings = FuseSettings(k_max=args.k_max, alpha=alpha, strategy=args.strategy, seed=args.seed,
                            certainty_prob=args.certainty_prob)
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
    fuse.add_argument("--k-max", type=int, required=True, help="maximum fused errors; 0 = vanilla RFT")
    source = fuse.add_mutually_exclusive_group()
    source.add_argument("--alpha", help="diversity sensitivity, a decimal or fraction (e.g. 0.5, 16/21)")
    source.add_argument("--alpha-file", help="JSON written by calibrate-alpha")
    fuse.add_argument("--strategy", choices=STRATEGIES, default="highdiv")
    fuse.add_argument("--seed", type=int, required=True)
    fuse.add_argument("--phrases", help="phrase repository YAML (default: the paper's Table 5)")
    fuse.add_argument("--certainty-prob", type=float, default=0.0,
                      help="probability of a certainty phrase after the success phrase")
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

"""``trajfusion verify`` (samples -> verified table) and ``trajfusion stats`` (-> statistics)."""

from __future__ import annotations

import argparse
import logging

from trajfusion.io import InputError, artifact_metadata, read_table, write_parquet
from trajfusion.verify.settings import VerifySettings

logger = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    verify = sub.add_parser("verify", help="extract, filter and verify sampled responses")
    verify.add_argument("--input", required=True, help="samples table (.parquet or .jsonl) with "
                        "problem_id, gold, response [, finish_reason, answer_type]")
    verify.add_argument("--output", required=True, help="verified table (.parquet)")
    VerifySettings.add_arguments(verify)
    verify.set_defaults(func=run_verify)

    stats = sub.add_parser("stats", help="per-problem error rate, diversity and entropy")
    stats.add_argument("--input", required=True, help="verified table (.parquet or .jsonl)")
    stats.add_argument("--output", required=True, help="statistics table (.parquet)")
    stats.set_defaults(func=run_stats)


def run_verify(args: argparse.Namespace) -> int:
    from trajfusion.verify.verifier import verify_frame

    settings = VerifySettings.from_args(args)
    df = read_table(args.input, required=("problem_id", "gold", "response"))
    if df.empty:
        raise InputError(f"{args.input}: no samples to verify (the table has no rows)")
    verified = verify_frame(df, workers=settings.workers, timeout=settings.timeout, filters=settings.filters,
                            progress=True, source=str(args.input))
    write_parquet(verified, args.output, metadata=artifact_metadata(settings.provenance()))
    return 0


def run_stats(args: argparse.Namespace) -> int:
    from trajfusion.verify.stats import compute_stats

    verified = read_table(args.input)
    if verified.empty:
        raise InputError(f"{args.input}: no verified samples (the table has no rows)")
    stats = compute_stats(verified, source=str(args.input))
    write_parquet(stats, args.output, metadata=artifact_metadata({"stage": "stats"}))
    logger.info("wrote statistics of %d problems to %s", len(stats), args.output)
    return 0

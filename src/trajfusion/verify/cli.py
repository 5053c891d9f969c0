"""``trajfusion verify`` (samples -> verified table) and ``trajfusion stats`` (-> statistics)."""

from __future__ import annotations

import argparse
import logging

from trajfusion.contracts import MERGED_SAMPLES, STATISTICS, VERIFIED, write
from trajfusion.io import artifact_metadata, read_table
from trajfusion.verify.settings import VerifySettings

# The samples' columns verification needs (it reads ``finish_reason`` and ``answer_type`` too when present).
SAMPLE_COLUMNS = ("problem_id", "gold", "response")

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
    df = read_table(args.input, required=SAMPLE_COLUMNS)
    # The sample columns the verified table carries on, checked before the long verification;
    # bare samples give a verified table with only some of the contract's columns.
    VERIFIED.check(df, str(args.input), columns=[name for name in MERGED_SAMPLES.names if name in df.columns])
    verified = verify_frame(df, workers=settings.workers, timeout=settings.timeout, filters=settings.filters,
                            answer_format=settings.answer_format, progress=True, source=str(args.input))
    present = [name for name in VERIFIED.names if name in verified.columns]
    write(verified, args.output, VERIFIED, artifact_metadata(settings.provenance()), columns=present)
    return 0


def run_stats(args: argparse.Namespace) -> int:
    from trajfusion.verify.stats import compute_stats

    stats = compute_stats(read_table(args.input), source=str(args.input))
    write(stats, args.output, STATISTICS, artifact_metadata({"stage": "stats"}))
    logger.info("wrote statistics of %d problems to %s", len(stats), args.output)
    return 0

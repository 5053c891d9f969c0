"""Answer extraction, output filters, hang-proof verification and per-problem statistics.

Commands: ``trajfusion verify`` (samples -> verified table) and ``trajfusion stats``
(verified table -> statistics table). math-verify is imported only when work starts.
"""

from __future__ import annotations

import argparse
import json
import logging
import os

from trajfusion.io import InputError, artifact_metadata, read_table, write_parquet
from trajfusion.verify.extract import extract_answer, normalize_answer
from trajfusion.verify.filters import DEFAULT_FILTERS, apply_filters, resolve_filters
from trajfusion.verify.stats import compute_stats
from trajfusion.verify.verifier import verify_frame

__all__ = ["register", "extract_answer", "normalize_answer", "apply_filters", "resolve_filters",
           "DEFAULT_FILTERS", "verify_frame", "compute_stats"]

logger = logging.getLogger(__name__)


def available_cpus() -> int:
    """CPUs this process may run on (honours SLURM cgroups / affinity masks)."""
    return len(os.sched_getaffinity(0))


def register(sub: argparse._SubParsersAction) -> None:
    verify = sub.add_parser("verify", help="extract, filter and verify sampled responses")
    verify.add_argument("--input", required=True, help="samples table (.parquet or .jsonl) with "
                        "problem_id, gold, response [, finish_reason, answer_type]")
    verify.add_argument("--output", required=True, help="verified table (.parquet)")
    verify.add_argument("--workers", type=int, default=available_cpus(),
                        help="worker processes (default: CPUs available, %(default)s here; 0 = inline)")
    verify.add_argument("--timeout", type=float, default=5.0, help="seconds per verification step")
    verify.add_argument("--filters", default=None,
                        help="JSON object overriding filter settings, e.g. '{\"ngram_repeat_share\": 0.6}'")
    verify.set_defaults(func=run_verify)

    stats = sub.add_parser("stats", help="per-problem error rate, diversity and entropy")
    stats.add_argument("--input", required=True, help="verified table (.parquet or .jsonl)")
    stats.add_argument("--output", required=True, help="statistics table (.parquet)")
    stats.set_defaults(func=run_stats)


def run_verify(args: argparse.Namespace) -> int:
    filters = _parse_filters(args.filters)
    if args.timeout <= 0:
        raise InputError(f"--timeout must be positive, got {args.timeout}")
    df = read_table(args.input, required=("problem_id", "gold", "response"))
    if df.empty:
        raise InputError(f"{args.input}: no samples to verify (the table has no rows)")
    verified = verify_frame(df, workers=args.workers, timeout=args.timeout, filters=filters,
                            progress=True, source=str(args.input))
    settings = {"stage": "verify", "timeout": args.timeout, "filters": resolve_filters(filters)}
    write_parquet(verified, args.output, metadata=artifact_metadata(settings))
    return 0


def run_stats(args: argparse.Namespace) -> int:
    verified = read_table(args.input)
    if verified.empty:
        raise InputError(f"{args.input}: no verified samples (the table has no rows)")
    stats = compute_stats(verified, source=str(args.input))
    write_parquet(stats, args.output, metadata=artifact_metadata({"stage": "stats"}))
    logger.info("wrote statistics of %d problems to %s", len(stats), args.output)
    return 0


def _parse_filters(text: str | None) -> dict | None:
    if text is None:
        return None
    try:
        filters = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"--filters: malformed JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(filters, dict):
        raise InputError(f"--filters: expected a JSON object, got {type(filters).__name__}")
    try:
        resolve_filters(filters)
    except ValueError as exc:
        raise InputError(f"--filters: {exc}") from None
    return filters

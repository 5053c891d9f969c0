"""Command line of the data stage: ``build-pool`` and ``prepare-benchmark``."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from trajfusion.data.pools import SELECTIONS, benchmark_table, build_pool
from trajfusion.data.registry import BENCHMARKS
from trajfusion.io import InputError, artifact_metadata, sha256_file, write_json, write_parquet

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    pool = sub.add_parser("build-pool", help="build a training pool (problem table) from a JSON spec")
    pool.add_argument("--spec", required=True,
                      help='JSON object: {"sources": [{"name", "n", "select", "options"}], "size", '
                           '"decontaminate_against"}')
    pool.add_argument("--data-dir", required=True, type=Path, help="bundled data directory (with SHA256SUMS)")
    pool.add_argument("--seed", required=True, type=int)
    pool.add_argument("--output", required=True, type=Path, help="pool .parquet")
    pool.add_argument("--report", required=True, type=Path, help="report .json (counts, decontamination)")
    pool.set_defaults(func=run_build_pool)

    bench = sub.add_parser("prepare-benchmark", help="write one benchmark as a problem table")
    bench.add_argument("--name", required=True, choices=BENCHMARKS)
    bench.add_argument("--data-dir", required=True, type=Path, help="bundled data directory (with SHA256SUMS)")
    bench.add_argument("--limit", type=int, default=None, help="keep only N problems")
    bench.add_argument("--select", choices=SELECTIONS, default=None,
                       help="how --limit picks problems (default: random with --limit, else all)")
    bench.add_argument("--seed", type=int, default=0, help="seed for --select random")
    bench.add_argument("--keep-pictures", action="store_true",
                       help="theoremqa: keep the questions that need a picture (dropped by default)")
    bench.add_argument("--output", required=True, type=Path, help="benchmark .parquet")
    bench.set_defaults(func=run_prepare_benchmark)


def run_build_pool(args: argparse.Namespace) -> int:
    try:
        spec = json.loads(args.spec)
    except json.JSONDecodeError as exc:
        raise InputError(f"--spec: malformed JSON ({exc.msg} at column {exc.colno})") from None
    pool, report = build_pool(spec, args.data_dir, args.seed)
    settings = {"command": "build-pool", "spec": spec, "seed": args.seed, "data": _data_fingerprint(args.data_dir)}
    write_parquet(pool, args.output, metadata=artifact_metadata(settings))
    write_json({**report, **artifact_metadata(settings)}, args.report)
    log.info("pool %s: %d problems (%d removed as benchmark duplicates)", args.output, len(pool),
             report["removed_contaminated"])
    return 0


def run_prepare_benchmark(args: argparse.Namespace) -> int:
    table = benchmark_table(args.name, args.data_dir, limit=args.limit, select=args.select, seed=args.seed,
                            keep_pictures=args.keep_pictures)
    settings = {"command": "prepare-benchmark", "name": args.name, "limit": args.limit, "select": args.select,
                "seed": args.seed, "keep_pictures": args.keep_pictures, "data": _data_fingerprint(args.data_dir)}
    write_parquet(table, args.output, metadata=artifact_metadata(settings))
    log.info("benchmark %s: %d problems -> %s", args.name, len(table), args.output)
    return 0


def _data_fingerprint(data_dir: Path) -> str | None:
    """SHA-256 of the checksum list: identifies the bundled data without hashing every file."""
    listing = data_dir / "SHA256SUMS"
    return sha256_file(listing) if listing.is_file() else None

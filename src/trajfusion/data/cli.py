"""Command line of the data stage: ``build-pool`` and ``prepare-benchmark``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from trajfusion.contracts import PROBLEMS, write
from trajfusion.data.pools import benchmark_table, build_pool
from trajfusion.data.registry import BENCHMARKS
from trajfusion.data.settings import BenchmarkSettings, PoolSettings
from trajfusion.io import artifact_metadata, sha256_file, write_json

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    pool = sub.add_parser("build-pool", help="build a training pool (problem table) from a JSON spec")
    PoolSettings.add_arguments(pool)
    pool.add_argument("--data-dir", required=True, type=Path, help="bundled data directory (with SHA256SUMS)")
    pool.add_argument("--output", required=True, type=Path, help="pool .parquet")
    pool.add_argument("--report", required=True, type=Path, help="report .json (counts, decontamination)")
    pool.set_defaults(func=run_build_pool)

    bench = sub.add_parser("prepare-benchmark", help="write one benchmark as a problem table")
    bench.add_argument("--name", required=True,
                       help=f"benchmark name: built-in ({', '.join(BENCHMARKS)}) or one's own with a dataset")
    bench.add_argument("--data-dir", required=True, type=Path, help="bundled data directory (with SHA256SUMS)")
    BenchmarkSettings.add_arguments(bench)
    bench.add_argument("--output", required=True, type=Path, help="benchmark .parquet")
    bench.set_defaults(func=run_prepare_benchmark)


def run_build_pool(args: argparse.Namespace) -> int:
    settings = PoolSettings.from_args(args)
    pool, report = build_pool(settings.spec, args.data_dir, settings.seed, settings.datasets,
                              settings.own_benchmarks)
    metadata = artifact_metadata({"command": "build-pool", **settings.provenance(),
                                  "data": _data_fingerprint(args.data_dir), "datasets": report["datasets"]})
    if report["datasets"]:
        metadata["datasets"] = report["datasets"]  # declared datasets' SHA-256 or resolved Hub commits
    write(pool, args.output, PROBLEMS, metadata)
    write_json({**report, **metadata}, args.report)
    log.info("pool %s: %d problems (%d removed as benchmark duplicates)", args.output, len(pool),
             report["removed_contaminated"])
    return 0


def run_prepare_benchmark(args: argparse.Namespace) -> int:
    settings = BenchmarkSettings.from_args(args)
    table, dataset = benchmark_table(args.name, args.data_dir, settings)
    metadata = artifact_metadata({"command": "prepare-benchmark", "name": args.name, **settings.provenance(),
                                  "data": _data_fingerprint(args.data_dir), "dataset": dataset})
    if dataset is not None:
        metadata["dataset"] = dataset  # a declared dataset's SHA-256 or resolved Hub commit
    write(table, args.output, PROBLEMS, metadata)
    log.info("benchmark %s: %d problems -> %s", args.name, len(table), args.output)
    return 0


def _data_fingerprint(data_dir: Path) -> str | None:
    """SHA-256 of the checksum list: identifies the bundled data without hashing every file."""
    listing = data_dir / "SHA256SUMS"
    return sha256_file(listing) if listing.is_file() else None

"""The ``export`` subcommand."""

from __future__ import annotations

import argparse

from trajfusion.export.build import export_file
from trajfusion.export.settings import ExportSettings


def _run_export(args: argparse.Namespace) -> int:
    settings = ExportSettings.from_args(args)
    export_file(args.input, args.output, settings, summary_path=args.summary, pool_table=args.pool_table,
                card_path=args.card, dataset_info_path=args.dataset_info)
    return 0


def register(sub) -> None:
    from trajfusion import export as stage  # the package docstring states the formats; loaded by the time this runs

    export = sub.add_parser("export", help="write a fused dataset for other trainers (TRL, LLaMA-Factory) with a "
                            "dataset card", description=stage.__doc__.splitlines()[0])
    export.add_argument("--input", required=True, help="fused dataset (.jsonl, results/fused/...)")
    export.add_argument("--output", required=True, help="exported file (.jsonl); the card goes beside it")
    ExportSettings.add_arguments(export)
    export.add_argument("--summary", help="the fusion summary (default: INPUT with .summary.json, when it exists)")
    export.add_argument("--pool-table", help="the pool table (results/pools/POOL.parquet): each record's source for "
                        "the card's counts and licenses (default: the problem id's '<source>/' prefix)")
    export.add_argument("--card", help="dataset card (default: README.md beside OUTPUT)")
    export.add_argument("--dataset-info", help="LLaMA-Factory dataset_info.json to merge the entry into, with "
                        "--format sharegpt (default: dataset_info.json beside OUTPUT)")
    export.set_defaults(func=_run_export)

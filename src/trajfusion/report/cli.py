"""``trajfusion report``: the command; the work is ``trajfusion.report.build.build_report``."""

from __future__ import annotations

import argparse

import trajfusion.report
from trajfusion.report.build import build_report
from trajfusion.report.settings import ReportSettings


def run(args: argparse.Namespace) -> int:
    settings = ReportSettings.from_args(args)
    build_report(args.manifest, args.out_dir, args.paper_results, settings.bootstrap_samples, settings.seed,
                 cost_dir=args.cost_dir, cost_files=args.cost_files,
                 gpu_patterns=[list(pair) for pair in settings.gpus_per_job or ()],
                 figure1_teacher=settings.figure1_teacher, figure1_pool=settings.figure1_pool,
                 figure1_sources=settings.figure1_sources)
    return 0


def register(sub) -> None:
    p = sub.add_parser("report", help="tables, figures, metrics and significance tests from evaluations",
                       description=trajfusion.report.__doc__.splitlines()[0])
    p.add_argument("--manifest", required=True,
                   help="report manifest JSON (schema: trajfusion.contracts.MANIFEST_SCHEMA)")
    p.add_argument("--out-dir", required=True, help="output directory, e.g. results/report")
    p.add_argument("--paper-results", default=None,
                   help="published numbers (default: the packaged resources/paper_results.yaml)")
    p.add_argument("--cost-files", nargs="*", default=None,
                   help="Snakemake benchmark files of the run's jobs, relative to --cost-dir; writes the cost table")
    p.add_argument("--cost-dir", default="results/cost", help="the folder of --cost-files (default: results/cost)")
    ReportSettings.add_arguments(p)
    p.set_defaults(func=run)

"""The run's cost per stage, from Snakemake's per-job ``benchmark:`` files.

Each rule writes ``results/cost/<stage>/...tsv`` (Snakemake's columns: ``s`` wall seconds,
``max_rss`` MB, ``cpu_time`` seconds, ...). The Snakemake rule lists the files of the jobs its
plan has, relative to the cost directory, so that files an earlier config left there are not
counted; a listed file that does not exist (a job whose outputs were made without running it,
e.g. with ``--touch``) is left out. GPU-hours are wall hours times the GPUs a job requested,
given as ``(path pattern, gpus)`` pairs matched against the file's path relative to the cost
directory (the rule computes them from the plan, as it does for the jobs' ``resources: gpu``).
Wall times vary between runs, so this table is not a data artifact.
"""

from __future__ import annotations

import logging
from fnmatch import fnmatch
from pathlib import Path

import pandas as pd

from trajfusion.io import InputError
from trajfusion.report.tables import page_header

log = logging.getLogger(__name__)

COLUMNS = ["stage", "jobs", "wall_h", "cpu_h", "gpu_h", "max_rss_mb"]


def read_cost_files(cost_dir: str | Path, files: list[str], gpu_patterns: list[tuple[str, int]]) -> pd.DataFrame:
    """One row per listed job file (relative to ``cost_dir``): stage, wall seconds, CPU
    seconds, peak RSS and GPUs requested."""
    cost_dir = Path(cost_dir)
    rows = []
    present = [relative for relative in sorted(set(files)) if (cost_dir / relative).is_file()]
    if len(present) < len(set(files)):
        log.warning("cost: %d of %d jobs have no benchmark file under %s", len(set(files)) - len(present),
                    len(set(files)), cost_dir)
    for relative in present:
        path = cost_dir / relative
        try:
            runs = pd.read_csv(path, sep="\t")
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise InputError(f"{path}: not a Snakemake benchmark file ({exc})") from None
        if runs.empty or "s" not in runs.columns:
            raise InputError(f"{path}: not a Snakemake benchmark file (no 's' column)")
        last = runs.iloc[-1]  # a job rerun with `--benchmark-repeats` keeps every repeat
        gpus = next((n for pattern, n in gpu_patterns if fnmatch(relative, pattern)), 0)
        rows.append({"stage": Path(relative).parts[0].removesuffix(".tsv"), "wall_s": float(last["s"]),
                     "cpu_s": float(pd.to_numeric(last.get("cpu_time", 0), errors="coerce") or 0),
                     "max_rss_mb": float(pd.to_numeric(last.get("max_rss", 0), errors="coerce") or 0),
                     "gpus": gpus})
    return pd.DataFrame(rows, columns=["stage", "wall_s", "cpu_s", "max_rss_mb", "gpus"])


def cost_table(jobs: pd.DataFrame) -> pd.DataFrame:
    """Totals per stage plus an overall row: wall/CPU/GPU hours and the largest peak RSS."""
    jobs = jobs.assign(wall_h=jobs["wall_s"] / 3600, cpu_h=jobs["cpu_s"] / 3600,
                       gpu_h=jobs["wall_s"] / 3600 * jobs["gpus"])
    per_stage = (jobs.groupby("stage", sort=True)
                 .agg(jobs=("wall_s", "size"), wall_h=("wall_h", "sum"), cpu_h=("cpu_h", "sum"),
                      gpu_h=("gpu_h", "sum"), max_rss_mb=("max_rss_mb", "max"))
                 .reset_index())
    total = pd.DataFrame([{"stage": "total", "jobs": len(jobs), "wall_h": jobs["wall_h"].sum(),
                           "cpu_h": jobs["cpu_h"].sum(), "gpu_h": jobs["gpu_h"].sum(),
                           "max_rss_mb": jobs["max_rss_mb"].max() if len(jobs) else 0.0}])
    return pd.concat([per_stage, total], ignore_index=True)[COLUMNS]


def render_markdown(table: pd.DataFrame, caveat: str | None) -> str:
    lines = page_header("Cost per stage", caveat)
    lines += ["Summed over the jobs of this run from Snakemake's `benchmark:` files; GPU-hours are wall hours "
              "times the GPUs each job requested. Wall time is the sum over jobs, not the elapsed time of a "
              "parallel run.", "",
              "| stage | jobs | wall h | CPU h | GPU h | max RSS MB |", "|---|---:|---:|---:|---:|---:|"]
    for row in table.itertuples():
        lines.append(f"| {row.stage} | {row.jobs} | {row.wall_h:.3f} | {row.cpu_h:.3f} | {row.gpu_h:.3f} "
                     f"| {row.max_rss_mb:.0f} |")
    return "\n".join(lines) + "\n"

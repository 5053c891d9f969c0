"""Embedded default end to end: wall time of the whole DAG from an empty `results/`.

Runs the README's command (`snakemake --profile profiles/local` on config/config.yaml) in a
fresh working directory, so that nothing is reused, and reads each job's `benchmark:` file
for the time per stage. Baseline: the sum of the jobs' own wall times, i.e. what the run
would take one job at a time; the ratio is the parallelism the 2-core profile achieves.
Writes the ``## Embedded default end to end`` section of bench/results.md.

    python bench/bench_embedded.py [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import yaml
from results_md import record_headline, write_section

REPO = Path(__file__).resolve().parents[1]
SECTION = "## Embedded default end to end"
TARGET_MINUTES = 15


def run_dag(workdir: Path) -> float:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["data_dir"] = str(REPO / "data")  # the only change: the working directory is elsewhere
    configfile = workdir / "config.yaml"
    configfile.write_text(yaml.safe_dump(config, sort_keys=False))
    command = [sys.executable, "-m", "snakemake", "--profile", str(REPO / "profiles" / "local"), "--snakefile",
               str(REPO / "Snakefile"), "--directory", str(workdir), "--configfile", str(configfile)]
    started = time.perf_counter()
    with open(workdir / "snakemake.log", "w") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"the embedded DAG failed (exit {result.returncode}); see {workdir / 'snakemake.log'}")
    return elapsed


def stage_times(workdir: Path) -> dict[str, tuple[int, float]]:
    """(jobs, summed wall seconds) per rule, from Snakemake's benchmark files."""
    jobs, seconds = defaultdict(int), defaultdict(float)
    cost = workdir / "results" / "cost"
    for tsv in sorted(cost.rglob("*.tsv")):
        stage = tsv.relative_to(cost).parts[0].removesuffix(".tsv")
        with open(tsv, newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                jobs[stage] += 1
                seconds[stage] += float(row["s"])
    return {stage: (jobs[stage], seconds[stage]) for stage in jobs}


def render(elapsed: float, stages: dict[str, tuple[int, float]]) -> str:
    serial = sum(s for _, s in stages.values())
    lines = [SECTION, "",
             "`python bench/bench_embedded.py`: the README's `snakemake --profile profiles/local` on "
             "config/config.yaml in an empty working directory (only `data_dir` points back at this "
             f"checkout's `data/`). Elapsed: **{elapsed / 60:.1f} min** ({elapsed:.0f} s; target <= "
             f"{TARGET_MINUTES} min). Per stage, summed over its jobs from the `benchmark:` files:", "",
             "| stage | jobs | wall s (sum over jobs) |", "|---|---:|---:|"]
    lines += [f"| {stage} | {n} | {s:.0f} |" for stage, (n, s) in sorted(stages.items(), key=lambda kv: -kv[1][1])]
    lines += [f"| total | {sum(n for n, _ in stages.values())} | {serial:.0f} |", "",
              f"Sum of job wall times / elapsed (the parallelism of the 2-core profile): "
              f"**{serial / elapsed:.2f}x**.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", help="empty directory to run in (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="trajfusion-embedded."))
    workdir.mkdir(parents=True, exist_ok=True)
    if (workdir / "results").exists():
        raise SystemExit(f"{workdir}/results exists: the benchmark measures a run from an empty results/")
    try:
        elapsed = run_dag(workdir)
        stages = stage_times(workdir)
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    section = render(elapsed, stages)
    print(section)
    write_section(section)
    serial = sum(s for _, s in stages.values())
    record_headline("Embedded default end to end", measured=f"{elapsed / 60:.1f} min elapsed",
                    baseline=f"jobs one at a time {serial / 60:.1f} min", ratio=f"{serial / elapsed:.2f}x",
                    target=f"<= {TARGET_MINUTES} min", met=elapsed <= TARGET_MINUTES * 60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

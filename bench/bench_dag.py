"""DAG planning time: `snakemake -n` on the paper's matrix vs the embedded default (baseline).

    python bench/bench_dag.py [--repeats N]

Writes/replaces the `## DAG planning` section of bench/results.md.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_md import record_headline, write_section

REPO = Path(__file__).resolve().parents[1]
SECTION = "## DAG planning"


def plan(configfile: str, workdir: str) -> tuple[float, int]:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "--snakefile",
                             str(REPO / "Snakefile"), "--directory", workdir, "--configfile",
                             str(REPO / "config" / configfile)], capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - start
    jobs = int(re.search(r"^total\s+(\d+)$", result.stdout, re.M).group(1))
    return elapsed, jobs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    rows = {}
    with tempfile.TemporaryDirectory() as workdir:
        for name in ("config.yaml", "paper.yaml"):
            runs = [plan(name, workdir) for _ in range(args.repeats)]
            rows[name] = (statistics.median(t for t, _ in runs), runs[0][1])
    (base_s, base_jobs), (paper_s, paper_jobs) = rows["config.yaml"], rows["paper.yaml"]
    body = "\n".join([
        SECTION, "",
        f"`python bench/bench_dag.py`: median of {args.repeats} runs of `snakemake -n` (whole process, "
        f"including Python start-up and config validation), {os.cpu_count()} CPUs, Python "
        f"{sys.version.split()[0]}.", "",
        "| config | jobs | seconds |", "|---|---:|---:|",
        f"| embedded default (baseline) | {base_jobs} | {base_s:.2f} |",
        f"| paper matrix | {paper_jobs} | {paper_s:.2f} |", "",
        f"Paper / embedded planning time: **{paper_s / base_s:.2f}x** for {paper_jobs / base_jobs:.1f}x the jobs "
        f"(target: under 20 s for the paper matrix).", ""])
    write_section(body)
    record_headline("DAG planning (`snakemake -n`, paper matrix)", measured=f"{paper_s:.2f} s, {paper_jobs} jobs",
                    baseline=f"embedded default {base_s:.2f} s, {base_jobs} jobs", ratio=f"{paper_s / base_s:.2f}x",
                    target="< 20 s", met=paper_s < 20)
    print(body)


if __name__ == "__main__":
    main()

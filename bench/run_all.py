"""Run every benchmark, one after another, and write the summary of bench/results.md.

    python bench/run_all.py [--only NAME ...] [--skip NAME ...]

Each benchmark runs in its own process and replaces its own section of results.md and
its headline in bench/metrics.json; this script then writes `## Summary` (machine, date,
and one row per benchmark: measured figure, baseline from the same run, ratio, target)
at the top. Run it on an otherwise idle machine: the figures are wall-clock rates.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from common import ensure_smollm2, machine_lines
from results_md import METRICS, RESULTS

BENCH = Path(__file__).resolve().parent
# Cheapest first; the embedded default end to end (about 15 minutes) last.
BENCHMARKS = ["dag", "fuse", "verify", "train", "sampling", "partial", "embedded"]


def run_benchmark(name: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, str(BENCH / f"bench_{name}.py")], check=True)
    return time.perf_counter() - started


def summary_section(metrics: dict, durations: dict[str, float], machine: list[str], started: str) -> str:
    lines = ["## Summary", "", f"`python bench/run_all.py`, started {started} UTC.", "", *machine, "",
             "| benchmark | measured | baseline (same run) | ratio | target | met |",
             "|---|---|---|---|---|---|"]
    for name, m in metrics.items():
        lines.append(f"| {name} | {m['measured']} | {m['baseline']} | {m['ratio']} | {m['target']} | "
                     f"{'yes' if m['met'] else '**no**'} |")
    took = ", ".join(f"{name} {seconds / 60:.1f} min" for name, seconds in durations.items())
    lines += ["", f"Benchmark wall times in this run: {took}. Rows not rerun keep their last figures "
              "(each section below states its own machine load).", ""]
    return "\n".join(lines)


def put_summary_first(text: str, summary: str) -> str:
    text = re.sub(r"^## Summary\n.*?(?=^## |\Z)", "", text, flags=re.MULTILINE | re.DOTALL)
    title, _, rest = text.partition("\n\n")
    if not title.startswith("# "):
        title, rest = "# Benchmark results", text
    return f"{title}\n\n{summary.rstrip()}\n\n{rest.lstrip()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run only these")
    parser.add_argument("--skip", nargs="+", choices=BENCHMARKS, default=[], help="skip these")
    args = parser.parse_args(argv)
    selected = [b for b in (args.only or BENCHMARKS) if b not in args.skip]
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
    machine = machine_lines()  # before the benchmarks load the machine
    if {"train", "sampling"} & set(selected):
        ensure_smollm2()
    durations = {name: run_benchmark(name) for name in selected}
    metrics = json.loads(METRICS.read_text()) if METRICS.exists() else {}
    from trajfusion.io import write_text

    write_text(put_summary_first(RESULTS.read_text(encoding="utf-8"), summary_section(metrics, durations, machine,
                                                                                       started)), RESULTS)
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

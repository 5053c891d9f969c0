"""Benchmark of `trajfusion fuse` at paper scale: 100K problems x 16 trajectories.

Generates a synthetic verified table with realistic response lengths (600-3000 characters,
sliced from one long shared text so generation stays cheap) and mixed outcomes, then
builds, each in its own subprocess (peak RSS = its VmHWM): the vanilla RFT
dataset (the baseline), the alpha calibration for k_max=4 at the paper's #Err 1.49, and
the TrajFusion dataset (k_max=4, highdiv) with that alpha. Writes the `## Fusion` section
of bench/results.md, keeping other sections.

    python bench/bench_fuse.py [--quick] [--problems N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from results_md import record_headline, write_section

K = 16
RESULTS = Path(__file__).resolve().parent / "results.md"
SECTION = "## Fusion"


def shared_text(rng: np.random.Generator, n_chars: int = 200_000) -> str:
    words = ["Let", "x", "be", "the", "number", "of", "apples,", "so", "we", "have", "$x+3=7$,", "hence",
             "multiply", "both", "sides", "by", "2", "to", "get", "\\frac{a}{b}", "=", "14.", "Therefore",
             "step", "next,", "compute", "sum", "total", "each", "remaining", "\n\n"]
    picks = rng.integers(0, len(words), n_chars // 4)
    return " ".join(words[i] for i in picks)[:n_chars]


def verified_chunk(rng: np.random.Generator, text: str, first: int, n: int) -> dict:
    """Columns of a verified table for problems first..first+n-1 (K rows each)."""
    rows = n * K
    problem = np.repeat(np.arange(first, first + n), K)
    p_correct = np.repeat(rng.uniform(0, 1, n) ** 0.6, K)  # skewed towards easy problems
    status = np.where(rng.uniform(0, 1, rows) < 0.04, "filtered:repetition",
                      np.where(rng.uniform(0, 1, rows) < 0.005, "timeout", "ok"))
    correct = (status == "ok") & (rng.uniform(0, 1, rows) < p_correct)
    wrong = np.minimum(rng.zipf(1.8, rows), 6)  # few dominant wrong answers, a long tail
    answer = np.where(correct, "42", np.char.add("w", wrong.astype(str)))
    incorrect_ok = (status == "ok") & ~correct
    lengths = rng.integers(600, 3000, rows)
    starts = rng.integers(0, len(text) - 3000, rows)
    p_len = rng.integers(150, 500, n)
    p_start = rng.integers(0, len(text) - 500, n)
    problems = [text[s:s + m] for s, m in zip(p_start.tolist(), p_len.tolist())]
    return {
        "problem_id": [f"bench/{i:06d}" for i in problem.tolist()],
        "sample_idx": np.tile(np.arange(K), n),
        "problem": [problems[i - first] for i in problem.tolist()],
        "response": [text[s:s + m] for s, m in zip(starts.tolist(), lengths.tolist())],
        "n_tokens": lengths // 4,
        "finish_reason": ["stop"] * rows,
        "gold": ["42"] * rows,
        "answer": answer.tolist(),
        "correct": correct,
        "status": status.tolist(),
        "answer_group": np.where(incorrect_ok, answer, None).tolist(),
    }


def generate_verified(path: Path, n_problems: int, seed: int = 0, chunk: int = 10_000) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    text = shared_text(rng)
    writer = None
    for first in range(0, n_problems, chunk):
        table = pa.table(verified_chunk(rng, text, first, min(chunk, n_problems - first)))
        writer = writer or pq.ParquetWriter(path, table.schema, compression="zstd")
        writer.write_table(table)
    writer.close()


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM belongs to the current address space, so unlike
    ru_maxrss it does not inherit the spawning parent's peak across fork+exec."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(job: dict) -> dict:
    result = run_job(job)
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def run_job(job: dict) -> dict:
    """Runs inside the measured subprocess."""
    from trajfusion.fuse import (
        CalibrateSettings,
        FuseSettings,
        calibrate,
        calibration_record,
        fuse_file,
        parse_alpha,
        read_verified,
    )

    start = time.perf_counter()
    if job["kind"] == "generate":
        generate_verified(Path(job["output"]), job["problems"])
        return {"wall_s": time.perf_counter() - start}
    if job["kind"] == "calibrate":
        meta, _ = read_verified(job["input"])
        settings = CalibrateSettings(k_max=job["k_max"], target_errors=job["target"])
        record = calibration_record(calibrate(meta, settings), settings)
        return {"wall_s": time.perf_counter() - start, **record}
    alpha = parse_alpha(job["alpha"]) if job.get("alpha") else None
    settings = FuseSettings(k_max=job["k_max"], alpha=alpha, strategy="highdiv", seed=0)
    summary = fuse_file(job["input"], job["output"], settings, progress=False)
    return {"wall_s": time.perf_counter() - start, **summary}


def measure(job: dict) -> dict:
    """Run one job in a fresh interpreter, which reports its wall time and peak RSS."""
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(job)], stdout=subprocess.PIPE)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark job {job['kind']} failed with exit code {proc.returncode}")
    return json.loads(proc.stdout)


def render(n_problems: int, input_mb: float, gen_s: float, rft: dict, cal: dict, tf: dict, tf_out_mb: float,
           rft_out_mb: float) -> str:
    def row(name, r, out_mb):
        return (f"| {name} | {r['wall_s']:.1f} | {r['peak_rss_mb']:.0f} | {r['problems']} | "
                f"{r['mean_errors']:.3f} | {r['mean_response_chars']:.0f} | {r['mean_fused_tokens']:.0f} | "
                f"{out_mb:.0f} |")

    def number(value):
        return "none" if value is None else f"{value:.4f}"

    return "\n".join([
        SECTION, "",
        f"`python bench/bench_fuse.py` — {n_problems:,} problems x {K} trajectories "
        f"(synthetic verified Parquet, {input_mb:.0f} MB zstd, generated in {gen_s:.0f} s; responses "
        f"600–3000 chars), {os.cpu_count()} CPU cores, Python {platform.python_version()}. "
        f"Each build runs in a fresh subprocess; peak RSS = its VmHWM.", "",
        "| build | wall s | peak RSS MB | problems | mean #Err | mean chars | mean tokens | output MB |",
        "|---|---|---|---|---|---|---|---|",
        row("vanilla RFT (baseline, k_max=0)", rft, rft_out_mb),
        row(f"TrajFusion k_max=4 highdiv, alpha={tf['alpha']}", tf, tf_out_mb), "",
        f"calibrate-alpha (k_max=4, target #Err 1.49): {cal['wall_s']:.1f} s, peak "
        f"{cal['peak_rss_mb']:.0f} MB; alpha = {cal['alpha']} reaches {number(cal['achieved_mean_errors'])} "
        f"(just below: {number(cal['mean_errors_below'])}; next step at alpha {cal['alpha_next']}: "
        f"{number(cal['mean_errors_next'])}). TrajFusion/RFT wall-time ratio: "
        f"{tf['wall_s'] / rft['wall_s']:.2f}; dropped (no correct trajectory): {rft['dropped_no_correct']}.",
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 problems instead of 100,000")
    parser.add_argument("--problems", type=int, help="number of problems (overrides --quick)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))))
        return 0
    n_problems = args.problems or (5_000 if args.quick else 100_000)
    with tempfile.TemporaryDirectory(prefix="bench_fuse_") as tmp:
        verified = Path(tmp) / "verified.parquet"
        gen_s = measure({"kind": "generate", "output": str(verified), "problems": n_problems})["wall_s"]
        rft = measure({"kind": "fuse", "input": str(verified), "output": f"{tmp}/rft.jsonl", "k_max": 0})
        cal = measure({"kind": "calibrate", "input": str(verified), "k_max": 4, "target": "1.49"})
        tf = measure({"kind": "fuse", "input": str(verified), "output": f"{tmp}/tf.jsonl", "k_max": 4,
                      "alpha": cal["alpha"]})
        sizes = {name: Path(tmp, f"{name}.jsonl").stat().st_size / 2**20 for name in ("rft", "tf")}
        section = render(n_problems, verified.stat().st_size / 2**20, gen_s, rft, cal, tf, sizes["tf"],
                         sizes["rft"])
    print(section)
    write_section(section, RESULTS)
    worst_s, worst_mb = max(rft["wall_s"], tf["wall_s"]), max(rft["peak_rss_mb"], tf["peak_rss_mb"])
    if not args.quick:  # a --quick smoke run is no headline figure
        record_headline("Fusion (RFT and one TrajFusion variant)",
                        measured=(f"{n_problems:,} problems x {K}: TrajFusion {tf['wall_s']:.1f} s, "
                                  f"{tf['peak_rss_mb']:.0f} MB peak"),
                        baseline=f"RFT {rft['wall_s']:.1f} s, {rft['peak_rss_mb']:.0f} MB peak",
                        ratio=f"{tf['wall_s'] / rft['wall_s']:.2f}x time", target="< 60 s and < 4 GB each",
                        met=worst_s < 60 and worst_mb < 4096)
    return 0


if __name__ == "__main__":
    sys.exit(main())

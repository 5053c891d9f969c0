"""Benchmark the hf sampling backend: batched generation vs one prompt at a time.

Both modes generate the same number of sequences for the same GSM8K prompts with the
model loaded once: batched = all prompts in one ``generate`` call with n samples each;
one at a time = every prompt alone with n=1, repeated n times. Reports generated
tokens/s (tokens up to and including EOS) and writes the ``## Sampling (hf backend, CPU)``
section of bench/results.md, keeping the file's other sections.

    python bench/bench_sampling.py [--model DIR] [--quick]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from common import ensure_smollm2
from results_md import record_headline, write_section

REPO = Path(__file__).resolve().parents[1]
SECTION = "## Sampling (hf backend, CPU)"
FULL = {"prompts": 12, "n": 4, "max_new_tokens": 64}
QUICK = {"prompts": 4, "n": 2, "max_new_tokens": 16}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None,
                        help="SmolLM2-135M-Instruct directory (default: prepared once under bench/.cache)")
    parser.add_argument("--problems", default=str(REPO / "data/train/gsm8k_train.jsonl"),
                        help="GSM8K-style JSONL with a 'question' field; the first N are used")
    parser.add_argument("--template", default="chat")
    parser.add_argument("--output", default=None,
                        help="results file (default bench/results.md; --quick writes only if given)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: on a shared 2-core machine 2 threads ran ~10x slower)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 4 prompts, n=2, 16 new tokens")
    return parser.parse_args(argv)


def load_prompts(problems_path: str, count: int, template_name: str, tokenizer) -> list[str]:
    from trajfusion.io import read_jsonl
    from trajfusion.templates import load_template

    template = load_template(template_name)
    questions = [row["question"] for row in read_jsonl(problems_path)[:count]]
    return [template.render_prompt(question, tokenizer) for question in questions]


def timed_generate(backend, prompts: list[str], n: int, max_new_tokens: int, seed: int) -> tuple[int, float]:
    """Generated tokens and wall seconds of one ``generate`` call."""
    started = time.perf_counter()
    groups = backend.generate(prompts, n=n, temperature=0.7, top_p=0.95, max_new_tokens=max_new_tokens, seed=seed)
    return sum(c.n_tokens for group in groups for c in group), time.perf_counter() - started


def run(args: argparse.Namespace, sizes: dict) -> dict:
    import torch

    from trajfusion.sample.backends import load_backend

    backend = load_backend("hf", args.model, batch_size=sizes["prompts"], dtype="float32", device="cpu",
                           threads=args.threads)
    prompts = load_prompts(args.problems, sizes["prompts"], args.template, backend.tokenizer)
    timed_generate(backend, prompts[:1], 1, 4, seed=0)  # warm-up: first-call allocations
    load_before = os.getloadavg()[0]
    batched = timed_generate(backend, prompts, sizes["n"], sizes["max_new_tokens"], seed=1)
    backend.batch_size = 1  # same model, one prompt per generate call
    looped = [timed_generate(backend, prompts, 1, sizes["max_new_tokens"], seed=2 + r) for r in range(sizes["n"])]
    backend.close()
    loop_tokens, loop_seconds = sum(t for t, _ in looped), sum(s for _, s in looped)
    return {"sizes": sizes, "threads": torch.get_num_threads(), "load": (load_before, os.getloadavg()[0]),
            "batched": (batched[0], batched[1], batched[0] / batched[1]),
            "looped": (loop_tokens, loop_seconds, loop_tokens / loop_seconds)}


def render_section(result: dict, args: argparse.Namespace) -> str:
    sizes, (b_tok, b_sec, b_rate), (l_tok, l_sec, l_rate) = result["sizes"], result["batched"], result["looped"]
    sequences = sizes["prompts"] * sizes["n"]
    return "\n".join([
        SECTION, "",
        f"`python bench/bench_sampling.py{' --quick' if args.quick else ''}` on `{args.model}` "
        f"(template `{args.template}`, first {sizes['prompts']} GSM8K train questions, temperature 0.7, "
        f"top-p 0.95, max_new_tokens {sizes['max_new_tokens']}, float32, {result['threads']} torch threads; "
        f"1-min load average {result['load'][0]:.1f} before, {result['load'][1]:.1f} after — the CPU is shared, "
        f"so treat the rates as indicative).", "",
        "| mode | sequences | generated tokens | wall s | tokens/s |",
        "|---|---|---|---|---|",
        f"| batched: {sizes['prompts']} prompts x n={sizes['n']} in one generate call | {sequences} | {b_tok} "
        f"| {b_sec:.1f} | {b_rate:.1f} |",
        f"| one at a time: each prompt with n=1, repeated {sizes['n']} times | {sequences} | {l_tok} "
        f"| {l_sec:.1f} | {l_rate:.1f} |",
        "", f"Batched / one-at-a-time throughput: **{b_rate / l_rate:.2f}x**.", "",
    ])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.model = args.model or str(ensure_smollm2())
    result = run(args, QUICK if args.quick else FULL)
    section = render_section(result, args)
    print(section)
    output = args.output or (None if args.quick else REPO / "bench" / "results.md")
    if output is not None:
        output = write_section(section, output)
        print(f"wrote {output}")
    if output is not None and not args.quick:  # a --quick smoke run is no headline figure
        (_, _, batched), (_, _, looped) = result["batched"], result["looped"]
        record_headline("Sampling on CPU (`hf`, SmolLM2-135M)", measured=f"batched {batched:.1f} tok/s",
                        baseline=f"one prompt at a time {looped:.1f} tok/s", ratio=f"{batched / looped:.2f}x",
                        target=">= 4x", met=batched / looped >= 4)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

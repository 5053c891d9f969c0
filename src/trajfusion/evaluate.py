"""``trajfusion evaluate``: sample a model on a benchmark and write the verdict table.

For every benchmark problem the prompt is rendered with the model's template, N samples
are generated (paper Appendix B.4: N = 16 for AIME, 1 elsewhere), each response is judged
against the gold ``answer`` with ``trajfusion.verify.verify_frame`` and its reflections are
counted. The output has the contract columns ``problem_id, sample_idx, response, n_tokens,
finish_reason, gold, answer, correct, status, n_reflections``, sorted by
``(problem_id, sample_idx)``.

Evaluation disables the output filters (truncation, repetition, language switch): every
response is judged on its extracted answer, as in the Qwen2.5-Math evaluation toolkit the
paper uses. A response without an extractable answer is incorrect (the verifier marks it
``filtered:no_answer``).

Reflection counting rule (``count_reflections``): the phrases are every string listed under
any top-level key of the phrase file (``resources/phrases.yaml``: the paper's Table 5
error-recognition, success and certainty phrases) plus the generic self-correction markers
in ``GENERIC_MARKERS`` ("wait", "hmm", "let's try again", ...). Matching is
case-insensitive, treats typographic apostrophes as ASCII ones and any run of whitespace as
one space, and requires the match not to start or end inside a word. Matches are counted
without overlap, scanning left to right and preferring the longest phrase at each
position, so a full Table 5 phrase such as "Wait... that doesn't seem right. Let's try
again." counts once, not once per marker it contains.
"""

from __future__ import annotations

import argparse
import logging
import re
from functools import lru_cache
from pathlib import Path

import pandas as pd

from trajfusion.io import InputError, artifact_metadata, read_table, sha256_file, write_parquet
from trajfusion.phrases import all_phrases, default_phrases_path
from trajfusion.report.metrics import VERDICT_COLUMNS

log = logging.getLogger(__name__)

GENERIC_MARKERS = (
    "wait", "hmm", "hold on", "on second thought",
    "let's try again", "let me try again", "let's try another", "let me try another",
    "let me recheck", "let me re-check", "let's recheck", "let's re-check", "let me double-check",
    "let me reconsider", "let's reconsider", "let me re-evaluate", "let's re-evaluate",
    "i made a mistake", "that's not right", "that is not right", "that doesn't seem right",
)


def _normalize(text: str) -> str:
    return text.replace("\u2019", "'").replace("\u2018", "'")


@lru_cache(maxsize=8)
def reflection_pattern(phrases: tuple[str, ...]) -> re.Pattern:
    """One alternation over all phrases, longest first, each bounded by non-word characters."""
    unique = sorted({_normalize(p).strip().lower() for p in phrases}, key=lambda p: (-len(p), p))
    bodies = [r"\s+".join(re.escape(word) for word in p.split()) for p in unique]
    return re.compile(r"(?<!\w)(?:" + "|".join(bodies) + r")(?!\w)", re.IGNORECASE)


def count_reflections(text: str, phrases: tuple[str, ...]) -> int:
    """Occurrences of ``phrases`` and ``GENERIC_MARKERS`` in ``text`` (rule in the module docstring)."""
    return sum(1 for _ in reflection_pattern((*phrases, *GENERIC_MARKERS)).finditer(_normalize(text)))


def read_benchmark(path: str | Path) -> pd.DataFrame:
    df = read_table(path, required=("problem_id", "problem", "answer"))
    if df.empty:
        raise InputError(f"{path}: benchmark has no problems")
    for field in ("problem_id", "problem", "answer"):
        bad = df.index[df[field].isna() | (df[field].astype(str).str.strip() == "")]
        if len(bad):
            raise InputError(f"{path}: record {int(bad[0])}: field {field!r} is empty")
    dup = df["problem_id"].duplicated()
    if dup.any():
        row = int(dup.to_numpy().nonzero()[0][0])
        raise InputError(f"{path}: record {row}: field 'problem_id' duplicates {df['problem_id'].iloc[row]!r}")
    return df.reset_index(drop=True)


def backend_options(args: argparse.Namespace) -> dict:
    """Only the options the user set, so that each backend keeps its own defaults."""
    names = ("batch_size", "dtype", "tensor_parallel_size", "max_model_len")
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def generate_samples(backend, bench: pd.DataFrame, template_name: str, args: argparse.Namespace) -> pd.DataFrame:
    """One row per (problem, sample) with the backend's completions."""
    from trajfusion.templates import load_template

    template = load_template(template_name)
    tokenizer = getattr(backend, "tokenizer", None)
    prompts = [template.render_prompt(problem, tokenizer) for problem in bench["problem"]]
    log.info("generating %d x %d samples", len(prompts), args.samples)
    outputs = backend.generate(prompts, n=args.samples, temperature=args.temperature, top_p=args.top_p,
                               max_new_tokens=args.max_new_tokens, seed=args.seed)
    if len(outputs) != len(prompts) or any(len(c) != args.samples for c in outputs):
        raise RuntimeError(f"backend returned {[len(c) for c in outputs][:5]}... completions for "
                           f"{len(prompts)} prompts x {args.samples} samples")
    answer_types = [None if pd.isna(t) else str(t) for t in bench["answer_type"]] \
        if "answer_type" in bench.columns else [None] * len(bench)
    rows = [
        {"problem_id": pid, "sample_idx": idx, "response": c.text, "n_tokens": int(c.n_tokens),
         "finish_reason": c.finish_reason, "gold": str(gold), "answer_type": answer_type}
        for pid, gold, answer_type, completions in zip(bench["problem_id"], bench["answer"], answer_types, outputs)
        for idx, c in enumerate(completions)
    ]
    return pd.DataFrame(rows)


def judge(samples: pd.DataFrame, phrases: tuple[str, ...], workers: int, timeout: float,
          source: str = "samples") -> pd.DataFrame:
    """Verify every response against its gold answer (``answer_type`` is the verifier's
    comparison hint) and count its reflections."""
    from trajfusion.verify import verify_frame

    verdicts = verify_frame(samples, workers=workers, timeout=timeout, filters={"enabled": []}, progress=True,
                            source=source)
    verdicts["n_reflections"] = [count_reflections(text, phrases) for text in verdicts["response"]]
    verdicts = verdicts.sort_values(["problem_id", "sample_idx"], kind="mergesort").reset_index(drop=True)
    return verdicts.astype({"sample_idx": "int64", "n_tokens": "int64", "correct": "bool",
                            "n_reflections": "int64"})[list(VERDICT_COLUMNS)]


def run(args: argparse.Namespace) -> int:
    from trajfusion.generation import load_backend

    if args.samples < 1:
        raise InputError(f"--samples must be >= 1, got {args.samples}")
    phrases = tuple(all_phrases(args.phrases))
    bench = read_benchmark(args.benchmark)
    backend = load_backend(args.backend, args.model, **backend_options(args))
    try:
        samples = generate_samples(backend, bench, args.template, args)
    finally:
        close = getattr(backend, "close", None)
        if close is not None:
            close()
    verdicts = judge(samples, phrases, args.workers, args.timeout, source=str(args.benchmark))
    settings = {key: value for key, value in sorted(vars(args).items())
                if key not in ("func", "output", "verbose", "command")}
    settings["benchmark_sha256"] = sha256_file(args.benchmark)
    settings["phrases_sha256"] = sha256_file(args.phrases or default_phrases_path())
    write_parquet(verdicts, args.output, metadata={**artifact_metadata(settings), "settings": settings})
    accuracy = verdicts.loc[verdicts["sample_idx"] == 0, "correct"].mean()
    log.info("%s: %d problems, pass@1 %.4f -> %s", args.benchmark, len(bench), accuracy, args.output)
    return 0


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="generate N samples per benchmark problem and verify them",
                       description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="model directory (safetensors + tokenizer)")
    p.add_argument("--benchmark", required=True, help="benchmark problem table (.parquet)")
    p.add_argument("--template", required=True, help="prompt template name (resources/templates.yaml)")
    p.add_argument("--backend", choices=("hf", "vllm"), default="hf")
    p.add_argument("--samples", type=int, required=True, help="samples per problem (16 for AIME, else 1)")
    p.add_argument("--temperature", type=float, required=True)
    p.add_argument("--top-p", type=float, required=True)
    p.add_argument("--max-new-tokens", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--batch-size", type=int, default=None, help="backend batch size (prompts per batch)")
    p.add_argument("--dtype", default=None, help="model dtype for the backend, e.g. float32, bfloat16")
    p.add_argument("--tensor-parallel-size", type=int, default=None, help="vLLM tensor parallelism")
    p.add_argument("--max-model-len", type=int, default=None, help="vLLM context length")
    p.add_argument("--workers", type=int, default=1, help="verifier processes (0: verify in this process)")
    p.add_argument("--timeout", type=float, default=5.0, help="verifier timeout per response, seconds")
    p.add_argument("--phrases", default=None, help="reflection phrase file (default: resources/phrases.yaml)")
    p.add_argument("--output", required=True, help="verdict table (.parquet)")
    p.set_defaults(func=run)

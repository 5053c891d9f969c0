"""The benchmark's problems and the model's samples of them (N per problem, paper Appendix B.4)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from trajfusion.sample.shards import read_problems

log = logging.getLogger(__name__)

BENCHMARK_COLUMNS = ["problem_id", "problem", "answer"]


def read_benchmark(path: str | Path) -> pd.DataFrame:
    """The problems with their gold answers (and answer types), checked against the problem contract."""
    return read_problems(str(path), BENCHMARK_COLUMNS).reset_index(drop=True)


def generate_samples(backend, bench: pd.DataFrame, template_name: str, n: int, temperature: float, top_p: float,
                     max_new_tokens: int, seed: int, partial=None) -> pd.DataFrame:
    """One row per (problem, sample) with the backend's ``n`` completions of each problem
    (``partial``: the job's ``PartialBatches``, to resume a killed run)."""
    from trajfusion.templates import load_template

    template = load_template(template_name)
    tokenizer = getattr(backend, "tokenizer", None)
    prompts = [template.render_prompt(problem, tokenizer) for problem in bench["problem"]]
    log.info("generating %d x %d samples", len(prompts), n)
    outputs = backend.generate(prompts, n=n, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                               seed=seed, keys=bench["problem_id"].tolist(), partial=partial)
    if len(outputs) != len(prompts) or any(len(c) != n for c in outputs):
        raise RuntimeError(f"backend returned {[len(c) for c in outputs][:5]}... completions for "
                           f"{len(prompts)} prompts x {n} samples")
    answer_types = [None if pd.isna(t) else str(t) for t in bench["answer_type"]] \
        if "answer_type" in bench.columns else [None] * len(bench)
    rows = [
        {"problem_id": pid, "sample_idx": idx, **_ended(c, template, tokenizer), "gold": str(gold),
         "answer_type": answer_type}
        for pid, gold, answer_type, completions in zip(bench["problem_id"], bench["answer"], answer_types, outputs)
        for idx, c in enumerate(completions)
    ]
    return pd.DataFrame(rows)


def _ended(completion, template, tokenizer) -> dict:
    """The completion's text, tokens and finish reason, cut at the template's first stop string
    (a few-shot prompt's next "Question:"); a cut response counts the tokens it keeps."""
    kept = template.cut(completion.text)
    if kept is None:
        return {"response": completion.text, "n_tokens": int(completion.n_tokens),
                "finish_reason": completion.finish_reason}
    n_tokens = len(tokenizer(kept, add_special_tokens=False)["input_ids"]) if tokenizer is not None \
        else int(completion.n_tokens)
    return {"response": kept, "n_tokens": n_tokens, "finish_reason": "stop"}

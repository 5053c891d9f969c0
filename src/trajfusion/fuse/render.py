"""A plan's fused examples: the assistant text of Appendix A.2 with its drawn phrases, the
dataset rows and the dataset summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd

from trajfusion.fuse.inputs import check_texts
from trajfusion.fuse.selection import seeded_rng
from trajfusion.fuse.settings import FuseSettings
from trajfusion.fused_text import render_fused
from trajfusion.io import InputError, sha256_file
from trajfusion.phrases import Phrases
from trajfusion.trajectory import Trajectory, split_trajectory


def fuse_text(errors: Sequence[str], correct: str, answer: str, error_phrases: Sequence[str] = (),
              success_phrase: str | None = None, certainty_phrase: str | None = None,
              keep_final: bool = False) -> str:
    """The fused assistant reply of Appendix A.2 (layout in ``trajfusion.fused_text``) from whole
    completions; ValueError on one that opens a think block and never closes it."""
    return render_fused([split_trajectory(e) for e in errors], split_trajectory(correct), answer, error_phrases,
                        success_phrase, certainty_phrase, keep_final).text


def split_or_fail(text: str, problem_id: str, sample_idx: int, source: str) -> Trajectory:
    """``split_trajectory`` with an InputError naming the sample (the verifier's ``unclosed_think``
    filter should have dropped it)."""
    try:
        return split_trajectory(text)
    except ValueError as exc:
        raise InputError(f"{source}: problem_id={problem_id!r}, sample_idx={sample_idx}: field 'response': {exc} "
                         f"(expected status 'filtered:unclosed_think' for it)") from None


def draw_phrases(problem_id: str, n_errors: int, phrases: Phrases, seed: int,
                 certainty_prob: float) -> tuple[list[str], str | None, str | None]:
    """Error phrases, success phrase and optional certainty phrase for one example."""
    if n_errors == 0:
        return [], None, None
    rng = seeded_rng(seed, problem_id, "phrases")
    error_phrases = [rng.choice(phrases.error_recognition) for _ in range(n_errors)]
    success = rng.choice(phrases.success_confirmation)
    certainty = None
    if certainty_prob > 0 and rng.random() < certainty_prob:
        certainty = rng.choice(phrases.certainty)
    return error_phrases, success, certainty


def build_examples(plan: pd.DataFrame, meta: pd.DataFrame, texts, settings: FuseSettings,
                   phrases: Phrases, source: str = "<table>", progress: bool = False) -> Iterator[dict]:
    """Yield the fused dataset rows (contract: docs/architecture.md, 'Fused dataset')."""
    from tqdm import tqdm

    if settings.certainty_prob > 0 and not phrases.certainty:
        raise InputError(f"{phrases.source}: field 'certainty' is empty but --certainty-prob > 0")
    correct_pos = plan["correct_pos"].to_numpy()
    error_lists = plan["error_pos"].tolist()
    error_pos = np.fromiter((p for lst in error_lists for p in lst), dtype=np.int64)
    problems = texts.take("problem", correct_pos)
    check_texts(problems, correct_pos, source, "problem", meta)
    responses = texts.take("response", np.concatenate([correct_pos, error_pos]))
    check_texts(responses, np.concatenate([correct_pos, error_pos]), source, "response", meta)
    correct_texts, error_texts = responses[:len(correct_pos)], responses[len(correct_pos):]
    offset = 0
    rows = zip(plan.index.tolist(), problems, correct_texts, plan["answer"].tolist(),
               plan["correct_index"].tolist(), plan["error_indices"].tolist())
    for pid, problem, correct, answer, correct_index, error_indices in tqdm(
            rows, total=len(plan), desc="fuse", unit="problem", disable=not progress):
        errors = [split_or_fail(text, pid, idx, source)
                  for text, idx in zip(error_texts[offset:offset + len(error_indices)], error_indices)]
        offset += len(error_indices)
        error_phrases, success, certainty = draw_phrases(pid, len(errors), phrases, settings.seed,
                                                         settings.certainty_prob)
        fused = render_fused(errors, split_or_fail(correct, pid, correct_index, source), answer, error_phrases,
                             success, certainty, settings.keep_final)
        yield {"problem_id": pid,
               "messages": [{"role": "user", "content": problem}, {"role": "assistant", "content": fused.text}],
               "n_errors": len(errors), "error_indices": [int(i) for i in error_indices],
               "correct_index": int(correct_index), "alpha": settings.alpha_text,
               "k_max": settings.k_max, "strategy": settings.strategy, "seed": int(settings.seed),
               "error_spans": [list(span) for span in fused.error_spans],
               "success_span": None if fused.success_span is None else list(fused.success_span)}


class SummaryAccumulator:
    """Collects the dataset summary while rows stream to disk."""

    def __init__(self):
        self.chars = 0
        self.rows = 0

    def watch(self, rows: Iterator[dict]) -> Iterator[dict]:
        for row in rows:
            self.chars += len(row["messages"][1]["content"])
            self.rows += 1
            yield row


def summarize(plan: pd.DataFrame, dropped: int, response_chars: int, settings: FuseSettings,
              phrases: Phrases) -> dict:
    n = len(plan)
    k_counts = Counter(plan["n_errors"].tolist())
    return {
        "problems": n,
        "dropped_no_correct": dropped,
        "mean_errors": float(Fraction(int(plan["n_errors"].sum()), n)) if n else 0.0,
        "k_distribution": {str(k): k_counts[k] for k in sorted(k_counts)},
        "problems_short_of_k": int((plan["n_errors"] < plan["k"]).sum()),
        "mean_response_chars": float(Fraction(response_chars, n)) if n else 0.0,
        "mean_fused_tokens": float(Fraction(int(plan["fused_tokens"].sum()), n)) if n else 0.0,
        "alpha": settings.alpha_text,
        "k_max": settings.k_max,
        "strategy": settings.strategy,
        "seed": int(settings.seed),
        "certainty_prob": settings.certainty_prob,
        "keep_final": settings.keep_final,
        "phrases": Path(phrases.source).name,
        "phrases_sha256": sha256_file(phrases.source),
    }

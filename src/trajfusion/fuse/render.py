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
from trajfusion.io import InputError, sha256_file
from trajfusion.phrases import Phrases


def fuse_text(errors: Sequence[str], correct: str, answer: str, error_phrases: Sequence[str] = (),
              success_phrase: str | None = None, certainty_phrase: str | None = None) -> str:
    """The fused assistant reply of Appendix A.2 (layout in the package docstring)."""
    if len(error_phrases) != len(errors):
        raise ValueError("one error-recognition phrase is needed per fused error")
    parts = ["<think>"]
    for error, phrase in zip(errors, error_phrases):
        parts += [error.rstrip(), phrase]
    parts.append(correct.rstrip())
    if errors:
        parts.append(success_phrase)
        if certainty_phrase:
            parts.append(certainty_phrase)
    parts += ["</think>", f"The answer is \\boxed{{{answer}}}."]
    return "\n".join(parts)


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
        errors = error_texts[offset:offset + len(error_indices)]
        offset += len(error_indices)
        error_phrases, success, certainty = draw_phrases(pid, len(errors), phrases, settings.seed,
                                                         settings.certainty_prob)
        content = fuse_text(errors, correct, answer, error_phrases, success, certainty)
        yield {"problem_id": pid,
               "messages": [{"role": "user", "content": problem}, {"role": "assistant", "content": content}],
               "n_errors": len(errors), "error_indices": [int(i) for i in error_indices],
               "correct_index": int(correct_index), "alpha": settings.alpha_text,
               "k_max": settings.k_max, "strategy": settings.strategy, "seed": int(settings.seed)}


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
        "phrases": Path(phrases.source).name,
        "phrases_sha256": sha256_file(phrases.source),
    }

"""Judging sampled responses: the chosen grader's verdict against the gold answer, the other
grader's verdict beside it, and the reflection and marker counts of each response, as the
verdict table."""

from __future__ import annotations

import pandas as pd

from trajfusion.contracts import VERDICTS
from trajfusion.evaluate.reflections import count_series

VERDICT_COLUMNS = VERDICTS.names


def judge(samples: pd.DataFrame, phrases: tuple[str, ...], workers: int, timeout: float,
          source: str = "samples", grader: str = "math_verify") -> pd.DataFrame:
    """Verify every response against its gold answer with ``grader`` (``answer_type`` is the
    comparison hint of math-verify) and again with the other grader, and count its reflections
    (occurrences of the error-recognition ``phrases``) and generic self-correction markers
    (``trajfusion.evaluate.reflections``).

    The verifier groups the incorrect answers of a problem; every correct response joins one
    more group, labelled with the grader's normalized gold (which no incorrect answer can
    equal: identical strings are equal under both graders)."""
    from trajfusion.verify import verify_frame
    from trajfusion.verify.graders import get_grader, other_grader

    chosen, other = get_grader(grader), other_grader(grader)
    options = {"workers": workers, "timeout": timeout, "filters": {"enabled": []},
               "answer_format": "lenient", "progress": True, "source": source}  # evaluation: lenient extraction
    verdicts = verify_frame(samples, grader=chosen, **options)
    checked = verify_frame(samples, grader=other, **options)
    gold_group = verdicts["gold"].map(chosen.normalize_gold).astype("str")
    verdicts["answer_group"] = verdicts["answer_group"].where(~verdicts["correct"], gold_group)
    verdicts["grader"] = pd.Series(chosen.name, index=verdicts.index, dtype="str")
    verdicts["other_answer"] = checked["answer"]
    verdicts["other_correct"] = checked["correct"]
    counts = [count_series(text, phrases) for text in verdicts["response"]]
    verdicts["n_reflections"] = [reflections for reflections, _ in counts]
    verdicts["n_markers"] = [markers for _, markers in counts]
    verdicts = verdicts.sort_values(["problem_id", "sample_idx"], kind="mergesort").reset_index(drop=True)
    return verdicts.astype({"sample_idx": "int64", "n_tokens": "int64", "correct": "bool", "n_reflections": "int64",
                            "n_markers": "int64", "other_correct": "bool"})[VERDICT_COLUMNS]

"""Judging sampled responses: the verifier's verdict against the gold answer and the
reflection and marker counts of each response, as the verdict table."""

from __future__ import annotations

import pandas as pd

from trajfusion.contracts import VERDICTS
from trajfusion.evaluate.reflections import count_series

VERDICT_COLUMNS = VERDICTS.names


def judge(samples: pd.DataFrame, phrases: tuple[str, ...], workers: int, timeout: float,
          source: str = "samples") -> pd.DataFrame:
    """Verify every response against its gold answer (``answer_type`` is the verifier's
    comparison hint) and count its reflections (occurrences of the error-recognition
    ``phrases``) and generic self-correction markers (``trajfusion.evaluate.reflections``)."""
    from trajfusion.verify import verify_frame

    verdicts = verify_frame(samples, workers=workers, timeout=timeout, filters={"enabled": []}, progress=True,
                            source=source)
    counts = [count_series(text, phrases) for text in verdicts["response"]]
    verdicts["n_reflections"] = [reflections for reflections, _ in counts]
    verdicts["n_markers"] = [markers for _, markers in counts]
    verdicts = verdicts.sort_values(["problem_id", "sample_idx"], kind="mergesort").reset_index(drop=True)
    return verdicts.astype({"sample_idx": "int64", "n_tokens": "int64", "correct": "bool",
                            "n_reflections": "int64", "n_markers": "int64"})[VERDICT_COLUMNS]

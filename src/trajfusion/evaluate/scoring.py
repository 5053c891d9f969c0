"""Judging sampled responses: the verifier's verdict against the gold answer and the
reflection count of each response, as the verdict table."""

from __future__ import annotations

import pandas as pd

from trajfusion.contracts import VERDICTS
from trajfusion.evaluate.reflections import count_reflections

VERDICT_COLUMNS = VERDICTS.names


def judge(samples: pd.DataFrame, phrases: tuple[str, ...], workers: int, timeout: float,
          source: str = "samples") -> pd.DataFrame:
    """Verify every response against its gold answer (``answer_type`` is the verifier's
    comparison hint) and count its reflections."""
    from trajfusion.verify import verify_frame

    verdicts = verify_frame(samples, workers=workers, timeout=timeout, filters={"enabled": []},
                            answer_format="lenient", progress=True, source=source)
    verdicts["n_reflections"] = [count_reflections(text, phrases) for text in verdicts["response"]]
    verdicts = verdicts.sort_values(["problem_id", "sample_idx"], kind="mergesort").reset_index(drop=True)
    return verdicts.astype({"sample_idx": "int64", "n_tokens": "int64", "correct": "bool",
                            "n_reflections": "int64"})[VERDICT_COLUMNS]

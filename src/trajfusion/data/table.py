"""The normalized problem table shared by pools and benchmarks (docs/architecture.md)."""

from __future__ import annotations

import pandas as pd

from trajfusion.io import InputError

PROBLEM_COLUMNS = ("problem_id", "problem", "answer", "source", "level", "subject", "year",
                   "answer_type", "flags")
ANSWER_TYPES = ("number", "integer", "latex", "bool", "list", "option", "text")
_STRING_COLUMNS = tuple(c for c in PROBLEM_COLUMNS if c != "year")


def problem_row(problem_id: str, problem: str, answer: str, source: str, *, level=None,
                subject=None, year=None, answer_type=None, flags=None, **extra) -> dict:
    """One problem-table row; ``extra`` holds source-specific metadata columns."""
    if answer_type is not None and answer_type not in ANSWER_TYPES:
        raise ValueError(f"unknown answer_type {answer_type!r}")
    return {"problem_id": problem_id, "problem": problem, "answer": answer, "source": source,
            "level": level, "subject": subject, "year": year, "answer_type": answer_type,
            "flags": flags, **extra}


def problem_frame(rows: list[dict], origin: str) -> pd.DataFrame:
    """Typed problem table sorted by problem_id; duplicate ids raise InputError naming ``origin``."""
    df = pd.DataFrame(rows, columns=list(PROBLEM_COLUMNS) if not rows else None)
    duplicated = df["problem_id"][df["problem_id"].duplicated()]
    if not duplicated.empty:
        raise InputError(f"{origin}: duplicate problem_id {duplicated.iloc[0]!r} "
                         f"({duplicated.nunique()} duplicated id(s))")
    return typed(df).sort_values("problem_id", kind="stable").reset_index(drop=True)


def typed(df: pd.DataFrame) -> pd.DataFrame:
    """Cast the contract columns to their dtypes (str with NaN for missing, year Int64)."""
    df = df.copy()
    for column in _STRING_COLUMNS:
        df[column] = pd.Series(df[column].tolist(), index=df.index, dtype="str")
    df["year"] = pd.array(df["year"].tolist(), dtype="Int64")
    extra = [c for c in df.columns if c not in PROBLEM_COLUMNS]
    return df[list(PROBLEM_COLUMNS) + extra]

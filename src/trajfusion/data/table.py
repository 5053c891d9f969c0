"""Rows and frames of the problem table shared by pools and benchmarks (its contract:
``trajfusion.contracts.PROBLEMS``)."""

from __future__ import annotations

import pandas as pd

from trajfusion.contracts import ANSWER_TYPES, PROBLEMS

_STRING_COLUMNS = [c.name for c in PROBLEMS.columns if c.dtype == "str"]
_RECORD = "_record"


def problem_row(problem_id: str, problem: str, answer: str, source: str, *, level=None,
                subject=None, year=None, answer_type=None, flags=None, record: int | None = None,
                **extra) -> dict:
    """One problem-table row; ``extra`` holds source-specific metadata columns. ``record``
    (the 1-based record number in the source file) only serves error messages."""
    if answer_type is not None and answer_type not in ANSWER_TYPES:
        raise ValueError(f"unknown answer_type {answer_type!r}")
    row = {"problem_id": problem_id, "problem": problem, "answer": answer, "source": source,
           "level": level, "subject": subject, "year": year, "answer_type": answer_type,
           "flags": flags, **extra}
    if record is not None:
        row[_RECORD] = record
    return row


def problem_frame(rows: list[dict], origin: str) -> pd.DataFrame:
    """Typed problem table sorted by problem_id; a duplicate id raises InputError naming
    ``origin`` and the records of both occurrences (the source file's, when the rows carry them)."""
    df = pd.DataFrame(rows, columns=PROBLEMS.names if not rows else None)
    PROBLEMS.check(df, origin, columns=["problem_id"], record_numbers=df[_RECORD] if _RECORD in df else None)
    df = df.drop(columns=[_RECORD], errors="ignore")
    return typed(df).sort_values("problem_id", kind="stable").reset_index(drop=True)


def typed(df: pd.DataFrame) -> pd.DataFrame:
    """The contract columns first, in order and cast to their dtypes (str with NaN for
    missing, year Int64); source-specific columns after them."""
    df = df.copy()
    for column in _STRING_COLUMNS:
        df[column] = pd.Series(df[column].tolist(), index=df.index, dtype="str")
    df["year"] = pd.array(df["year"].tolist(), dtype="Int64")
    extra = [c for c in df.columns if c not in PROBLEMS.names]
    return df[PROBLEMS.names + extra]

"""The normalized problem table shared by pools and benchmarks (docs/architecture.md)."""

from __future__ import annotations

import pandas as pd

from trajfusion.io import InputError

PROBLEM_COLUMNS = ("problem_id", "problem", "answer", "source", "level", "subject", "year",
                   "answer_type", "flags")
ANSWER_TYPES = ("number", "integer", "latex", "bool", "list", "option", "text")
_STRING_COLUMNS = tuple(c for c in PROBLEM_COLUMNS if c != "year")
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
    """Typed problem table sorted by problem_id; duplicate ids raise InputError naming
    ``origin`` and, when the rows carry them, the record numbers of both occurrences."""
    df = pd.DataFrame(rows, columns=list(PROBLEM_COLUMNS) if not rows else None)
    repeated = df["problem_id"].duplicated()
    if repeated.any():
        _raise_duplicate(df, repeated, origin)
    df = df.drop(columns=[_RECORD], errors="ignore")
    return typed(df).sort_values("problem_id", kind="stable").reset_index(drop=True)


def _raise_duplicate(df: pd.DataFrame, repeated: pd.Series, origin: str) -> None:
    second = int(repeated.to_numpy().nonzero()[0][0])
    problem_id = df["problem_id"].iloc[second]
    count = df["problem_id"][repeated].nunique()
    if _RECORD not in df.columns:
        raise InputError(f"{origin}: duplicate problem_id {problem_id!r} ({count} duplicated id(s))")
    first = int((df["problem_id"] == problem_id).to_numpy().nonzero()[0][0])
    raise InputError(f"{origin}: record {df[_RECORD].iloc[second]}: duplicate problem_id {problem_id!r} "
                     f"(also record {df[_RECORD].iloc[first]}; {count} duplicated id(s))")


def typed(df: pd.DataFrame) -> pd.DataFrame:
    """Cast the contract columns to their dtypes (str with NaN for missing, year Int64)."""
    df = df.copy()
    for column in _STRING_COLUMNS:
        df[column] = pd.Series(df[column].tolist(), index=df.index, dtype="str")
    df["year"] = pd.array(df["year"].tolist(), dtype="Int64")
    extra = [c for c in df.columns if c not in PROBLEM_COLUMNS]
    return df[list(PROBLEM_COLUMNS) + extra]

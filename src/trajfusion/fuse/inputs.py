"""The verified table fusion reads: its metadata checked against ``contracts.VERIFIED`` and
extended with fusion's row bookkeeping (``validate_verified``), and its long text columns
(``problem``, ``response``) fetched by row position on demand.

Fusion reads only the columns it needs, so a hand-made verified table may lack the rest of
the contract's columns; ``answer_group`` too: without it the normalized ``answer`` groups
the incorrect responses (a table from before answer groups were merged).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from trajfusion.contracts import VERIFIED, read
from trajfusion.io import InputError, read_table

META_COLUMNS = ("problem_id", "sample_idx", "n_tokens", "answer", "correct", "status")
TEXT_COLUMNS = ("problem", "response")
GROUP_COLUMN = "answer_group"


def meta_columns(names) -> list[str]:
    """The metadata columns fusion reads from a table with columns ``names``."""
    return [*META_COLUMNS, *([GROUP_COLUMN] if GROUP_COLUMN in names else [])]


def validate_verified(df: pd.DataFrame, source: str = "<table>") -> pd.DataFrame:
    """Check a verified table's metadata and return it with the declared dtypes plus ``_pos``
    (row number) and ``_group`` (incorrect-answer group of ok incorrect rows, else null)."""
    columns = meta_columns(df.columns)
    VERIFIED.check(df, source, columns=columns)
    return _with_bookkeeping(df[columns], columns)


def _with_bookkeeping(checked: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    meta = VERIFIED.conform(checked.reset_index(drop=True), columns)
    meta.insert(0, "_pos", np.arange(len(meta), dtype=np.int64))
    incorrect = (meta["status"] == "ok").to_numpy(dtype=bool) & ~meta["correct"].to_numpy()
    group = meta[GROUP_COLUMN if GROUP_COLUMN in columns else "answer"]
    meta["_group"] = group.astype("str").where(incorrect, None)
    return meta


class FrameTexts:
    """Texts of an in-memory verified table, addressed by row position."""

    def __init__(self, df: pd.DataFrame, source: str = "<table>"):
        missing = [c for c in TEXT_COLUMNS if c not in df.columns]
        if missing:
            raise InputError(f"{source}: missing required column(s) {missing}; has {list(df.columns)}")
        self.df = df.reset_index(drop=True)

    def take(self, column: str, positions: np.ndarray) -> list:
        return self.df[column].iloc[np.asarray(positions, dtype=np.int64)].tolist()


class ParquetTexts:
    """Texts of a Parquet verified table, read batch by batch for only the rows needed,
    so the full response column (gigabytes at paper scale) is never held in memory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def take(self, column: str, positions: np.ndarray) -> list:
        import pyarrow as pa
        import pyarrow.parquet as pq

        positions = np.asarray(positions, dtype=np.int64)
        order = np.argsort(positions, kind="stable")
        wanted = positions[order]
        out: list = [None] * len(positions)
        start = 0
        # Small batches: a batch of long responses is decoded whole (8192 x ~2 KB).
        reader = pq.ParquetFile(self.path, buffer_size=1 << 20)
        for batch in reader.iter_batches(batch_size=8192, columns=[column]):
            end = start + batch.num_rows
            lo, hi = np.searchsorted(wanted, [start, end])
            if hi > lo:
                values = batch.column(0).take(pa.array(wanted[lo:hi] - start)).to_pylist()
                for slot, value in zip(order[lo:hi].tolist(), values):
                    out[slot] = value
            start = end
        return out


def check_texts(values: list, positions, source: str, field: str, meta: pd.DataFrame) -> None:
    """Texts fetched for the rows at ``positions`` must fit the contract (strings); else the
    error names the first bad record of the table."""
    if not values:
        return
    positions = np.asarray(positions, dtype=np.int64)
    fetched = meta[["problem_id", "sample_idx"]].iloc[positions].reset_index(drop=True)
    fetched[field] = pd.Series(values, dtype=object)  # object: no copy of the texts
    VERIFIED.check(fetched, source, columns=[field], record_numbers=positions + 1)


def read_verified(path: str | Path) -> tuple[pd.DataFrame, object]:
    """Checked metadata of a verified table plus a text source for its long columns.
    Parquet is read without the problem/response columns, which are fetched on demand."""
    import pyarrow.parquet as pq

    path = Path(path)
    if path.suffix != ".parquet" or not path.exists():
        df = read_table(path, required=(*META_COLUMNS, *TEXT_COLUMNS))
        return validate_verified(df, str(path)), FrameTexts(df, str(path))
    names = pq.read_schema(path).names
    missing = [c for c in (*META_COLUMNS, *TEXT_COLUMNS) if c not in names]
    if missing:
        raise InputError(f"{path}: missing required column(s) {missing}; has {names}")
    columns = meta_columns(names)
    return _with_bookkeeping(read(path, VERIFIED, columns=columns), columns), ParquetTexts(path)

"""The verified table fusion reads: its metadata checked and normalised (``validate_verified``)
and its long text columns (``problem``, ``response``) fetched by row position on demand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from trajfusion.io import InputError, read_table

META_COLUMNS = ("problem_id", "sample_idx", "n_tokens", "answer", "correct", "status")
TEXT_COLUMNS = ("problem", "response")
GROUP_COLUMN = "answer_group"


def _record_error(meta: pd.DataFrame, mask, source: str, field: str, problem: str) -> InputError:
    i = int(np.flatnonzero(np.asarray(mask))[0])
    row = {key: value.item() if isinstance(value, np.generic) else value for key, value in meta.iloc[i].items()}
    return InputError(f"{source}: record {row['_pos'] + 1} (problem_id={row['problem_id']!r}, "
                      f"sample_idx={row['sample_idx']!r}): field '{field}' {problem}")


def _non_string(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_string_dtype(values.dtype) and values.dtype != object:
        return values.isna().to_numpy()
    return ~values.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)


def _integer_column(meta: pd.DataFrame, field: str, required, source: str) -> pd.Series:
    values = pd.to_numeric(meta[field], errors="coerce") if meta[field].dtype == object else meta[field]
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise _record_error(meta, np.ones(len(meta), bool), source, field, "is not an integer")
    as_float = values.astype("float64")
    bad = required & (as_float.isna() | (as_float != np.floor(as_float)) | (as_float < 0)).to_numpy()
    if bad.any():
        raise _record_error(meta, bad, source, field, "must be a non-negative integer")
    return as_float.fillna(0).astype("int64")


def _bool_column(meta: pd.DataFrame, field: str, required, source: str) -> pd.Series:
    values = meta[field]
    if values.dtype == bool:
        return values
    is_bool = values.map(lambda v: isinstance(v, (bool, np.bool_))).to_numpy(dtype=bool)
    bad = required & ~is_bool
    if bad.any():
        raise _record_error(meta, bad, source, field, "must be true or false")
    return values.where(is_bool, False).astype(bool)


def validate_verified(df: pd.DataFrame, source: str = "<table>") -> pd.DataFrame:
    """Check a verified table and return its normalised metadata with ``_pos`` (row number)
    and ``_group`` (incorrect-answer group of ok incorrect rows, else null)."""
    missing = [c for c in META_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"{source}: missing required column(s) {missing}; has {list(df.columns)}")
    columns = list(META_COLUMNS) + ([GROUP_COLUMN] if GROUP_COLUMN in df.columns else [])
    meta = df[columns].reset_index(drop=True)
    meta.insert(0, "_pos", np.arange(len(meta), dtype=np.int64))
    everywhere = np.ones(len(meta), dtype=bool)
    for field in ("problem_id", "status"):
        bad = _non_string(meta[field])
        if bad.any():
            raise _record_error(meta, bad, source, field, "must be a string")
    meta["sample_idx"] = _integer_column(meta, "sample_idx", everywhere, source)
    dup = meta.duplicated(["problem_id", "sample_idx"]).to_numpy()
    if dup.any():
        raise _record_error(meta, dup, source, "sample_idx", "repeats within its problem")
    ok = (meta["status"] == "ok").to_numpy(dtype=bool)
    meta["n_tokens"] = _integer_column(meta, "n_tokens", ok, source)
    meta["correct"] = _bool_column(meta, "correct", ok, source)
    wrongly_correct = meta["correct"].to_numpy() & ~ok
    if wrongly_correct.any():
        raise _record_error(meta, wrongly_correct, source, "correct",
                            "is true although status is not 'ok'")
    bad = ok & _non_string(meta["answer"])
    if bad.any():
        raise _record_error(meta, bad, source, "answer", "must be a string for a trajectory with status 'ok'")
    meta["_group"] = _incorrect_groups(meta, ok, source)
    return meta


def _incorrect_groups(meta: pd.DataFrame, ok: np.ndarray, source: str) -> pd.Series:
    incorrect = ok & ~meta["correct"].to_numpy()
    field = GROUP_COLUMN if GROUP_COLUMN in meta.columns else "answer"
    bad = incorrect & _non_string(meta[field])
    if bad.any():
        raise _record_error(meta, bad, source, field, "must be a string for an ok incorrect trajectory")
    return meta[field].astype("str").where(incorrect, None)


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
    """Texts fetched for the rows at ``positions`` must be strings; else name the first bad record."""
    for value, pos in zip(values, positions):
        if not isinstance(value, str):
            raise _record_error(meta, (meta["_pos"] == pos).to_numpy(), source, field, "must be a string")


def read_verified(path: str | Path) -> tuple[pd.DataFrame, object]:
    """Validated metadata of a verified table plus a text source for its long columns.
    Parquet is read without the problem/response columns, which are fetched on demand."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file does not exist")
    meta, texts = _read_verified(path)
    if meta.empty:
        raise InputError(f"{path}: no trajectories (the table has no rows)")
    return meta, texts


def _read_verified(path: Path) -> tuple[pd.DataFrame, object]:
    import pyarrow.parquet as pq

    if path.suffix == ".parquet":
        names = pq.read_schema(path).names
        missing = [c for c in (*META_COLUMNS, *TEXT_COLUMNS) if c not in names]
        if missing:
            raise InputError(f"{path}: missing required column(s) {missing}; has {names}")
        columns = list(META_COLUMNS) + ([GROUP_COLUMN] if GROUP_COLUMN in names else [])
        return validate_verified(pd.read_parquet(path, columns=columns), str(path)), ParquetTexts(path)
    df = read_table(path, required=(*META_COLUMNS, *TEXT_COLUMNS))
    return validate_verified(df, str(path)), FrameTexts(df, str(path))

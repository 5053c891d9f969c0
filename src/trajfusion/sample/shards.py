"""Sample shards and their merge: the rows of a pool one shard samples, the shard table, and
the checked concatenation of all shards joined with the pool's problem and gold answer.

A shard holds the pool rows whose position, after sorting by problem_id, is congruent to
the shard index modulo the shard count.
"""

from __future__ import annotations

import pandas as pd

from trajfusion.io import InputError, read_parquet_metadata, read_table
from trajfusion.sample.backends import FINISH_REASONS, Completion

SHARD_COLUMNS = ["problem_id", "sample_idx", "response", "n_tokens", "finish_reason", "teacher", "seed"]
MERGED_COLUMNS = ["problem_id", "sample_idx", "problem", "gold", "answer_type", "source", "response", "n_tokens",
                  "finish_reason", "teacher", "seed"]
POOL_COLUMNS = ["problem_id", "problem", "answer", "source"]


def read_pool(path: str, required: list[str]) -> pd.DataFrame:
    """The pool sorted by problem_id, with ids and ``required`` text fields checked."""
    pool = read_table(path, required=required)
    if pool.empty:
        raise InputError(f"{path}: the pool has no problems")
    for column in required:
        _check_text_column(pool, path, column)
    duplicated = pool["problem_id"].duplicated()
    if duplicated.any():
        row = int(duplicated.to_numpy().nonzero()[0][0])
        raise InputError(f"{path}: row {row}: field 'problem_id' repeats {pool['problem_id'].iloc[row]!r}")
    return pool.sort_values("problem_id", kind="stable").reset_index(drop=True)


def _check_text_column(table: pd.DataFrame, path: str, column: str) -> None:
    for row, value in enumerate(table[column].tolist()):
        if not isinstance(value, str) or (column == "problem_id" and not value):
            raise InputError(f"{path}: row {row}: field {column!r} must be a non-empty string, got {value!r}")


def shard_rows(pool: pd.DataFrame, num_shards: int, shard: int) -> pd.DataFrame:
    return pool.iloc[shard::num_shards].reset_index(drop=True)


def shard_frame(problem_ids: list[str], groups: list[list[Completion]], teacher: str, seed: int) -> pd.DataFrame:
    records = [(pid, idx, c.text, c.n_tokens, c.finish_reason)
               for pid, group in zip(problem_ids, groups, strict=True) for idx, c in enumerate(group)]
    frame = pd.DataFrame(records, columns=SHARD_COLUMNS[:5])
    frame["teacher"] = teacher
    frame["seed"] = seed
    return frame.astype({"problem_id": "str", "sample_idx": "int64", "response": "str", "n_tokens": "int64",
                         "finish_reason": "str", "teacher": "str", "seed": "int64"})


def merge_shards(pool: pd.DataFrame, pool_path: str, shard_paths: list[str], k: int) -> pd.DataFrame:
    """All samples of ``shard_paths``, checked (one teacher, no repeats, K per pool problem),
    joined with the pool's problem, gold answer, answer type and source."""
    samples = pd.concat([read_shard(path, k) for path in shard_paths], ignore_index=True)
    _check_teacher(samples)
    _check_duplicates(samples)
    _check_known_problems(samples, pool, pool_path)
    _check_complete(samples, pool, k, shard_paths)
    # answer_type lets the verifier read typed golds (e.g. TheoremQA lists) correctly.
    if "answer_type" not in pool.columns:
        pool = pool.assign(answer_type=None)
    gold = pool[["problem_id", "problem", "answer", "answer_type", "source"]].rename(columns={"answer": "gold"})
    merged = samples.drop(columns="file").merge(gold, on="problem_id", how="left", validate="many_to_one")
    merged = merged.sort_values(["problem_id", "sample_idx"], kind="stable").reset_index(drop=True)
    return merged[MERGED_COLUMNS]


def read_shard(path: str, k: int) -> pd.DataFrame:
    """A shard table with its contract fields checked and a 'file' column naming it."""
    shard = read_table(path, required=SHARD_COLUMNS)[SHARD_COLUMNS]
    _check_text_column(shard, path, "problem_id")
    _check_text_column(shard, path, "response")
    for row, (idx, reason) in enumerate(zip(shard["sample_idx"].tolist(), shard["finish_reason"].tolist())):
        if not isinstance(idx, int) or not 0 <= idx < k:
            raise InputError(f"{path}: row {row}: field 'sample_idx' must be an integer in [0, {k}), got {idx!r}")
        if reason not in FINISH_REASONS:
            raise InputError(f"{path}: row {row}: field 'finish_reason' must be one of "
                             f"{list(FINISH_REASONS)}, got {reason!r}")
    shard["file"] = str(path)
    return shard


def _check_teacher(samples: pd.DataFrame) -> None:
    teachers = samples.drop_duplicates("teacher")
    if len(teachers) > 1:
        first, other = teachers.iloc[0], teachers.iloc[1]
        raise InputError(f"{other['file']}: field 'teacher' is {other['teacher']!r} but {first['file']} "
                         f"has {first['teacher']!r}; shards of one merge must share a teacher")


def _check_duplicates(samples: pd.DataFrame) -> None:
    repeated = samples[samples.duplicated(["problem_id", "sample_idx"], keep=False)]
    if repeated.empty:
        return
    key = repeated.iloc[0]
    same = repeated[(repeated["problem_id"] == key["problem_id"]) & (repeated["sample_idx"] == key["sample_idx"])]
    files = sorted(set(same["file"]))
    where = f"{files[0]}: appears {len(same)} times" if len(files) == 1 else f"appears in {', '.join(files)}"
    raise InputError(f"duplicate sample (problem_id={key['problem_id']!r}, sample_idx={key['sample_idx']}) {where}")


def _check_known_problems(samples: pd.DataFrame, pool: pd.DataFrame, pool_path: str) -> None:
    unknown = samples[~samples["problem_id"].isin(pool["problem_id"])]
    if len(unknown):
        row = unknown.iloc[0]
        raise InputError(f"{row['file']}: problem_id {row['problem_id']!r} is not in the pool {pool_path}")


def _check_complete(samples: pd.DataFrame, pool: pd.DataFrame, k: int, shard_paths: list[str]) -> None:
    counts = samples.groupby("problem_id").size().reindex(pool["problem_id"], fill_value=0)
    short = counts[counts != k]
    if short.empty:
        return
    problem_id, count = short.index[0], int(short.iloc[0])
    position = int(pool.index[pool["problem_id"] == problem_id][0])
    raise InputError(f"{len(short)} of {len(pool)} pool problems do not have K={k} samples, e.g. "
                     f"{problem_id!r} has {count}; {_expected_shard(position, shard_paths)}")


def _expected_shard(position: int, inputs: list[str]) -> str:
    """Name the shard file that should hold the pool row at ``position`` (from shard metadata)."""
    layout = {}
    for path in inputs:
        settings = read_parquet_metadata(path).get("settings", {})
        if "num_shards" in settings and "shard" in settings:
            layout[path] = (settings["num_shards"], settings["shard"])
    shard_counts = {num for num, _ in layout.values()}
    if len(layout) != len(inputs) or len(shard_counts) != 1:
        return f"inputs: {', '.join(inputs)}"
    num_shards = shard_counts.pop()
    shard = position % num_shards
    holders = [path for path, (_, index) in layout.items() if index == shard]
    if holders:
        return f"it belongs to shard {shard} of {num_shards} ({holders[0]}), which lacks samples for it"
    return f"it belongs to shard {shard} of {num_shards}, which is missing from --inputs"

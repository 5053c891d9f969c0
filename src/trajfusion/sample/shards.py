"""Sample shards and their merge: the rows of a pool one shard samples, the shard table, and
the checked concatenation of all shards joined with the pool's problem and gold answer.

The pool, sorted by problem_id, is cut into blocks of ``block`` consecutive problems (the hf
backend's batch size; 1 for vLLM and openai, which seed every request on their own), and a shard holds the
blocks whose index is congruent to the shard index modulo the shard count. Each block is one
generate batch seeded from its problems' ids, so the samples are the same however many shards
the work is cut into. Tables are checked by their contracts
(``trajfusion.contracts``: PROBLEMS, SAMPLE_SHARD, MERGED_SAMPLES); what only the merge can
check (every sample's problem is in the pool, K samples per pool problem) is checked here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trajfusion.contracts import MERGED_SAMPLES, PROBLEMS, SAMPLE_SHARD, read
from trajfusion.io import InputError, read_parquet_metadata, read_table
from trajfusion.sample.backends import Completion

SHARD_COLUMNS = SAMPLE_SHARD.names
MERGED_COLUMNS = MERGED_SAMPLES.names
SAMPLE_POOL_COLUMNS = ["problem_id", "problem"]
MERGE_POOL_COLUMNS = ["problem_id", "problem", "answer", "source"]


def read_problems(path: str, columns: list[str]) -> pd.DataFrame:
    """A problem table (pool, benchmark) with ``columns`` and, when it has one, its ``answer_type``
    checked against the problem contract. The whole table is read, as answer_type is optional."""
    problems = read_table(path)
    optional = ["answer_type"] if "answer_type" in problems.columns and "answer_type" not in columns else []
    return PROBLEMS.check(problems, str(path), [*columns, *optional])


def read_pool(path: str, columns: list[str]) -> pd.DataFrame:
    """The pool (``read_problems``) sorted by problem_id."""
    return read_problems(path, columns).sort_values("problem_id", kind="stable").reset_index(drop=True)


def shard_of(position: int, num_shards: int, block: int) -> int:
    """The shard holding the sorted pool's row at ``position``."""
    return (position // block) % num_shards


def shard_rows(pool: pd.DataFrame, num_shards: int, shard: int, block: int) -> pd.DataFrame:
    positions = np.arange(len(pool))
    return pool[shard_of(positions, num_shards, block) == shard].reset_index(drop=True)


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
    samples = pd.concat([read(path, SAMPLE_SHARD).assign(file=str(path)) for path in shard_paths],
                        ignore_index=True)
    if len(samples):  # no samples at all: _check_complete says which problems lack them
        # The key and the one-teacher rule across shards; records are numbered through the inputs in order.
        MERGED_SAMPLES.check(samples, f"--inputs {' '.join(map(str, shard_paths))}",
                             columns=["problem_id", "sample_idx", "teacher"])
    _check_known_problems(samples, pool, pool_path)
    _check_complete(samples, pool, k, shard_paths)
    # answer_type lets the verifier read typed golds (e.g. TheoremQA lists) correctly.
    if "answer_type" not in pool.columns:
        pool = pool.assign(answer_type=None)
    gold = pool[["problem_id", "problem", "answer", "answer_type", "source"]].rename(columns={"answer": "gold"})
    merged = samples.drop(columns="file").merge(gold, on="problem_id", how="left", validate="many_to_one")
    merged = merged.sort_values(["problem_id", "sample_idx"], kind="stable").reset_index(drop=True)
    return merged[MERGED_COLUMNS]


# How the work was cut: may differ between samplings of the same samples.
_CUT = ("shard", "num_shards", "block")


def common_sampling_settings(shard_paths: list[str]) -> dict:
    """The sampling settings recorded in the shards' metadata, without how the work was cut;
    InputError when two shards were sampled with different settings."""
    common, first = None, None
    for path in shard_paths:
        settings = {key: value for key, value in read_parquet_metadata(path).get("settings", {}).items()
                    if key not in _CUT}
        if common is None:
            common, first = settings, path
            continue
        differing = sorted(key for key in set(common) | set(settings) if common.get(key) != settings.get(key))
        if differing:
            key = differing[0]
            raise InputError(f"{path}: sampled with {key}={settings.get(key)!r}, but {first} with "
                             f"{key}={common.get(key)!r}; all shards of a pool must share the sampling settings")
    return common or {}


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
        if {"num_shards", "shard", "block"} <= set(settings):
            layout[path] = (settings["num_shards"], settings["block"], settings["shard"])
    cuts = {(num, block) for num, block, _ in layout.values()}
    if len(layout) != len(inputs) or len(cuts) != 1:
        return f"inputs: {', '.join(inputs)}"
    num_shards, block = cuts.pop()
    shard = shard_of(position, num_shards, block)
    holders = [path for path, (_, _, index) in layout.items() if index == shard]
    if holders:
        return f"it belongs to shard {shard} of {num_shards} ({holders[0]}), which lacks samples for it"
    return f"it belongs to shard {shard} of {num_shards}, which is missing from --inputs"

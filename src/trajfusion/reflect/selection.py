"""Which problems get a micro-reflective trajectory, from which y- and y+ (no text yet).

Candidates (the "ZPD" band): problems with at least one correct and one incorrect ``ok``
trajectory whose accuracy 1 - r(x) = n_correct / K lies in [band_low, band_high] (inclusive,
compared exactly). y+ is fusion's y* for the same seed (``trajfusion.fuse.selection.choose_correct``),
so TAPO, RFT and TrajFusion built with one seed share it. y- is, by ``incorrect_rule``, the
trajectory fusion would fuse first (``shortest_of_largest_group``: the shortest member of the
largest incorrect-answer group; groups tied in size by their shortest member, then answer;
members by n_tokens, then sample_idx) or the shortest incorrect one (n_tokens, then sample_idx).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd

from trajfusion.fuse.selection import choose_correct, fusion_priority, problem_statistics, seeded_rng
from trajfusion.reflect.settings import ReflectSettings


def in_band(stats: pd.DataFrame, settings: ReflectSettings) -> pd.Series:
    """Per kept problem: has an incorrect trajectory and its accuracy is inside the band."""
    low, high = Fraction(str(settings.band_low)), Fraction(str(settings.band_high))
    inside = [n_inc > 0 and low <= Fraction(n_cor, k) <= high
              for n_cor, n_inc, k in zip(stats["n_correct"], stats["n_incorrect"], stats["K"])]
    return pd.Series(inside, index=stats.index, dtype=bool)


def choose_incorrect(meta: pd.DataFrame, problems: pd.Index, rule: str) -> pd.DataFrame:
    """y- per problem of ``problems``: its ``_pos``, ``sample_idx`` and ``answer``."""
    incorrect = meta[(meta["status"] == "ok") & ~meta["correct"] & meta["problem_id"].isin(problems)]
    if rule == "shortest_of_largest_group":
        code = problems.get_indexer(incorrect["problem_id"])
        rank = fusion_priority(code, incorrect["_group"].to_numpy(), incorrect["n_tokens"].to_numpy(),
                               incorrect["sample_idx"].to_numpy(), "lowdiv")
        chosen = incorrect[rank == 0]
    else:
        chosen = incorrect.sort_values(["problem_id", "n_tokens", "sample_idx"], kind="mergesort")
        chosen = chosen.drop_duplicates("problem_id")
    return chosen.set_index("problem_id").reindex(problems)[["_pos", "sample_idx", "answer"]]


def capped_order(problems: pd.Index, seed: int) -> list[str]:
    """``problems`` in the seeded order the cap keeps them in (independent of the others)."""
    keys = [seeded_rng(seed, pid, "reflect-cap").random() for pid in problems]
    return [pid for _, pid in sorted(zip(keys, problems))]


def plan_reflection(meta: pd.DataFrame, settings: ReflectSettings) -> tuple[pd.DataFrame, dict]:
    """One row per candidate problem (sorted problem_id) with y+ (``correct_pos``,
    ``correct_index``, ``answer``) and y- (``incorrect_pos``, ``incorrect_index``,
    ``incorrect_answer``); and the counts of problems seen and in band."""
    stats, _ = problem_statistics(meta)
    band = in_band(stats, settings)
    candidates = stats.index[band.to_numpy()]
    correct = choose_correct(meta, stats, settings.seed).loc[candidates]
    incorrect = choose_incorrect(meta, candidates, settings.incorrect_rule)
    plan = pd.DataFrame({"correct_pos": correct["_pos"], "correct_index": correct["sample_idx"],
                         "answer": correct["answer"], "incorrect_pos": incorrect["_pos"].astype(np.int64),
                         "incorrect_index": incorrect["sample_idx"].astype(np.int64),
                         "incorrect_answer": incorrect["answer"]}, index=candidates)
    two_sided = int(((stats["n_correct"] > 0) & (stats["n_incorrect"] > 0)).sum())
    counts = {"problems": int(meta["problem_id"].nunique()), "with_correct_and_incorrect": two_sided,
              "candidates": len(plan), "out_of_band": two_sided - len(plan)}
    return plan, counts

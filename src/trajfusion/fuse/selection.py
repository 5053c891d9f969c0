"""Which trajectories make up each fused example, for all problems at once (``plan_fusion``).

Vectorised over the whole table (numpy sorts and run ranks instead of a loop per problem),
so that paper-scale tables (100K problems x 16 trajectories) plan in seconds. The rule is
in the package docstring; ``trajfusion.fuse.reference`` computes the same plan with plain
per-problem loops and the tests hold the two equal.
"""

from __future__ import annotations

import hashlib
import random
from fractions import Fraction

import numpy as np
import pandas as pd

from trajfusion.fuse.settings import FuseSettings


def fusion_count(n_incorrect: int, n_ok: int, n_groups: int, alpha: Fraction | None, k_max: int) -> int:
    """k(x) = min(k_max, floor(alpha * (n_incorrect / n_ok) * n_groups)), exactly."""
    if alpha is None or k_max == 0 or n_incorrect == 0:
        return 0
    return min(k_max, (alpha.numerator * n_incorrect * n_groups) // (alpha.denominator * n_ok))


def problem_statistics(meta: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Per kept problem (sorted by problem_id): K, n_correct, n_incorrect, u; plus the
    number of problems dropped for having no correct ok trajectory."""
    ok = meta[meta["status"] == "ok"]
    grouped = ok.groupby("problem_id", sort=True)
    stats = pd.DataFrame({"K": grouped.size(), "n_correct": grouped["correct"].sum()})
    incorrect = ok[~ok["correct"]]
    stats["n_incorrect"] = stats["K"] - stats["n_correct"]
    stats["u"] = incorrect.groupby("problem_id")["_group"].nunique().reindex(stats.index, fill_value=0)
    kept = stats[stats["n_correct"] > 0].astype("int64")
    dropped = int(meta["problem_id"].nunique()) - len(kept)
    return kept, dropped


def _fusion_counts(stats: pd.DataFrame, settings: FuseSettings) -> pd.Series:
    counts = [fusion_count(n_inc, k, u, settings.alpha, settings.k_max)
              for n_inc, k, u in zip(stats["n_incorrect"].tolist(), stats["K"].tolist(), stats["u"].tolist())]
    return pd.Series(counts, index=stats.index, dtype="int64")


def _rank_in_runs(keys: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... restarting at each run of equal values of an already sorted array."""
    n = len(keys)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if n else np.zeros(0, np.int64)
    return np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))


def fusion_priority(problem: np.ndarray, group, n_tokens: np.ndarray, sample_idx: np.ndarray,
                    strategy: str) -> np.ndarray:
    """For incorrect ok trajectories (problem codes, answer groups, lengths, sample
    indices): each one's rank in its problem's fusion order (0 = fused first)."""
    answer = pd.factorize(np.asarray(group, dtype=object), sort=True)[0]  # code order = string order
    order = np.lexsort((sample_idx, n_tokens, answer, problem))
    prob, ans = problem[order], answer[order]
    new_group = np.r_[True, (prob[1:] != prob[:-1]) | (ans[1:] != ans[:-1])] if len(order) else np.zeros(0, bool)
    group_id = np.cumsum(new_group) - 1
    member_rank = _rank_in_runs(group_id)
    size = np.bincount(group_id)
    shortest = n_tokens[order][new_group]  # members are sorted by length, so the first is shortest
    group_prob, group_ans = prob[new_group], ans[new_group]
    by_priority = np.lexsort((group_ans, shortest, -size, group_prob))
    group_rank = np.empty(len(size), dtype=np.int64)
    group_rank[by_priority] = _rank_in_runs(group_prob[by_priority])
    row_group_rank = group_rank[group_id]
    if strategy == "highdiv":  # round robin: all groups' shortest members, then second shortest, ...
        fuse_order = np.lexsort((row_group_rank, member_rank, prob))
    else:  # lowdiv: the largest group's members first, then the next group's
        fuse_order = np.lexsort((member_rank, row_group_rank, prob))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order[fuse_order]] = _rank_in_runs(prob[fuse_order])
    return rank


def seeded_rng(*key) -> random.Random:
    """An RNG seeded by a SHA-256 of the key, so draws do not depend on Python's hash seed."""
    digest = hashlib.sha256(":".join(str(part) for part in key).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def choose_correct(meta: pd.DataFrame, stats: pd.DataFrame, seed: int) -> pd.DataFrame:
    """y* per kept problem: one of Y+ (sorted by sample_idx) drawn by an RNG keyed on
    (seed, problem_id), independent of every fusion setting."""
    correct = meta[(meta["status"] == "ok") & meta["correct"]]
    code = stats.index.get_indexer(correct["problem_id"])
    correct = correct.iloc[np.lexsort((correct["sample_idx"].to_numpy(), code))]
    counts = np.bincount(code, minlength=len(stats))
    starts = np.cumsum(counts) - counts
    picks = [seeded_rng(seed, pid).randrange(n) for pid, n in zip(stats.index.tolist(), counts.tolist())]
    chosen = correct.iloc[starts + np.asarray(picks, dtype=np.int64)]
    return chosen.set_index("problem_id")[["_pos", "sample_idx", "n_tokens", "answer"]]


def select_errors(meta: pd.DataFrame, problems: pd.Index, k: np.ndarray, strategy: str):
    """Per problem of ``problems``: the first k[i] incorrect trajectories in fusion order,
    as (row positions, sample indices, total n_tokens) lists aligned with ``problems``."""
    if len(problems) == 0:
        return [], [], np.zeros(0, dtype=np.int64)
    incorrect = meta[(meta["status"] == "ok") & ~meta["correct"]]
    code = problems.get_indexer(incorrect["problem_id"])
    wanted = (code >= 0) & (k[np.maximum(code, 0)] > 0)
    incorrect, code = incorrect[wanted], code[wanted]
    rank = fusion_priority(code, incorrect["_group"].to_numpy(), incorrect["n_tokens"].to_numpy(),
                           incorrect["sample_idx"].to_numpy(), strategy)
    keep = rank < k[code]
    code, rank = code[keep], rank[keep]
    order = np.lexsort((rank, code))
    bounds = np.cumsum(np.bincount(code, minlength=len(problems)))[:-1]
    positions = np.split(incorrect["_pos"].to_numpy()[keep][order], bounds)
    indices = np.split(incorrect["sample_idx"].to_numpy()[keep][order], bounds)
    tokens = np.bincount(code, weights=incorrect["n_tokens"].to_numpy()[keep], minlength=len(problems))
    return [p.tolist() for p in positions], [i.tolist() for i in indices], tokens.astype(np.int64)


def plan_fusion(meta: pd.DataFrame, settings: FuseSettings) -> tuple[pd.DataFrame, int]:
    """Which trajectories make up each fused example (no text yet).

    Returns one row per kept problem, indexed by sorted problem_id, with ``k`` (the
    formula), ``correct_pos``/``correct_index``/``answer`` of y*, ``error_pos`` and
    ``error_indices`` (lists in fusion order), ``fused_tokens``; and the dropped count.

    ``fused_tokens`` sums the teacher's ``n_tokens`` of the fused completions: whole completions,
    so for long-form teachers it also counts their tags and final parts, which the fused text
    leaves out (y*'s final part stays with ``keep_final``), and not the phrases. It is the
    summary's size estimate; the tokens actually trained on are counted in train_meta.json."""
    stats, dropped = problem_statistics(meta)
    k = _fusion_counts(stats, settings)
    chosen = choose_correct(meta, stats, settings.seed)
    plan = pd.DataFrame({"k": k, "correct_pos": chosen["_pos"], "correct_index": chosen["sample_idx"],
                         "answer": chosen["answer"], "correct_tokens": chosen["n_tokens"]})
    positions, indices, tokens = select_errors(meta, plan.index, k.to_numpy(), settings.strategy)
    plan["error_pos"] = pd.Series(positions, index=plan.index, dtype=object)
    plan["error_indices"] = pd.Series(indices, index=plan.index, dtype=object)
    plan["error_tokens"] = tokens
    plan["n_errors"] = plan["error_indices"].map(len).astype("int64")
    plan["fused_tokens"] = plan["correct_tokens"] + plan["error_tokens"]
    return plan, dropped


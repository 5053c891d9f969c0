"""The fusion plan computed one problem at a time, in plain Python, as the rule is stated.

A readable reference for ``trajfusion.fuse.selection.plan_fusion``, written from the paper
(§3.2–3.3) and the package docstring rather than from the vectorised code: for each problem
it takes the status-ok trajectories, splits them into Y+ and Y−, computes
k(x) = min(k_max, floor(alpha * r(x) * u(x))), draws y* and walks the incorrect-answer
groups. It is far too slow for paper-scale tables; tests/test_fuse_reference.py holds it
equal to the vectorised plan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import pandas as pd

from trajfusion.fuse.selection import seeded_rng
from trajfusion.fuse.settings import FuseSettings


@dataclass(frozen=True)
class Trajectory:
    pos: int  # row position in the verified table
    sample_idx: int
    n_tokens: int
    answer: str
    correct: bool
    group: str | None  # incorrect-answer group; None for a correct trajectory


def reference_plan(meta: pd.DataFrame, settings: FuseSettings) -> tuple[pd.DataFrame, int]:
    """``plan_fusion``'s result (same columns, index and dtypes), problem by problem.

    ``meta`` is a table checked by ``validate_verified`` (it has ``_pos`` and ``_group``)."""
    rows, dropped = [], 0
    for problem_id, trajectories in sorted(ok_trajectories_by_problem(meta).items()):
        row = plan_problem(problem_id, trajectories, settings)
        if row is None:
            dropped += 1
        else:
            rows.append(row)
    return _as_frame(rows, meta), dropped


def ok_trajectories_by_problem(meta: pd.DataFrame) -> dict[str, list[Trajectory]]:
    """Every problem's status-ok trajectories (an empty list for a problem without any)."""
    by_problem: dict[str, list[Trajectory]] = {}
    for row in meta.to_dict("records"):
        ok = by_problem.setdefault(row["problem_id"], [])
        if row["status"] == "ok":
            ok.append(Trajectory(pos=row["_pos"], sample_idx=row["sample_idx"], n_tokens=row["n_tokens"],
                                 answer=row["answer"], correct=row["correct"], group=row["_group"]))
    return by_problem


def plan_problem(problem_id: str, trajectories: list[Trajectory], settings: FuseSettings) -> dict | None:
    """One problem's plan row, or None when it has no correct trajectory (it is dropped)."""
    correct = sorted((t for t in trajectories if t.correct), key=lambda t: t.sample_idx)
    if not correct:
        return None
    incorrect = [t for t in trajectories if not t.correct]
    groups = incorrect_groups(incorrect)
    k = fusion_count(len(incorrect), len(trajectories), len(groups), settings)
    star = correct[seeded_rng(settings.seed, problem_id).randrange(len(correct))]
    errors = fusion_order(groups, settings.strategy)[:k]  # fewer than k when Y− runs out
    error_tokens = sum(e.n_tokens for e in errors)
    return {"problem_id": problem_id, "k": k, "correct_pos": star.pos, "correct_index": star.sample_idx,
            "answer": star.answer, "correct_tokens": star.n_tokens, "error_pos": [e.pos for e in errors],
            "error_indices": [e.sample_idx for e in errors], "error_tokens": error_tokens,
            "n_errors": len(errors), "fused_tokens": star.n_tokens + error_tokens}


def fusion_count(n_incorrect: int, n_ok: int, n_groups: int, settings: FuseSettings) -> int:
    """k(x) = min(k_max, floor(alpha * r * u)) with r = |Y−| / K, in exact arithmetic."""
    if settings.alpha is None:  # vanilla RFT
        return 0
    return min(settings.k_max, math.floor(settings.alpha * Fraction(n_incorrect, n_ok) * n_groups))


def incorrect_groups(incorrect: list[Trajectory]) -> list[list[Trajectory]]:
    """Y− split by answer group, members shortest first (ties: lower sample_idx), groups in
    priority order: larger first, then the one with the shorter shortest member, then by
    the group's answer string."""
    by_group: dict[str, list[Trajectory]] = {}
    for trajectory in incorrect:
        by_group.setdefault(trajectory.group, []).append(trajectory)
    groups = [sorted(members, key=lambda t: (t.n_tokens, t.sample_idx)) for members in by_group.values()]
    return sorted(groups, key=lambda members: (-len(members), members[0].n_tokens, members[0].group))


def fusion_order(groups: list[list[Trajectory]], strategy: str) -> list[Trajectory]:
    """All of Y− in the order its members are fused."""
    if strategy == "lowdiv":  # exhaust the largest group, then spill into the next
        return [trajectory for members in groups for trajectory in members]
    order = []  # highdiv: every group's shortest unused member in turn, round after round
    for round_ in range(max((len(members) for members in groups), default=0)):
        order += [members[round_] for members in groups if round_ < len(members)]
    return order


PLAN_COLUMNS = ("k", "correct_pos", "correct_index", "answer", "correct_tokens", "error_pos", "error_indices",
                "error_tokens", "n_errors", "fused_tokens")
COUNT_COLUMNS = ("k", "correct_pos", "correct_index", "correct_tokens", "error_tokens", "n_errors", "fused_tokens")


def _as_frame(rows: list[dict], meta: pd.DataFrame) -> pd.DataFrame:
    """The rows as a frame; problem_id and answer keep the table's dtypes, even with no rows."""
    frame = pd.DataFrame(rows, columns=["problem_id", *PLAN_COLUMNS])
    dtypes = {"problem_id": meta["problem_id"].dtype, "answer": meta["answer"].dtype}
    return frame.astype(dtypes | dict.fromkeys(COUNT_COLUMNS, "int64")).set_index("problem_id")

"""Per-problem sampling statistics of a verified table (paper Section 3.1: r(x), u(x))."""

from __future__ import annotations

import json
import math

import pandas as pd

from trajfusion.contracts import STATISTICS, VERIFIED

# The verified columns checked; ``source`` is optional here and may be null (a problem's first non-null wins).
VERIFIED_COLUMNS = ("problem_id", "correct", "status", "answer_group")


def compute_stats(verified: pd.DataFrame, source: str = "input") -> pd.DataFrame:
    """One row per problem, sorted by ``problem_id`` (``contracts.STATISTICS``).

    ``K`` counts responses with status ``ok``; ``error_rate = n_incorrect / K`` (NaN when
    K = 0); ``n_distinct_incorrect`` (u) counts incorrect-answer groups; ``entropy`` is the
    Shannon entropy in nats of the group-size distribution (0 without incorrect answers,
    NaN when K = 0); ``answer_groups`` is JSON ``[{"answer", "size"}]``, largest first, ties
    by answer. ``n_error`` counts crashed verifications, so that
    ``K + n_filtered + n_timeout + n_error`` equals the number of responses.
    """
    VERIFIED.check(verified, source, columns=VERIFIED_COLUMNS)
    status = verified["status"].astype(str)
    ok = status == "ok"
    right = ok & verified["correct"].eq(True)
    flags = pd.DataFrame({
        "problem_id": verified["problem_id"].to_numpy(),
        "K": ok.to_numpy(), "n_correct": right.to_numpy(),
        "n_filtered": status.str.startswith("filtered:").to_numpy(),
        "n_timeout": (status == "timeout").to_numpy(), "n_error": (status == "error").to_numpy(),
    })
    out = flags.groupby("problem_id", sort=True).sum().astype("int64")
    out["n_incorrect"] = out["K"] - out["n_correct"]
    out["error_rate"] = (out["n_incorrect"] / out["K"].where(out["K"] > 0)).astype("float64")
    groups = _group_sizes(verified.loc[(ok & ~right).to_numpy()])
    out["n_distinct_incorrect"] = [len(groups.get(pid, ())) for pid in out.index]
    out["entropy"] = [shannon_entropy(size for _, size in groups.get(pid, ())) if k else math.nan
                      for pid, k in zip(out.index, out["K"])]
    out["answer_groups"] = [json.dumps([{"answer": a, "size": n} for a, n in groups.get(pid, ())],
                                       ensure_ascii=False) for pid in out.index]
    out["source"] = [None if pd.isna(v) else v for v in _sources(verified).reindex(out.index)]
    out = out.reset_index()
    out["n_distinct_incorrect"] = out["n_distinct_incorrect"].astype("int64")
    out["entropy"] = out["entropy"].astype("float64")
    return out[STATISTICS.names]


def _group_sizes(wrong: pd.DataFrame) -> dict[str, list[tuple[str, int]]]:
    """Per problem: (answer group, size) pairs, largest first, ties by answer."""
    sizes = wrong.groupby(["problem_id", "answer_group"], sort=True).size()
    groups: dict[str, list[tuple[str, int]]] = {}
    for (pid, group), size in sizes.items():
        groups.setdefault(pid, []).append((group, int(size)))
    for members in groups.values():
        members.sort(key=lambda item: (-item[1], item[0]))
    return groups


def _sources(verified: pd.DataFrame) -> pd.Series:
    """Each problem's first non-null ``source`` (empty if the table has no such column)."""
    if "source" not in verified.columns:
        return pd.Series(dtype=object)
    present = verified[["problem_id", "source"]].dropna()
    return present.groupby("problem_id", sort=True)["source"].first().astype(str)


def shannon_entropy(sizes) -> float:
    """Entropy in nats of the distribution proportional to ``sizes`` (0 for none)."""
    sizes = [s for s in sizes if s > 0]
    total = sum(sizes)
    return float(sum(-(s / total) * math.log(s / total) for s in sizes)) if total else 0.0

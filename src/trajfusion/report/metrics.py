"""Accuracy metrics with uncertainty, computed from evaluation verdict tables.

A verdict table (``trajfusion evaluate``) has one row per (problem, sample). Every metric is
first reduced to one score per problem and then averaged over problems, so that problems,
not samples, are the unit of resampling for the bootstrap:

- ``pass@1``: correctness of the first sample (``sample_idx == 0``), as in the paper's
  single-generation protocol (Appendix B.4, Table 6).
- ``avg@k``: the fraction of a problem's k samples that are correct (all samples, never
  the first one only), averaged over problems.
- ``maj@k``: majority vote among the samples with ``status == "ok"``, over the verdict
  table's ``answer_group``: all correct samples form one group (they agree with the gold),
  and incorrect samples vote for the verifier's incorrect-answer group, so equivalent wrong
  answers (``1/2``, ``0.5``, ``\\frac{1}{2}``) pool their votes as the correct ones do.
  Ties go to the group whose first vote has the lowest ``sample_idx`` (the group the
  model produced first). A problem scores 1 when the winning group is the correct one; a
  problem without ``ok`` samples scores 0.
- ``pass@k``: the unbiased estimator of Chen et al. (2021), ``1 - C(n-c, k) / C(n, k)``
  for a problem with n samples of which c are correct.
- ``mean_output_tokens``, ``mean_reflections`` and ``mean_markers``: per-problem means of
  ``n_tokens``, ``n_reflections`` (error-recognition phrases) and ``n_markers`` (generic
  self-correction markers), averaged over problems (equal to the per-sample mean when every
  problem has the same number of samples, which ``check_verdicts`` enforces: the verdict
  contract's rule ``samples-0-to-n-1``).
- ``reflections_per_1k_tokens`` and ``markers_per_1k_tokens``: 1000 x all reflections
  (markers) / all generated tokens of the table, a pooled rate (not a mean of per-response
  rates, which short responses would dominate); tokens are ``n_tokens``, counted by the
  evaluated model's own tokenizer at generation. Its interval is the ratio of the two
  bootstrap means over the same resampled problems; NaN without generated tokens.

Intervals are 95% percentile bootstrap intervals from resampling problems with a seeded
numpy generator (all metrics of a table share the same resampled problems). Two systems
evaluated on the same benchmark are compared with an exact McNemar test on per-problem
pass@1 and with a paired bootstrap test on the per-problem accuracy (avg@k) differences.

Accuracies are returned as fractions in [0, 1]; the report converts them to percent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from trajfusion.contracts import VERDICTS
from trajfusion.io import InputError

METRIC_COLUMNS = ("problem_id", "sample_idx", "n_tokens", "answer", "correct", "status", "n_reflections",
                  "n_markers", "answer_group")
ACCURACY_METRICS = ("pass@1", "avg@k", "maj@k", "pass@k")
SCORE_METRICS = (*ACCURACY_METRICS, "mean_output_tokens", "mean_reflections", "mean_markers")
# rate metric -> the per-response mean it puts per 1,000 generated tokens
RATE_METRICS = {"reflections_per_1k_tokens": "mean_reflections", "markers_per_1k_tokens": "mean_markers"}
SUMMARY_METRICS = (*SCORE_METRICS, *RATE_METRICS)
_GOLD_VOTE = "\x00correct"  # cannot collide with an answer group


@dataclass(frozen=True)
class Estimate:
    """A metric value with its bootstrap interval (NaN when the interval is undefined)."""

    value: float
    ci_low: float
    ci_high: float


def check_verdicts(df: pd.DataFrame, source: str = "verdict table") -> None:
    """Raise InputError unless the columns the metrics use fit the verdict contract; its rule
    ``samples-0-to-n-1``: every problem has samples ``0..k-1`` once, the same k for all."""
    VERDICTS.check(df, source, columns=METRIC_COLUMNS)


def samples_per_problem(df: pd.DataFrame) -> int:
    return int(df.groupby("problem_id")["sample_idx"].size().iloc[0])


def pass_at_k_estimate(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem: 1 - C(n-c, k) / C(n, k) (Chen et al., 2021)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    # The product form avoids huge binomial coefficients.
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def majority_vote_correct(df: pd.DataFrame) -> pd.Series:
    """Per problem: True when the majority answer group among ``status == "ok"`` samples is
    the correct one (the contract gives every ``ok`` sample an ``answer_group``)."""
    ok = df[df["status"] == "ok"]
    votes = pd.DataFrame({
        "problem_id": ok["problem_id"],
        "vote": np.where(ok["correct"], _GOLD_VOTE, ok["answer_group"].astype(str)),
        "sample_idx": ok["sample_idx"],
    })
    tally = votes.groupby(["problem_id", "vote"], sort=True).agg(count=("sample_idx", "size"),
                                                                 first=("sample_idx", "min")).reset_index()
    tally = tally.sort_values(["problem_id", "count", "first"], ascending=[True, False, True], kind="mergesort")
    winners = tally.drop_duplicates("problem_id").set_index("problem_id")["vote"]
    problems = pd.Index(sorted(df["problem_id"].unique()), name="problem_id")
    return winners.reindex(problems).eq(_GOLD_VOTE)


def problem_scores(df: pd.DataFrame, k: int | None = None) -> pd.DataFrame:
    """One row per problem (sorted by id): ``n, n_correct, pass@1, avg@k, maj@k, pass@k,
    mean_output_tokens, mean_reflections, mean_markers``; ``k`` for pass@k defaults to n."""
    check_verdicts(df)
    df = df.sort_values(["problem_id", "sample_idx"], kind="mergesort")
    grouped = df.groupby("problem_id", sort=True)
    scores = pd.DataFrame({
        "n": grouped.size(),
        "n_correct": grouped["correct"].sum().astype(int),
        "pass@1": df[df["sample_idx"] == 0].set_index("problem_id")["correct"].astype(float),
        "mean_output_tokens": grouped["n_tokens"].mean(),
        "mean_reflections": grouped["n_reflections"].mean(),
        "mean_markers": grouped["n_markers"].mean(),
    })
    scores["avg@k"] = scores["n_correct"] / scores["n"]
    scores["maj@k"] = majority_vote_correct(df).astype(float)
    k = int(scores["n"].iloc[0]) if k is None else k
    scores["pass@k"] = [pass_at_k_estimate(n, c, k) for n, c in zip(scores["n"], scores["n_correct"])]
    return scores


def pass_at_1(df: pd.DataFrame) -> float:
    return float(problem_scores(df)["pass@1"].mean())


def avg_at_k(df: pd.DataFrame) -> float:
    return float(problem_scores(df)["avg@k"].mean())


def maj_at_k(df: pd.DataFrame) -> float:
    return float(problem_scores(df)["maj@k"].mean())


def pass_at_k(df: pd.DataFrame, k: int) -> float:
    return float(problem_scores(df, k=k)["pass@k"].mean())


def mean_output_tokens(df: pd.DataFrame) -> float:
    return float(problem_scores(df)["mean_output_tokens"].mean())


def mean_reflections(df: pd.DataFrame) -> float:
    return float(problem_scores(df)["mean_reflections"].mean())


def per_1k_tokens(count_mean, token_mean):
    """1000 x ``count_mean`` / ``token_mean`` (scalars or arrays); NaN where no token was generated."""
    count_mean, token_mean = np.asarray(count_mean, dtype=float), np.asarray(token_mean, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(token_mean > 0, 1000.0 * count_mean / np.where(token_mean > 0, token_mean, 1.0), math.nan)


def reflections_per_1k_tokens(df: pd.DataFrame) -> float:
    scores = problem_scores(df)
    return float(per_1k_tokens(scores["mean_reflections"].mean(), scores["mean_output_tokens"].mean()))


def bootstrap_means(values, n_resamples: int = 2000, seed: int = 0) -> np.ndarray:
    """Column means of ``n_resamples`` resamples (with replacement) of the rows of ``values``.

    ``values`` is a vector (one score per problem) or a matrix (problems x metrics); every
    metric is resampled with the same problems. Returns shape (n_resamples,) or
    (n_resamples, metrics); empty when there are fewer than 2 problems, where the bootstrap
    says nothing.
    """
    values = np.asarray(values, dtype=float)
    matrix = values.reshape(len(values), -1)
    n, m = matrix.shape
    if n < 2:
        return np.empty((0,) if values.ndim == 1 else (0, m))
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_resamples, 4_000_000 // (n * m)))  # bounds memory to ~32 MB
    means = np.empty((n_resamples, m))
    for start in range(0, n_resamples, chunk):
        stop = min(start + chunk, n_resamples)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = matrix[idx].mean(axis=1)
    return means[:, 0] if values.ndim == 1 else means


def percentile_interval(distribution: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    if len(distribution) == 0:
        return math.nan, math.nan
    tail = (1.0 - level) / 2 * 100
    lo, hi = np.percentile(distribution, [tail, 100 - tail])
    return float(lo), float(hi)


def bootstrap_ci(values, n_resamples: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (NaN, NaN for fewer than 2 values)."""
    return percentile_interval(bootstrap_means(values, n_resamples, seed), level)


def summarize(df: pd.DataFrame, n_resamples: int = 2000, seed: int = 0,
              level: float = 0.95) -> tuple[dict[str, Estimate], dict[str, np.ndarray]]:
    """All metrics of one verdict table with bootstrap intervals.

    Returns the estimates and, per metric, the bootstrap distribution of the mean (all
    metrics share the same resampled problems), so that callers can combine tables, e.g.
    an average over benchmarks.
    """
    return summarize_scores(problem_scores(df), n_resamples, seed, level)


def summarize_scores(scores: pd.DataFrame, n_resamples: int = 2000, seed: int = 0,
                     level: float = 0.95) -> tuple[dict[str, Estimate], dict[str, np.ndarray]]:
    """``summarize`` for a per-problem score frame from ``problem_scores``."""
    names = list(SCORE_METRICS)
    means = bootstrap_means(scores[names].to_numpy(), n_resamples, seed)
    values = {name: float(scores[name].mean()) for name in names}
    distributions = {name: means[:, j] for j, name in enumerate(names)}
    for rate, count in RATE_METRICS.items():
        values[rate] = float(per_1k_tokens(values[count], values["mean_output_tokens"]))
        distributions[rate] = per_1k_tokens(distributions[count], distributions["mean_output_tokens"])
    estimates = {name: Estimate(values[name], *percentile_interval(distributions[name], level))
                 for name in SUMMARY_METRICS}
    return estimates, distributions


def paired_scores(sa: pd.DataFrame, sb: pd.DataFrame, names: tuple[str, str] = ("A", "B")) -> pd.DataFrame:
    """Two per-problem score frames side by side; both must cover the same problems."""
    only_a, only_b = sa.index.difference(sb.index), sb.index.difference(sa.index)
    if len(only_a) or len(only_b):
        example = (list(only_a) or list(only_b))[0]
        raise InputError(f"{names[0]} and {names[1]} do not cover the same problems "
                         f"({len(only_a)} only in {names[0]}, {len(only_b)} only in {names[1]}; "
                         f"e.g. problem_id {example!r})")
    return sa.join(sb, suffixes=("_a", "_b"))


def mcnemar_exact(correct_a, correct_b) -> dict:
    """Exact McNemar test: a two-sided binomial test on the discordant pairs.

    ``only_a`` counts problems A solves and B does not; ``only_b`` the reverse.
    """
    from scipy import stats

    correct_a, correct_b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    only_a = int(np.sum(correct_a & ~correct_b))
    only_b = int(np.sum(~correct_a & correct_b))
    n = only_a + only_b
    p = 1.0 if n == 0 else float(stats.binomtest(only_a, n, 0.5).pvalue)
    return {"only_a": only_a, "only_b": only_b, "p_value": p}


def paired_bootstrap_test(values_a, values_b, n_resamples: int = 2000, seed: int = 0,
                          level: float = 0.95) -> dict:
    """Two-sided paired bootstrap test of mean(b - a) = 0, resampling problems.

    The bootstrap distribution of the mean difference is centred on the observed mean; the
    p-value is the share of resamples that deviate from it by at least the observed
    difference, ``(1 + #{|d* - d| >= |d|}) / (B + 1)``.
    """
    diff = np.asarray(values_b, dtype=float) - np.asarray(values_a, dtype=float)
    observed = float(diff.mean())
    dist = bootstrap_means(diff, n_resamples, seed)
    if len(dist) == 0:
        return {"mean_diff": observed, "ci_low": math.nan, "ci_high": math.nan, "p_value": math.nan}
    # A tolerance keeps floating-point noise from deciding ties such as observed == 0.
    extreme = np.abs(dist - observed) >= abs(observed) - 1e-12
    p = (1 + int(extreme.sum())) / (len(dist) + 1)
    lo, hi = percentile_interval(dist, level)
    return {"mean_diff": observed, "ci_low": lo, "ci_high": hi, "p_value": float(p)}


def compare(a: pd.DataFrame, b: pd.DataFrame, n_resamples: int = 2000, seed: int = 0,
            names: tuple[str, str] = ("A", "B")) -> dict:
    """Paired comparison of verdict table B against A on the same benchmark (B minus A)."""
    return compare_scores(problem_scores(a), problem_scores(b), n_resamples, seed, names)


def compare_scores(sa: pd.DataFrame, sb: pd.DataFrame, n_resamples: int = 2000, seed: int = 0,
                   names: tuple[str, str] = ("A", "B")) -> dict:
    """``compare`` for per-problem score frames from ``problem_scores``."""
    paired = paired_scores(sa, sb, names)
    mcnemar = mcnemar_exact(paired["pass@1_a"].astype(bool), paired["pass@1_b"].astype(bool))
    boot = paired_bootstrap_test(paired["avg@k_a"], paired["avg@k_b"], n_resamples, seed)
    return {
        "n_problems": len(paired),
        "pass1_a": float(paired["pass@1_a"].mean()), "pass1_b": float(paired["pass@1_b"].mean()),
        "mcnemar_only_a": mcnemar["only_a"], "mcnemar_only_b": mcnemar["only_b"],
        "mcnemar_p": mcnemar["p_value"],
        "acc_a": float(paired["avg@k_a"].mean()), "acc_b": float(paired["avg@k_b"].mean()),
        "acc_diff": boot["mean_diff"], "acc_diff_ci_low": boot["ci_low"], "acc_diff_ci_high": boot["ci_high"],
        "paired_bootstrap_p": boot["p_value"],
    }

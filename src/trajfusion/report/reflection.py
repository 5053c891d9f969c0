"""TAPO's capability metrics from evaluation verdicts: Direct Solution Rate, Effective Reflection
Rate and Pass@k, per run x benchmark, with bootstrap intervals (``reflection-<experiment>`` tables).

A response *has a reflection* when it opens a TAPO analysis tag (``trajfusion.reflection_tags``)
or holds at least one error-recognition phrase of the phrase file (the verdict table's
``n_reflections``, counted by ``trajfusion.evaluate.reflections``). Then, over the N responses
of an evaluation (every sample of every problem):

- ``reflective``: responses with a reflection / N;
- ``dsr`` (Direct Solution Rate): correct responses without a reflection / N;
- ``err`` (Effective Reflection Rate): correct responses with a reflection / responses with a
  reflection; undefined (NaN, shown "—") when no response has one;
- ``pass@k`` for each configured k: the unbiased estimator of Chen et al. (2021) per problem
  (``metrics.pass_at_k_estimate``), averaged over problems; a k above the samples per problem
  is refused.

Every problem has the same number of samples (the verdict contract), so the rates over
responses are means over problems of per-problem rates, and problems are resampled as in the
rest of the report (``metrics.bootstrap_means``, one seeded stream per benchmark, all metrics
of a table on the same resamples). ERR's interval is the ratio of the two resampled means
(correct-with-reflection, with-reflection), over the resamples that hold a reflection at all
(assumption: resamples without one are left out rather than counted as 0 or 1).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from trajfusion.contracts import VERDICTS, read, reflection_table
from trajfusion.io import InputError
from trajfusion.reflection_tags import has_analysis
from trajfusion.report.build import bootstrap_seed
from trajfusion.report.metrics import Estimate, bootstrap_means, pass_at_k_estimate, percentile_interval
from trajfusion.report.tables import LONG_COLUMNS, METHOD_LABELS, REPRODUCED, Table, fmt_estimate

REFLECTION_COLUMNS = ("problem_id", "sample_idx", "response", "correct", "n_reflections")
RATE_NAMES = ("reflective", "dsr")
LABELS = {"reflective": "With reflection", "dsr": "DSR", "err": "ERR"}


def pass_k_names(pass_k) -> list[str]:
    return [f"pass@{k}" for k in pass_k]


def has_reflection(df: pd.DataFrame) -> pd.Series:
    """Per response: an error-recognition phrase (``n_reflections > 0``) or an analysis tag."""
    return (df["n_reflections"] > 0) | df["response"].map(has_analysis).astype(bool)


def reflection_scores(df: pd.DataFrame, pass_k=(1,), source: str = "verdict table") -> pd.DataFrame:
    """One row per problem (sorted by id): ``n``, ``n_correct``, ``n_reflective``,
    ``n_reflective_correct``, ``reflective``, ``dsr`` and ``pass@k`` for each k of ``pass_k``."""
    VERDICTS.check(df, source, columns=REFLECTION_COLUMNS)
    reflective = has_reflection(df)
    correct = df["correct"].astype(bool)
    counts = pd.DataFrame({"problem_id": df["problem_id"], "n": 1, "n_correct": correct.astype(int),
                           "n_reflective": reflective.astype(int),
                           "n_reflective_correct": (reflective & correct).astype(int),
                           "n_direct": (~reflective & correct).astype(int)})
    scores = counts.groupby("problem_id", sort=True).sum()
    samples = int(scores["n"].iloc[0])
    for k in pass_k:
        if k > samples:
            raise InputError(f"{source}: pass@{k} needs at least {k} samples per problem, the evaluation has "
                             f"{samples}; lower the experiment's reflection_metrics.pass_k or raise "
                             f"evaluation.samples for this benchmark")
    scores["reflective"] = scores["n_reflective"] / scores["n"]
    scores["dsr"] = scores.pop("n_direct") / scores["n"]
    for k, name in zip(pass_k, pass_k_names(pass_k)):
        scores[name] = [pass_at_k_estimate(n, c, k) for n, c in zip(scores["n"], scores["n_correct"])]
    return scores


def effective_reflection_rate(reflective_correct, reflective):
    """correct-with-reflection / with-reflection (scalars or arrays of means); NaN where none."""
    num, den = np.asarray(reflective_correct, dtype=float), np.asarray(reflective, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), math.nan)


def summarize_reflection(scores: pd.DataFrame, pass_k=(1,), n_resamples: int = 2000, seed: int = 0,
                         level: float = 0.95) -> dict[str, Estimate]:
    """``reflective``, ``dsr``, ``err`` and each ``pass@k`` with percentile bootstrap intervals
    (fractions in [0, 1]; NaN intervals with fewer than 2 problems)."""
    names = [*RATE_NAMES, *pass_k_names(pass_k)]
    columns = [*names, "n_reflective_correct", "n_reflective"]
    means = bootstrap_means(scores[columns].to_numpy(), n_resamples, seed)
    estimates = {name: Estimate(float(scores[name].mean()), *percentile_interval(means[:, j], level))
                 for j, name in enumerate(names)}
    err = float(effective_reflection_rate(scores["n_reflective_correct"].sum(), scores["n_reflective"].sum()))
    replicates = effective_reflection_rate(means[:, -2], means[:, -1])
    defined = replicates[np.isfinite(replicates)]
    interval = percentile_interval(defined, level) if math.isfinite(err) else (math.nan, math.nan)
    estimates["err"] = Estimate(err, *interval)
    return estimates


def read_reflection_scores(path: str, pass_k, source: str) -> pd.DataFrame:
    return reflection_scores(read(path, VERDICTS, columns=REFLECTION_COLUMNS), pass_k, source)


# ----------------------------------------------------------------------------- the table


def reflection_table_runs(results: list, experiment: str) -> list:
    """The experiment's final-checkpoint evaluations, in manifest order."""
    return [r for r in results if r.entry["experiment"] == experiment and r.entry["checkpoint"] == "final"]


def build_reflection_table(experiment: str, pass_k, results: list, n_resamples: int, seed: int):
    """``reflection-<experiment>``: one row per run x benchmark with the share of responses with
    a reflection, DSR, ERR and Pass@k, each with its 95% interval (percent)."""
    pass_k = tuple(pass_k)
    metrics = [*RATE_NAMES, "err", *pass_k_names(pass_k)]
    display, long, cache = [], [], {}
    for result in reflection_table_runs(results, experiment):
        entry = result.entry
        if entry["path"] not in cache:
            scores = read_reflection_scores(entry["path"], pass_k, result.where)
            cache[entry["path"]] = (scores, summarize_reflection(scores, pass_k, n_resamples,
                                                                 bootstrap_seed(seed, entry["benchmark"])))
        scores, estimates = cache[entry["path"]]
        row = {"Backbone": str(entry.get("backbone_label") or entry["backbone"]), "Variant": result.variant_label,
               "Method": METHOD_LABELS.get(entry["method"], entry["method"]), "Benchmark": entry["benchmark"],
               "Problems": str(len(scores)), "Samples": str(int(scores["n"].iloc[0])),
               "Responses with reflection": f"{int(scores['n_reflective'].sum())} / {int(scores['n'].sum())}"}
        for name in metrics:
            est = estimates[name]
            percent = Estimate(est.value * 100, est.ci_low * 100, est.ci_high * 100)
            row[LABELS.get(name, name.replace("pass@", "Pass@"))] = fmt_estimate(percent)
            long.append({"table": reflection_table(experiment), "group": row["Backbone"], "row": row["Variant"],
                         "variant": entry["variant"], "source": REPRODUCED, "column": entry["benchmark"],
                         "metric": name, "value": percent.value, "ci_low": percent.ci_low,
                         "ci_high": percent.ci_high, "paper": math.nan, "diff": math.nan,
                         "n_problems": len(scores), "samples_per_problem": int(scores["n"].iloc[0]),
                         "path": entry["path"]})
        display.append(row)
    notes = [f"Runs of experiment {experiment!r} (final checkpoints), every sample of every problem. A response has "
             "a reflection when it opens a TAPO analysis tag or holds an error-recognition phrase of the phrase file. "
             "DSR (Direct Solution Rate): correct responses without a reflection / all responses. ERR (Effective "
             "Reflection Rate): correct responses with a reflection / responses with a reflection (— when there is "
             "none). Pass@k: unbiased estimator (Chen et al., 2021) from each problem's samples.",
             "Cells: percent [95% percentile bootstrap interval over problems]; ERR's interval is the ratio of the "
             "resampled means over the resamples that hold a reflection."]
    long_frame = pd.DataFrame(long, columns=list(LONG_COLUMNS)).astype({"n_problems": "Int64",
                                                                          "samples_per_problem": "Int64"})
    return Table(reflection_table(experiment), f"Reflection metrics: {experiment}",
                 f"Direct Solution Rate, Effective Reflection Rate and Pass@k (%) of experiment {experiment}.",
                 pd.DataFrame(display), long_frame, notes)

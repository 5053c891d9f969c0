"""The distillation runs in the report: their training diagnostics and paired tests.

- ``distill-<experiment>.{png,pdf}``: over training steps, the share of high-loss tokens in the
  low-future-divergence regime (TOPD's ~30% statistic) and the mean per-token divergence,
  one line per distillation run of the experiment (``diagnostics.jsonl``, written by
  ``trajfusion distill``).
- ``distill-<experiment>.{md,csv,tex}``: per run, the steps logged, the divergence at the
  first and last step, the mean share over the steps and the last loss.
- ``significance-distill.{md,csv,tex}``: each distilled model (B) against each SFT run (A,
  vanilla RFT or TrajFusion) of the same backbone, pool, data size, context and benchmark,
  with the tests of the RFT/TrajFusion table (``metrics.compare_scores``).

The distilled models' accuracies are rows of their experiment's table (Table 1-3 or its
results table) through the ordinary evaluation entries.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from trajfusion.contracts import DISTILL_SIGNIFICANCE, distill_report
from trajfusion.io import InputError
from trajfusion.report.figures import LINESTYLES, _no_data, _pyplot, finish
from trajfusion.report.metrics import compare_scores
from trajfusion.report.paper import normalize_name
from trajfusion.report.tables import Inputs, Table, _fmt, fmt_diff, fmt_p
from trajfusion.vocabulary import DISTILL_METHODS, TRAINING_METHODS

SHARE, DIVERGENCE = "high_loss_low_future_share", "mean_divergence"
SERIES = ((SHARE, "high-loss tokens with low future divergence (share)"),
          (DIVERGENCE, "mean per-token reverse KL"))
DIAGNOSTICS_COLUMNS = ("step", "loss", DIVERGENCE, SHARE)


def read_diagnostics(path: str | Path, where: str) -> pd.DataFrame:
    """A run's ``diagnostics.jsonl`` as (step, loss, mean_divergence, share) rows by step; null
    (no high-loss token at that step) becomes NaN. Errors name the file and the line."""
    rows = []
    if not Path(path).is_file():
        raise InputError(f"{where}: {path}: file does not exist")
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{number}: not JSON ({exc.msg})") from None
        missing = [key for key in DIAGNOSTICS_COLUMNS if key not in record]
        if not isinstance(record, dict) or missing:
            raise InputError(f"{path}:{number}: expected a record with {list(DIAGNOSTICS_COLUMNS)}; missing {missing}")
        rows.append({key: math.nan if record[key] is None else record[key] for key in DIAGNOSTICS_COLUMNS})
    return pd.DataFrame(rows, columns=list(DIAGNOSTICS_COLUMNS), dtype=float).sort_values("step", kind="stable")


def load_runs(manifest: dict, source: str) -> dict[str, list[tuple[dict, pd.DataFrame]]]:
    """Experiment -> its runs (manifest entry, diagnostics), in manifest order."""
    runs: dict[str, list] = {}
    for i, entry in enumerate(manifest.get("distill_runs", [])):
        frame = read_diagnostics(entry["path"], f"{source}: distill_runs[{i}]")
        runs.setdefault(entry["experiment"], []).append((entry, frame))
    return runs


def _label(entry: dict, backbones: set) -> str:
    return entry["label"] if len(backbones) < 2 else f"{entry['backbone']}: {entry['label']}"


def diagnostics_figure(experiment: str, runs: list[tuple[dict, pd.DataFrame]], caveat: str | None = None):
    """Two panels over training steps: the share and the mean divergence, a line per run."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    backbones = {entry["backbone"] for entry, _ in runs}
    for ax, (column, title) in zip(axes, SERIES):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("training step")
        drawn = False
        for i, (entry, frame) in enumerate(runs):
            points = frame.dropna(subset=[column])
            if len(points):
                ax.plot(points["step"], points[column], marker="o", markersize=3,
                        linestyle=LINESTYLES[i % len(LINESTYLES)], label=_label(entry, backbones))
                drawn = True
        if not drawn:
            _no_data(ax, "no logged steps")
            continue
        if column == SHARE:
            ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    finish(fig, f"On-policy distillation diagnostics: experiment {experiment}", caveat)
    return fig


def _first_last(values: pd.Series) -> tuple[float, float]:
    values = values.dropna()
    return (values.iloc[0], values.iloc[-1]) if len(values) else (math.nan, math.nan)


def diagnostics_table(experiment: str, runs: list[tuple[dict, pd.DataFrame]]) -> Table:
    display, long = [], []
    for entry, frame in runs:
        first, last = _first_last(frame[DIVERGENCE])
        share = float(frame[SHARE].mean()) if frame[SHARE].notna().any() else math.nan
        loss = _first_last(frame["loss"])[1]
        display.append({"Backbone": entry["backbone"], "Run": entry["label"], "Steps logged": len(frame),
                        "Mean divergence (first → last step)": f"{_fmt(first, 4)} → {_fmt(last, 4)}",
                        "High-loss, low-future share (mean)": _fmt(share, 3), "Last loss": _fmt(loss, 4)})
        long.append({"experiment": experiment, "backbone": entry["backbone"], "student": entry["student"],
                     "method": entry["method"], "label": entry["label"], "steps_logged": len(frame),
                     "first_mean_divergence": first, "last_mean_divergence": last, "mean_share": share,
                     "last_loss": loss, "path": entry["path"]})
    notes = ["Share: of a logged step's high-loss tokens (the top quantile of per-token divergence), those whose "
             "next-window mean divergence is low (TOPD's ~30% statistic; thresholds: the `distillation` settings, "
             "assumptions). Divergence: per-token reverse KL(student ‖ teacher) on the student's own samples. "
             "Values are each logging step's means over its micro-batches; the figure of the same name plots them."]
    return Table(distill_report(experiment), f"Distillation diagnostics: {experiment}",
                 f"Training diagnostics of the on-policy distillation runs of experiment {experiment}.",
                 pd.DataFrame(display), pd.DataFrame(long), notes)


# ----------------------------------------------------------------------- significance

PAIR_FIELDS = ("backbone", "pool", "data_size", "context", "checkpoint")
SIGNIFICANCE_COLUMNS = (*PAIR_FIELDS, "benchmark", "sft_variant", "distilled_variant", "n_problems", "pass1_a",
                        "pass1_b", "mcnemar_only_a", "mcnemar_only_b", "mcnemar_p", "acc_a", "acc_b", "acc_diff",
                        "acc_diff_ci_low", "acc_diff_ci_high", "paired_bootstrap_p", "sft_path", "distilled_path")


def sft_distilled_pairs(inputs: Inputs) -> list[tuple]:
    """Every (SFT run, distilled model) pair sharing backbone, pool, data size, context,
    checkpoint and benchmark; a pair of verdict files listed twice is compared once."""
    evals = inputs.metrics.drop_duplicates("eval")
    evals = evals.assign(benchmark_key=evals["column"].map(normalize_name))
    on = [*PAIR_FIELDS, "benchmark_key"]
    pairs = evals[evals["method"].isin(TRAINING_METHODS)].merge(
        evals[evals["method"].isin(DISTILL_METHODS)], on=on, suffixes=("_sft", "_distilled"))
    pairs = pairs.drop_duplicates(["path_sft", "path_distilled"])
    return [(inputs.results[a], inputs.results[b]) for a, b in zip(pairs["eval_sft"], pairs["eval_distilled"])]


def build_distill_significance(inputs: Inputs, n_resamples: int, seed: int) -> Table:
    rows, display = [], []
    for sft, distilled in sft_distilled_pairs(inputs):
        stats = compare_scores(sft.scores, distilled.scores, n_resamples, seed, names=(sft.where, distilled.where))
        e = sft.entry
        row = {**{f: e[f] for f in PAIR_FIELDS}, "benchmark": e["benchmark"], "sft_variant": e["variant"],
               "distilled_variant": distilled.entry["variant"], "sft_path": e["path"],
               "distilled_path": distilled.entry["path"],
               **{key: value * 100 if key.startswith(("pass1_", "acc_")) else value for key, value in stats.items()}}
        rows.append(row)
        display.append({
            "Backbone": e["backbone"], "Context": e["context"], "Benchmark": e["benchmark"],
            "SFT (A)": sft.variant_label, "Distilled (B)": distilled.variant_label, "Problems": stats["n_problems"],
            "A P@1": _fmt(row["pass1_a"]), "B P@1": _fmt(row["pass1_b"]),
            "Δ P@1": fmt_diff(row["pass1_b"] - row["pass1_a"]),
            "Discordant (A only / B only)": f"{stats['mcnemar_only_a']} / {stats['mcnemar_only_b']}",
            "McNemar p": fmt_p(stats["mcnemar_p"]),
            "Δ Acc [95% CI]": f"{fmt_diff(row['acc_diff'])} [{fmt_diff(row['acc_diff_ci_low'])}, "
                              f"{fmt_diff(row['acc_diff_ci_high'])}]",
            "Paired bootstrap p": fmt_p(stats["paired_bootstrap_p"]),
        })
    notes = ["Pairs: an SFT run (A: vanilla RFT or TrajFusion, final checkpoint) and a distilled model (B) sharing "
             "backbone, pool, data size, context and benchmark; the distilled model's label names the checkpoint "
             "its student started from. Tests as in significance.md: exact McNemar on Pass@1, paired bootstrap "
             "over problems on the per-problem mean accuracy."]
    long = pd.DataFrame(rows, columns=list(SIGNIFICANCE_COLUMNS))
    return Table(DISTILL_SIGNIFICANCE, "Significance: distilled models vs SFT runs",
                 "Paired tests of each on-policy distilled model against the SFT runs on the same problems.",
                 pd.DataFrame(display), long, notes)


def has_distilled(inputs: Inputs) -> bool:
    return bool(inputs.metrics["method"].isin(DISTILL_METHODS).any())

"""Figures 1, 3 and 4 of the paper, drawn with matplotlib (Agg) and saved as PNG and PDF.

- Figure 1 (a row per chosen statistics table, ``StatsPanel``): error-rate histogram, and
  incorrect-answer entropy against error rate with Spearman's rho over mixed-outcome problems
  (and over all); the titles name the teacher, the pool sources shown and the problem count.
- Figure 3: MATH Pass@1 over first-epoch checkpoints (x = training samples seen), vanilla
  RFT in gray and TrajFusion in red with the margin shaded, one panel per backbone.
- Figure 4: mean output tokens, and reflections per response and per 1,000 generated tokens,
  over checkpoints on GSM8K and MATH (six panels). Reflections are the phrase file's
  error-recognition phrases (``trajfusion.evaluate.reflections``); the generic markers
  ("wait", "hmm", ...) are a second, separately labelled series in the same panels.

Every figure is drawn even without data (its panels then say so), so that the set of
output files is fixed. Files are byte-identical across runs: PDF and PNG metadata carry no
dates or versions.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from trajfusion.contracts import STATISTICS
from trajfusion.io import InputError, atomic_path
from trajfusion.report.tables import METHOD_LABELS, EvalResult

METHOD_COLORS = {"rft": "#7f7f7f", "trajfusion": "#d62728"}
LINESTYLES = ("-", "--", ":", "-.")
FIGURE1_COLUMNS = ("problem_id", "K", "n_correct", "n_incorrect", "error_rate", "entropy")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, stem: str | Path) -> list[Path]:
    """Save ``fig`` as ``stem.png`` and ``stem.pdf`` atomically; close it."""
    plt = _pyplot()
    stem = Path(stem)
    paths = []
    for fmt, metadata in (("png", {"Software": None}), ("pdf", {"CreationDate": None, "Producer": None,
                                                               "Creator": None})):
        path = stem.with_name(f"{stem.name}.{fmt}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150, metadata=metadata)
        paths.append(path)
    plt.close(fig)
    return paths


def finish(fig, title: str, caveat: str | None) -> None:
    """Title, the smoke-test caveat (if any) above it, and a layout leaving room for both."""
    height = fig.get_figheight()
    top = 1.0 - 0.06 / height
    if caveat:
        fig.text(0.5, top, caveat, ha="center", va="top", fontsize=9, color="#b30000", weight="bold",
                 bbox={"facecolor": "#fff3f3", "edgecolor": "#b30000", "boxstyle": "round,pad=0.3"})
        top -= 0.34 / height
    fig.suptitle(title, y=top, va="top")
    fig.tight_layout(rect=(0, 0, 1, top - 0.12 / height), pad=0.6)


# ---------------------------------------------------------------------------- Figure 1


EXACT_PERMUTATION_MAX_N = 8


def spearman(x, y) -> tuple[float, float]:
    """Spearman's rho and its two-sided p-value; (nan, nan) when undefined (fewer than 3
    points or a constant variable). Up to 8 points the p-value is exact (all permutations):
    the asymptotic one claims p ~ 0 for three perfectly ranked points."""
    from scipy import stats

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.spearmanr(x, y)
        if len(x) <= EXACT_PERMUTATION_MAX_N:
            return float(res.statistic), _exact_spearman_pvalue(x, y)
    return float(res.statistic), float(res.pvalue)


def _exact_spearman_pvalue(x, y) -> float:
    """Two-sided p over all n! pairings. Only y's ranks are permuted (permuting both
    samples, as ``permutation_test((x, y), ...)`` does, repeats the same n! pairings n!
    times: hours at n = 8); Spearman's rho is Pearson's r of the ranks, vectorised."""
    from scipy import stats

    x_ranks = stats.rankdata(x)
    x_centred = x_ranks - x_ranks.mean()

    def rho(y_ranks, axis=-1):
        y_centred = y_ranks - y_ranks.mean(axis=axis, keepdims=True)
        return (y_centred * x_centred).sum(axis=axis) / np.sqrt(
            (y_centred ** 2).sum(axis=axis) * (x_centred ** 2).sum())

    exact = stats.permutation_test((stats.rankdata(y),), rho, permutation_type="pairings", vectorized=True,
                                   n_resamples=math.inf)
    return float(exact.pvalue)


def _fmt_rho(rho: float, p: float) -> str:
    if math.isnan(rho):
        return "Spearman ρ = n/a"
    p_text = "p < 1e-10" if p < 1e-10 else f"p = {p:.2g}"
    return f"Spearman ρ = {rho:.2f} ({p_text})"


@dataclass(frozen=True, eq=False)
class StatsPanel:
    """A row of Figure 1: a teacher's statistics on a pool, restricted to the problems of
    ``sources``; ``where`` names the table in error messages."""

    teacher: str
    pool: str
    sources: tuple[str, ...]
    stats: pd.DataFrame
    where: str

    @property
    def title(self) -> str:
        return f"{self.teacher} on {' + '.join(self.sources) or 'no source'} (pool {self.pool})"


def figure1(panels: list[StatsPanel], caveat: str | None = None):
    """Sampling statistics (paper Figure 1): one row of two panels per ``StatsPanel``; a
    figure saying so when there is none."""
    plt = _pyplot()
    if not panels:
        fig, ax = plt.subplots(figsize=(8, 3))
        _no_data(ax, "no statistics tables in the manifest")
        finish(fig, "Sampling statistics", caveat)
        return fig
    fig, axes = plt.subplots(len(panels), 2, figsize=(11, 4.4 * len(panels)), squeeze=False)
    for panel, (left, right) in zip(panels, axes):
        STATISTICS.check(panel.stats, panel.where, columns=FIGURE1_COLUMNS)
        valid = panel.stats[panel.stats["K"] > 0]  # the contract's error rate is defined exactly there
        mixed = (valid["n_correct"] > 0) & (valid["n_incorrect"] > 0)
        _error_rate_histogram(left, valid, mixed, panel.title)
        _entropy_scatter(right, valid, mixed, panel.title)
    if len(panels) == 1:
        title = f"Sampling statistics of {panels[0].title}: {len(panels[0].stats)} problems"
    else:
        title = "Sampling statistics: error rates and diversity of incorrect answers, a row per teacher and pool"
    finish(fig, title, caveat)
    return fig


def _no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center")
    ax.set_xticks([])
    ax.set_yticks([])


def _error_rate_histogram(ax, valid: pd.DataFrame, mixed: pd.Series, title: str) -> None:
    n = len(valid)
    rates = valid["error_rate"].to_numpy(dtype=float)
    ax.hist(rates, bins=np.linspace(0, 1, 21), weights=np.full(n, 100.0 / n) if n else None, color="#4c72b0",
            edgecolor="white")
    ax.set_xlim(0, 1)
    ax.set_xlabel("Error rate r(x) = |Y⁻| / K")
    ax.set_ylabel("Problems (%)")
    if n:
        low, high = 100 * np.mean(rates <= 0.1), 100 * np.mean(rates >= 0.9)
        ax.set_title(f"{title}: error rates ({n} problems)\nr ≤ 0.1: {low:.1f}%, r ≥ 0.9: {high:.1f}%, "
                     f"mixed outcomes: {100 * mixed.mean():.1f}%", fontsize=10)
    else:
        ax.set_title(f"{title}: error rates", fontsize=10)
        ax.text(0.5, 0.5, "no problems with K > 0", transform=ax.transAxes, ha="center")


def _entropy_scatter(ax, valid: pd.DataFrame, mixed: pd.Series, title: str) -> None:
    others = valid[~mixed]
    ax.scatter(others["error_rate"], others["entropy"], s=10, color="#9e9e9e", alpha=0.5,
               label=f"all-correct / all-incorrect (n={len(others)})")
    ax.scatter(valid.loc[mixed, "error_rate"], valid.loc[mixed, "entropy"], s=12, color="#d62728", alpha=0.6,
               label=f"mixed outcomes (n={int(mixed.sum())})")
    rho, p = spearman(valid.loc[mixed, "error_rate"], valid.loc[mixed, "entropy"])
    rho_all, p_all = spearman(valid["error_rate"], valid["entropy"])
    ax.text(0.03, 0.97, f"mixed outcomes: {_fmt_rho(rho, p)}\nall problems: {_fmt_rho(rho_all, p_all)}",
            transform=ax.transAxes, ha="left", va="top", fontsize=9,
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "#cccccc"})
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel("Error rate r(x)")
    ax.set_ylabel("Entropy of incorrect answers (nats)")
    ax.set_title(f"{title}: diversity of incorrect answers", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)


# ------------------------------------------------------------------------- Figures 3, 4


def _series(results: list[EvalResult], metric: str) -> dict[tuple, pd.DataFrame]:
    """Per (backbone, method, variant): rows of samples_seen, value, ci_low, ci_high sorted by x.
    Runs without ``samples_seen`` are left out."""
    points: dict[tuple, list] = {}
    for result in results:
        seen = result.entry.get("samples_seen")
        if seen is None:
            continue
        est = result.estimate(metric)
        backbone = str(result.entry.get("backbone_label") or result.entry["backbone"])
        key = (backbone, result.entry["method"], result.variant_label)
        points.setdefault(key, []).append((int(seen), est.value, est.ci_low, est.ci_high, result.where))
    out = {}
    for key, rows in sorted(points.items()):
        frame = pd.DataFrame(rows, columns=["x", "value", "ci_low", "ci_high", "where"]).sort_values("x")
        dup = frame["x"].duplicated()
        if dup.any():
            raise InputError(f"{frame.loc[dup, 'where'].iloc[0]}: a second run of backbone {key[0]!r}, "
                             f"variant {key[2]!r} at samples_seen {int(frame.loc[dup, 'x'].iloc[0])} in one figure")
        out[key] = frame.reset_index(drop=True)
    return out


def _line_label(method: str, variant: str, backbone: str | None = None) -> str:
    label = METHOD_LABELS.get(method, method)
    if variant.lower() != label.lower():
        label = f"{label} ({variant})"
    return f"{label}, {backbone}" if backbone else label


def _plot_series(ax, frame: pd.DataFrame, color: str, linestyle: str, label: str, marker: str = "o",
                 alpha: float = 1.0) -> None:
    has_ci = frame["ci_low"].notna().to_numpy()
    ax.plot(frame["x"], frame["value"], marker=marker, color=color, linestyle=linestyle, label=label, alpha=alpha)
    if has_ci.any():
        sub = frame[has_ci]
        ax.errorbar(sub["x"], sub["value"], yerr=[sub["value"] - sub["ci_low"], sub["ci_high"] - sub["value"]],
                    fmt="none", ecolor=color, alpha=0.5 * alpha, capsize=3)


def _shade_margin(ax, base: pd.DataFrame, other: pd.DataFrame) -> None:
    joined = base.merge(other, on="x", suffixes=("_a", "_b"))
    if len(joined):
        ax.fill_between(joined["x"], joined["value_a"], joined["value_b"], color=METHOD_COLORS["trajfusion"],
                        alpha=0.15, linewidth=0, label="margin (TrajFusion − RFT)")


def figure3(results: list[EvalResult], caveat: str | None = None):
    """MATH Pass@1 over first-epoch checkpoints, one panel per backbone."""
    plt = _pyplot()
    series = _series([r for r in results if r.in_table("figure3") and r.bench == "math"], "pass@1")
    backbones = sorted({key[0] for key in series})
    if not backbones:
        fig, ax = plt.subplots(figsize=(8, 3))
        _no_data(ax, "no MATH evaluations with samples_seen listed for figure3")
        finish(fig, "Pass@1 on MATH over first-epoch checkpoints", caveat)
        return fig
    fig, axes = plt.subplots(1, len(backbones), figsize=(max(7.0, 5.5 * len(backbones)), 4.6), squeeze=False)
    for ax, backbone in zip(axes[0], backbones):
        lines = {key: frame for key, frame in series.items() if key[0] == backbone}
        rft = [frame for key, frame in lines.items() if key[1] == "rft"]
        for i, ((_, method, variant), frame) in enumerate(lines.items()):
            _plot_series(ax, frame, METHOD_COLORS.get(method, "#1f77b4"), LINESTYLES[i % len(LINESTYLES)],
                         _line_label(method, variant))
            if method == "trajfusion" and rft:
                _shade_margin(ax, rft[0], frame)
        ax.set_xlabel("Training samples seen")
        ax.set_ylabel("MATH Pass@1 (%)")
        ax.set_title(backbone)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    finish(fig, "Pass@1 on MATH over first-epoch checkpoints", caveat)
    return fig


# (benchmark, [(metric, series label or None)], panel title, y label); the first series of a
# panel is drawn solid, the second (generic markers) light with crosses.
_REFLECTIONS = "reflection phrases"
_MARKERS = "generic markers (wait, hmm, ...)"
FIGURE4_PANELS = (
    ("gsm8k", [("mean_output_tokens", None)], "(a) GSM8K: output length", "Mean output tokens"),
    ("math", [("mean_output_tokens", None)], "(b) MATH: output length", "Mean output tokens"),
    ("gsm8k", [("mean_reflections", _REFLECTIONS), ("mean_markers", _MARKERS)],
     "(c) GSM8K: reflection frequency per response", "Occurrences per response"),
    ("math", [("mean_reflections", _REFLECTIONS), ("mean_markers", _MARKERS)],
     "(d) MATH: reflection frequency per response", "Occurrences per response"),
    ("gsm8k", [("reflections_per_1k_tokens", _REFLECTIONS), ("markers_per_1k_tokens", _MARKERS)],
     "(e) GSM8K: reflection frequency per 1,000 tokens", "Occurrences per 1,000 output tokens"),
    ("math", [("reflections_per_1k_tokens", _REFLECTIONS), ("markers_per_1k_tokens", _MARKERS)],
     "(f) MATH: reflection frequency per 1,000 tokens", "Occurrences per 1,000 output tokens"))


def figure4(results: list[EvalResult], caveat: str | None = None):
    """Output length and reflection frequency (per response, per 1,000 tokens) over checkpoints."""
    plt = _pyplot()
    chosen = [r for r in results if r.in_table("figure4") and r.bench in ("gsm8k", "math")]
    backbones = sorted({str(r.entry.get("backbone_label") or r.entry["backbone"]) for r in chosen})
    fig, axes = plt.subplots(3, 2, figsize=(11, 11.5))
    for ax, (bench, metrics, title, ylabel) in zip(axes.flat, FIGURE4_PANELS):
        drawn = False
        for position, (metric, series_label) in enumerate(metrics):
            for (backbone, method, variant), frame in _series([r for r in chosen if r.bench == bench], metric).items():
                label = _line_label(method, variant, backbone if len(backbones) > 1 else None)
                _plot_series(ax, frame, METHOD_COLORS.get(method, "#1f77b4"),
                             LINESTYLES[backbones.index(backbone) % len(LINESTYLES)],
                             f"{label}: {series_label}" if series_label else label,
                             marker="ox"[position], alpha=(1.0, 0.45)[position])
                drawn = True
        if not drawn:
            ax.text(0.5, 0.5, "no evaluations with samples_seen", transform=ax.transAxes, ha="center", va="center")
        else:
            ax.legend(fontsize=7)
        ax.set_xlabel("Training samples seen")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    finish(fig, "Output length and reflection frequency over checkpoints\n"
                "reflections: the phrase file's error-recognition phrases; tokens: the model's own", caveat)
    return fig

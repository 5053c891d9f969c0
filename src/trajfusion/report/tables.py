"""Tables 1-3 of the paper and the RFT-vs-TrajFusion significance table.

Each table is built twice: ``display`` (strings, laid out like the paper, with the paper's
reported rows, reproduced rows carrying 95% bootstrap intervals, and difference rows) for
Markdown and LaTeX, and ``long`` (one numeric row per cell) for CSV. Accuracies are in
percent, as in the paper.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import yaml

from trajfusion.io import InputError, write_text
from trajfusion.report.metrics import Estimate, compare_scores, percentile_interval

PERCENT_METRICS = ("pass@1", "avg@k", "maj@k", "pass@k")
REPORTED, REPRODUCED, DIFF = "reported", "reproduced", "Δ (reproduced − paper)"
METHOD_LABELS = {"rft": "Vanilla RFT", "trajfusion": "TrajFusion"}
LONG_COLUMNS = ("table", "group", "row", "variant", "source", "column", "metric", "value", "ci_low", "ci_high",
                "paper", "diff", "n_problems", "samples_per_problem", "path")


@dataclass
class EvalResult:
    """One manifest evaluation with its per-problem scores and metric estimates."""

    index: int
    entry: dict
    bench: str | None  # canonical benchmark key of paper_results.yaml, if the name matches one
    paper_backbone: str | None  # backbone key of paper_results.yaml this run is compared with
    k: int
    scores: pd.DataFrame
    estimates: dict[str, Estimate]
    distributions: dict[str, np.ndarray]

    @property
    def where(self) -> str:
        return f"manifest evals[{self.index}] ({self.entry['path']})"

    def in_table(self, name: str) -> bool:
        return name in self.entry["tables"]

    @property
    def column(self) -> str:
        """The table column: the paper's benchmark key, else the manifest's benchmark name."""
        return self.bench or str(self.entry["benchmark"])

    @property
    def variant_label(self) -> str:
        return str(self.entry.get("variant_label") or self.entry["variant"])

    def estimate(self, metric: str) -> Estimate:
        """The metric in report units (percent for accuracies)."""
        est = self.estimates[metric]
        scale = 100.0 if metric in PERCENT_METRICS else 1.0
        return Estimate(est.value * scale, est.ci_low * scale, est.ci_high * scale)

    def distribution(self, metric: str) -> np.ndarray:
        return self.distributions[metric] * (100.0 if metric in PERCENT_METRICS else 1.0)


@dataclass
class Table:
    name: str
    title: str
    caption: str
    display: pd.DataFrame
    long: pd.DataFrame
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------- paper results and names


def default_paper_results() -> Path:
    return Path(str(resources.files("trajfusion") / "resources" / "paper_results.yaml"))


@lru_cache(maxsize=4)
def _load_yaml(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def load_paper_results(path: str | Path | None = None) -> dict:
    path = Path(path) if path else default_paper_results()
    if not path.exists():
        raise InputError(f"{path}: paper results file does not exist")
    data = _load_yaml(str(path))
    for key in ("benchmarks", "backbones", "table1", "table2", "table3"):
        if not isinstance(data, dict) or key not in data:
            raise InputError(f"{path}: missing top-level key {key!r}")
    return data


def normalize_name(name) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def match_key(name: str | None, section: dict) -> str | None:
    """The key of ``section`` whose own name or one of whose aliases equals ``name`` (normalized)."""
    if name is None:
        return None
    wanted = normalize_name(name)
    for key, spec in section.items():
        if wanted == normalize_name(key) or wanted in {normalize_name(a) for a in spec.get("aliases", [])}:
            return key
    return None


# ----------------------------------------------------------------------- cell formatting


def _fmt(value, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f}"


def fmt_estimate(est: Estimate | None, digits: int = 1) -> str:
    if est is None:
        return "—"
    if math.isnan(est.ci_low):
        return _fmt(est.value, digits)
    return f"{_fmt(est.value, digits)} [{_fmt(est.ci_low, digits)}, {_fmt(est.ci_high, digits)}]"


def fmt_diff(value, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:+.{digits}f}"


def fmt_p(p: float) -> str:
    if p is None or math.isnan(p):
        return "n/a"
    return f"{p:.3g}" if p >= 1e-4 else f"{p:.1e}"


def _num(value) -> float:
    return math.nan if value is None else float(value)


def _long_row(table: str, group: str, row: str, variant: str, source: str, column: str, metric: str,
              est: Estimate | None, paper=None, result: EvalResult | None = None) -> dict:
    value = est.value if est is not None else math.nan
    return {
        "table": table, "group": group, "row": row, "variant": variant, "source": source, "column": column,
        "metric": metric, "value": value,
        "ci_low": est.ci_low if est is not None else math.nan,
        "ci_high": est.ci_high if est is not None else math.nan,
        "paper": _num(paper), "diff": value - _num(paper) if paper is not None else math.nan,
        "n_problems": len(result.scores) if result else pd.NA,
        "samples_per_problem": result.k if result else pd.NA,
        "path": result.entry["path"] if result else "",
    }


# ------------------------------------------------------------------ grouping reproduced runs


def group_results(results: list[EvalResult], table: str, key, allowed: list[str] | None,
                  notes: list[str]) -> dict[tuple, dict[str, EvalResult]]:
    """Final-checkpoint runs listed for ``table``, grouped into rows by ``key(result)`` and
    keyed by column. Runs on a benchmark outside ``allowed`` (None: any) are left out with a
    note; two runs for one cell are an error."""
    rows: dict[tuple, dict[str, EvalResult]] = {}
    skipped = set()
    for result in results:
        if not result.in_table(table) or result.entry["checkpoint"] != "final":
            continue
        if allowed is not None and result.column not in allowed:
            skipped.add(result.column)
            continue
        cells = rows.setdefault(key(result), {})
        if result.column in cells:
            raise InputError(f"{result.where}: same {table} cell as {cells[result.column].where} "
                             f"(row {key(result)}, benchmark {result.column!r})")
        cells[result.column] = result
    if skipped:
        notes.append(f"Not shown (no column in this table; see metrics.csv): {', '.join(sorted(skipped))}.")
    return rows


def _any(cells: dict[str, EvalResult]) -> EvalResult:
    return next(iter(cells.values()))


def _backbone_label(result: EvalResult, paper: dict) -> str:
    if result.paper_backbone:
        return paper["backbones"][result.paper_backbone]["label"]
    return str(result.entry.get("backbone_label") or result.entry["backbone"])


def _mean_estimate(results: list[EvalResult], metric: str) -> Estimate:
    """Mean over benchmarks; its interval averages the (independent) per-benchmark bootstraps."""
    value = float(np.mean([r.estimate(metric).value for r in results]))
    dists = [r.distribution(metric) for r in results]
    if any(len(d) == 0 for d in dists):
        return Estimate(value, math.nan, math.nan)
    return Estimate(value, *percentile_interval(np.mean(dists, axis=0)))


# ---------------------------------------------------------------------------- Table 1


def build_table1(results: list[EvalResult], paper: dict) -> Table:
    spec = paper["table1"]
    paper_cols = list(spec["columns"])
    notes = ["Pass@1 of the first sample per problem; reproduced cells show the 95% percentile bootstrap "
             "interval over problems. AVG is the mean of the paper's six benchmarks (shown only when all six "
             "were evaluated); its interval averages the per-benchmark bootstrap replicates."]
    groups = group_results(results, "table1", lambda r: (r.paper_backbone or "", str(r.entry["backbone"]),
                                                         r.entry["method"], r.entry["variant"],
                                                         str(r.entry["data_size"])), None, notes)
    extra = sorted({c for cells in groups.values() for c in cells} - set(paper_cols))
    cols = paper_cols + extra
    labels = [paper["benchmarks"][c]["label"] for c in paper_cols] + [f"{c}*" for c in extra]
    if extra:
        notes.append("* Benchmark not in the paper's Table 1.")
    display, long, used = [], [], set()

    def add_reported(prow):
        group = paper["backbones"][prow["backbone"]]["label"]
        cells = {lab: _fmt(prow["scores"].get(c)) for c, lab in zip(cols, labels)}
        display.append({"Backbone": group, "Method": prow["label"], "Variant": "", "Train size":
                        prow["train_size"] or "—", "Source": REPORTED, **cells, "AVG": _fmt(prow.get("avg"))})
        for c in (*paper_cols, "avg"):
            value = prow.get("avg") if c == "avg" else prow["scores"].get(c)
            long.append(_long_row("table1", group, prow["label"], "", REPORTED, c, "pass@1",
                                  Estimate(_num(value), math.nan, math.nan)))

    def add_reproduced(key, prow):
        cells_by_bench = groups[key]
        first = _any(cells_by_bench)
        group, method = _backbone_label(first, paper), METHOD_LABELS.get(key[2], key[2])
        ests = {c: cells_by_bench[c].estimate("pass@1") for c in cols if c in cells_by_bench}
        avg = _mean_estimate([cells_by_bench[c] for c in paper_cols], "pass@1") \
            if all(c in ests for c in paper_cols) else None
        variant = first.variant_label
        base = {"Backbone": group, "Method": method, "Variant": variant, "Train size": key[4]}
        display.append({**base, "Source": REPRODUCED, **{lab: fmt_estimate(ests.get(c)) for c, lab in
                                                         zip(cols, labels)}, "AVG": fmt_estimate(avg)})
        for c in cols:
            paper_value = prow["scores"].get(c) if prow else None
            long.append(_long_row("table1", group, method, variant, REPRODUCED, c, "pass@1", ests.get(c),
                                  paper_value, cells_by_bench.get(c)))
        long.append(_long_row("table1", group, method, variant, REPRODUCED, "avg", "pass@1", avg,
                              prow.get("avg") if prow else None))
        if prow:
            diffs = {lab: fmt_diff(ests[c].value - prow["scores"][c]) if c in ests and prow["scores"].get(c)
                     is not None else "—" for c, lab in zip(cols, labels)}
            avg_diff = avg.value - prow["avg"] if avg is not None and prow.get("avg") is not None else None
            display.append({**base, "Source": DIFF, **diffs, "AVG": fmt_diff(avg_diff)})
        used.add(key)

    for prow in spec["rows"]:
        add_reported(prow)
        if prow["method"] is None:
            continue
        for key in sorted(groups):
            if (key[0], key[2], normalize_name(key[4])) == (prow["backbone"], prow["method"],
                                                            normalize_name(prow["train_size"])):
                add_reproduced(key, prow)
    for key in sorted(set(groups) - used):
        add_reproduced(key, None)
    return Table("table1", "Table 1", spec["caption"], pd.DataFrame(display), pd.DataFrame(long, columns=LONG_COLUMNS),
                 notes)


# ---------------------------------------------------------------------------- Table 2


@dataclass(frozen=True)
class FusionInfo:
    mean_errors: float
    k_max: int | None
    strategy: str | None
    path: str


def table2_paper_row(result: EvalResult, info: FusionInfo | None, spec: dict) -> dict | None:
    """The paper's Table 2 row a run reproduces: the manifest's ``paper_row`` label if given,
    else the row whose label equals the run's ``variant_label``, else LowDiv for the lowdiv
    strategy, else the TF(k_max=k) row with the run's k_max."""
    rows = spec["rows"]
    explicit = result.entry.get("paper_row")
    if explicit:
        for row in rows:
            if normalize_name(row["label"]) == normalize_name(explicit):
                return row
        raise InputError(f"{result.where}: field 'paper_row' = {explicit!r} is not a Table 2 row; "
                         f"expected one of {[r['label'] for r in rows]}")
    by_label = [r for r in rows if normalize_name(r["label"]) == normalize_name(result.variant_label)]
    if by_label:
        return by_label[0]
    if info is None or result.entry["method"] != "trajfusion":
        return None
    if normalize_name(info.strategy) == "lowdiv":
        return next(r for r in rows if r["strategy"] == "lowdiv")
    return next((r for r in rows if r["strategy"] is None and r["k_max"] == info.k_max), None)


def build_table2(results: list[EvalResult], paper: dict,
                 fusion_for: Callable[[EvalResult], FusionInfo | None]) -> Table:
    """``fusion_for(result)`` gives the fusion summary of a run's training data (None if absent)."""
    spec = paper["table2"]
    benches = list(spec["benchmarks"])
    bench_labels = {b: paper["benchmarks"][b]["label"] for b in benches}
    notes = ["#Err: mean number of fused incorrect trajectories per training example, from the fusion "
             "summary (0 for vanilla RFT). Acc: Pass@1 of the first sample; Tokens: mean generated tokens "
             "over all samples; intervals are 95% percentile bootstrap intervals over problems."]
    groups = group_results(results, "table2", lambda r: (r.paper_backbone or "", str(r.entry["backbone"]),
                                                         r.entry["method"], r.entry["variant"],
                                                         str(r.entry["data_size"]), str(r.entry["pool"])), benches,
                           notes)
    reproduced_by_row: dict[str, list] = {}
    unmatched = []
    for key in sorted(groups):
        first = _any(groups[key])
        info = fusion_for(first)
        if key[2] == "trajfusion" and info is None:
            raise InputError(f"{first.where}: no fusion summary in the manifest for pool {key[5]!r}, "
                             f"variant {key[3]!r} (needed for Table 2's #Err)")
        like = table2_paper_row(first, info, spec)  # the row this run mirrors, on any backbone
        if key[0] == spec["backbone"] and like is not None:
            reproduced_by_row.setdefault(like["label"], []).append((key, info, like))
        else:
            order = spec["rows"].index(like) if like is not None else len(spec["rows"])
            unmatched.append((order, key, info))
    unmatched.sort(key=lambda item: item[:2])

    display, long = [], []
    paper_group = paper["backbones"][spec["backbone"]]["label"]

    def add_reported(prow):
        cells = {"#Err": _fmt(prow["n_err"], 2)}
        for b in benches:
            cells[f"{bench_labels[b]} Acc"] = _fmt(prow[b]["acc"])
            cells[f"{bench_labels[b]} Tokens"] = _fmt(prow[b]["tokens"], 0)
            long.append(_long_row("table2", paper_group, prow["label"], "", REPORTED, b, "pass@1",
                                  Estimate(prow[b]["acc"], math.nan, math.nan)))
            long.append(_long_row("table2", paper_group, prow["label"], "", REPORTED, b, "mean_output_tokens",
                                  Estimate(prow[b]["tokens"], math.nan, math.nan)))
        long.append(_long_row("table2", paper_group, prow["label"], "", REPORTED, "#Err", "mean_errors",
                              Estimate(prow["n_err"], math.nan, math.nan)))
        display.append({"Backbone": paper_group, "Strategy": prow["label"], "Variant": "", "Source": REPORTED,
                        **cells})

    def add_reproduced(key, info, prow):
        cells_by_bench = groups[key]
        first = _any(cells_by_bench)
        group, variant = _backbone_label(first, paper), first.variant_label
        label = prow["label"] if prow else _table2_label(key[2], info)
        n_err = 0.0 if key[2] == "rft" else info.mean_errors
        cells, diffs = {"#Err": _fmt(n_err, 2)}, {"#Err": fmt_diff(n_err - prow["n_err"], 2) if prow else "—"}
        long.append(_long_row("table2", group, label, variant, REPRODUCED, "#Err", "mean_errors",
                              Estimate(n_err, math.nan, math.nan), prow["n_err"] if prow else None))
        for b in benches:
            result = cells_by_bench.get(b)
            for metric, name, digits, paper_field in (("pass@1", "Acc", 1, "acc"),
                                                      ("mean_output_tokens", "Tokens", 0, "tokens")):
                est = result.estimate(metric) if result else None
                paper_value = prow[b][paper_field] if prow else None
                cells[f"{bench_labels[b]} {name}"] = fmt_estimate(est, digits)
                diffs[f"{bench_labels[b]} {name}"] = fmt_diff(est.value - paper_value, digits) \
                    if est is not None and paper_value is not None else "—"
                long.append(_long_row("table2", group, label, variant, REPRODUCED, b, metric, est, paper_value,
                                      result))
        base = {"Backbone": group, "Strategy": label, "Variant": variant}
        display.append({**base, "Source": REPRODUCED, **cells})
        if prow:
            display.append({**base, "Source": DIFF, **diffs})

    for prow in spec["rows"]:
        add_reported(prow)
        for key, info, _ in reproduced_by_row.get(prow["label"], []):
            add_reproduced(key, info, prow)
    for _, key, info in unmatched:
        add_reproduced(key, info, None)
    return Table("table2", "Table 2", spec["caption"], pd.DataFrame(display), pd.DataFrame(long, columns=LONG_COLUMNS),
                 notes)


def _table2_label(method: str, info: FusionInfo | None) -> str:
    if method == "rft" or info is None:
        return METHOD_LABELS.get(method, method)
    return f"TF(k_max={info.k_max}, {info.strategy})"


# ---------------------------------------------------------------------------- Table 3


def build_table3(results: list[EvalResult], paper: dict) -> Table:
    spec = paper["table3"]
    columns = spec["columns"]
    benches = sorted({c["benchmark"] for c in columns})
    notes = ["P@1: correctness of the first sample; Avg@16: mean accuracy over all samples of a problem; "
             "intervals are 95% percentile bootstrap intervals over problems."]
    groups = group_results(results, "table3", lambda r: (r.paper_backbone or "", str(r.entry["backbone"]),
                                                         r.entry["method"], r.entry["variant"],
                                                         str(r.entry["context"]), str(r.entry["data_size"])), benches,
                           notes)
    display, long, used, ks = [], [], set(), set()
    paper_group = paper["backbones"][spec["backbone"]]["label"]

    def add_reported(prow):
        cells = {}
        for col in columns:
            value = prow["scores"][col["benchmark"]].get(col["metric"])
            cells[col["label"]] = _fmt(value)
            long.append(_long_row("table3", paper_group, prow["label"], "", REPORTED, col["benchmark"],
                                  col["metric"], Estimate(_num(value), math.nan, math.nan)))
        display.append({"Backbone": paper_group, "Method": prow["label"], "Variant": "", "Source": REPORTED, **cells})

    def add_reproduced(key, prow):
        cells_by_bench = groups[key]
        first = _any(cells_by_bench)
        group, variant = _backbone_label(first, paper), first.variant_label
        label = prow["label"] if prow else f"{'RFT' if key[2] == 'rft' else 'TrajFusion'}({key[4].upper()})"
        cells, diffs = {}, {}
        for col in columns:
            result = cells_by_bench.get(col["benchmark"])
            est = result.estimate(col["metric"]) if result else None
            if result is not None and col["metric"] == "avg@k":
                ks.add(result.k)
            paper_value = prow["scores"][col["benchmark"]].get(col["metric"]) if prow else None
            cells[col["label"]] = fmt_estimate(est)
            diffs[col["label"]] = fmt_diff(est.value - paper_value) if est is not None and paper_value is not None \
                else "—"
            long.append(_long_row("table3", group, label, variant, REPRODUCED, col["benchmark"], col["metric"],
                                  est, paper_value, result))
        base = {"Backbone": group, "Method": label, "Variant": variant}
        display.append({**base, "Source": REPRODUCED, **cells})
        if prow:
            display.append({**base, "Source": DIFF, **diffs})
        used.add(key)

    for prow in spec["rows"]:
        add_reported(prow)
        for key in sorted(groups):
            if (key[0], key[2], normalize_name(key[4])) == (spec["backbone"], prow["method"],
                                                            normalize_name(prow["context"])):
                add_reproduced(key, prow)
    def paper_order(key):  # runs on other backbones follow the paper's row order too
        rows = [i for i, r in enumerate(spec["rows"])
                if (r["method"], normalize_name(r["context"])) == (key[2], normalize_name(key[4]))]
        return (key[1], rows[0] if rows else len(spec["rows"]), key)

    for key in sorted(set(groups) - used, key=paper_order):
        add_reproduced(key, None)
    if ks - {16}:
        notes.append(f"Reproduced Avg@k columns use k = {', '.join(str(k) for k in sorted(ks))} samples per "
                     "problem (the paper uses 16).")
    return Table("table3", "Table 3", spec["caption"], pd.DataFrame(display), pd.DataFrame(long, columns=LONG_COLUMNS),
                 notes)


# ----------------------------------------------------------------------- significance


PAIR_FIELDS = ("backbone", "pool", "data_size", "context", "checkpoint")


def rft_trajfusion_pairs(results: list[EvalResult]) -> list[tuple[EvalResult, EvalResult]]:
    """Every (RFT, TrajFusion) pair of runs that share backbone, pool, data size, context,
    checkpoint and benchmark; a pair of verdict files listed twice is compared once."""
    by_key: dict[tuple, dict[str, list[EvalResult]]] = {}
    for result in results:
        key = (*(str(result.entry[f]) for f in PAIR_FIELDS), normalize_name(result.column))
        by_key.setdefault(key, {}).setdefault(result.entry["method"], []).append(result)
    pairs, seen = [], set()
    for key in sorted(by_key):
        for a in by_key[key].get("rft", []):
            for b in by_key[key].get("trajfusion", []):
                if (a.entry["path"], b.entry["path"]) not in seen:
                    seen.add((a.entry["path"], b.entry["path"]))
                    pairs.append((a, b))
    return pairs


def build_significance(results: list[EvalResult], n_resamples: int, seed: int) -> Table:
    rows, display = [], []
    for rft, tf in rft_trajfusion_pairs(results):
        stats = compare_scores(rft.scores, tf.scores, n_resamples, seed, names=(rft.where, tf.where))
        e = rft.entry
        row = {**{f: e[f] for f in PAIR_FIELDS}, "benchmark": e["benchmark"], "rft_variant": e["variant"],
               "trajfusion_variant": tf.entry["variant"], "rft_path": e["path"], "trajfusion_path": tf.entry["path"],
               **{key: value * 100 if _is_percent(key) else value for key, value in stats.items()}}
        rows.append(row)
        display.append({
            "Backbone": e["backbone"], "Train size": e["data_size"], "Context": e["context"],
            "Checkpoint": e["checkpoint"], "Benchmark": e["benchmark"],
            "RFT / TF variant": f"{rft.variant_label} / {tf.variant_label}", "Problems": stats["n_problems"],
            "RFT P@1": _fmt(row["pass1_a"]), "TF P@1": _fmt(row["pass1_b"]),
            "Δ P@1": fmt_diff(row["pass1_b"] - row["pass1_a"]),
            "Discordant (RFT only / TF only)": f"{stats['mcnemar_only_a']} / {stats['mcnemar_only_b']}",
            "McNemar p": fmt_p(stats["mcnemar_p"]),
            "Δ Acc [95% CI]": f"{fmt_diff(row['acc_diff'])} [{fmt_diff(row['acc_diff_ci_low'])}, "
                              f"{fmt_diff(row['acc_diff_ci_high'])}]",
            "Paired bootstrap p": fmt_p(stats["paired_bootstrap_p"]),
        })
    notes = ["Pairs: vanilla RFT (A) and TrajFusion (B) runs sharing backbone, pool, data size, context, "
             "checkpoint and benchmark. McNemar: exact two-sided binomial test on problems solved (Pass@1) "
             "by exactly one of the two. Acc: per-problem mean accuracy over all samples (avg@k; Pass@1 when "
             "one sample); the paired bootstrap p-value is two-sided, resampling problems."]
    long = pd.DataFrame(rows, columns=[*PAIR_FIELDS, "benchmark", "rft_variant", "trajfusion_variant", "n_problems",
                                       "pass1_a", "pass1_b", "mcnemar_only_a", "mcnemar_only_b", "mcnemar_p",
                                       "acc_a", "acc_b", "acc_diff", "acc_diff_ci_low", "acc_diff_ci_high",
                                       "paired_bootstrap_p", "rft_path", "trajfusion_path"])
    return Table("significance", "Significance: TrajFusion vs vanilla RFT",
                 "Paired tests of TrajFusion against vanilla RFT on the same benchmark problems.",
                 pd.DataFrame(display), long, notes)


def _is_percent(key: str) -> bool:
    return key.startswith(("pass1_", "acc_"))


# ----------------------------------------------------------------------------- writing


def _latex_escape(text: str) -> str:
    for char, repl in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"),
                       ("_", r"\_"), ("{", r"\{"), ("}", r"\}")):
        text = text.replace(char, repl)
    return text


def _latex_symbols(latex: str) -> str:
    """Non-ASCII symbols of the display tables in plain-LaTeX form (pdflatex-safe)."""
    for char, repl in (("Δ", r"$\Delta$"), ("−", "-"), ("—", "--"), ("ρ", r"$\rho$")):
        latex = latex.replace(char, repl)
    return latex


def render_markdown(table: Table, caveat: str | None) -> str:
    parts = [f"# {table.title}", ""]
    if caveat:
        parts += [f"> **{caveat}**", ""]
    parts += [table.caption, ""]
    body = table.display.to_markdown(index=False, disable_numparse=True) if len(table.display) else "_No rows._"
    parts += [body, ""]
    parts += [f"- {note}" for note in table.notes]
    return "\n".join(parts).rstrip() + "\n"


def write_table(table: Table, out_dir: Path, caveat: str | None) -> list[Path]:
    """Write ``{name}.md``, ``{name}.csv`` and ``{name}.tex``; return their paths."""
    out_dir = Path(out_dir)
    md, csv, tex = (out_dir / f"{table.name}.{ext}" for ext in ("md", "csv", "tex"))
    write_text(render_markdown(table, caveat), md)
    long = table.long.assign(caveat=caveat) if caveat else table.long
    write_text(long.to_csv(index=False, lineterminator="\n"), csv)
    caption = _latex_escape(f"{table.caption} {caveat or ''}".strip())
    latex = table.display.to_latex(index=False, escape=True, caption=caption, label=f"tab:{table.name}") \
        if len(table.display) else f"% {caption}\n% no rows\n"
    write_text(_latex_symbols(latex), tex)
    return [md, csv, tex]

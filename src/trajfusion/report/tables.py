"""Tables 1-3 of the paper and the RFT-vs-TrajFusion significance table, as pivots of tidy frames.

Two tidy frames meet here: the evaluations' metrics (``metrics_frame``: one row per manifest
evaluation x metric, in report units, with the run's named fields) and the paper's numbers
(``paper.paper_frame``: one row per paper table x row x column x metric, keyed by the same
field names). A table is a declaration (``TableSpec``): its runs (listed for it, final
checkpoint, its benchmarks), the fields that make a row, its columns, and the fields that
match a row to one of the paper's. ``build_table`` pivots any declaration into ``display``
(strings laid out like the paper: reported rows, reproduced rows carrying 95% bootstrap
intervals, difference rows; for Markdown and LaTeX) and ``long`` (one numeric row per cell,
for CSV), and ``write_table`` renders any table to .md, .csv and .tex. Accuracies are in
percent, as in the paper.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from trajfusion.contracts import RESULTS_TABLE_PREFIX
from trajfusion.io import InputError, write_text
from trajfusion.report.metrics import SUMMARY_METRICS, Estimate, compare_scores, percentile_interval
from trajfusion.report.paper import normalize_name, paper_frame
from trajfusion.vocabulary import DISTILL_METHOD_LABELS

PERCENT_METRICS = ("pass@1", "avg@k", "maj@k", "pass@k")
REPORTED, REPRODUCED, DIFF = "reported", "reproduced", "Δ (reproduced − paper)"
METHOD_LABELS = {"rft": "Vanilla RFT", "trajfusion": "TrajFusion", "tapo": "TAPO-SFT", "icl": "ICL",
                 "instruct": "Instruct", "model": "as given", **DISTILL_METHOD_LABELS}
RUN_FIELDS = ("experiment", "backbone", "variant", "method", "pool", "data_size", "context", "checkpoint",
              "samples_seen", "benchmark", "path")
METRICS_COLUMNS = ("eval", "where", *RUN_FIELDS, "tables", "paper_backbone", "backbone_label", "variant_label",
                   "column", "n_problems", "samples_per_problem", "metric", "value", "ci_low", "ci_high")
CELL = ["column", "metric"]
CELL_FIELDS = ("value", "ci_low", "ci_high", "n_problems", "samples_per_problem", "path")
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


def metrics_frame(results: list[EvalResult]) -> pd.DataFrame:
    """The tidy metrics frame: one row per evaluation x metric, in report units; ``eval`` is
    the evaluation's position in ``results``, ``tables`` the tables it is listed for."""
    rows = []
    for position, result in enumerate(results):
        entry = result.entry
        run = {"eval": position, "where": result.where, **{f: entry[f] for f in RUN_FIELDS},
               "tables": " ".join(entry["tables"]), "paper_backbone": result.paper_backbone or "",
               "backbone_label": str(entry.get("backbone_label") or entry["backbone"]),
               "variant_label": result.variant_label, "column": result.column, "n_problems": len(result.scores),
               "samples_per_problem": result.k}
        for metric in SUMMARY_METRICS:
            est = result.estimate(metric)
            rows.append({**run, "metric": metric, "value": est.value, "ci_low": est.ci_low, "ci_high": est.ci_high})
    frame = pd.DataFrame(rows, columns=list(METRICS_COLUMNS))
    frame["samples_seen"] = frame["samples_seen"].astype("Int64")
    return frame


@dataclass(frozen=True)
class FusionInfo:
    mean_errors: float
    k_max: int | None
    strategy: str | None
    path: str
    constructor: str | None = None  # a TAPO summary's (trajfusion.reflect): rule or model


def method_label(method: str, info: FusionInfo | None) -> str:
    """The method's name; for TAPO-SFT with the constructor that built its data."""
    label = METHOD_LABELS.get(method, method)
    if method == "tapo" and info is not None and info.constructor:
        label += f" ({info.constructor}-built)"
    return label


@dataclass
class Inputs:
    """What the tables are pivoted from: the evaluations, the paper's numbers and a lookup of
    a run's fusion summary (None if absent)."""

    results: list[EvalResult]
    paper: dict
    fusion_for: Callable[[EvalResult], FusionInfo | None] = lambda result: None
    trained_errors_for: Callable[[EvalResult], float | None] = lambda result: None
    metrics: pd.DataFrame = field(init=False)
    paper_cells: pd.DataFrame = field(init=False)

    def __post_init__(self):
        self.metrics = metrics_frame(self.results)
        self.paper_cells = paper_frame(self.paper)

    def backbone_label(self, paper_backbone: str, backbone_label: str) -> str:
        return self.paper["backbones"][paper_backbone]["label"] if paper_backbone else backbone_label


@dataclass
class Table:
    name: str
    title: str
    caption: str
    display: pd.DataFrame
    long: pd.DataFrame
    notes: list[str] = field(default_factory=list)


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


# ------------------------------------------------------------------------ declarations


@dataclass(frozen=True)
class Column:
    """A table column: the cell ``metric`` of benchmark (or derived column) ``column``."""

    column: str
    metric: str
    label: str
    digits: int = 1


@dataclass(frozen=True)
class RowSummary:
    """What a table adds to one reproduced row: its label when no paper row matches, fields
    to match the paper's rows with, and derived cells (column, metric, value, ci_low, ci_high)."""

    label: str
    fields: dict = field(default_factory=dict)
    cells: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class TableSpec:
    """One table as a pivot: ``headers`` are (display header, row field) pairs; runs with the
    same ``row_fields`` form a reproduced row, placed after the paper row that agrees on
    ``paper_backbone`` and ``match_fields``, or at the end sorted by ``unmatched_order``
    (``mirror`` being the first paper row that agrees on ``match_fields`` alone) then by
    ``row_fields``."""

    name: str
    title: str
    note: str
    headers: tuple[tuple[str, str], ...]
    row_fields: tuple[str, ...]
    match_fields: tuple[str, ...]
    benchmarks: Callable[[dict], list[str] | None]
    columns: Callable[[dict, pd.DataFrame], list[Column]]
    summarize: Callable[[pd.DataFrame, Inputs], RowSummary]
    unmatched_order: tuple[str, ...] = ()
    extra_notes: Callable[[list[Column], pd.DataFrame], list[str]] = lambda columns, cells: []


# ----------------------------------------------------------------------- the pivot


def build_table(spec: TableSpec, inputs: Inputs) -> Table:
    """Pivot the runs listed for ``spec`` beside the paper's rows. Blocks are laid out by
    ``position``: each paper row, then the run rows matched to it (by ``row_fields``), then
    the unmatched run rows."""
    notes = [spec.note]
    runs = _table_runs(spec, inputs, notes)
    columns = spec.columns(inputs.paper, runs)
    grid = pd.DataFrame([asdict(c) for c in columns], columns=["column", "metric", "label", "digits"])
    paper_cells = inputs.paper_cells[inputs.paper_cells["table"] == spec.name]
    run_rows, cells = _run_rows(spec, runs, grid, inputs)
    paper_rows = _paper_rows(inputs, paper_cells)
    blocks = sorted(paper_rows + [_place(spec, row, paper_rows) for row in run_rows], key=lambda b: b["position"])
    notes += spec.extra_notes(columns, cells)
    display, long = [], []
    for block in blocks:
        published = paper_cells[paper_cells["order"] == block["paper_order"]]
        if block["source"] == REPORTED:
            display.append(_display_row(spec, block, grid.merge(published, on=CELL, how="left"), _reported_text))
            long.append(_long_rows(spec, block, published))
        else:
            here = _reproduced_cells(grid, cells[cells["row_id"] == block["row_id"]], published)
            display.append(_display_row(spec, block, here, _estimate_text))
            if block["paper_order"] is not None:
                display.append({**_display_row(spec, block, here, _diff_text), "Source": DIFF})
            long.append(_long_rows(spec, block, here))
    long_frame = pd.concat(long, ignore_index=True).astype({"n_problems": "Int64", "samples_per_problem": "Int64"})
    return Table(spec.name, spec.title, inputs.paper[spec.name]["caption"], pd.DataFrame(display), long_frame, notes)


def _reproduced_cells(grid: pd.DataFrame, cells: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """Every column of a run row: its cell (NaN if none), the paper's value and the difference."""
    paper = published[[*CELL, "value"]].rename(columns={"value": "paper"})
    here = grid.merge(cells, on=CELL, how="left").merge(paper, on=CELL, how="left")
    return here.assign(diff=here["value"] - here["paper"])


def _table_runs(spec: TableSpec, inputs: Inputs, notes: list[str]) -> pd.DataFrame:
    """The final-checkpoint runs listed for the table, on its benchmarks (others get a note);
    two runs for one cell are an error."""
    m = inputs.metrics
    runs = m[m["tables"].str.split().map(lambda names: spec.name in names) & (m["checkpoint"] == "final")]
    allowed = spec.benchmarks(inputs.paper)
    if allowed is not None:
        skipped = sorted(set(runs["column"]) - set(allowed))
        if skipped:
            notes.append(f"Not shown (no column in this table; see metrics.csv): {', '.join(skipped)}.")
        runs = runs[runs["column"].isin(allowed)]
    evals = runs.drop_duplicates("eval")
    cell_key = [*spec.row_fields, "column"]
    twice = evals[evals.duplicated(cell_key)]
    if len(twice):
        second = twice.iloc[0]
        first = evals[(evals[cell_key] == second[cell_key]).all(axis=1)].iloc[0]
        row = ", ".join(f"{f}={second[f]!r}" for f in spec.row_fields)
        raise InputError(f"{second['where']}: same {spec.name} cell as {first['where']} "
                         f"(row {row}, benchmark {second['column']!r})")
    return runs


def _paper_rows(inputs: Inputs, paper_cells: pd.DataFrame) -> list[dict]:
    """One block per paper row: its named fields and header values."""
    rows = paper_cells.drop_duplicates("order").drop(columns=["column", "metric", "value"])
    return [{**row, "source": REPORTED, "paper_order": row["order"], "label": row["paper_row"], "variant": "",
             "group": inputs.backbone_label(row["paper_backbone"], ""), "position": (row["order"], 0, ())}
            for row in rows.to_dict("records")]


def _run_rows(spec: TableSpec, runs: pd.DataFrame, grid: pd.DataFrame,
              inputs: Inputs) -> tuple[list[dict], pd.DataFrame]:
    """One block per reproduced row (its fields from its first run) and the rows' cells: the
    runs' metrics shown in the table plus the table's derived cells."""
    rows, cells = [], [pd.DataFrame(columns=["row_id", *CELL, *CELL_FIELDS])]
    shown = runs.merge(grid[CELL], on=CELL)
    for row_id, (_, group) in enumerate(runs.groupby(list(spec.row_fields), sort=False, dropna=False)):
        first = group.iloc[0]
        summary = spec.summarize(group, inputs)
        rows.append({**{f: first[f] for f in spec.row_fields}, **summary.fields, "row_id": row_id,
                     "source": REPRODUCED, "label": summary.label, "variant": first["variant_label"],
                     "group": inputs.backbone_label(first["paper_backbone"], first["backbone_label"])})
        derived = pd.DataFrame(summary.cells, columns=[*CELL, "value", "ci_low", "ci_high"])
        measured = shown.loc[shown["eval"].isin(group["eval"]), [*CELL, *CELL_FIELDS]]
        cells.append(pd.concat([measured, derived], ignore_index=True).assign(row_id=row_id))
    return rows, pd.concat(cells, ignore_index=True)


def _agrees(row: dict, paper_rows: list[dict], fields: tuple[str, ...]) -> list[dict]:
    """The paper rows whose ``fields`` equal the run row's (names compared normalized; two
    missing values agree, so an ICL run without a train size matches the paper's ICL row)."""
    def missing(value) -> bool:
        return value is None or pd.isna(value)

    def same(a, b) -> bool:
        if missing(a) or missing(b):
            return missing(a) and missing(b)
        return normalize_name(a) == normalize_name(b)

    return [p for p in paper_rows if all(same(row.get(f), p.get(f)) for f in fields)]


def _place(spec: TableSpec, row: dict, paper_rows: list[dict]) -> dict:
    """A run row matched to its paper row (taking that row's label) and its layout position."""
    key = tuple(row[f] for f in spec.row_fields)
    match = _agrees(row, paper_rows, ("paper_backbone", *spec.match_fields))
    if match:
        order = match[0]["order"]
        return {**row, "label": match[0]["paper_row"], "paper_order": order, "position": (order, 1, key)}
    mirror = _agrees(row, paper_rows, spec.match_fields)
    row = {**row, "mirror": mirror[0]["order"] if mirror else len(paper_rows), "paper_order": None}
    return {**row, "position": (len(paper_rows), 1, (*(row[f] for f in spec.unmatched_order), *key))}


def _reported_text(cell) -> str:
    return _fmt(cell.value, cell.digits)


def _estimate_text(cell) -> str:
    return "—" if pd.isna(cell.value) else fmt_estimate(Estimate(cell.value, cell.ci_low, cell.ci_high), cell.digits)


def _diff_text(cell) -> str:
    return fmt_diff(cell.diff, cell.digits)


def _display_row(spec: TableSpec, block: dict, cells: pd.DataFrame, text: Callable) -> dict:
    header = {title: block.get(name) for title, name in spec.headers}
    header = {title: "—" if value is None or pd.isna(value) else value for title, value in header.items()}
    return {**header, "Source": block["source"], **{cell.label: text(cell) for cell in cells.itertuples()}}


def _long_rows(spec: TableSpec, block: dict, cells: pd.DataFrame) -> pd.DataFrame:
    """The block's cells as CSV rows; columns a reported row lacks are empty."""
    long = cells.reindex(columns=[*CELL, *CELL_FIELDS, "paper", "diff"])
    long = long.assign(table=spec.name, group=block["group"], row=block["label"], variant=block["variant"],
                       source=block["source"], path=long["path"].astype(object).fillna(""))
    return long[list(LONG_COLUMNS)]


# ---------------------------------------------------------------------------- Table 1


def _table1_columns(paper: dict, runs: pd.DataFrame) -> list[Column]:
    """The paper's six benchmarks, then any other benchmark with runs (marked "*"), then AVG."""
    paper_columns = paper["table1"]["columns"]
    extra = sorted(set(runs["column"]) - set(paper_columns))
    return [*(Column(c, "pass@1", paper["benchmarks"][c]["label"]) for c in paper_columns),
            *(Column(c, "pass@1", f"{c}*") for c in extra), Column("avg", "pass@1", "AVG")]


def _table1_row(runs: pd.DataFrame, inputs: Inputs) -> RowSummary:
    """AVG over the paper's six benchmarks, when all six were evaluated; its interval averages
    the (independent) per-benchmark bootstrap replicates."""
    pass1 = runs[runs["metric"] == "pass@1"].set_index("column")
    method = runs["method"].iloc[0]
    label = method_label(method, inputs.fusion_for(inputs.results[runs["eval"].iloc[0]]) if method == "tapo" else None)
    paper_columns = inputs.paper["table1"]["columns"]
    if not set(paper_columns) <= set(pass1.index):
        return RowSummary(label)
    value = float(np.mean([pass1.loc[c, "value"] for c in paper_columns]))
    dists = [inputs.results[pass1.loc[c, "eval"]].distribution("pass@1") for c in paper_columns]
    low, high = (math.nan, math.nan) if any(len(d) == 0 for d in dists) else percentile_interval(np.mean(dists, axis=0))
    return RowSummary(label,
                      cells=[{"column": "avg", "metric": "pass@1", "value": value, "ci_low": low, "ci_high": high}])


def _table1_notes(columns: list[Column], cells: pd.DataFrame) -> list[str]:
    return ["* Benchmark not in the paper's Table 1."] if any(c.label.endswith("*") for c in columns) else []


TABLE1 = TableSpec(
    name="table1", title="Table 1",
    note="Pass@1 of the first sample per problem; reproduced cells show the 95% percentile bootstrap interval over "
         "problems. AVG is the mean of the paper's six benchmarks (shown only when all six were evaluated); its "
         "interval averages the per-benchmark bootstrap replicates.",
    headers=(("Backbone", "group"), ("Method", "label"), ("Variant", "variant"), ("Train size", "data_size")),
    row_fields=("paper_backbone", "backbone", "method", "variant", "data_size"),
    match_fields=("method", "data_size"),
    benchmarks=lambda paper: None, columns=_table1_columns, summarize=_table1_row, extra_notes=_table1_notes)


# ---------------------------------------------------------------------------- Table 2


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


def _table2_columns(paper: dict, runs: pd.DataFrame) -> list[Column]:
    labels = {b: paper["benchmarks"][b]["label"] for b in paper["table2"]["benchmarks"]}
    return [Column("#Err", "mean_errors", "#Err", 2), Column("#Err", "mean_errors_trained", "#Err trained", 2),
            *(cell for b, label in labels.items() for cell in (Column(b, "pass@1", f"{label} Acc"),
                                                               Column(b, "mean_output_tokens", f"{label} Tokens", 0)))]


def _table2_row(runs: pd.DataFrame, inputs: Inputs) -> RowSummary:
    """#Err from the fusion summary of the row's training data (0 for vanilla RFT) and the
    paper row the run mirrors, on any backbone."""
    first = inputs.results[runs["eval"].iloc[0]]
    method, info = first.entry["method"], inputs.fusion_for(first)
    if method == "trajfusion" and info is None:
        raise InputError(f"{first.where}: no fusion summary in the manifest for pool {first.entry['pool']!r}, "
                         f"variant {first.entry['variant']!r} (needed for Table 2's #Err)")
    like = table2_paper_row(first, info, inputs.paper["table2"])
    n_err = 0.0 if method == "rft" else math.nan if info is None else info.mean_errors  # None: a distilled model
    trained = inputs.trained_errors_for(first)
    label = METHOD_LABELS.get(method, method) if method == "rft" or info is None \
        else f"TF(k_max={info.k_max}, {info.strategy})"
    return RowSummary(label, fields={"paper_row": like["label"] if like else None},
                      cells=[{"column": "#Err", "metric": "mean_errors", "value": n_err, "ci_low": math.nan,
                              "ci_high": math.nan},
                             {"column": "#Err", "metric": "mean_errors_trained",
                              "value": math.nan if trained is None else trained, "ci_low": math.nan,
                              "ci_high": math.nan}])


TABLE2 = TableSpec(
    name="table2", title="Table 2",
    note="#Err: mean number of fused incorrect trajectories per training example, from the fusion summary (0 for "
         "vanilla RFT); #Err trained: the mean the model was trained on, after the length policy removed errors "
         "from over-long examples (train_meta.json; — when not recorded). Acc: Pass@1 of the first sample; "
         "Tokens: mean generated tokens over all samples; intervals are 95% percentile bootstrap intervals over "
         "problems.",
    headers=(("Backbone", "group"), ("Strategy", "label"), ("Variant", "variant")),
    row_fields=("paper_backbone", "backbone", "method", "variant", "data_size", "pool"),
    match_fields=("paper_row",), unmatched_order=("mirror",),
    benchmarks=lambda paper: list(paper["table2"]["benchmarks"]), columns=_table2_columns, summarize=_table2_row)


# ---------------------------------------------------------------------------- Table 3


def _table3_columns(paper: dict, runs: pd.DataFrame) -> list[Column]:
    return [Column(c["benchmark"], c["metric"], c["label"]) for c in paper["table3"]["columns"]]


def _table3_row(runs: pd.DataFrame, inputs: Inputs) -> RowSummary:
    first = runs.iloc[0]
    method = {"rft": "RFT", "trajfusion": "TrajFusion"}.get(first["method"], METHOD_LABELS.get(first["method"]))
    return RowSummary(f"{method}({first['context'].upper()})")


def _table3_notes(columns: list[Column], cells: pd.DataFrame) -> list[str]:
    ks = sorted(set(cells.loc[cells["metric"] == "avg@k", "samples_per_problem"].astype(int)))
    if set(ks) - {16}:
        return [f"Reproduced Avg@k columns use k = {', '.join(str(k) for k in ks)} samples per problem "
                "(the paper uses 16)."]
    return []


TABLE3 = TableSpec(
    name="table3", title="Table 3",
    note="P@1: correctness of the first sample; Avg@16: mean accuracy over all samples of a problem; intervals are "
         "95% percentile bootstrap intervals over problems.",
    headers=(("Backbone", "group"), ("Method", "label"), ("Variant", "variant")),
    row_fields=("paper_backbone", "backbone", "method", "variant", "context", "data_size"),
    match_fields=("method", "context"), unmatched_order=("backbone", "mirror"),
    benchmarks=lambda paper: sorted({c["benchmark"] for c in paper["table3"]["columns"]}),
    columns=_table3_columns, summarize=_table3_row, extra_notes=_table3_notes)

TABLES = (TABLE1, TABLE2, TABLE3)


# ----------------------------------------------------------------------- own experiments


RESULTS_METRICS = {"pass@1": "Pass@1", "avg@k": "Avg@k"}  # avg@k shown where k > 1
EVALUATIONS_TABLE = "evaluations"
RESULTS_ROW = ("backbone_label", "variant_label", "method")


def build_results_table(name: str, inputs: Inputs) -> Table:
    """The results table of an experiment of one's own (one row per trained run, final
    checkpoint) or of the `evaluations:` (one row per evaluation): one column per benchmark and
    metric, each cell with its 95% interval."""
    m = inputs.metrics
    listed = m["tables"].str.split().map(lambda names: name in names)
    if name != EVALUATIONS_TABLE:
        listed &= m["checkpoint"] == "final"
    runs = m[listed & m["metric"].isin(list(RESULTS_METRICS))]
    runs = runs[(runs["metric"] == "pass@1") | (runs["samples_per_problem"] > 1)]
    benchmarks = list(dict.fromkeys(runs["benchmark"]))
    display = []
    for row, cells in runs.groupby(list(RESULTS_ROW), sort=False):
        info = inputs.fusion_for(inputs.results[cells["eval"].iloc[0]]) if row[2] == "tapo" else None
        shown = dict(zip(("Backbone", "Variant", "Method"), (row[0], row[1], method_label(row[2], info))))
        for cell in cells.itertuples():
            shown[f"{RESULTS_METRICS[cell.metric]} {cell.benchmark}"] = fmt_estimate(
                Estimate(cell.value, cell.ci_low, cell.ci_high))
        display.append(shown)
    long = runs.assign(table=name, group=runs["backbone_label"], row=runs["variant_label"],
                       variant=runs["variant"], source=REPRODUCED, column=runs["benchmark"], paper=np.nan,
                       diff=np.nan)[list(LONG_COLUMNS)].reset_index(drop=True)
    cells = ("cells: value [95% bootstrap interval over problems]; Avg@k where a benchmark draws k > 1 samples.")
    on = ', '.join(benchmarks) or 'no benchmark'
    if name == EVALUATIONS_TABLE:
        title, caption = "Evaluations", "Accuracy (%) of the models the config's `evaluations:` list."
        notes = [f"One row per evaluation (model, template and generation settings of its own) on {on}; {cells}"]
    else:
        experiment = name.removeprefix(RESULTS_TABLE_PREFIX)
        title, caption = f"Results: {experiment}", f"Accuracy (%) of the runs of experiment {experiment}."
        notes = [f"Runs of experiment {experiment!r} (final checkpoints) on {on}; {cells} "
                 "Paired RFT/TrajFusion tests: significance.md."]
    return Table(name, title, caption, pd.DataFrame(display).fillna("—"),
                 long.astype({"n_problems": "Int64", "samples_per_problem": "Int64"}), notes)


def results_table_names(results: list[EvalResult]) -> list[str]:
    """The results tables (own experiments', the evaluations') the evaluations are listed for,
    in order of first appearance."""
    names = (name for r in results for name in r.entry["tables"]
             if name.startswith(RESULTS_TABLE_PREFIX) or name == EVALUATIONS_TABLE)
    return list(dict.fromkeys(names))


# ----------------------------------------------------------------------- significance


PAIR_FIELDS = ("backbone", "pool", "data_size", "context", "checkpoint")


def rft_trajfusion_pairs(inputs: Inputs) -> list[tuple[EvalResult, EvalResult]]:
    """Every (RFT, TrajFusion) pair of runs that share backbone, pool, data size, context,
    checkpoint and benchmark; a pair of verdict files listed twice is compared once."""
    evals = inputs.metrics.drop_duplicates("eval")
    evals = evals.assign(benchmark_key=evals["column"].map(normalize_name))
    on = [*PAIR_FIELDS, "benchmark_key"]
    pairs = evals[evals["method"] == "rft"].merge(evals[evals["method"] == "trajfusion"], on=on,
                                                  suffixes=("_rft", "_tf"))
    pairs = pairs.sort_values(on, kind="stable").drop_duplicates(["path_rft", "path_tf"])
    return [(inputs.results[a], inputs.results[b]) for a, b in zip(pairs["eval_rft"], pairs["eval_tf"])]


def build_significance(inputs: Inputs, n_resamples: int, seed: int) -> Table:
    rows, display = [], []
    for rft, tf in rft_trajfusion_pairs(inputs):
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


def page_header(title: str, caveat: str | None) -> list[str]:
    """The first lines of every report page: its title and, on a smoke test, the caveat."""
    return [f"# {title}", "", *([f"> **{caveat}**", ""] if caveat else [])]


def render_markdown(table: Table, caveat: str | None) -> str:
    parts = [*page_header(table.title, caveat), table.caption, ""]
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

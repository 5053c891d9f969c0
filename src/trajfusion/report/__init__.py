"""``trajfusion report``: Tables 1-3, Figures 1, 3 and 4, metrics and significance tests.

Usage: ``trajfusion report --manifest MANIFEST.json --out-dir results/report
[--paper-results FILE] [--bootstrap-samples B] [--seed S]``.

Manifest (JSON, written by the Snakemake rule; paths relative to the working directory; schema:
``trajfusion.contracts.MANIFEST_SCHEMA``)::

    {
      "smoke_test": true,                  # required; true adds a caveat to every output
      "evals": [                           # required; one entry per verdict table
        {"experiment": "main",             # free text
         "tables": ["table1", "figure3"],  # membership: table1 table2 table3 figure3 figure4
         "backbone": "llama3-8b",          # name of the fine-tuned base model
         "variant": "tf",                  # fused-data variant the model was trained on
         "method": "trajfusion",           # "rft" or "trajfusion"
         "pool": "15k",                    # training pool
         "data_size": "15k",               # "15k", "100k", "embedded", ...
         "context": "4k",                  # "4k", "32k", ... ("" when not applicable)
         "checkpoint": "final",            # "final" or "ckpt-N"
         "samples_seen": null,             # training examples seen at this checkpoint, or null
         "benchmark": "math",              # benchmark name (see paper_results.yaml aliases)
         "path": "results/eval/.../math.parquet",
         # optional:
         "teacher": "qwen25-math-7b-instruct",  # disambiguates the fusion summary lookup
         "profile": "embedded",            # training profile (informational)
         "backbone_label": "LLaMA3-8B",    # display names (default: backbone / variant)
         "variant_label": "TrajFusion",
         "paper_backbone": "llama3_8b",    # compare with this paper backbone (default: match
                                           # backbone or backbone_label against the aliases
                                           # in paper_results.yaml)
         "paper_row": "TF(HighDiv)"},      # Table 2 row this run reproduces (see below)
        ...],
      "fusion_summaries": [                # optional; needed for TrajFusion runs in table2
        {"pool": "15k", "teacher": "qwen", "variant": "tf", "path": ".../tf.summary.json",
         "k_max": 4, "strategy": "highdiv",     # optional; the JSON's own values win
         "variant_label": "TrajFusion"}],       # optional, informational
      "stats": [{"teacher": "qwen", "pool": "15k", "path": "results/stats/qwen/15k.parquet"}],
      "provenance": {...}                  # optional, any JSON; shown in index.md
    }

Rows are matched to the paper as follows: a run's backbone is compared with the paper's
when ``paper_backbone`` is given or ``backbone`` matches an alias in paper_results.yaml;
Table 1 rows by (backbone, method, data_size = paper train size), Table 3 rows by
(backbone, method, context), Table 2 rows by ``paper_row`` if given, else the row whose
label equals ``variant_label``, else the LowDiv row for the ``lowdiv`` strategy, else the
TF(k_max=k) row with the fusion summary's k_max. Runs
without a paper counterpart are listed as reproduced rows without a difference. Tables 1-3
use the runs with ``checkpoint == "final"``; two such runs for the same table cell are an
error. Table 1 gets an extra column (marked "*") for each
benchmark outside the paper's six; Tables 2 and 3 leave such runs out with a note (they are
in metrics.csv). Figure 3 plots the MATH runs listed for it, Figure 4 the GSM8K and MATH
runs; both use only runs with ``samples_seen`` set. The significance table pairs runs at
every checkpoint.

Outputs in ``--out-dir``: ``table1/2/3.{md,csv,tex}``, ``significance.{md,csv,tex}``,
``metrics.csv`` (every eval entry x metric with 95% bootstrap intervals),
``figure1.{png,pdf}`` (one row of panels per statistics table), ``figure3.{png,pdf}``,
``figure4.{png,pdf}`` (always written; panels without runs say so) and ``index.md`` linking
everything. Accuracies are percentages.
"""

from __future__ import annotations

import argparse
import json
import logging
import zlib
from pathlib import Path

import pandas as pd

from trajfusion.contracts import MANIFEST_SCHEMA, STATISTICS, VERDICTS, check_document, read
from trajfusion.io import InputError, read_json_file, write_text

log = logging.getLogger(__name__)

SMOKE_CAVEAT = "Smoke test on the embedded default: not comparable to the paper."


def load_manifest(path: str | Path) -> dict:
    """Read the manifest and check it against ``contracts.MANIFEST_SCHEMA``; errors name the
    manifest and the offending field."""
    manifest = check_document(read_json_file(path, "manifest"), MANIFEST_SCHEMA, str(path))
    manifest.setdefault("fusion_summaries", [])
    manifest.setdefault("stats", [])
    manifest.setdefault("provenance", {})
    return manifest


def check_paper_backbones(manifest: dict, paper: dict, source: str) -> None:
    for i, entry in enumerate(manifest["evals"]):
        name = entry.get("paper_backbone")
        if name is not None and name not in paper["backbones"]:
            raise InputError(f"{source}: evals[{i}].paper_backbone: {name!r} is not one of "
                             f"{sorted(paper['backbones'])}")


# --------------------------------------------------------------------------- evaluations


def bootstrap_seed(seed: int, benchmark: str) -> int:
    """Independent bootstrap streams per benchmark (AVG over benchmarks assumes independence)."""
    return (seed + zlib.crc32(benchmark.encode())) % (2**31)


def evaluate_entries(manifest: dict, paper: dict, n_resamples: int, seed: int) -> list:
    from tqdm import tqdm

    from trajfusion.report.metrics import METRIC_COLUMNS, problem_scores, samples_per_problem, summarize_scores
    from trajfusion.report.paper import match_key
    from trajfusion.report.tables import EvalResult

    results, cache = [], {}
    for i, entry in enumerate(tqdm(manifest["evals"], desc="metrics", unit="eval")):
        path = entry["path"]
        if path not in cache:
            df = read(path, VERDICTS, columns=METRIC_COLUMNS)
            scores = problem_scores(df)
            cache[path] = (scores, samples_per_problem(df),
                           *summarize_scores(scores, n_resamples, bootstrap_seed(seed, entry["benchmark"])))
        scores, k, estimates, distributions = cache[path]
        results.append(EvalResult(
            index=i, entry=entry, bench=match_key(entry["benchmark"], paper["benchmarks"]),
            paper_backbone=entry.get("paper_backbone") or match_key(entry["backbone"], paper["backbones"])
            or match_key(entry.get("backbone_label"), paper["backbones"]),
            k=k, scores=scores, estimates=estimates, distributions=distributions))
    return results


METRIC_UNITS = {"pass@1": "percent", "avg@k": "percent", "maj@k": "percent", "pass@k": "percent",
                "mean_output_tokens": "tokens", "mean_reflections": "reflections per response"}


def metrics_csv(metrics: pd.DataFrame, caveat: str | None) -> pd.DataFrame:
    """``metrics.csv``: the tidy metrics frame's run fields and estimates, pass@k named by its k."""
    from trajfusion.report.tables import RUN_FIELDS

    pass_k = "pass@" + metrics["samples_per_problem"].astype(str)
    frame = metrics.assign(metric=metrics["metric"].mask(metrics["metric"] == "pass@k", pass_k),
                           unit=metrics["metric"].map(METRIC_UNITS))
    frame = frame[[*RUN_FIELDS, "tables", "n_problems", "samples_per_problem", "metric", "value", "ci_low", "ci_high",
                   "unit"]]
    return frame.assign(caveat=caveat) if caveat else frame


# ------------------------------------------------------------------------- fusion, stats


def load_fusion(manifest: dict, source: str):
    """A lookup from an eval result to the FusionInfo of its training data."""
    from trajfusion.report.tables import FusionInfo

    infos = []
    for i, entry in enumerate(manifest["fusion_summaries"]):
        where = f"{source}: fusion_summaries[{i}] ({entry['path']})"
        summary = read_json_file(entry["path"], f"fusion summary (manifest {where})")
        if not isinstance(summary, dict) or not isinstance(summary.get("mean_errors"), (int, float)):
            raise InputError(f"{where}: field 'mean_errors' is missing or not a number")
        infos.append((entry, FusionInfo(float(summary["mean_errors"]), summary.get("k_max", entry.get("k_max")),
                                        summary.get("strategy", entry.get("strategy")), entry["path"])))

    def fusion_for(result):
        e = result.entry
        found = [info for entry, info in infos if entry["pool"] == e["pool"] and entry["variant"] == e["variant"]
                 and e.get("teacher") in (None, entry["teacher"])]
        if len(found) > 1:
            raise InputError(f"{result.where}: {len(found)} fusion summaries match pool {e['pool']!r}, variant "
                             f"{e['variant']!r}; add the field 'teacher' to the eval entry")
        return found[0] if found else None

    return fusion_for


def load_stats(manifest: dict, source: str) -> list[tuple[str, pd.DataFrame, str]]:
    """(panel title, statistics table, where) per manifest stats entry."""
    out = []
    for i, entry in enumerate(manifest["stats"]):
        where = f"{source}: stats[{i}] ({entry['path']})"
        if not Path(entry["path"]).exists():
            raise InputError(f"{where}: file does not exist")
        out.append((f"{entry['teacher']} on {entry['pool']}", read(entry["path"], STATISTICS), where))
    return out


# ------------------------------------------------------------------------------ index


def render_index(manifest: dict, outputs: dict[str, list[Path]], missing: list[str], out_dir: Path,
                 caveat: str | None) -> str:
    lines = ["# TrajFusion reproduction report", ""]
    if caveat:
        lines += [f"> **{caveat}**", ""]
    for section, paths in outputs.items():
        if not paths:
            continue
        lines += [f"## {section}", ""]
        lines += [f"- [{p.name}]({p.relative_to(out_dir).as_posix()})" for p in paths]
        lines.append("")
    if missing:
        lines += ["## Empty figures", ""] + [f"- {m}" for m in missing] + [""]
    lines += ["## Inputs", "", f"- {len(manifest['evals'])} evaluations, {len(manifest['fusion_summaries'])} "
              f"fusion summaries, {len(manifest['stats'])} statistics tables", ""]
    if manifest["provenance"]:
        lines += ["## Provenance", "", "```json", json.dumps(manifest["provenance"], indent=2, sort_keys=True),
                  "```", ""]
    return "\n".join(lines)


def write_cost(cost_dir: str | Path, cost_files: list[str], gpu_patterns: list, out_dir: Path,
               caveat: str | None) -> list[Path]:
    from trajfusion.report import cost

    table = cost.cost_table(cost.read_cost_files(cost_dir, cost_files, [tuple(p) for p in gpu_patterns]))
    md_path, csv_path = out_dir / "cost.md", out_dir / "cost.csv"
    write_text(cost.render_markdown(table, caveat), md_path)
    write_text(table.to_csv(index=False, lineterminator="\n", float_format="%.6f"), csv_path)
    return [md_path, csv_path]


def build_report(manifest_path: str | Path, out_dir: str | Path, paper_results: str | Path | None = None,
                 n_resamples: int = 2000, seed: int = 0, cost_dir: str | Path = "results/cost",
                 cost_files: list[str] | None = None, gpu_patterns: list | None = None) -> dict[str, list[Path]]:
    """Write every report output; returns the written paths by section."""
    from trajfusion.report import figures, tables
    from trajfusion.report.paper import load_paper_results

    source, out_dir = str(manifest_path), Path(out_dir)
    manifest = load_manifest(manifest_path)
    paper = load_paper_results(paper_results)
    check_paper_backbones(manifest, paper, source)
    caveat = SMOKE_CAVEAT if manifest["smoke_test"] else None
    results = evaluate_entries(manifest, paper, n_resamples, seed)
    inputs = tables.Inputs(results, paper, load_fusion(manifest, source))

    outputs: dict[str, list[Path]] = {"Tables": [], "Significance": [], "Figures": [], "Metrics": [], "Cost": []}
    for spec in tables.TABLES:
        outputs["Tables"] += tables.write_table(tables.build_table(spec, inputs), out_dir, caveat)
    outputs["Significance"] += tables.write_table(tables.build_significance(inputs, n_resamples, seed), out_dir,
                                                  caveat)
    metrics_path = out_dir / "metrics.csv"
    write_text(metrics_csv(inputs.metrics, caveat).to_csv(index=False, lineterminator="\n"), metrics_path)
    outputs["Metrics"].append(metrics_path)
    if cost_files is not None:
        outputs["Cost"] += write_cost(cost_dir, cost_files, gpu_patterns or [], out_dir, caveat)

    missing = []
    if not manifest["stats"]:
        missing.append("Figure 1: no statistics tables in the manifest (the figure says so)")
    for name, benches in (("figure3", ("math",)), ("figure4", ("gsm8k", "math"))):
        if not any(r.in_table(name) and r.bench in benches and r.entry["samples_seen"] is not None for r in results):
            missing.append(f"{name.capitalize()}: no {'/'.join(benches)} evaluations with samples_seen listed "
                           f"for it (the figure says so)")
    for name, fig in (("figure1", figures.figure1(load_stats(manifest, source), caveat)),
                      ("figure3", figures.figure3(results, caveat)), ("figure4", figures.figure4(results, caveat))):
        outputs["Figures"] += figures.save_figure(fig, out_dir / name)
    index = out_dir / "index.md"
    write_text(render_index(manifest, outputs, missing, out_dir, caveat), index)
    log.info("report: %d evaluations -> %s", len(results), index)
    return {**outputs, "Index": [index]}


def run(args: argparse.Namespace) -> int:
    from trajfusion.report.settings import ReportSettings

    settings = ReportSettings.from_args(args)
    build_report(args.manifest, args.out_dir, args.paper_results, settings.bootstrap_samples, settings.seed,
                 cost_dir=args.cost_dir, cost_files=args.cost_files,
                 gpu_patterns=[list(pair) for pair in settings.gpus_per_job or ()])
    return 0


def register(sub) -> None:
    from trajfusion.report.settings import ReportSettings

    p = sub.add_parser("report", help="tables, figures, metrics and significance tests from evaluations",
                       description=__doc__.splitlines()[0])
    p.add_argument("--manifest", required=True,
                   help="report manifest JSON (schema: trajfusion.contracts.MANIFEST_SCHEMA)")
    p.add_argument("--out-dir", required=True, help="output directory, e.g. results/report")
    p.add_argument("--paper-results", default=None,
                   help="published numbers (default: the packaged resources/paper_results.yaml)")
    p.add_argument("--cost-files", nargs="*", default=None,
                   help="Snakemake benchmark files of the run's jobs, relative to --cost-dir; writes the cost table")
    p.add_argument("--cost-dir", default="results/cost", help="the folder of --cost-files (default: results/cost)")
    ReportSettings.add_arguments(p)
    p.set_defaults(func=run)

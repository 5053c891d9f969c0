"""The report's core: read the manifest, score every evaluation, write tables, figures, metrics,
cost and the index (``build_report``). The manifest format is in ``trajfusion.report``'s docstring."""


from __future__ import annotations

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
    manifest.setdefault("distill_runs", [])
    manifest.setdefault("provenance", {})
    manifest.setdefault("reflection_metrics", [])
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
                "mean_output_tokens": "tokens", "mean_reflections": "reflections per response",
                "mean_markers": "markers per response", "reflections_per_1k_tokens": "reflections per 1,000 tokens",
                "markers_per_1k_tokens": "markers per 1,000 tokens"}


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
                                        summary.get("strategy", entry.get("strategy")), entry["path"],
                                        summary.get("constructor"))))

    def fusion_for(result):
        e = result.entry
        found = [info for entry, info in infos if entry["pool"] == e["pool"] and entry["variant"] == e["variant"]
                 and e.get("teacher") in (None, entry["teacher"])]
        if len(found) > 1:
            raise InputError(f"{result.where}: {len(found)} fusion summaries match pool {e['pool']!r}, variant "
                             f"{e['variant']!r}; add the field 'teacher' to the eval entry")
        return found[0] if found else None

    return fusion_for


def load_trained_errors(source: str):
    """A lookup from an eval result to the mean #Err its model was trained on (``train_meta.json``
    of the run; None when the entry names none or the file predates the field)."""
    cache: dict[str, float | None] = {}

    def trained_errors_for(result) -> float | None:
        meta_path = result.entry.get("train_meta")
        if not meta_path:
            return None
        if meta_path not in cache:
            meta = read_json_file(meta_path, f"train metadata ({source}: {result.where})")
            value = meta.get("dataset", {}).get("mean_errors_trained") if isinstance(meta, dict) else None
            if value is not None and not isinstance(value, (int, float)):
                raise InputError(f"{meta_path}: field 'dataset.mean_errors_trained' {value!r} is not a number")
            cache[meta_path] = None if value is None else float(value)
        return cache[meta_path]

    return trained_errors_for


def load_stats(manifest: dict, source: str, teacher: str | None = None, pool: str | None = None,
               sources: tuple[str, ...] = ()) -> list:
    """Figure 1's panels: the manifest stats entries of ``teacher`` on ``pool`` (None: any),
    each restricted to the problems of ``sources`` (empty: all of them)."""
    from trajfusion.report.figures import StatsPanel

    entries = [(i, e) for i, e in enumerate(manifest["stats"]) if teacher in (None, e["teacher"])
               and pool in (None, e["pool"])]
    if manifest["stats"] and not entries:
        pairs = [(e["teacher"], e["pool"]) for e in manifest["stats"]]
        raise InputError(f"{source}: --figure1-teacher {teacher!r} and --figure1-pool {pool!r} match no statistics "
                         f"table; the manifest's (teacher, pool) pairs: {pairs}")
    panels = []
    for i, entry in entries:
        where = f"{source}: stats[{i}] ({entry['path']})"
        if not Path(entry["path"]).exists():
            raise InputError(f"{where}: file does not exist")
        stats = read(entry["path"], STATISTICS)
        present = sorted(stats["source"].dropna().unique())
        missing = [name for name in sources if name not in present]
        if missing:
            raise InputError(f"{where}: --figure1-sources {list(sources)}: no problems of {missing}; the table's "
                             f"sources: {present}")
        chosen = stats[stats["source"].isin(sources)].reset_index(drop=True) if sources else stats
        panels.append(StatsPanel(entry["teacher"], entry["pool"], tuple(sources) or tuple(present), chosen, where))
    return panels


# ------------------------------------------------------------------------------ index


def render_index(manifest: dict, outputs: dict[str, list[Path]], missing: list[str], out_dir: Path,
                 caveat: str | None, figure1: list | None = None) -> str:
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
              f"fusion summaries, {len(manifest['stats'])} statistics tables"]
    lines += [f"- Figure 1: {panel.title}, {len(panel.stats)} problems" for panel in figure1 or []]
    lines.append("")
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
                 cost_files: list[str] | None = None, gpu_patterns: list | None = None,
                 figure1_teacher: str | None = None, figure1_pool: str | None = None,
                 figure1_sources: tuple[str, ...] = ()) -> dict[str, list[Path]]:
    """Write every report output; returns the written paths by section. Figure 1 shows the
    statistics of ``figure1_teacher`` on ``figure1_pool`` (None: every one in the manifest),
    on the problems of ``figure1_sources`` (empty: all)."""
    from trajfusion.report import distill, figures, tables
    from trajfusion.report.graders import write_grader_parity
    from trajfusion.report.paper import load_paper_results
    from trajfusion.report.reflection import build_reflection_table

    source, out_dir = str(manifest_path), Path(out_dir)
    manifest = load_manifest(manifest_path)
    paper = load_paper_results(paper_results)
    check_paper_backbones(manifest, paper, source)
    caveat = SMOKE_CAVEAT if manifest["smoke_test"] else None
    results = evaluate_entries(manifest, paper, n_resamples, seed)
    inputs = tables.Inputs(results, paper, load_fusion(manifest, source), load_trained_errors(source))

    outputs: dict[str, list[Path]] = {"Tables": [], "Significance": [], "Figures": [], "Distillation": [],
                                      "Metrics": [], "Cost": []}
    for spec in tables.TABLES:
        outputs["Tables"] += tables.write_table(tables.build_table(spec, inputs), out_dir, caveat)
    for name in tables.results_table_names(results):
        outputs["Tables"] += tables.write_table(tables.build_results_table(name, inputs), out_dir, caveat)
    for spec in manifest["reflection_metrics"]:
        table = build_reflection_table(spec["experiment"], spec["pass_k"], results, n_resamples, seed)
        outputs["Tables"] += tables.write_table(table, out_dir, caveat)
    outputs["Significance"] += tables.write_table(tables.build_significance(inputs, n_resamples, seed), out_dir,
                                                  caveat)
    if distill.has_distilled(inputs):
        outputs["Significance"] += tables.write_table(distill.build_distill_significance(inputs, n_resamples, seed),
                                                      out_dir, caveat)
    for experiment, runs in distill.load_runs(manifest, source).items():
        table = distill.diagnostics_table(experiment, runs)
        outputs["Distillation"] += figures.save_figure(distill.diagnostics_figure(experiment, runs, caveat),
                                                       out_dir / table.name)
        outputs["Distillation"] += tables.write_table(table, out_dir, caveat)
    metrics_path = out_dir / "metrics.csv"
    write_text(metrics_csv(inputs.metrics, caveat).to_csv(index=False, lineterminator="\n"), metrics_path)
    outputs["Metrics"].append(metrics_path)
    if cost_files is not None:
        outputs["Cost"] += write_cost(cost_dir, cost_files, gpu_patterns or [], out_dir, caveat)
    outputs["Graders"] = write_grader_parity(manifest["evals"], out_dir, caveat)

    missing = []
    if not manifest["stats"]:
        missing.append("Figure 1: no statistics tables in the manifest (the figure says so)")
    for name, benches in (("figure3", ("math",)), ("figure4", ("gsm8k", "math"))):
        if not any(r.in_table(name) and r.bench in benches and r.entry["samples_seen"] is not None for r in results):
            missing.append(f"{name.capitalize()}: no {'/'.join(benches)} evaluations with samples_seen listed "
                           f"for it (the figure says so)")
    figure1 = load_stats(manifest, source, figure1_teacher, figure1_pool, tuple(figure1_sources))
    for name, fig in (("figure1", figures.figure1(figure1, caveat)),
                      ("figure3", figures.figure3(results, caveat)), ("figure4", figures.figure4(results, caveat))):
        outputs["Figures"] += figures.save_figure(fig, out_dir / name)
    index = out_dir / "index.md"
    write_text(render_index(manifest, outputs, missing, out_dir, caveat, figure1), index)
    log.info("report: %d evaluations -> %s", len(results), index)
    return {**outputs, "Index": [index]}

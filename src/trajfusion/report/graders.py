"""Grader parity: how much the grader moves each score.

Every verdict table holds the verdicts of the grader the run chose (``grader``) and of the
other one (``other_correct``). Per benchmark x run (one manifest evaluation per verdict
table), ``graders.md`` and ``graders.csv`` give the responses the two graders judge
differently and the accuracy over all samples (avg@k) under each; ``graders.md`` also lists
the first few disagreements (problem id, sample, each grader's answer, the gold, each
grader's verdict).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from trajfusion.contracts import VERDICTS, read
from trajfusion.io import write_text
from trajfusion.report.tables import page_header
from trajfusion.vocabulary import GRADERS

GRADER_COLUMNS = ("problem_id", "sample_idx", "gold", "answer", "correct", "grader", "other_answer", "other_correct")
RUN_COLUMNS = ("experiment", "backbone", "variant", "checkpoint", "benchmark", "path")
SUMMARY_COLUMNS = (*RUN_COLUMNS, "grader", "other_grader", "n_responses", "n_disagree", "only_grader_correct",
                   "only_other_correct", "accuracy", "other_accuracy", "accuracy_diff")
EXAMPLE_COLUMNS = ("problem_id", "sample_idx", "answer", "other_answer", "gold", "correct", "other_correct")
EXAMPLES_PER_RUN = 3


def other_grader_name(grader: str) -> str:
    return next(name for name in GRADERS if name != grader)


def disagreements(df: pd.DataFrame) -> pd.DataFrame:
    """The responses whose two verdicts differ, sorted by ``(problem_id, sample_idx)``."""
    differ = df[df["correct"] != df["other_correct"]]
    return differ.sort_values(["problem_id", "sample_idx"], kind="mergesort").reset_index(drop=True)


def summarize_run(entry: dict, df: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """One summary row (accuracies in percent) and the run's first disagreements."""
    grader = str(df["grader"].iloc[0]) if len(df) else GRADERS[0]
    differ = disagreements(df)
    accuracy, other_accuracy = 100.0 * df["correct"].mean(), 100.0 * df["other_correct"].mean()
    row = {**{name: entry[name] for name in RUN_COLUMNS}, "grader": grader,
           "other_grader": other_grader_name(grader), "n_responses": len(df), "n_disagree": len(differ),
           "only_grader_correct": int(differ["correct"].sum()),
           "only_other_correct": int(differ["other_correct"].sum()),
           "accuracy": accuracy, "other_accuracy": other_accuracy, "accuracy_diff": other_accuracy - accuracy}
    return row, differ.loc[:, list(EXAMPLE_COLUMNS)].head(EXAMPLES_PER_RUN)


def grader_parity(evals: list[dict]) -> list[tuple[dict, pd.DataFrame]]:
    """``summarize_run`` of each distinct verdict table of the manifest's evaluations."""
    runs, seen = [], set()
    for entry in evals:
        if entry["path"] in seen:
            continue
        seen.add(entry["path"])
        runs.append(summarize_run(entry, read(entry["path"], VERDICTS, columns=GRADER_COLUMNS)))
    return runs


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "—"
    return "`" + str(value).replace("|", "\\|").replace("`", "'") + "`"


def _verdict(correct: bool) -> str:
    return "correct" if correct else "incorrect"


def render_markdown(runs: list[tuple[dict, pd.DataFrame]], caveat: str | None) -> str:
    lines = page_header("Grader parity", caveat)
    lines += ["Every response is graded by both graders: the run's choice (`grader`, whose verdicts all other "
              "tables use) and the other one. Accuracy is over all samples (avg@k), in percent; Δ is the other "
              "grader's minus the run's.", "",
              "| experiment | backbone | variant | checkpoint | benchmark | grader | other | responses | disagree "
              "| only grader correct | only other correct | accuracy | other accuracy | Δ |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row, _ in runs:
        lines.append(f"| {row['experiment']} | {row['backbone']} | {row['variant']} | {row['checkpoint']} | "
                     f"{row['benchmark']} | {row['grader']} | {row['other_grader']} | {row['n_responses']} | "
                     f"{row['n_disagree']} | {row['only_grader_correct']} | {row['only_other_correct']} | "
                     f"{row['accuracy']:.1f} | {row['other_accuracy']:.1f} | {row['accuracy_diff']:+.1f} |")
    for row, examples in runs:
        if examples.empty:
            continue
        lines += ["", f"## {row['benchmark']}: {row['experiment']} / {row['backbone']} / {row['variant']} / "
                  f"{row['checkpoint']}", "",
                  f"First {len(examples)} of {row['n_disagree']} disagreements.", "",
                  f"| problem | sample | {row['grader']} answer | {row['other_grader']} answer | gold | "
                  f"{row['grader']} | {row['other_grader']} |", "|---|---|---|---|---|---|---|"]
        for ex in examples.itertuples(index=False):
            lines.append(f"| {_cell(ex.problem_id)} | {ex.sample_idx} | {_cell(ex.answer)} | {_cell(ex.other_answer)} "
                         f"| {_cell(ex.gold)} | {_verdict(ex.correct)} | {_verdict(ex.other_correct)} |")
    return "\n".join(lines) + "\n"


def write_grader_parity(evals: list[dict], out_dir: Path, caveat: str | None) -> list[Path]:
    """Write ``graders.md`` and ``graders.csv``; returns their paths."""
    runs = grader_parity(evals)
    md_path, csv_path = out_dir / "graders.md", out_dir / "graders.csv"
    write_text(render_markdown(runs, caveat), md_path)
    summary = pd.DataFrame([row for row, _ in runs], columns=list(SUMMARY_COLUMNS))
    if caveat:
        summary = summary.assign(caveat=caveat)
    write_text(summary.to_csv(index=False, lineterminator="\n", float_format="%.4f"), csv_path)
    return [md_path, csv_path]

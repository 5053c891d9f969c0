"""Hang-proof verification of a samples table: extracted answers against gold answers.

``verify_frame`` turns the table into one ``ProblemTask`` per problem (``tasks``), runs
them on a ``ProblemPool`` of worker processes (``pool``; answer equivalence in
``equivalence``) and writes each response's answer, verdict, status and answer group back
into a copy of the table. A grader (``graders``) extracts the answers, normalizes the gold
and compares them: ``math_verify`` by default, ``qwen25_math`` on request.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from trajfusion.io import InputError
from trajfusion.verify.equivalence import Judge
from trajfusion.verify.filters import DEFAULT_ANSWER_FORMAT, resolve_filters
from trajfusion.verify.graders import MATH_VERIFY, Grader
from trajfusion.verify.tasks import FAILURES, ProblemPool, ProblemTask, group_representatives

logger = logging.getLogger(__name__)

REQUIRED = ("problem_id", "gold", "response")


def verify_frame(df: pd.DataFrame, workers: int = 2, timeout: float = 5.0,
                 filters: Mapping[str, Any] | None = None, *, answer_format: str = DEFAULT_ANSWER_FORMAT,
                 judge: Judge | None = None, grader: Grader = MATH_VERIFY, progress: bool = False,
                 source: str = "input",
                 chunk_rows: int = 64) -> pd.DataFrame:
    """Verify every response of ``df`` (``problem_id, gold, response`` [, ``finish_reason``,
    ``answer_type``]); returns a copy with ``answer, correct, status, answer_group`` added.

    ``workers >= 1`` runs the watchdog pool; ``workers == 0`` runs inline in this process
    (debugging: soft deadlines only, and only in the main thread). ``grader``
    (``trajfusion.verify.graders``) extracts, normalizes and compares; ``judge`` replaces its
    comparison (a picklable module-level function; for fault-injection tests).
    ``source`` names the input in error messages. ``answer_format`` is the teacher-side answer
    rule of the ``no_answer`` filter (``trajfusion.verify.filters``); evaluation keeps the
    default, lenient one.
    """
    try:
        settings = resolve_filters(filters, answer_format)
    except ValueError as exc:
        raise InputError(f"{source}: filters: {exc}") from None
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise InputError(f"{source}: missing required column(s) {missing}; has {list(df.columns)}")
    workers = min(max(workers, 0), len(df))
    chunk = max(1, min(chunk_rows, len(df) // (4 * max(workers, 1))))
    from tqdm import tqdm

    # The forkserver starts (and imports math-verify) while the tasks are built.
    with ProblemPool(workers, timeout, settings, judge, chunk_rows=chunk, grader=grader) as pool:
        tasks, rows_of = _build_tasks(df, source, grader.normalize_gold)
        with tqdm(total=len(df), unit="resp", desc="verify", disable=not progress) as bar:
            pool.run(tasks, lambda task: bar.update(len(task.responses)))
    out = _assemble(df, tasks, rows_of)
    logger.info("verified %d responses: %s", len(out), dict(sorted(Counter(out["status"]).items())))
    return out


def _build_tasks(df: pd.DataFrame, source: str,
                 normalize_gold: Callable[[str], str]) -> tuple[list[ProblemTask], list[list[int]]]:
    finish = df["finish_reason"].tolist() if "finish_reason" in df.columns else [None] * len(df)
    hints = df["answer_type"].tolist() if "answer_type" in df.columns else [None] * len(df)
    tasks: dict[str, ProblemTask] = {}
    rows_of: dict[str, list[int]] = {}
    raw_gold: dict[str, str] = {}
    for row, (pid, gold, response) in enumerate(zip(df["problem_id"], df["gold"], df["response"])):
        _check_text(source, row, "problem_id", pid)
        _check_text(source, row, "gold", gold)
        _check_text(source, row, "response", response)
        task = tasks.get(pid)
        if task is None:
            hint = hints[row] if isinstance(hints[row], str) else None
            task = tasks[pid] = ProblemTask(len(tasks), normalize_gold(gold), hint, [], [])
            raw_gold[pid] = gold
            rows_of[pid] = []
        elif gold != raw_gold[pid]:
            raise InputError(f"{source}: row {row}: field 'gold' is {gold!r} but earlier rows of problem "
                             f"{pid!r} have {raw_gold[pid]!r}")
        task.responses.append(response)
        task.finish_reasons.append(finish[row] if isinstance(finish[row], str) else None)
        rows_of[pid].append(row)
    return list(tasks.values()), list(rows_of.values())


def _check_text(source: str, row: int, name: str, value) -> None:
    if not isinstance(value, str):
        raise InputError(f"{source}: row {row}: field {name!r} must be a string, got {value!r}")


def _assemble(df: pd.DataFrame, tasks: list[ProblemTask], rows_of: list[list[int]]) -> pd.DataFrame:
    n = len(df)
    answer: list[str | None] = [None] * n
    correct = [False] * n
    status = [""] * n
    group: list[str | None] = [None] * n
    for task, rows in zip(tasks, rows_of):
        representative = group_representatives(task)
        for row, (extracted, reason) in zip(rows, task.screened):
            answer[row] = extracted
            if reason is not None:
                status[row] = reason if reason in FAILURES else f"filtered:{reason}"
                continue
            verdict = task.verdicts[extracted]
            status[row] = verdict if verdict in FAILURES else "ok"
            correct[row] = verdict is True
            if verdict is False:
                group[row] = representative[extracted]
    # String dtype, so that an all-null column is still written as Parquet strings.
    out = df.copy()
    out["answer"] = pd.Series(answer, index=df.index, dtype="str")
    out["correct"] = pd.Series(correct, index=df.index, dtype=bool)
    out["status"] = pd.Series(status, index=df.index, dtype="str")
    out["answer_group"] = pd.Series(group, index=df.index, dtype="str")
    return out

"""Per-problem verification: every response checked against the gold, incorrect answers grouped.

A problem's task runs a fixed sequence of *steps*:

* ``("screen",)``          extract the answer of every response and apply the filters;
* ``("gold",)``            parse the gold once (only if some answer needs math-verify);
* ``("answer", a)``        judge each DISTINCT extracted answer ``a`` once;
* ``("pair", a, b)``       for incorrect answers ``a < b`` not yet in one group, ask whether
                           they are equivalent (union-find merges them into one group).

The steps call the grader's parts (``graders``: extraction, cheap verdict, judge, gold
parse; math-verify by default). Each step runs under a soft deadline of ``timeout`` seconds (``run_with_deadline``;
math-verify's own signal-based timeouts are off so they cannot cancel ours) and its
result is recorded in the task. ``ProblemPool`` runs tasks on a ``WatchdogPool``: every
step result streams back to the parent's copy of the task, so when a worker hangs or dies
the parent records the step it was on (the first of ``pending_steps``, which worker and
parent derive from the same recorded state) as ``timeout`` or ``error`` and the rest of
the task runs again from there: only that step is lost. Results do not depend on
scheduling, except where a timeout depends on machine load.

Incorrect answers are grouped with union-find over the pairs judged equivalent; a pair is
judged with the lexicographically smaller answer as the reference, and a group's
representative is its most frequent answer (ties: the smallest string).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from trajfusion.verify.equivalence import Judge, ParseCache, quiet_math_verify
from trajfusion.verify.filters import screen_response
from trajfusion.verify.graders import MATH_VERIFY, Grader
from trajfusion.verify.pool import ERROR, TIMEOUT, Lost, WatchdogPool, run_with_deadline

logger = logging.getLogger(__name__)

FAILURES = (TIMEOUT, ERROR)
# Imported once by the forkserver, so that every worker forks with them imported.
WORKER_PRELOAD = ("math_verify", "trajfusion.verify.tasks")


@dataclass
class ProblemTask:
    """One problem's responses and every step result recorded so far."""

    tid: int
    gold: str
    hint: str | None
    responses: list[str]
    finish_reasons: list[str | None]
    screened: list[tuple[str | None, str | None]] | None = None
    gold_status: str | None = None
    verdicts: dict[str, Any] = field(default_factory=dict)
    pairs: dict[tuple[str, str], bool] = field(default_factory=dict)

    def kept_answers(self) -> list[str]:
        """Sorted distinct answers of responses that passed the filters."""
        return sorted({answer for answer, reason in self.screened or () if reason is None})

    def wrong_answers(self) -> list[str]:
        return [a for a in self.kept_answers() if self.verdicts.get(a) is False]


def pending_steps(task: ProblemTask, grader: Grader = MATH_VERIFY) -> Iterator[tuple]:
    """The steps still to run, in their fixed order; reads ``task`` lazily, so results
    recorded between iterations shape the later steps."""
    if task.screened is None:
        yield ("screen",)
    answers = task.kept_answers()
    if grader.parse_gold is not None and task.gold_status is None and any(
            a not in task.verdicts and grader.cheap(task.gold, a, task.hint) is None for a in answers):
        yield ("gold",)
    for answer in answers:
        if answer not in task.verdicts:
            yield ("answer", answer)
    wrong = task.wrong_answers()
    groups = _UnionFind(wrong)
    for pair, same in task.pairs.items():
        if same:
            groups.union(*pair)
    for i, a in enumerate(wrong):
        for b in wrong[i + 1:]:
            if (a, b) not in task.pairs and groups.find(a) != groups.find(b):
                yield ("pair", a, b)
                if task.pairs.get((a, b)):
                    groups.union(a, b)


def record(task: ProblemTask, step: tuple, value: Any) -> None:
    kind = step[0]
    if kind == "screen":
        task.screened = [(None, value)] * len(task.responses) if value in FAILURES else value
    elif kind == "gold":
        task.gold_status = value
    elif kind == "answer":
        task.verdicts[step[1]] = value
    else:
        task.pairs[(step[1], step[2])] = value is True


def run_step(task: ProblemTask, step: tuple, settings: Mapping[str, Any], grader: Grader,
             cache: ParseCache) -> Any:
    kind = step[0]
    if kind == "screen":
        return [screen_response(r, f, settings, grader.extract) for r, f in zip(task.responses, task.finish_reasons)]
    if kind == "gold":
        grader.parse_gold(task.gold, cache)
        return "ok"
    if kind == "answer":
        verdict = grader.cheap(task.gold, step[1], task.hint)
        if verdict is not None:
            return verdict
        if task.gold_status in FAILURES:
            return task.gold_status
        return bool(grader.judge(task.gold, step[1], task.hint, cache))
    verdict = grader.cheap(step[1], step[2], None)
    return verdict if verdict is not None else bool(grader.judge(step[1], step[2], None, cache))


class _UnionFind:
    def __init__(self, items) -> None:
        self.parent = {item: item for item in items}

    def find(self, item):
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, a, b) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)



def group_representatives(task: ProblemTask) -> dict[str, str]:
    """Map each incorrect answer to its group's most frequent answer (ties: smallest string)."""
    wrong = task.wrong_answers()
    groups = _UnionFind(wrong)
    for pair, same in task.pairs.items():
        if same:
            groups.union(*pair)
    counts = Counter(a for a, reason in task.screened if reason is None and task.verdicts.get(a) is False)
    members: dict[str, list[str]] = {}
    for a in wrong:
        members.setdefault(groups.find(a), []).append(a)
    representative = {}
    for group in members.values():
        best = min(group, key=lambda a: (-counts[a], a))
        representative.update({a: best for a in group})
    return representative


@dataclass
class TaskRunner:
    """Runs a task's pending steps, reporting each result; the pool's function. Each worker
    gets its own copy, whose parse cache serves all the problems that worker verifies."""

    settings: Mapping[str, Any]
    grader: Grader
    timeout: float | None
    cache: ParseCache = field(default_factory=ParseCache)

    def __call__(self, task: ProblemTask, report: Callable[[Any], None]) -> None:
        quiet_math_verify()  # in this process, which may be a fresh worker
        for step in pending_steps(task, self.grader):
            value = run_with_deadline(lambda step=step: run_step(task, step, self.settings, self.grader, self.cache),
                                      self.timeout)
            record(task, step, value)
            report((step, value))


class ProblemPool:
    """Runs ``ProblemTask``s in ``workers`` processes (0: inline) with ``timeout`` seconds
    per step; a worker silent for ``timeout + margin`` (default margin: 2 s + 50 %) is
    replaced. Problems travel in chunks of about ``chunk_rows`` responses. ``grader`` extracts
    and judges (``judge``, if given, replaces its judge). Use as a context manager to start the
    forkserver early."""

    def __init__(self, workers: int, timeout: float, settings: Mapping[str, Any], judge: Judge | None = None,
                 chunk_rows: int = 64, margin: float | None = None, grader: Grader = MATH_VERIFY) -> None:
        self.chunk_rows = chunk_rows
        self.grader = grader if judge is None else replace(grader, judge=judge)
        self.pool = WatchdogPool(TaskRunner(dict(settings), self.grader, timeout), workers,
                                 silence_limit=timeout + (margin if margin is not None else 2.0 + 0.5 * timeout),
                                 preload=WORKER_PRELOAD)
        self.incidents = self.pool.incidents

    def __enter__(self) -> ProblemPool:
        self.pool.start()
        return self

    def __exit__(self, *exc) -> None:
        self.pool.close()

    def run(self, tasks: list[ProblemTask], on_done: Callable[[ProblemTask], None]) -> None:
        """Run every task; ``on_done(task)`` as each finishes."""
        rows = sum(len(task.responses) for task in tasks)
        chunk_size = max(1, round(self.chunk_rows * len(tasks) / rows)) if rows else 1

        def on_progress(index: int, update: tuple) -> None:
            record(tasks[index], *update)  # inline, the task is already recorded: harmless again

        def on_lost(index: int, lost: Lost) -> ProblemTask | None:
            task = tasks[index]
            step = next(pending_steps(task, self.grader), None)
            if step is None:
                return None
            record(task, step, lost.status)
            logger.warning("%s: problem task %d, step %s -> %s", lost.why, task.tid, _describe(step), lost.status)
            return task

        self.pool.run(tasks, lambda index, result: on_done(tasks[index]), chunk_size=chunk_size,
                      on_progress=on_progress, on_lost=on_lost)


def _describe(step: tuple) -> str:
    return " ".join(s if len(s) < 80 else s[:77] + "..." for s in step)

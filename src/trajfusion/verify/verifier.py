"""Hang-proof verification of extracted answers against gold answers with math-verify.

Work is organised per problem. A problem's task runs a fixed sequence of *steps*:

* ``("screen",)``          extract the answer of every response and apply the filters;
* ``("gold",)``            parse the gold once (only if some answer needs math-verify);
* ``("answer", a)``        judge each DISTINCT extracted answer ``a`` once;
* ``("pair", a, b)``       for incorrect answers ``a < b`` not yet in one group, ask whether
                           they are equivalent (union-find merges them into one group).

Each step runs under a soft deadline of ``timeout`` seconds (``signal.setitimer`` in the
worker's main thread; math-verify's own signal-based timeouts are switched off so they
cannot cancel ours). Problems travel to a pool of worker processes in chunks of about
``chunk_rows`` responses, and every step result streams back. The parent kills a worker
that sends nothing for ``timeout + margin`` seconds (margin: 2 s + 50 %; the worker is
stuck where signals cannot reach, e.g. in C code), records its current step as
``timeout``, starts a fresh worker and re-queues the rest of the chunk with every finished
step kept, so only the stuck step is lost. A worker that dies (segfault, ``os._exit``)
costs its current step an ``error``. Worker and parent derive "the current step" from
the same recorded state (``pending_steps``), so workers need not announce step starts.
Results do not depend on scheduling, except where a timeout depends on machine load.

Incorrect answers are grouped with union-find over the pairs judged equivalent; a pair is
judged with the lexicographically smaller answer as the reference, and a group's
representative is its most frequent answer (ties: the smallest string). The gold is
normalized with ``normalize_answer`` like the extracted answers.

Equivalence (``cheap_verdict`` then the ``judge``, math-verify by default), in order:

1. identical normalized strings are equal;
2. a reference that is a truth value (true/false/yes/no, any case) matches a candidate
   with the same truth value ("yes" counts as "True");
3. a reference option ``(a)``..``(e)`` matches ``(a)``, ``a``, ``A`` or ``(A)``;
4. two plain integers compare as integers (AIME ``025`` equals ``25``); more generally two
   exact numeric literals (signed integers, ``a/b``, ``\\frac{a}{b}``, ``\\frac12``,
   decimals) compare as exact rationals: equal values are equal, and different values
   are different unless a decimal is involved (math-verify rounds decimals, so
   ``0.3333333`` equals ``1/3``: that case goes on to rule 6);
5. with ``answer_type == "list"`` and a bracketed reference ``[x, y]`` (TheoremQA), the
   candidate (bracketed by ``[]``, ``()`` or nothing) must match element by element;
6. otherwise ``math_verify.verify(parse(gold), parse(pred))`` on ``\\boxed{...}``-wrapped
   strings (fractions, radicals, pi, intervals, tuples, sets, percentages, units,
   degrees, thousands separators are math-verify's business). Guard: math-verify
   compares numbers after rounding, so ``1/2004!`` "equals" ``1/2006!``. When it says
   equal and both sides are exact rational constants written without decimals or
   percent signs (integers, fractions, powers with integer exponents, factorials, within
   a size budget), the exact rational values decide. Shortcut: when both sides parse
   to finite constants that differ by more than 1e-4 (relative), they are unequal
   without asking math-verify (``_numerically_distinct``), as its rounding to 6
   decimals cannot make them equal; this skips its costly ``simplify`` of the
   difference, the bulk of the work for wrong answers.

Parses are cached per worker, across problems, since common answers recur.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import multiprocessing.connection
import re
import signal
import threading
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Iterator, Mapping

import pandas as pd

from trajfusion.io import InputError
from trajfusion.verify.extract import normalize_answer
from trajfusion.verify.filters import resolve_filters, screen_response

logger = logging.getLogger(__name__)

TIMEOUT = "timeout"
ERROR = "error"
FAILURES = (TIMEOUT, ERROR)
STARTUP_TIMEOUT = 120.0
MAX_STARTUP_FAILURES = 3

Judge = Callable[[str, str, "str | None", "ParseCache"], bool]


# --- equivalence rules ---------------------------------------------------------------

_INT_RE = re.compile(r"[+-]?\d{1,1000}")
_TRUTH = {"true": True, "yes": True, "false": False, "no": False}
_OPTION_RE = re.compile(r"\(([a-e])\)", re.IGNORECASE)
_LOOSE_OPTION_RE = re.compile(r"\(?([a-e])\)?", re.IGNORECASE)


def cheap_verdict(reference: str, candidate: str, hint: str | None) -> bool | None:
    """Rules 1-4 of the module docstring; None when math-verify must decide."""
    if reference == candidate:
        return True
    truth = _TRUTH.get(reference.lower())
    if truth is not None:
        return _TRUTH.get(candidate.lower()) is truth
    option = _OPTION_RE.fullmatch(reference)
    if option:
        loose = _LOOSE_OPTION_RE.fullmatch(candidate)
        return bool(loose) and loose.group(1).lower() == option.group(1).lower()
    if _INT_RE.fullmatch(reference) and _INT_RE.fullmatch(candidate):
        return int(reference) == int(candidate)
    return _literal_verdict(reference, candidate)


_LITERAL_RES = (
    re.compile(r"(?P<sign>[+-]?)(?P<num>\d{1,100})/(?P<den>\d{1,100})"),
    re.compile(r"(?P<sign>[+-]?)\\frac\{(?P<num>[+-]?\d{1,100})\}\{(?P<den>\d{1,100})\}"),
    re.compile(r"(?P<sign>[+-]?)\\frac(?P<num>\d)(?P<den>\d)"),
    re.compile(r"(?P<sign>[+-]?)(?P<dec>\d{0,100}\.\d{1,100}|\d{1,100}\.?)"),
)


def exact_literal(text: str) -> tuple[Fraction, bool] | None:
    """``(value, is_decimal)`` of a plain numeric literal (rule 4), else None."""
    for pattern in _LITERAL_RES:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        sign = -1 if match["sign"] == "-" else 1
        if "dec" in pattern.groupindex:
            return sign * Fraction(match["dec"].rstrip(".") or "0"), "." in match["dec"]
        if int(match["den"]) == 0:
            return None
        return sign * Fraction(int(match["num"]), int(match["den"])), False
    return None


def _literal_verdict(reference: str, candidate: str) -> bool | None:
    left, right = exact_literal(reference), exact_literal(candidate)
    if left is None or right is None:
        return None
    if left[0] == right[0]:
        return True
    return None if left[1] or right[1] else False


class ParseCache:
    """math-verify parses of ``\\boxed{s}``, each string parsed at most once while it stays
    among the ``capacity`` most recently used (answers such as ``2`` or ``\\frac{1}{2}``
    recur across problems, so one cache serves a worker's whole run). A parse cut short
    by a deadline raises before anything is stored."""

    def __init__(self, capacity: int = 4096) -> None:
        self._parsed: OrderedDict[str, list] = OrderedDict()
        self.capacity = capacity

    def parse(self, text: str) -> list:
        parsed = self._parsed.get(text)
        if parsed is None:
            from math_verify import parse

            parsed = parse("\\boxed{" + text + "}", parsing_timeout=None)
            self._parsed[text] = parsed
            if len(self._parsed) > self.capacity:
                self._parsed.popitem(last=False)
        else:
            self._parsed.move_to_end(text)
        return parsed


def math_verify_judge(reference: str, candidate: str, hint: str | None, cache: ParseCache) -> bool:
    """Rules 5-6 of the module docstring (the default judge)."""
    if hint == "list" and reference.startswith("[") and reference.endswith("]"):
        return _list_equal(reference, candidate, cache)
    return _sympy_equal(reference, candidate, cache)


def _sympy_equal(reference: str, candidate: str, cache: ParseCache) -> bool:
    from math_verify import verify

    gold, pred = cache.parse(reference), cache.parse(candidate)
    if _numerically_distinct(reference, candidate, gold, pred):
        return False
    if not verify(gold, pred, timeout_seconds=None):
        return False
    return not _exact_values_differ(reference, candidate, gold, pred)


def _list_equal(reference: str, candidate: str, cache: ParseCache) -> bool:
    expected = split_top_level(reference[1:-1])
    if candidate[:1] + candidate[-1:] in ("[]", "()"):
        candidate = candidate[1:-1]
    actual = split_top_level(candidate)
    if len(expected) != len(actual):
        return False
    for ref, cand in zip(expected, actual):
        verdict = cheap_verdict(ref, cand, None)
        if not (verdict if verdict is not None else _sympy_equal(ref, cand, cache)):
            return False
    return True


def split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets and braces: ``(1,2),3`` -> ``["(1,2)", "3"]``."""
    items, depth, start = [], 0, 0
    for pos, char in enumerate(text):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            items.append(text[start:pos].strip())
            start = pos + 1
    items.append(text[start:].strip())
    return items


_DISTINCT_TOLERANCE = 1e-4
_SPECIAL_UNITS = ("%", "\\circ", "\\text", "\\mathrm", "\\pm", "\\mp")


def _numerically_distinct(reference: str, candidate: str, gold: list, pred: list) -> bool:
    """True when every parse of both sides is a finite number (no symbols) and every pair
    of values differs by more than 1e-4 (relative, floor 1): math-verify, which compares
    numbers rounded to 6 decimals, cannot find them equal, and its slow ``simplify`` of
    the difference is skipped. Percent, degree, text and +- spellings carry their own
    comparison rules in math-verify, so they always go to math-verify."""
    if any(unit in text for text in (reference, candidate) for unit in _SPECIAL_UNITS):
        return False
    left, right = _numeric_values(gold), _numeric_values(pred)
    if not left or not right:
        return False
    return all(abs(a - b) > _DISTINCT_TOLERANCE * max(1.0, abs(a), abs(b)) for a in left for b in right)


def _numeric_values(parsed: list) -> list[complex] | None:
    """The complex value of every sympy parse, or None if one is not a finite constant."""
    from sympy import Basic, Expr

    values = []
    for item in parsed:
        if not isinstance(item, Basic):
            continue
        if not isinstance(item, Expr) or item.free_symbols:
            return None
        try:
            value = complex(item.evalf(30))
        except (TypeError, ValueError, OverflowError, ArithmeticError):
            return None
        if not (math.isfinite(value.real) and math.isfinite(value.imag)):
            return None
        values.append(value)
    return values


_EXACT_BITS = 1 << 20
_EXACT_DEPTH = 64


def _exact_values_differ(reference: str, candidate: str, gold: list, pred: list) -> bool:
    """True when both sides are exact rational constants with different values."""
    if any(mark in text for text in (reference, candidate) for mark in ".%"):
        return False
    left, right = _first_expr(gold), _first_expr(pred)
    if left is None or right is None:
        return False
    a, b = exact_rational(left), exact_rational(right)
    return a is not None and b is not None and a != b


def _first_expr(parsed: list):
    from sympy import Basic

    return next((item for item in parsed if isinstance(item, Basic)), None)


def exact_rational(expr, depth: int = 0) -> Fraction | None:
    """Exact value of a constant built from integers, fractions, +, *, integer powers and
    factorials; None for anything else or beyond the size budget."""
    from sympy import UnevaluatedExpr, factorial

    if depth > _EXACT_DEPTH:
        return None
    if expr.is_Rational:
        return Fraction(int(expr.p), int(expr.q))
    if isinstance(expr, UnevaluatedExpr):
        return exact_rational(expr.args[0], depth + 1)
    if expr.is_Add or expr.is_Mul:
        values = [exact_rational(arg, depth + 1) for arg in expr.args]
        if any(v is None for v in values):
            return None
        return sum(values, Fraction(0)) if expr.is_Add else math.prod(values, start=Fraction(1))
    if expr.is_Pow:
        return _exact_power(expr, depth)
    if isinstance(expr, factorial):
        n = exact_rational(expr.args[0], depth + 1)
        if n is None or n.denominator != 1 or not 0 <= n <= 20000:
            return None
        return Fraction(math.factorial(int(n)))
    return None


def _exact_power(expr, depth: int) -> Fraction | None:
    base, exponent = (exact_rational(arg, depth + 1) for arg in expr.args)
    if base is None or exponent is None or exponent.denominator != 1:
        return None
    if base == 0 and exponent < 0:
        return None
    size = max(base.numerator.bit_length(), base.denominator.bit_length()) * abs(exponent.numerator)
    if size > _EXACT_BITS:
        return None
    return base ** int(exponent)


# --- per-problem task state ----------------------------------------------------------

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


def pending_steps(task: ProblemTask) -> Iterator[tuple]:
    """The steps still to run, in their fixed order; reads ``task`` lazily, so results
    recorded between iterations shape the later steps."""
    if task.screened is None:
        yield ("screen",)
    answers = task.kept_answers()
    if task.gold_status is None and any(
            a not in task.verdicts and cheap_verdict(task.gold, a, task.hint) is None for a in answers):
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


def run_step(task: ProblemTask, step: tuple, settings: Mapping[str, Any], judge: Judge,
             cache: ParseCache) -> Any:
    kind = step[0]
    if kind == "screen":
        return [screen_response(r, f, settings) for r, f in zip(task.responses, task.finish_reasons)]
    if kind == "gold":
        cache.parse(task.gold)
        return "ok"
    if kind == "answer":
        verdict = cheap_verdict(task.gold, step[1], task.hint)
        if verdict is not None:
            return verdict
        if task.gold_status in FAILURES:
            return task.gold_status
        return bool(judge(task.gold, step[1], task.hint, cache))
    verdict = cheap_verdict(step[1], step[2], None)
    return verdict if verdict is not None else bool(judge(step[1], step[2], None, cache))


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


# --- soft deadline -------------------------------------------------------------------

class _Deadline(BaseException):
    """Raised by SIGALRM; a BaseException so that ``except Exception`` cannot swallow it."""


def _raise_deadline(signum, frame):
    raise _Deadline()


def run_with_deadline(fn: Callable[[], Any], seconds: float | None) -> Any:
    """``fn()``, or TIMEOUT after ``seconds`` (None: no deadline), or ERROR if it raises."""
    try:
        try:
            if seconds:
                signal.setitimer(signal.ITIMER_REAL, seconds)
            return fn()
        finally:
            if seconds:
                signal.setitimer(signal.ITIMER_REAL, 0)
    except _Deadline:
        return TIMEOUT
    except Exception:
        logger.debug("verification step failed", exc_info=True)
        return ERROR


def _quiet_math_verify() -> None:
    # With its own timeouts off, math-verify warns once per process; ours are in place.
    logging.getLogger("math_verify").setLevel(logging.ERROR)


def _run_task(task: ProblemTask, settings, judge, timeout, cache: ParseCache, report=None) -> None:
    for step in pending_steps(task):
        value = run_with_deadline(lambda: run_step(task, step, settings, judge, cache), timeout)
        record(task, step, value)
        if report is not None:
            report((task.tid, step, value))


# --- worker pool with watchdog -------------------------------------------------------

def _worker_main(conn, settings, judge, timeout) -> None:
    signal.signal(signal.SIGALRM, _raise_deadline)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    _quiet_math_verify()
    import math_verify  # noqa: F401  (import before reporting ready)

    conn.send(("ready",))
    cache = ParseCache()
    while True:
        try:
            chunk = conn.recv()
        except EOFError:  # the parent is gone
            return
        if chunk is None:
            return
        for task in chunk:
            _run_task(task, settings, judge, timeout, cache, report=conn.send)
            conn.send(("done", task.tid))


@dataclass
class _Slot:
    process: Any
    conn: Any
    started: float
    ready: bool = False
    chunk: list[ProblemTask] = field(default_factory=list)
    last_progress: float = 0.0


class WatchdogPool:
    """Runs ``ProblemTask``s in ``workers`` processes; see the module docstring."""

    def __init__(self, workers: int, timeout: float, settings: Mapping[str, Any], judge: Judge,
                 chunk_rows: int = 64, margin: float | None = None) -> None:
        self.workers = workers
        self.timeout = timeout
        self.settings = dict(settings)
        self.judge = judge
        self.chunk_rows = chunk_rows
        self.limit = timeout + (margin if margin is not None else 2.0 + 0.5 * timeout)
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(["math_verify", "trajfusion.verify.verifier"])
        self.startup_failures = 0
        self.incidents = Counter()

    def run(self, tasks: list[ProblemTask], on_done: Callable[[ProblemTask], None]) -> None:
        self.pending = deque(tasks)
        self.on_done = on_done
        slots = [self._start() for _ in range(min(self.workers, len(tasks)))]
        try:
            while self.pending or any(slot.chunk for slot in slots):
                self._dispatch(slots)
                self._wait(slots)
                for i, slot in enumerate(slots):
                    slots[i] = self._service(slot)
        finally:
            for slot in slots:
                self._stop(slot)

    def _start(self) -> _Slot:
        parent_conn, child_conn = self.context.Pipe()
        process = self.context.Process(target=_worker_main, daemon=True,
                                       args=(child_conn, self.settings, self.judge, self.timeout))
        process.start()
        child_conn.close()
        return _Slot(process, parent_conn, started=time.monotonic())

    def _dispatch(self, slots: list[_Slot]) -> None:
        for slot in slots:
            if slot.ready and not slot.chunk and self.pending:
                rows = 0
                while self.pending and rows < self.chunk_rows:
                    slot.chunk.append(self.pending.popleft())
                    rows += len(slot.chunk[-1].responses)
                slot.last_progress = time.monotonic()
                try:
                    slot.conn.send(slot.chunk)
                except OSError:
                    pass  # the worker died; _service re-queues the chunk

    def _wait(self, slots: list[_Slot]) -> None:
        handles = [h for s in slots for h in (s.conn, s.process.sentinel)]
        multiprocessing.connection.wait(handles, timeout=min(0.5, self.limit / 4))

    def _service(self, slot: _Slot) -> _Slot:
        """Drain the slot's messages; replace its worker if it died or hangs."""
        try:
            while slot.conn.poll():
                self._handle(slot, slot.conn.recv())
        except (EOFError, OSError):
            pass
        now = time.monotonic()
        if not slot.process.is_alive():
            return self._replace(slot, ERROR, f"worker exited with code {slot.process.exitcode}")
        if not slot.ready and now - slot.started > STARTUP_TIMEOUT:
            return self._replace(slot, TIMEOUT, "worker did not start")
        if slot.chunk and now - slot.last_progress > self.limit:
            return self._replace(slot, TIMEOUT, f"no progress for {self.limit:.1f} s")
        return slot

    def _handle(self, slot: _Slot, message: tuple) -> None:
        slot.last_progress = time.monotonic()
        if message[0] == "ready":
            slot.ready = True
            self.startup_failures = 0
        elif message[0] == "done":
            task = slot.chunk.pop(0)
            assert task.tid == message[1], "worker finished tasks out of order"
            self.on_done(task)
        else:
            tid, step, value = message
            assert slot.chunk[0].tid == tid, "worker reported a step of an unexpected task"
            record(slot.chunk[0], step, value)

    def _replace(self, slot: _Slot, status: str, why: str) -> _Slot:
        self._stop(slot)
        if not slot.ready:
            self.startup_failures += 1
            if self.startup_failures >= MAX_STARTUP_FAILURES:
                raise RuntimeError(f"verification workers fail to start ({why})")
            return self._start()
        if slot.chunk:
            task = slot.chunk[0]
            step = next(pending_steps(task), None)
            if step is not None:
                record(task, step, status)
                self.incidents[status] += 1
                logger.warning("%s: problem task %d, step %s -> %s", why, task.tid,
                               _describe(step), status)
            self.pending.extendleft(reversed(slot.chunk))
        return self._start()

    @staticmethod
    def _stop(slot: _Slot) -> None:
        if slot.process.is_alive() and slot.ready and not slot.chunk:
            try:
                slot.conn.send(None)
                slot.process.join(timeout=1.0)
            except OSError:
                pass
        if slot.process.is_alive():
            slot.process.kill()
        slot.process.join()
        slot.conn.close()


def _describe(step: tuple) -> str:
    return " ".join(s if len(s) < 80 else s[:77] + "..." for s in step)


# --- DataFrame interface -------------------------------------------------------------

def verify_frame(df: pd.DataFrame, workers: int = 2, timeout: float = 5.0,
                 filters: Mapping[str, Any] | None = None, *, judge: Judge | None = None,
                 progress: bool = False, source: str = "input", chunk_rows: int = 64) -> pd.DataFrame:
    """Verify every response of ``df`` (``problem_id, gold, response`` [, ``finish_reason``,
    ``answer_type``]); returns a copy with ``answer, correct, status, answer_group`` added.

    ``workers >= 1`` runs the watchdog pool; ``workers == 0`` runs inline in this process
    (debugging: soft deadlines only, and only in the main thread). ``judge`` replaces the
    math-verify comparison (a picklable module-level function; for fault-injection tests).
    ``source`` names the input in error messages.
    """
    try:
        settings = resolve_filters(filters)
    except ValueError as exc:
        raise InputError(f"{source}: filters: {exc}") from None
    tasks, rows_of = _build_tasks(df, source)
    judge = judge or math_verify_judge
    from tqdm import tqdm

    with tqdm(total=len(df), unit="resp", desc="verify", disable=not progress) as bar:
        def on_done(task: ProblemTask) -> None:
            bar.update(len(task.responses))

        if workers <= 0:
            _run_inline(tasks, settings, judge, timeout, on_done)
        else:
            chunk = max(1, min(chunk_rows, len(df) // (4 * workers)))
            WatchdogPool(workers, timeout, settings, judge, chunk_rows=chunk).run(tasks, on_done)
    out = _assemble(df, tasks, rows_of)
    logger.info("verified %d responses: %s", len(out), dict(sorted(Counter(out["status"]).items())))
    return out


def _run_inline(tasks, settings, judge, timeout, on_done) -> None:
    _quiet_math_verify()
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGALRM, _raise_deadline) if in_main else None
    cache = ParseCache()
    try:
        for task in tasks:
            _run_task(task, settings, judge, timeout if in_main else None, cache)
            on_done(task)
    finally:
        if in_main:
            signal.signal(signal.SIGALRM, previous)


def _build_tasks(df: pd.DataFrame, source: str) -> tuple[list[ProblemTask], list[list[int]]]:
    missing = [c for c in ("problem_id", "gold", "response") if c not in df.columns]
    if missing:
        raise InputError(f"{source}: missing required column(s) {missing}; has {list(df.columns)}")
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
            task = tasks[pid] = ProblemTask(len(tasks), normalize_answer(gold), hint, [], [])
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
        representative = _group_representatives(task)
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


def _group_representatives(task: ProblemTask) -> dict[str, str]:
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

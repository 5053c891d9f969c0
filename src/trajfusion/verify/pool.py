"""A watchdog process pool: a worker that hangs, crashes or dies costs one item, never the job.

``WatchdogPool(fn, workers, silence_limit=...)`` calls ``fn(item, report)`` for every item
in ``workers`` processes; ``workers == 0`` calls it in this process, without a watchdog
(debugging). ``fn`` must be picklable (a module-level function, or an instance of a
module-level class: each worker gets its own copy, which may keep state such as a cache
from item to item). It may call ``report(update)`` to stream progress to the parent
(``on_progress(index, update)``); what it returns is the item's result
(``on_done(index, result)``). An exception makes the result ``Lost(ERROR, ...)``.

Items travel to the workers in chunks of ``chunk_size``. The parent kills a worker that
sends nothing (no progress, no result) for ``silence_limit`` seconds, as it is stuck
where signals cannot reach (in C code, say), and replaces a worker that died (segfault,
``os._exit``). The item that worker was on is lost: ``on_lost(index, Lost(...))`` may
return an item to run in its place, to resume it from its last reported progress, or
None, which makes the ``Lost`` its result. The rest of the chunk is queued again first,
so only that item is lost.

Soft deadlines: in the workers, and in the main thread when inline, SIGALRM raises
``Deadline``, so that ``run_with_deadline`` can cut a Python computation short.

Workers fork from multiprocessing's forkserver, which imports the ``preload`` modules
once, before any worker forks (the forkserver serves the whole process, so a worker still
imports them before taking work, in case the forkserver started for another pool).

No worker outlives the parent: the forkserver exits with the parent, and a worker whose
parent is gone exits at its next message (end of file, broken pipe). Workers ignore
SIGINT: the parent decides when they stop.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.forkserver
import os
import signal
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.reduction import ForkingPickler
from typing import Any

logger = logging.getLogger(__name__)

TIMEOUT = "timeout"
ERROR = "error"
STARTUP_TIMEOUT = 120.0
MAX_STARTUP_FAILURES = 3
COALESCE_SECONDS = 0.01


@dataclass(frozen=True)
class Lost:
    """The result of an item whose run the pool gave up on: ``status`` is TIMEOUT or ERROR."""

    status: str
    why: str


# --- soft deadlines ------------------------------------------------------------------

class Deadline(BaseException):
    """Raised by SIGALRM; a BaseException so that ``except Exception`` cannot swallow it."""


def _raise_deadline(signum, frame):
    raise Deadline()


@contextlib.contextmanager
def soft_deadlines() -> Iterator[None]:
    """Let ``run_with_deadline`` arm deadlines while inside (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGALRM, _raise_deadline)
    try:
        yield
    finally:
        signal.signal(signal.SIGALRM, previous)


def run_with_deadline(fn: Callable[[], Any], seconds: float | None) -> Any:
    """``fn()``, or TIMEOUT after ``seconds``, or ERROR if it raises. The deadline is armed
    only under ``soft_deadlines`` in the main thread (None: no deadline)."""
    armed = bool(seconds) and threading.current_thread() is threading.main_thread() \
        and signal.getsignal(signal.SIGALRM) is _raise_deadline
    try:
        try:
            if armed:
                signal.setitimer(signal.ITIMER_REAL, seconds)
            return fn()
        finally:
            if armed:
                signal.setitimer(signal.ITIMER_REAL, 0)
    except Deadline:
        return TIMEOUT
    except Exception:
        logger.debug("step failed", exc_info=True)
        return ERROR


def _call(fn: Callable, item: Any, report: Callable[[Any], None]) -> Any:
    try:
        return fn(item, report)
    except Exception as exc:
        logger.debug("item failed", exc_info=True)
        return Lost(ERROR, f"{type(exc).__name__}: {exc}")


# --- workers ---------------------------------------------------------------------------

def _worker_main(conn, fn, preload: Sequence[str]) -> None:
    signal.signal(signal.SIGALRM, _raise_deadline)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for module in preload:  # already imported, unless the forkserver started for another pool
        importlib.import_module(module)
    conn.send(("ready",))
    while True:
        try:
            chunk = conn.recv()
        except EOFError:  # the parent is gone
            return
        if chunk is None:
            return
        for index, item in chunk:
            conn.send(("done", index, _call(fn, item, functools.partial(_send_progress, conn, index))))


def _send_progress(conn, index: int, update: Any) -> None:
    conn.send(("progress", index, update))


@dataclass
class _Slot:
    process: Any
    conn: Any
    started: float
    ready: bool = False
    outstanding: deque = field(default_factory=deque)  # (index, item) sent, the first one in progress
    chunks: deque = field(default_factory=deque)  # how many items of each chunk sent are outstanding
    last_message: float = 0.0
    queue_bytes: int = 0  # the largest chunk that may wait in the socket behind the current one


class WatchdogPool:
    """Runs ``fn`` over items in worker processes; see the module docstring. As a context
    manager it starts the forkserver (and its preload) early, while the items are prepared,
    and keeps the workers from run to run."""

    def __init__(self, fn: Callable[[Any, Callable[[Any], None]], Any], workers: int, *,
                 silence_limit: float, preload: Sequence[str] = ()) -> None:
        self.fn = fn
        self.workers = workers
        self.silence_limit = silence_limit
        self.context = multiprocessing.get_context("forkserver")
        self.preload = list(preload)
        self.context.set_forkserver_preload(self.preload)
        self.started = False
        self.slots: list[_Slot] = []
        self.startup_failures = 0
        self.incidents: Counter = Counter()

    def __enter__(self) -> WatchdogPool:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        """Start the forkserver without waiting for it; workers fork when items come."""
        if self.workers > 0:
            multiprocessing.forkserver.ensure_running()
        self.started = True

    def close(self) -> None:
        for slot in self.slots:
            self._stop(slot)
        self.slots = []
        self.started = False

    def map(self, items: Iterable, chunk_size: int = 1) -> list:
        """The result of every item, in order (``Lost`` for the items lost)."""
        items = list(items)
        results: list = [None] * len(items)
        self.run(items, results.__setitem__, chunk_size=chunk_size)
        return results

    def run(self, items: Sequence, on_done: Callable[[int, Any], None], *, chunk_size: int = 1,
            on_progress: Callable[[int, Any], None] | None = None,
            on_lost: Callable[[int, Lost], Any] | None = None) -> None:
        """Call ``on_done(index, result)`` for every item, in the order the items finish.
        Chunks hold up to ``chunk_size`` items, fewer towards the end so that the workers
        finish together."""
        self.on_done = on_done
        self.on_progress = on_progress or (lambda index, update: None)
        self.on_lost = on_lost or (lambda index, lost: None)
        self.pending = deque(enumerate(items))
        if self.workers <= 0:
            self._run_inline()
            return
        if not self.pending:
            return
        owned = not self.started  # started here, so stopped here
        self.start()
        while len(self.slots) < min(self.workers, len(self.pending)):
            self.slots.append(self._start_worker())
        try:
            while self.pending or any(slot.outstanding for slot in self.slots):
                self._dispatch(chunk_size)
                self._wait()
                if all(len(slot.chunks) == 2 for slot in self.slots):
                    time.sleep(COALESCE_SECONDS)  # nobody waits for work: take messages in batches
                self.slots = [self._service(slot) for slot in self.slots]
        finally:
            if owned:
                self.close()

    def _run_inline(self) -> None:
        with soft_deadlines():
            while self.pending:
                index, item = self.pending.popleft()
                self.on_done(index, _call(self.fn, item, lambda update, index=index: self.on_progress(index, update)))

    def _start_worker(self) -> _Slot:
        parent_conn, child_conn = self.context.Pipe()
        process = self.context.Process(target=_worker_main, args=(child_conn, self.fn, self.preload),
                                       daemon=True)
        process.start()
        child_conn.close()
        send_buffer = socket.socket(fileno=os.dup(parent_conn.fileno()))
        with send_buffer:  # a quarter of it, to leave room for the kernel's bookkeeping
            queue_bytes = send_buffer.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) // 4
        return _Slot(process, parent_conn, started=time.monotonic(), queue_bytes=queue_bytes)

    def _dispatch(self, chunk_size: int) -> None:
        """Give each ready worker a chunk, and a second one to queue behind it (so that it
        need not wait for the parent between chunks) when that fits well in the socket's
        send buffer, so that sending cannot block on a worker that hangs."""
        for slot in self.slots:
            while slot.ready and self.pending and len(slot.chunks) < 2:
                size = max(1, min(chunk_size, len(self.pending) // (2 * len(self.slots))))
                chunk = [self.pending.popleft() for _ in range(min(size, len(self.pending)))]
                data = ForkingPickler.dumps(chunk)
                if slot.chunks and len(data) > slot.queue_bytes:
                    self.pending.extendleft(reversed(chunk))
                    break
                if not slot.chunks:
                    slot.last_message = time.monotonic()
                slot.outstanding.extend(chunk)
                slot.chunks.append(len(chunk))
                try:
                    slot.conn.send_bytes(data)
                except OSError:
                    break  # the worker died; _service queues its chunks again

    def _wait(self) -> None:
        handles = [h for slot in self.slots for h in (slot.conn, slot.process.sentinel)]
        multiprocessing.connection.wait(handles, timeout=min(0.5, self.silence_limit / 4))

    def _service(self, slot: _Slot) -> _Slot:
        """Handle the slot's messages; replace its worker if it died or hangs."""
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
        if slot.outstanding and now - slot.last_message > self.silence_limit:
            return self._replace(slot, TIMEOUT, f"no message for {self.silence_limit:.1f} s")
        return slot

    def _handle(self, slot: _Slot, message: tuple) -> None:
        slot.last_message = time.monotonic()
        kind = message[0]
        if kind == "ready":
            slot.ready = True
            self.startup_failures = 0
            return
        index = message[1]
        assert slot.outstanding and slot.outstanding[0][0] == index, "worker reported an unexpected item"
        if kind == "progress":
            self.on_progress(index, message[2])
        else:
            slot.outstanding.popleft()
            slot.chunks[0] -= 1
            if not slot.chunks[0]:
                slot.chunks.popleft()
            self.on_done(index, message[2])

    def _replace(self, slot: _Slot, status: str, why: str) -> _Slot:
        self._stop(slot)
        if not slot.ready:
            self.startup_failures += 1
            if self.startup_failures >= MAX_STARTUP_FAILURES:
                raise RuntimeError(f"pool workers fail to start ({why})")
        elif slot.outstanding:
            index, _ = slot.outstanding.popleft()
            lost = Lost(status, why)
            self.incidents[status] += 1
            resumed = self.on_lost(index, lost)
            self.pending.extendleft(reversed(slot.outstanding))
            if resumed is None:
                self.on_done(index, lost)
            else:
                self.pending.appendleft((index, resumed))
        return self._start_worker()

    @staticmethod
    def _stop(slot: _Slot) -> None:
        if slot.process.is_alive() and slot.ready and not slot.outstanding:
            try:
                slot.conn.send(None)
                slot.process.join(timeout=1.0)
            except OSError:
                pass
        if slot.process.is_alive():
            slot.process.kill()
        slot.process.join()
        slot.conn.close()

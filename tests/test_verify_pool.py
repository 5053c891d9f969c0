"""The generic watchdog pool of trajfusion.verify.pool, on its own: one lost item per fault, results in order."""

import os
import time

import psutil
import pytest

from trajfusion.verify.pool import ERROR, TIMEOUT, Lost, WatchdogPool, run_with_deadline


# Module level, so that the workers can import them.
def square(item, report):
    return item * item


def faulty(item, report):
    """``"hang"`` sleeps (no soft deadline: only the watchdog can end it), ``"crash"``
    kills the worker, ``"raise"`` raises; anything else is returned with the worker's pid."""
    if item == "hang":
        time.sleep(600)
    if item == "crash":
        os._exit(7)
    if item == "raise":
        raise ValueError("bad item")
    return item, os.getpid()


def spin(item, report):
    def forever():
        while True:
            pass

    return run_with_deadline(forever, 0.2) if item == "spin" else item


def stepwise(item, report):
    """Reports each finished step of ``item`` (a list of steps), hangs on a ``"hang"`` step."""
    for step in item:
        if step == "hang":
            time.sleep(600)
        report(step)
    return len(item)


def test_results_come_back_in_item_order():
    items = list(range(23))
    with WatchdogPool(square, 2, silence_limit=30) as pool:
        assert pool.map(items, chunk_size=4) == [i * i for i in items]
        assert pool.map([5, 6]) == [25, 36]  # the started workers serve several runs
    assert pool.incidents == {}


def test_workers_0_runs_inline_in_this_process():
    pool = WatchdogPool(faulty, 0, silence_limit=1)
    results = pool.map(["a", "raise", "b"])
    assert results[0] == ("a", os.getpid()) and results[2] == ("b", os.getpid())
    assert results[1] == Lost(ERROR, "ValueError: bad item")


def test_an_item_that_raises_costs_its_result_only():
    results = WatchdogPool(faulty, 1, silence_limit=30).map(["a", "raise", "b"], chunk_size=3)
    assert results[1] == Lost(ERROR, "ValueError: bad item")
    assert results[0][0] == "a" and results[2][0] == "b"
    assert results[0][1] == results[2][1], "the worker survives an exception"


def test_hung_and_crashed_workers_cost_one_item_each_and_leave_no_process():
    items = ["a", "hang", "b", "crash", "c", "d", "hang", "e"]
    pool = WatchdogPool(faulty, 2, silence_limit=1)
    results = pool.map(items, chunk_size=3)
    assert [r.status if isinstance(r, Lost) else r[0] for r in results] == \
        ["a", TIMEOUT, "b", ERROR, "c", "d", TIMEOUT, "e"]
    assert results[3].why == "worker exited with code 7"
    assert pool.incidents == {TIMEOUT: 2, ERROR: 1}
    assert pool.slots == []
    workers = {r[1] for r in results if not isinstance(r, Lost)}
    assert not [pid for pid in workers if psutil.pid_exists(pid)
                and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]


def test_a_soft_deadline_stops_python_code_in_a_worker_and_inline():
    assert WatchdogPool(spin, 1, silence_limit=30).map(["spin", "x"]) == [TIMEOUT, "x"]
    assert WatchdogPool(spin, 0, silence_limit=30).map(["spin", "x"]) == [TIMEOUT, "x"]


def test_a_lost_item_can_resume_from_its_reported_progress():
    items = [["a", "b"], ["c", "hang", "d"], ["e"]]
    progress: dict[int, list] = {}
    done: dict[int, object] = {}

    def on_lost(index, lost):
        remaining = items[index][len(progress.get(index, [])) + 1:]  # skip the step it hung on
        progress.setdefault(index, []).append(lost.status)
        return remaining

    pool = WatchdogPool(stepwise, 1, silence_limit=1)
    pool.run(items, done.__setitem__, chunk_size=3,
             on_progress=lambda index, step: progress.setdefault(index, []).append(step), on_lost=on_lost)
    assert progress == {0: ["a", "b"], 1: ["c", TIMEOUT, "d"], 2: ["e"]}
    assert done == {0: 2, 1: 1, 2: 1}  # item 1's result is that of its resumed rest, ["d"]


@pytest.mark.parametrize("workers", [0, 2])
def test_an_empty_run_does_nothing(workers):
    assert WatchdogPool(square, workers, silence_limit=1).map([]) == []


def length_or_hang(item, report):
    if item == "hang":
        time.sleep(600)
    return len(item)


def test_large_items_never_block_the_parent_behind_a_hung_worker():
    # Chunks too large to wait in the socket are sent only to an idle worker, so sending
    # cannot block on the worker that hangs.
    items = ["hang", "x" * 500_000, "y" * 500_000, "z"]
    results = WatchdogPool(length_or_hang, 1, silence_limit=1).map(items)
    assert results == [Lost(TIMEOUT, "no message for 1.0 s"), 500_000, 500_000, 1]

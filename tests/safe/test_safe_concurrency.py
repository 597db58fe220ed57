"""Many threads and processes on one safe; fork; lock timeouts.

``STOREROOM_SAFE_REPEAT=N`` runs each multi-process counter test N times (default 2), e.g.
``STOREROOM_SAFE_REPEAT=50 python -m pytest -q tests/safe/test_safe_concurrency.py -k increment``
for the soak run under load.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from storeroom.safe import Safe, SafeBusyError

COUNTERS = ["c0", "c1", "c2", "c3"]
PROCS, THREADS, INCREMENTS = 8, 2, 25
REPEAT = int(os.environ.get("STOREROOM_SAFE_REPEAT", "2"))


def _increment(path: str, seed: int, errors: Any, started: Any = None) -> None:
    safe = Safe(path, timeout=120)

    def work(tid: int) -> None:
        try:
            for i in range(INCREMENTS):
                name = COUNTERS[(seed + tid + i) % len(COUNTERS)]
                with safe.transaction() as t:
                    t[name] = t.get(name, 0) + 1
                if i == 0 and started is not None:
                    started.put(seed)  # this worker is committing now
        except BaseException as exc:  # a thread's error must reach the test, not vanish
            errors.put(f"process {seed} thread {tid}: {exc!r}")
            raise

    threads = [threading.Thread(target=work, args=(tid,)) for tid in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    safe.close()


def _expected_totals() -> dict[str, int]:
    totals = {c: 0 for c in COUNTERS}
    for seed in range(PROCS):
        for tid in range(THREADS):
            for i in range(INCREMENTS):
                totals[COUNTERS[(seed + tid + i) % len(COUNTERS)]] += 1
    return totals


def _join_all(procs: list[Any], errors: Any) -> None:
    deadline = time.monotonic() + 180
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    hung = [p.pid for p in procs if p.is_alive()]
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join()
    assert hung == [], "workers still running after 180 s"
    assert [p.exitcode for p in procs] == [0] * len(procs)
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert failures == []


@pytest.mark.parametrize("round_", range(REPEAT))
def test_processes_and_threads_increment_exactly(tmp_path: Path, round_: int) -> None:
    path = str(tmp_path / "counters.db")
    Safe(path).update({c: 0 for c in COUNTERS})
    ctx = mp.get_context("fork")
    errors = ctx.SimpleQueue()
    procs = [ctx.Process(target=_increment, args=(path, p, errors)) for p in range(PROCS)]
    for p in procs:
        p.start()
    _join_all(procs, errors)
    with Safe(path) as safe:
        assert sum(safe[c] for c in COUNTERS) == PROCS * THREADS * INCREMENTS
        assert dict(safe) == _expected_totals()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
@pytest.mark.parametrize("how", ["dropped", "closed"])
@pytest.mark.parametrize("round_", range(REPEAT))
def test_increment_while_the_parent_lets_go(tmp_path: Path, round_: int, how: str) -> None:
    """Issue 8 #16: the parent frees or closes its connection while forked workers commit.

    ``dropped``: a Safe dropped without close() while collection is paused, collected while
    the workers run. Its connection used to survive into the workers; their own connections
    then shared SQLite's inherited lock bookkeeping and took no real locks, so the parent,
    freeing the connection, checkpointed and deleted the WAL they were committing to.
    ``closed``: a parent safe idle across the fork, closed explicitly while the workers run.
    """
    path = str(tmp_path / "counters.db")
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        parent = Safe(path)
        parent.update({c: 0 for c in COUNTERS})
        if how == "dropped":
            del parent  # without close(); nothing but the garbage collector may free it
        ctx = mp.get_context("fork")
        errors, started = ctx.SimpleQueue(), ctx.SimpleQueue()
        procs = [
            ctx.Process(target=_increment, args=(path, p, errors, started)) for p in range(PROCS)
        ]
        for p in procs:
            p.start()
        deadline = time.monotonic() + 120
        seen = 0
        while seen < PROCS * THREADS and time.monotonic() < deadline:
            if started.empty():
                time.sleep(0.001)
                continue
            started.get()
            seen += 1
        if how == "dropped":
            gc.collect()  # frees what the dropped safe left, while the workers commit
        else:
            parent.close()
        _join_all(procs, errors)
    finally:
        if was_enabled:
            gc.enable()
    with Safe(path) as safe:
        assert dict(safe) == _expected_totals()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_threads_share_one_safe(safe: Safe) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                safe[f"t{n}-{i}"] = i
                assert safe[f"t{n}-{i}"] == i
            safe.update({f"u{n}-{i}": i for i in range(20)})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert len(safe) == 8 * 40


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forked_child_keeps_working(safe: Safe) -> None:
    safe["parent"] = 1
    assert safe["parent"] == 1  # the parent has an open connection now
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            assert safe["parent"] == 1
            safe["child"] = 2
            with safe.transaction() as t:
                t["child_txn"] = 3
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert safe["child"] == 2 and safe["child_txn"] == 3
    safe["parent2"] = 4
    assert len(safe) == 4
    with Safe(safe.path) as fresh:
        assert fresh["parent2"] == 4
    conn = sqlite3.connect(safe.path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_lock_held_too_long_raises_busy(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    safe = Safe(path, timeout=0.2)
    safe["a"] = 1
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        start = time.monotonic()
        with pytest.raises(SafeBusyError, match="locked"):
            safe["b"] = 2
        assert time.monotonic() - start < 5
        assert safe["a"] == 1  # reads are not blocked by a writer (WAL)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    safe["b"] = 2
    assert safe["b"] == 2
    safe.close()


def test_waits_for_a_short_lock(tmp_path: Path) -> None:
    path = tmp_path / "wait.db"
    safe = Safe(path)
    safe["a"] = 1
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    timer = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    timer.start()
    safe["b"] = 2  # waits, no "database is locked"
    timer.join()
    holder.close()
    assert safe["b"] == 2
    safe.close()

"""Connection lifetime: no connection outlives its safe or its thread, none is used across fork().

SQLite keeps per-process bookkeeping of the POSIX locks on each file. A connection left open
when a process forks hands its bookkeeping to the child, whose own connections to that file then
take no real locks: another process closing its last connection sees nobody else and
checkpoints away and deletes the WAL the child is committing to.
"""

from __future__ import annotations

import gc
import os
import sqlite3
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from storeroom.safe import Safe, SafeBusyError, SafeError

from .conftest import child_env

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")


@pytest.fixture
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: only reference counting may free objects."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _open_fds(path: str) -> list[str]:
    fd_dir = "/proc/self/fd"
    found = []
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:  # closed meanwhile (the listing's own descriptor)
            continue
        if target.startswith(path):
            found.append(target)
    return found


def test_a_dropped_safe_closes_its_connections_at_once(tmp_path: Path, no_gc: None) -> None:
    path = str(tmp_path / "dropped.db")
    safe = Safe(path)
    safe["a"] = 1
    other_ready, release = threading.Event(), threading.Event()
    ref = weakref.ref(safe)

    def other_thread() -> None:  # a second connection, on a thread that outlives the safe
        same = ref()
        assert same is not None and same["a"] == 1
        del same
        other_ready.set()
        release.wait(60)

    th = threading.Thread(target=other_thread)
    th.start()
    try:
        assert other_ready.wait(60)
        assert os.path.exists(path + "-wal")
        del safe
        assert ref() is None
        # The last connection closed: SQLite checkpointed and removed the WAL, without any
        # garbage collection.
        assert not os.path.exists(path + "-wal")
        if os.path.isdir("/proc/self/fd"):
            assert _open_fds(path) == []
    finally:
        release.set()
        th.join()


def test_a_finished_thread_closes_its_connection(tmp_path: Path, no_gc: None) -> None:
    path = str(tmp_path / "thread.db")
    safe = Safe(path)
    th = threading.Thread(target=safe.__setitem__, args=("a", 1))
    th.start()
    th.join()
    assert not os.path.exists(path + "-wal")  # the thread's connection is closed
    assert safe["a"] == 1
    safe.close()


def test_close_closes_every_thread_connection(tmp_path: Path) -> None:
    path = str(tmp_path / "close.db")
    safe = Safe(path)
    ready, release = threading.Event(), threading.Event()

    def other_thread() -> None:
        safe["b"] = 2
        ready.set()
        release.wait(60)

    th = threading.Thread(target=other_thread)
    th.start()
    try:
        assert ready.wait(60)
        safe["a"] = 1
        safe.close()
        assert not os.path.exists(path + "-wal")
    finally:
        release.set()
        th.join()
    assert dict(safe) == {"a": 1, "b": 2}  # usable again after close()
    safe.close()


HOLDER = r"""
import os, sqlite3, sys, threading
from storeroom.safe import Safe, SafeBusyError, SafeError

path = sys.argv[1]
safe = Safe(path, timeout=5)
safe["base"] = 0
entered, release = threading.Event(), threading.Event()

def holder():
    with safe.transaction() as t:
        t["held"] = 1
        entered.set()
        release.wait(60)
        t["held2"] = 2

th = threading.Thread(target=holder)
th.start()
entered.wait(60)
pid = os.fork()
if pid == 0:
    # The child has the holder's connection, in the middle of its transaction, but not the
    # holder thread: it must never use it, nor close it (closing would roll back the parent's
    # transaction in the shared WAL index), not even at interpreter exit below.
    for safe_obj in (safe, Safe(path, timeout=5)):
        try:
            safe_obj["child"] = 1
            print("child wrote")
        except SafeBusyError as exc:
            print("child busy:", exc)
        except SafeError as exc:
            print("child refused:", exc)
    sys.stdout.flush()
    sys.exit(0)  # a normal shutdown: finalizers and module teardown run
_, status = os.waitpid(pid, 0)
print("child exit", os.waitstatus_to_exitcode(status))
release.set()
th.join()
with Safe(path) as check:
    print("parent sees", sorted(check.items()))
conn = sqlite3.connect(path)
print("integrity", conn.execute("PRAGMA integrity_check").fetchone()[0])
"""


@needs_fork
def test_fork_during_another_threads_transaction(tmp_path: Path) -> None:
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    r = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "held.db")],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    refused = [line for line in lines if line.startswith("child refused:")]
    assert len(refused) == 2, r.stdout
    assert all("fork" in line for line in refused)
    assert "child exit 0" in lines
    assert "parent sees [('base', 0), ('held', 1), ('held2', 2)]" in lines
    assert "integrity ok" in lines


@needs_fork
def test_fork_while_another_thread_writes(tmp_path: Path) -> None:
    """Fork again and again while a thread writes: every child finishes, no write is lost.

    The writer is inside SQLite (holding its connection's mutex, and the write lock) most of
    the time. A child must not touch that connection while it is — closing it would wait
    forever for the mutex of a thread the child does not have — and must work on a clean
    connection of its own (or refuse the safe); the writer's acknowledged writes all survive.
    """
    path = str(tmp_path / "writes.db")
    safe = Safe(path)
    safe["start"] = 0
    stop = threading.Event()
    acked: list[int] = []
    failures: list[BaseException] = []

    def writer() -> None:
        i = 0
        try:
            while not stop.is_set():
                safe[f"w{i}"] = i
                acked.append(i)
                i += 1
        except BaseException as exc:  # reported below
            failures.append(exc)

    th = threading.Thread(target=writer)
    th.start()
    outcomes = []
    try:
        while len(acked) < 3 and th.is_alive():
            time.sleep(0.01)
        for _ in range(15):
            pid = os.fork()
            if pid == 0:  # child
                code = 3
                try:
                    child = Safe(path, timeout=30)
                    try:
                        child["child"] = os.getpid()
                        code = 0 if child["child"] == os.getpid() else 4
                    except SafeBusyError:
                        code = 5
                    except SafeError as exc:
                        code = 1 if "fork" in str(exc) else 6
                finally:
                    os._exit(code)
            deadline = time.monotonic() + 60
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    outcomes.append(os.waitstatus_to_exitcode(status))
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                    outcomes.append("hung")
                    break
                time.sleep(0.005)
            time.sleep(0.01)
    finally:
        stop.set()
        th.join()
    assert failures == []
    assert all(o in (0, 1) for o in outcomes), outcomes  # 0: worked, 1: refused the safe
    # fork() waits for the writer's statement to finish, so the child can nearly always close
    # the inherited connection and work on its own.
    assert outcomes.count(0) > len(outcomes) // 2, outcomes
    with Safe(path) as check:
        stored = dict(check)
    assert all(stored[f"w{i}"] == i for i in acked)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    safe.close()

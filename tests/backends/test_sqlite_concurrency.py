"""SQLite under real concurrency: threads, asyncio tasks and processes on one file.

Issue 8.2: the first use of a store creates its table; many creators at once used to fail
with a bare ``sqlalchemy.exc.OperationalError: database is locked`` (the create was lost).
Issue 8.3: a transaction that read, then wrote, failed at once with "database is locked"
(a deferred transaction that read cannot wait for the write lock): transactions now
begin ``BEGIN IMMEDIATE`` (``transaction_mode``), so they wait up to ``busy_timeout``.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import sqlite3
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from storeroom import Q, open_async_store, open_store, stored
from storeroom.context import DataManager
from storeroom.errors import BackendError

PROCS, THREADS, CONTEXTS = 8, 2, 100
COUNTERS = ["c0", "c1", "c2", "c3"]
# generous: the machine running the suite may be loaded; the point is that nobody fails
# while the wait stays below the busy timeout
PATIENT = "busy_timeout=60000&synchronous=NORMAL"
FRESH = "busy_timeout=60000"  # the durable default, patient


@stored(key="name")
class Item:
    name: str
    n: int = 0


@stored(key="name")
class Account:
    name: str
    n: int = 0
    balance: Decimal = Decimal(0)  # compared locally on SQLite: a checked (read, write) update


def _errors_of(fn: Any, *args: Any, **kw: Any) -> list[str]:
    try:
        fn(*args, **kw)
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        return [f"{type(exc).__module__}.{type(exc).__name__}: {exc}"]
    return []


# first use of a fresh file, many creators at once ---------------------------------------
def test_threads_with_their_own_stores_create_on_a_fresh_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/fresh.db?{FRESH}"
    barrier = threading.Barrier(8)
    errors: list[str] = []

    def work(t: int) -> None:
        with open_store(Item, url) as store:
            barrier.wait()
            for i in range(20):
                errors.extend(_errors_of(store.create, Item(name=f"{t}-{i}")))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    with open_store(Item, url) as store:
        assert store.count() == 160


def test_threads_share_one_fresh_store(tmp_path: Path) -> None:
    barrier = threading.Barrier(8)
    errors: list[str] = []
    with open_store(Item, f"sqlite:///{tmp_path}/shared.db?{FRESH}") as store:

        def work(t: int) -> None:
            barrier.wait()
            for i in range(20):
                errors.extend(_errors_of(store.create, Item(name=f"{t}-{i}")))

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert errors == []
        assert store.count() == 160


def test_journal_mode_switch_waits_for_other_connections(tmp_path: Path) -> None:
    # SQLite refuses a journal mode switch at once, without its busy handler, while other
    # connections have the file open: so do the first connections to a new file when they
    # collide switching it to WAL (seen as "create table ...: database is locked"). The
    # switch is retried up to busy_timeout; here the other connection leaves after 0.3 s.
    path = tmp_path / "switch.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("CREATE TABLE unrelated (x)")
    leave = threading.Timer(0.3, other.close)
    leave.start()
    try:
        with open_store(Item, f"sqlite:///{path}?journal_mode=DELETE&{FRESH}") as store:
            store.create(Item(name="x"))
            assert store.count() == 1
    finally:
        leave.join()
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def _create_in_process(url: str, p: int, errors: Any) -> None:
    with open_store(Item, url) as store:
        for i in range(10):
            for error in _errors_of(store.create, Item(name=f"{p}-{i}")):
                errors.put(error)


def test_processes_create_on_a_fresh_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/procs.db?{FRESH}"
    ctx = mp.get_context("fork")
    errors = ctx.SimpleQueue()
    procs = [ctx.Process(target=_create_in_process, args=(url, p, errors)) for p in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert failures == []
    with open_store(Item, url) as store:
        assert store.count() == 80


async def test_gathered_creates_on_a_fresh_async_store(tmp_path: Path) -> None:
    async with open_async_store(Item, f"sqlite:///{tmp_path}/gather.db?{FRESH}") as store:
        results = await asyncio.gather(*[store.create(Item(name=str(i))) for i in range(20)],
                                       return_exceptions=True)
        assert [r for r in results if isinstance(r, BaseException)] == []
        assert await store.count() == 20


# read, then write ------------------------------------------------------------------------
def _read_then_write(url: str, seed: int, errors: Any) -> None:
    dm = DataManager()
    dm.add_engine("db", url)
    dm.register_models(Item)

    def work(tid: int) -> None:
        for i in range(CONTEXTS):
            name = COUNTERS[(seed + tid + i) % len(COUNTERS)]
            try:
                with dm.context() as ctx:
                    store = ctx.store(Item)
                    item = store.read(name)
                    store.update(name, n=item.n + 1)
            except BaseException as exc:  # noqa: BLE001 - every error reaches the test
                errors.put(f"process {seed} thread {tid}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=work, args=(tid,)) for tid in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    dm.close()


def test_read_then_write_contexts_in_processes_and_threads(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/counters.db?{PATIENT}"
    with open_store(Item, url) as store:
        for name in COUNTERS:
            store.create(Item(name=name))
    ctx = mp.get_context("fork")
    errors = ctx.SimpleQueue()
    procs = [ctx.Process(target=_read_then_write, args=(url, p, errors)) for p in range(PROCS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert failures == []  # not one "database is locked"
    expected = dict.fromkeys(COUNTERS, 0)
    for seed in range(PROCS):
        for tid in range(THREADS):
            for i in range(CONTEXTS):
                expected[COUNTERS[(seed + tid + i) % len(COUNTERS)]] += 1
    with open_store(Item, url) as store:
        assert {i.name: i.n for i in store.search_all()} == expected


def test_checked_updates_from_threads_and_their_stores(tmp_path: Path) -> None:
    # a precondition SQLite cannot evaluate: each store reads, checks and writes in a
    # transaction of its own, which must wait for the write lock rather than fail
    url = f"sqlite:///{tmp_path}/checked.db?{PATIENT}"
    errors: list[str] = []
    with open_store(Account, url) as store:
        store.create(Account(name="a"))
    barrier = threading.Barrier(8)

    def work(t: int) -> None:
        with open_store(Account, url) as store:
            store.read("a")
            barrier.wait()
            for i in range(25):
                errors.extend(_errors_of(store.update, "a", n=t * 100 + i,
                                         precondition=Q(balance__gte=Decimal(0))))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []


# what each transaction mode holds --------------------------------------------------------
def _can_take_write_lock(path: Path) -> bool:
    """Whether another connection gets the write lock right now (no waiting)."""
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return False
    finally:
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()
    return True


def _dm(url: str, **engines: str) -> DataManager:
    dm = DataManager()
    dm.add_engine("db", url)
    for name, extra in engines.items():
        dm.add_engine(name, extra, read_only=True)
    dm.register_models(Item)
    return dm


def test_a_context_on_a_writable_engine_holds_the_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "lock.db"
    with _dm(f"sqlite:///{path}") as dm:
        with dm.context() as ctx:
            ctx.store(Item).read("x")
            assert not _can_take_write_lock(path)  # IMMEDIATE: the write lock since BEGIN
        assert _can_take_write_lock(path)


def test_deferred_contexts_read_without_the_lock_and_may_fail_to_write(tmp_path: Path) -> None:
    path = tmp_path / "deferred.db"
    with _dm(f"sqlite:///{path}?transaction_mode=DEFERRED") as dm:
        with dm.context() as ctx:
            ctx.store(Item).create(Item(name="x"))
        with pytest.raises(BackendError, match="locked") as err, dm.context() as ctx:
            assert ctx.store(Item).read("x") == Item(name="x")
            assert _can_take_write_lock(path)  # a deferred reader holds no write lock
            with open_store(Item, f"sqlite:///{path}") as other:
                other.update("x", n=1)  # commits after this context's snapshot
            ctx.store(Item).update("x", n=2)  # cannot wait: its snapshot is stale
        assert isinstance(err.value.__cause__, Exception)


def test_read_only_engines_and_autocommit_contexts_take_no_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    with _dm(f"sqlite:///{path}", replica=f"sqlite:///{path}") as dm:
        with dm.context() as ctx:
            ctx.store(Item).create(Item(name="x"))
        with dm.context() as ctx:
            assert ctx.store(Item).read("x") == Item(name="x")  # from the replica
            assert ctx.engines.status == {"db": "init", "replica": "start"}
            assert _can_take_write_lock(path)
        with dm.context(autocommit=True) as ctx:
            ctx.store(Item).update("x", n=1)
            assert ctx.store(Item).read("x") == Item(name="x", n=1)
            assert _can_take_write_lock(path)


def test_transaction_mode_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="transaction_mode must be one of"):
        open_store(Item, f"sqlite:///{tmp_path}/x.db?transaction_mode=SOMETIMES")
    with pytest.raises(ValueError, match="transaction_mode must be one of"):
        DataManager().add_engine("db", f"sqlite:///{tmp_path}/x.db", transaction_mode="lazy")
    for mode in ("deferred", "IMMEDIATE", "Exclusive"):
        with open_store(Item, f"sqlite:///{tmp_path}/{mode}.db?transaction_mode={mode}") as s:
            s.edit_batch([])  # opens nothing
            s.create(Item(name=mode))
            assert s.read(mode) == Item(name=mode)

"""The async SQLite store runs statements on the event loop (issue 10), never a lock wait.

``storeroom.backends.sql.sqlite_loop``: in WAL mode a statement that cannot wait runs
inline; one that would wait for another connection's write lock fails at once
(``busy_timeout=0`` on the store's connection) and is run again on the connection's
thread with the real busy timeout. These tests hold the write lock from another
connection and check that the loop keeps ticking while the store's writes wait, that
the writes then succeed, and that tasks and a thread writing together lose nothing.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from storeroom import Create, F, open_async_store, open_store, stored
from storeroom.context import AsyncDataManager

HOLD_S = 0.5


@stored(key="name")
class Counter:
    name: str
    n: int = 0


def _hold_write_lock(path: Path, started: threading.Event, seconds: float) -> threading.Thread:
    """Another connection takes the write lock for ``seconds`` (then commits)."""
    def hold() -> None:
        c = sqlite3.connect(path, isolation_level=None)
        try:
            c.execute("BEGIN IMMEDIATE")
            c.execute("UPDATE counter SET n = n WHERE name = 'nobody'")
            started.set()
            time.sleep(seconds)
            c.execute("COMMIT")
        finally:
            c.close()
    t = threading.Thread(target=hold)
    t.start()
    return t


async def _beat(ticks: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        ticks.append(time.perf_counter())
        await asyncio.sleep(0.01)
    ticks.append(time.perf_counter())  # a blocked loop shows as the last gap, too


def _max_gap(ticks: list[float]) -> float:
    """The longest the loop went without a beat (infinite: it never beat twice)."""
    return max((b - a for a, b in zip(ticks, ticks[1:], strict=False)), default=float("inf"))


@pytest.mark.parametrize("sync", ["NORMAL", "FULL"])
async def test_the_loop_keeps_ticking_while_a_write_waits_for_the_lock(
        tmp_path: Path, sync: str) -> None:
    path = tmp_path / "held.db"
    async with open_async_store(Counter, f"sqlite:///{path}?synchronous={sync}") as store:
        await store.create(Counter(name="a"))
        assert await store.read("a") is not None  # the connection is open, inline-ready
        started = threading.Event()
        holder = _hold_write_lock(path, started, HOLD_S)
        await asyncio.to_thread(started.wait)
        ticks: list[float] = []
        stop = asyncio.Event()
        beat = asyncio.create_task(_beat(ticks, stop))
        await asyncio.sleep(0.03)
        try:
            # a read never waits in WAL: it answers while the lock is held
            t0 = time.perf_counter()
            assert (await store.read("a")).n == 0  # type: ignore[union-attr]
            assert time.perf_counter() - t0 < HOLD_S / 2
            # each write waits for the lock, on the thread: the loop keeps beating
            t0 = time.perf_counter()
            await store.create(Counter(name="b", n=1))
            waited = time.perf_counter() - t0
        finally:
            stop.set()
            await beat
            await asyncio.to_thread(holder.join)
        assert waited >= HOLD_S * 0.6, waited  # it did wait for the other connection
        assert len(ticks) >= 10
        # a blocked loop would show one gap of ~HOLD_S; generous for a loaded machine
        assert _max_gap(ticks) < HOLD_S / 3, _max_gap(ticks)
        assert (await store.read("b")).n == 1  # type: ignore[union-attr]


async def test_a_transaction_waits_for_the_lock_off_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "tx.db"
    async with open_async_store(Counter, f"sqlite:///{path}?synchronous=NORMAL") as store:
        await store.create(Counter(name="a"))
        started = threading.Event()
        holder = _hold_write_lock(path, started, HOLD_S)
        await asyncio.to_thread(started.wait)
        ticks: list[float] = []
        stop = asyncio.Event()
        beat = asyncio.create_task(_beat(ticks, stop))
        try:
            t0 = time.perf_counter()
            async with store.transaction():  # BEGIN IMMEDIATE waits, on the thread
                await store.update("a", n=F("n") + 5)
                await store.create(Counter(name="c", n=2))
            waited = time.perf_counter() - t0
        finally:
            stop.set()
            await beat
            await asyncio.to_thread(holder.join)
        assert waited >= HOLD_S * 0.6, waited
        assert _max_gap(ticks) < HOLD_S / 3, _max_gap(ticks)
        assert (await store.read("a")).n == 5  # type: ignore[union-attr]
        assert (await store.read("c")).n == 2  # type: ignore[union-attr]


async def test_reads_run_on_the_event_loop_thread(tmp_path: Path) -> None:
    """The point of the driver: a read by key is no thread hop (aiosqlite made it two)."""
    path = tmp_path / "inline.db"
    async with open_async_store(Counter, f"sqlite:///{path}?synchronous=NORMAL") as store:
        await store.create(Counter(name="a"))
        seen: list[int] = []
        drivers: Any = store._base.src._idle  # type: ignore[attr-defined]
        assert drivers, "the store keeps its connection"
        drivers[0].db.set_trace_callback(lambda sql: seen.append(threading.get_ident()))
        for _ in range(3):
            await store.read("a")
            await store.update("a", n=F("n") + 1)
        drivers[0].db.set_trace_callback(None)
        assert seen and set(seen) == {threading.get_ident()}
        assert (await store.read("a")).n == 3  # type: ignore[union-attr]


async def test_tasks_and_a_thread_writing_together_lose_nothing(tmp_path: Path) -> None:
    """Bounded race: 4 tasks on one async store, a context, and a thread on a sync store
    increment the same counters while creating rows: exact totals, no lock errors."""
    path = tmp_path / "race.db"
    url = f"sqlite:///{path}?synchronous=NORMAL&busy_timeout=30000"
    tasks, per = 4, 15
    async with open_async_store(Counter, url) as store:
        await store.create(Counter(name="total"))
        errors: list[BaseException] = []

        def thread_work() -> None:
            try:
                with open_store(Counter, url) as sync_store:
                    for i in range(per):
                        sync_store.update("total", n=F("n") + 1)
                        sync_store.create(Counter(name=f"thread-{i}", n=i))
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)

        async def task_work(t: int) -> None:
            for i in range(per):
                await store.update("total", n=F("n") + 1)
                await store.create(Counter(name=f"task{t}-{i}", n=i))
                if i % 5 == 0:
                    async with store.transaction():
                        await store.update("total", n=F("n") + 1)
                        await store.read("total")

        dm = AsyncDataManager()
        dm.add_engine("main", url, default=True)
        dm.register_models(Counter)

        async def context_work() -> None:
            for i in range(per):
                async with dm.context() as ctx:
                    cs = ctx.store(Counter)
                    await cs.update("total", n=F("n") + 1)
                    await cs.create(Counter(name=f"ctx-{i}", n=i))

        th = threading.Thread(target=thread_work)
        th.start()
        try:
            results = await asyncio.wait_for(asyncio.gather(
                *(task_work(t) for t in range(tasks)), context_work(),
                return_exceptions=True), timeout=60)
        finally:
            await asyncio.to_thread(th.join)
            await dm.close()
        assert [r for r in results if r is not None] == []
        assert errors == []
        in_tx = tasks * len(range(0, per, 5))
        total = await store.read("total")
        assert total is not None
        assert total.n == tasks * per + per + per + in_tx
        assert await store.count() == 1 + tasks * per + per + per


_COUNT = ("SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
          "SELECT x + 1 FROM c WHERE x < ?) SELECT x FROM c)")
_ROWS = ("SELECT x FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
         "SELECT x + 1 FROM c WHERE x < ?) SELECT x FROM c)")


async def test_a_long_read_goes_on_on_the_thread(tmp_path: Path) -> None:
    """A read runs inline for at most ``READ_BUDGET_S`` (twice that for one row): a long
    one finishes on the connection's thread, with the same answer, the loop free."""
    from storeroom.backends.sql.sqlite_loop import READ_BUDGET_S
    path = tmp_path / "long.db"
    async with open_async_store(Counter, f"sqlite:///{path}?synchronous=NORMAL") as store:
        await store.create(Counter(name="a"))
        src: Any = store._base.src  # type: ignore[attr-defined]
        driver: Any = src._idle.pop()  # the store's connection, ours for the test
        try:
            t0 = time.perf_counter()
            assert await driver.one(_COUNT, (20_000,)) == (20_000,)
            short = max(time.perf_counter() - t0, 1e-4)
            # a count that takes ~10 budgets, whatever the machine
            n = max(50_000, int(20_000 * 10 * READ_BUDGET_S / short))
            ticks: list[float] = []
            stop = asyncio.Event()
            beat = asyncio.create_task(_beat(ticks, stop))
            await asyncio.sleep(0.03)
            try:
                t0 = time.perf_counter()
                counted = await driver.one(_COUNT, (n,))
                took = time.perf_counter() - t0
            finally:
                stop.set()
                await beat
            assert counted == (n,)
            assert took > 6 * READ_BUDGET_S, took
            # the loop stalled for a budget or two, not for the whole query
            assert _max_gap(ticks) < took / 2, (_max_gap(ticks), took)
            # rows past the budget: the thread fetches the rest from the same cursor
            # (building many rows holds the GIL: only the answer is checked here)
            rows = await driver.all(_ROWS, (n // 4,))
            assert len(rows) == n // 4 and rows[0] == (1,) and rows[-1] == (n // 4,)
            assert len(set(rows)) == n // 4
            assert not driver.db.in_transaction  # the read ended: no snapshot kept
        finally:
            src.release(driver)


async def test_a_write_cancelled_while_it_waits_leaves_no_transaction_behind(
        tmp_path: Path) -> None:
    """A batch cancelled while its BEGIN waits on the thread: the BEGIN still runs there
    later; the store must not go on using that connection (its writes would stay in a
    transaction nobody commits)."""
    path = tmp_path / "cancel.db"
    async with open_async_store(Counter, f"sqlite:///{path}?synchronous=NORMAL") as store:
        await store.create(Counter(name="a"))
        started = threading.Event()
        holder = _hold_write_lock(path, started, 0.3)
        await asyncio.to_thread(started.wait)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(store.edit_batch([Create(Counter(name="batch"))]), 0.1)
        await asyncio.to_thread(holder.join)
        await asyncio.sleep(0.05)  # the abandoned statement ran on the thread meanwhile
        await store.create(Counter(name="after"))
        other = sqlite3.connect(path)
        try:
            names = {r[0] for r in other.execute("SELECT name FROM counter")}
        finally:
            other.close()
        assert "after" in names  # committed, visible to another connection


@pytest.mark.parametrize("autocommit", [True, False])
async def test_a_context_waits_for_the_lock_off_the_loop(tmp_path: Path, autocommit: bool
                                                         ) -> None:
    """A context's connection keeps the engine's busy timeout (SQLAlchemy's): its BEGIN,
    or in an autocommit context each write, waits on the thread, the loop beating."""
    path = tmp_path / "ctx.db"
    dm = AsyncDataManager()
    dm.add_engine("main", f"sqlite:///{path}?synchronous=NORMAL", default=True)
    dm.register_models(Counter)
    try:
        async with dm.context() as ctx:
            await ctx.store(Counter).create(Counter(name="a"))
        started = threading.Event()
        holder = _hold_write_lock(path, started, HOLD_S)
        await asyncio.to_thread(started.wait)
        ticks: list[float] = []
        stop = asyncio.Event()
        beat = asyncio.create_task(_beat(ticks, stop))
        try:
            t0 = time.perf_counter()
            async with dm.context(autocommit=autocommit) as ctx:
                cs = ctx.store(Counter)
                await cs.update("a", n=F("n") + 1)
                await cs.create(Counter(name="b"))
                assert (await cs.read("a")).n == 1  # type: ignore[union-attr]
            waited = time.perf_counter() - t0
        finally:
            stop.set()
            await beat
            await asyncio.to_thread(holder.join)
        assert waited >= HOLD_S * 0.6, waited
        assert _max_gap(ticks) < HOLD_S / 3, _max_gap(ticks)
        async with dm.context() as ctx:
            assert await ctx.store(Counter).count() == 2
    finally:
        await dm.close()


@pytest.mark.parametrize("sync", ["NORMAL", "FULL"])
async def test_a_context_runs_on_the_loop_but_a_durable_commit(tmp_path: Path, sync: str
                                                              ) -> None:
    """A context's BEGIN, statements and COMMIT run on the event loop thread (through
    aiosqlite each was a thread hop); with synchronous=FULL the COMMIT, which fsyncs,
    runs on the connection's thread."""
    dm = AsyncDataManager()
    dm.add_engine("main", f"sqlite:///{tmp_path}/c.db?synchronous={sync}", default=True)
    dm.register_models(Counter)
    seen: list[tuple[str, bool]] = []
    loop_thread = threading.get_ident()
    try:
        async with dm.context() as ctx:  # first use: the table, the pool's connection
            await ctx.store(Counter).create(Counter(name="a"))
        async with dm.context() as ctx:
            conn = await ctx.engines.get("main")
            raw = await conn.get_raw_connection()
            db = raw.driver_connection._connection
            db.set_trace_callback(
                lambda sql: seen.append((sql.split()[0].upper(),
                                         threading.get_ident() == loop_thread)))
            cs = ctx.store(Counter)
            await cs.update("a", n=F("n") + 1)
            await cs.create(Counter(name="b"))
            assert (await cs.read("b")) is not None
        db.set_trace_callback(None)
    finally:
        await dm.close()
    words = [w for w, _ in seen]
    assert words[-1] == "COMMIT" and "INSERT" in words, seen
    on_loop = {w: inline for w, inline in seen}
    assert all(inline for w, inline in seen if w != "COMMIT"), seen
    assert on_loop["COMMIT"] is (sync == "NORMAL"), seen

"""Issue 8.12: a standalone SQL store takes its connections from its engine's pool.

It used to pin one connection behind a lock, so concurrent tasks and threads on one
store queued for it. Now concurrent callers each get a connection (up to the pool's
limit), one caller keeps reusing one, idle connections beyond ``pool_size`` go back to
the pool, and ``close()`` returns every connection (no "garbage collector is trying to
clean up non-checked-in connection" anywhere: tests/conftest.py fails a test that causes
one).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import uuid
import warnings
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import SAWarning

from storeroom import open_async_store, open_store, stored
from storeroom.backends.sql import testing
from tests.servers import skip_or_fail


@stored(key="name")
class Row:
    name: str
    n: int = 0


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/pool.db"
    reason = testing.unavailable_reason(request.param)
    if reason is not None:
        skip_or_fail(f"{request.param}: {reason}")
    return testing.fresh_url(request.param, f"t{uuid.uuid4().hex}")


def _pool(store: Any) -> Any:
    return store._b.core.engine.pool  # (read it before close: a closed store has no backend)


async def test_concurrent_tasks_use_several_connections(url: str) -> None:
    async with open_async_store(Row, url) as store:
        pool = _pool(store)
        await store.create(Row(name="a"))
        for _ in range(50):  # one caller at a time: one connection
            assert (await store.read("a")).name == "a"
        assert _pool(store).checkedout() == 1
        # writes, not reads: an async SQLite read runs on the event loop (issue 10) and
        # ends before the next task starts, while a durable write waits for its fsync on
        # the connection's thread, the others meanwhile on connections of their own
        results = await asyncio.gather(*[store.create(Row(name=f"b{i}")) for i in range(8)])
        assert [r.name for r in results] == [f"b{i}" for i in range(8)]
        assert _pool(store).checkedout() > 1
    assert pool.checkedout() == 0


def test_concurrent_threads_use_several_connections(url: str) -> None:
    with open_store(Row, url) as store:
        pool = _pool(store)
        _threads_hold_connections_at_once(store)
    assert pool.checkedout() == 0


def _threads_hold_connections_at_once(store: Any) -> None:
    store.create(Row(name="a"))
    barrier = threading.Barrier(4)
    inside = threading.Barrier(4, timeout=10)
    seen: list[int] = []
    errors: list[BaseException] = []
    src = store._b.src  # type: ignore[attr-defined]
    real_acquire = src.acquire

    def acquire(write: bool = True) -> Any:
        driver = real_acquire(write)
        try:
            inside.wait()  # all four threads hold a connection at the same time
        except threading.BrokenBarrierError:
            src.release(driver)  # one connection for all: they cannot all be inside
            raise
        seen.append(id(driver))
        return driver

    src.acquire = acquire

    def work() -> None:
        try:
            barrier.wait()
            assert store.read("a") is not None
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    src.acquire = real_acquire
    assert errors == []
    assert len(set(seen)) == 4


async def test_idle_connections_beyond_pool_size_go_back(url: str) -> None:
    async with open_async_store(Row, url, pool_size=2, max_overflow=10) as store:
        pool = _pool(store)
        await store.create(Row(name="a"))
        # (writes: an async SQLite read ends without yielding, see above)
        await asyncio.gather(*[store.create(Row(name=f"b{i}")) for i in range(10)])
        burst = _pool(store).checkedout()
        assert burst > 2
        for _ in range(burst):
            await store.read("a")
        assert _pool(store).checkedout() <= 2
    assert pool.checkedout() == 0


async def test_transactions_of_concurrent_tasks_stay_apart(url: str) -> None:
    # each task's batch runs in a transaction on its own connection
    from storeroom import Create
    async with open_async_store(Row, url) as store:
        batches = [[Create(Row(name=f"{t}-{i}")) for i in range(5)] for t in range(6)]
        done = await asyncio.gather(*[store.edit_batch(b, atomic=True) for b in batches])
        assert all(r.ok for results in done for r in results)
        assert await store.count() == 30


async def test_in_memory_sqlite_serves_one_caller_at_a_time() -> None:
    async with open_async_store(Row, "sqlite:///:memory:") as store:
        await asyncio.gather(*[store.create(Row(name=str(i))) for i in range(20)])
        assert await store.count() == 20
    with open_store(Row, "sqlite://") as sync_store:
        threads = [threading.Thread(target=sync_store.create, args=(Row(name=str(i)),))
                   for i in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert sync_store.count() == 8


@pytest.mark.parametrize("server", ["postgres", "mysql"])
async def test_a_leaked_connection_is_caught(server: str) -> None:
    # the suite's guard (tests/conftest.py) sees an async store that was never closed
    # (on a server: an aiosqlite connection's thread would outlive the test's loop)
    reason = testing.unavailable_reason(server)
    if reason is not None:
        skip_or_fail(f"{server}: {reason}")
    url = testing.fresh_url(server, f"t{uuid.uuid4().hex}")
    handler = next(h for h in logging.getLogger("sqlalchemy.pool").handlers
                   if type(h).__name__ == "LeakedConnections")
    before = len(handler.leaks)  # type: ignore[attr-defined]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)  # an error under pyproject's filters
        store = open_async_store(Row, url)
        await store.create(Row(name="a"))
        del store
        gc.collect()
    leaked = handler.leaks[before:]  # type: ignore[attr-defined]
    del handler.leaks[before:]  # type: ignore[attr-defined]  # this one was on purpose
    assert len(leaked) == 1 and "non-checked-in connection" in leaked[0]

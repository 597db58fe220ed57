"""Issue 8.2 on every SQL backend: the first use of a fresh database by many threads, tasks
and processes at once creates each table exactly once, and every create lands.

Before the fix the lazy ``CREATE TABLE`` raced: SQLite raised a bare
``sqlalchemy.exc.OperationalError: database is locked``, PostgreSQL a bare
``IntegrityError`` (pg_type) or ``ProgrammingError`` (relation exists), and the create
was lost. Also: no driver or SQLAlchemy exception reaches a user unwrapped, also when the
database cannot be reached at all.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import socket
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from storeroom import field, open_async_store, open_store, stored
from storeroom.backends.sql import testing
from storeroom.context import AsyncDataManager, DataManager
from storeroom.errors import BackendError
from tests.servers import skip_or_fail


@stored(key="name")
class Thing:
    name: str
    tag: str = field(default="", index=True)


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        # a generous busy timeout: the race is the point, not how loaded the machine is
        return f"sqlite:///{tmp_path}/fresh.db?busy_timeout=60000"
    reason = testing.unavailable_reason(request.param)
    if reason is not None:
        skip_or_fail(f"{request.param}: {reason}")
    return testing.fresh_url(request.param, f"t{uuid.uuid4().hex}")


def _failures(results: list[Any]) -> list[str]:
    return [f"{type(r).__module__}.{type(r).__name__}: {r}" for r in results
            if isinstance(r, BaseException)]


async def test_gathered_first_creates_on_one_async_store(url: str) -> None:
    async with open_async_store(Thing, url) as store:
        results = await asyncio.gather(*[store.create(Thing(name=str(i))) for i in range(20)],
                                       return_exceptions=True)
        assert _failures(results) == []
        assert await store.count() == 20


async def test_gathered_first_creates_on_many_async_stores(url: str) -> None:
    stores = [open_async_store(Thing, url) for _ in range(10)]
    try:
        results = await asyncio.gather(*[s.create(Thing(name=str(i))) for i, s in
                                         enumerate(stores)], return_exceptions=True)
        assert _failures(results) == []
        assert await stores[0].count() == 10
    finally:
        for s in stores:
            await s.close()


def test_threads_first_create_with_their_own_stores(url: str) -> None:
    barrier = threading.Barrier(6)
    errors: list[str] = []

    def work(t: int) -> None:
        try:
            with open_store(Thing, url) as store:
                barrier.wait()
                for i in range(5):
                    store.create(Thing(name=f"{t}-{i}"))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(f"{type(exc).__module__}.{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    with open_store(Thing, url) as store:
        assert store.count() == 30


def _create_in_process(url: str, p: int, errors: Any) -> None:
    try:
        with open_store(Thing, url) as store:
            for i in range(5):
                store.create(Thing(name=f"{p}-{i}"))
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        errors.put(f"{type(exc).__module__}.{type(exc).__name__}: {exc}")


def test_processes_first_create(url: str) -> None:
    ctx = mp.get_context("fork")
    errors = ctx.SimpleQueue()
    procs = [ctx.Process(target=_create_in_process, args=(url, p, errors)) for p in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert failures == []
    with open_store(Thing, url) as store:
        assert store.count() == 20


async def test_gathered_first_use_in_contexts(url: str) -> None:
    async with AsyncDataManager() as dm:
        dm.add_engine("db", url, pool_size=4, max_overflow=4, pool_timeout=60)
        dm.register_models(Thing)

        async def one(i: int) -> None:
            async with dm.context() as ctx:
                await ctx.store(Thing).create(Thing(name=str(i)))

        results = await asyncio.gather(*[one(i) for i in range(20)], return_exceptions=True)
        assert _failures(results) == []
        async with dm.context() as ctx:
            assert await ctx.store(Thing).count() == 20


def test_threads_first_use_in_contexts(url: str) -> None:
    errors: list[str] = []
    with DataManager() as dm:
        dm.add_engine("db", url, pool_size=8, max_overflow=0, pool_timeout=60)
        dm.register_models(Thing)
        barrier = threading.Barrier(8)

        def work(t: int) -> None:
            try:
                barrier.wait()
                with dm.context() as ctx:
                    ctx.store(Thing).read("nobody")
                    ctx.store(Thing).create(Thing(name=str(t)))
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(f"{type(exc).__module__}.{type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert errors == []
        with dm.context() as ctx:
            assert ctx.store(Thing).count() == 8


# nothing unwrapped ------------------------------------------------------------------------
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
async def test_an_unreachable_server_is_a_backend_error(scheme: str) -> None:
    url = f"{scheme}://nobody@127.0.0.1:{_closed_port()}/none?connect_timeout=2"
    with pytest.raises(BackendError) as err:
        with open_store(Thing, url) as store:
            store.read("x")
    assert err.value.__cause__ is not None
    store = open_async_store(Thing, url)
    try:
        with pytest.raises(BackendError) as err:
            await store.read("x")
        assert err.value.__cause__ is not None
    finally:
        await store.close()


def test_an_unopenable_sqlite_file_is_a_backend_error(tmp_path: Path) -> None:
    with pytest.raises(BackendError) as err:
        with open_store(Thing, f"sqlite:///{tmp_path}/no/such/dir/x.db") as store:
            store.create(Thing(name="x"))
    assert err.value.__cause__ is not None

"""Named engines on SQLite (async): the same unit of work with AsyncConnection."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection

from storeroom.context import AsyncContext, AsyncDataManager, ReadOnlyError

INSERT = text("INSERT INTO t (id, v) VALUES (:id, :v)")


def rows(db_url: str) -> list[tuple[int, str]]:
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        return list(conn.execute("SELECT id, v FROM t ORDER BY id"))


@pytest.fixture
async def dm(db_url: str) -> AsyncIterator[AsyncDataManager]:
    async with AsyncDataManager() as manager:
        manager.add_engine("writer", db_url)
        async with manager.context() as ctx:
            conn = await ctx.engines.writer
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        yield manager


async def test_lazy_memoized_status(dm: AsyncDataManager, tmp_path: Any) -> None:
    dm.add_engine("ghost", "postgresql://nobody@127.0.0.1:1/none")
    touched: list[Any] = []
    event.listen(dm.get_engine("ghost").sync_engine.pool, "checkout", lambda *a: touched.append(a))
    async with dm.context() as ctx:
        assert ctx.engines.status == {"writer": "init", "ghost": "init"}
        conn = await ctx.engines.get("writer")
        assert isinstance(conn, AsyncConnection)
        assert conn is await ctx.engines.writer
        a, b = await asyncio.gather(ctx.engines.get(), ctx.engines.get())
        assert a is b is conn
    assert ctx.engines.status == {"writer": "end", "ghost": "init"}
    assert touched == []
    assert dm.get_engine().pool.checkedout() == 0
    with pytest.raises(RuntimeError):
        await ctx.engines.get()


async def test_commit_rollback_savepoint(dm: AsyncDataManager, db_url: str) -> None:
    async with dm.context() as ctx:
        conn = await ctx.engines.get()
        await conn.execute(INSERT, {"id": 1, "v": "outer"})
        with pytest.raises(ZeroDivisionError):
            async with ctx.savepoint():
                await conn.execute(INSERT, {"id": 2, "v": "gone"})
                1 / 0  # noqa: B018
        async with ctx.savepoint():
            await conn.execute(INSERT, {"id": 3, "v": "kept"})
    with pytest.raises(ValueError):
        async with dm.context() as ctx:
            conn = await ctx.engines.get()
            await conn.execute(INSERT, {"id": 4, "v": "lost"})
            raise ValueError()
    assert rows(db_url) == [(1, "outer"), (3, "kept")]


async def test_rollback_when_middleware_suppresses(db_url: str) -> None:
    async def mw(ctx: AsyncContext) -> AsyncIterator[None]:
        try:
            yield
        except ValueError:
            pass

    async with AsyncDataManager() as dm:
        dm.add_engine("w", db_url)
        async with dm.context() as ctx:
            await (await ctx.engines.w).execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        dm.register_context_middleware(mw)
        async with dm.context() as ctx:
            await (await ctx.engines.w).execute(INSERT, {"id": 1, "v": "x"})
            raise ValueError()
    assert rows(db_url) == []


async def test_autocommit_and_on_commit(dm: AsyncDataManager, db_url: str) -> None:
    seen: list[Any] = []

    async def async_callback() -> None:
        seen.append("async")

    with pytest.raises(ValueError):
        async with dm.context(autocommit=True) as ctx:
            await (await ctx.engines.get()).execute(INSERT, {"id": 1, "v": "auto"})
            ctx.on_commit(lambda: seen.append("never"))
            raise ValueError()
    assert rows(db_url) == [(1, "auto")] and seen == []
    async with dm.context() as ctx:
        await (await ctx.engines.get()).execute(INSERT, {"id": 2, "v": "tx"})
        ctx.on_commit(lambda: seen.append(rows(db_url)))
        ctx.on_commit(async_callback)
    assert seen == [[(1, "auto"), (2, "tx")], "async"]


async def test_routing_and_read_only(dm: AsyncDataManager, db_url: str) -> None:
    dm.add_engine("reader", db_url, read_only=True)
    async with dm.context() as ctx:
        engines = ctx.engines
        reader = await engines.reader
        assert await engines.connection_for("writer") is reader
        with pytest.raises(ReadOnlyError):
            await reader.execute(INSERT, {"id": 1, "v": "no"})
        writer = await engines.connection_for("writer", write=True)
        assert writer is not reader
        await writer.execute(INSERT, {"id": 2, "v": "yes"})
        assert await engines.connection_for("writer") is writer
        assert await engines.for_read("reader") is writer
    assert rows(db_url) == [(2, "yes")]


async def test_nested_context_own_connection(dm: AsyncDataManager, db_url: str) -> None:
    # DEFERRED: the outer context that only began holds no write lock (IMMEDIATE would)
    dm.add_engine("deferred", f"{db_url}?transaction_mode=DEFERRED")
    with pytest.raises(ValueError):
        async with dm.context() as outer:
            outer_conn = await outer.engines.get("deferred")
            async with dm.context() as inner:
                inner_conn = await inner.engines.get("deferred")
                assert inner_conn is not outer_conn
                await inner_conn.execute(INSERT, {"id": 1, "v": "inner"})
            raise ValueError()
    assert rows(db_url) == [(1, "inner")]

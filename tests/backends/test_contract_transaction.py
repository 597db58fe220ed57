"""``store.transaction()`` on every backend, sync and async: all or nothing, reads inside
see the writes, other stores and threads / tasks do not before the commit, nested blocks
are savepoints, and ``UnsupportedOperation`` where ``StoreMeta.transactions`` is False."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

from storeroom import F, UnsupportedOperation, stored


@stored
class Doc:
    id: str
    n: int = 0


class Boom(Exception):
    pass


@contextlib.asynccontextmanager
async def tx(s: Any) -> AsyncIterator[None]:
    """``store.transaction()`` entered with ``async with`` or ``with`` as the store needs."""
    if s.is_async:
        async with s.store.transaction():
            yield
    else:
        with s.store.transaction():
            yield


def _needs_tx(s: Any) -> None:
    if not s.meta.transactions:
        pytest.skip(f"{s.meta.backend} has no transactions")


async def test_unsupported_without_transactions(store_factory):
    s = store_factory(Doc)
    if s.meta.transactions:
        pytest.skip("has transactions")
    with pytest.raises(UnsupportedOperation):
        async with tx(s):
            await s.create(Doc(id="a"))
    assert await s.read("a") is None


async def test_commit_and_reads_inside(store_factory):
    s = store_factory(Doc)
    _needs_tx(s)
    other = store_factory(Doc)  # a store (connection) of its own
    await s.create(Doc(id="b", n=1))
    await other.read("b")  # its first use made its tables ready (on SQLite: before the lock)
    async with tx(s):
        await s.create(Doc(id="a", n=1))
        await s.update("b", n=F("n") + 1)
        assert (await s.read("a")).n == 1
        assert (await s.read("b")).n == 2
        assert [d.id for d in await s.all()] == ["a", "b"]
        assert await other.read("a") is None
        assert (await other.read("b")).n == 1
    assert (await other.read("a")).n == 1
    assert (await other.read("b")).n == 2


async def test_rollback_when_block_raises(store_factory):
    s = store_factory(Doc)
    _needs_tx(s)
    await s.create(Doc(id="keep", n=1))
    with pytest.raises(Boom):
        async with tx(s):
            await s.create(Doc(id="a"))
            await s.update("keep", n=5)
            await s.update_where(changes={"n": F("n") + 1})
            await s.delete("keep")
            raise Boom
    assert [(d.id, d.n) for d in await s.all()] == [("keep", 1)]
    # the store works normally afterwards, outside any transaction
    await s.create(Doc(id="after"))
    assert await store_factory(Doc).read("after") is not None


async def test_nested_is_a_savepoint(store_factory):
    s = store_factory(Doc)
    _needs_tx(s)
    if s.meta.backend == "mongodb":  # MongoDB transactions have no savepoints
        async with tx(s):
            await s.create(Doc(id="outer"))
            with pytest.raises(UnsupportedOperation):
                async with tx(s):
                    await s.create(Doc(id="inner"))
        assert [d.id for d in await s.all()] == ["outer"]
        return
    async with tx(s):
        await s.create(Doc(id="outer"))
        with pytest.raises(Boom):
            async with tx(s):
                await s.create(Doc(id="inner"))
                await s.update("outer", n=7)
                raise Boom
        assert (await s.read("outer")).n == 0 and await s.read("inner") is None
        async with tx(s):
            await s.create(Doc(id="inner2"))
    assert [d.id for d in await s.all()] == ["inner2", "outer"]


async def test_other_threads_and_tasks_are_not_inside(store_factory):
    s = store_factory(Doc)
    _needs_tx(s)
    seen: list[Any] = []
    async with tx(s):
        await s.create(Doc(id="a"))
        if s.is_async:
            # a task started inside the block copies its context but does not own it
            seen.append(await asyncio.create_task(s.read("a")))
        else:
            t = threading.Thread(target=lambda: seen.append(asyncio.run(s.read("a"))))
            t.start()
            t.join(30)
        assert (await s.read("a")) is not None
    assert seen == [None]
    assert (await s.read("a")) is not None

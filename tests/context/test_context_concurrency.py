"""Many threads and tasks at once: each sees only its own context, meta and data; no leaks."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from sqlalchemy import text

from storeroom.context import AsyncDataManager, DataManager, Service

CREATE = text("CREATE TABLE t (id INTEGER PRIMARY KEY, owner TEXT)")
INSERT = text("INSERT INTO t (id, owner) VALUES (:id, :owner)")
MINE = text("SELECT id FROM t WHERE owner = :owner ORDER BY id")


class Rows(Service):
    def add_and_list(self, n: int) -> list[int]:
        ctx = self._ctx
        conn = ctx.engines.connection_for(write=True)
        owner = ctx.meta.require("user")
        for i in range(3):
            conn.execute(INSERT, {"id": n * 10 + i, "owner": owner})
        return list(conn.execute(MINE, {"owner": owner}).scalars())


class AsyncRows(Service):
    async def add_and_list(self, n: int) -> list[int]:
        ctx = self._ctx
        conn = await ctx.engines.connection_for(write=True)
        owner = ctx.meta.require("user")
        for i in range(3):
            await conn.execute(INSERT, {"id": n * 10 + i, "owner": owner})
            await asyncio.sleep(0)
        return list((await conn.execute(MINE, {"owner": owner})).scalars())


def test_fifty_threads(db_url: str) -> None:
    dm = DataManager()
    dm.add_engine("db", db_url, pool_size=8, max_overflow=0, pool_timeout=60, busy_timeout=30000)
    dm.register_services(rows=Rows())
    with dm.context() as ctx:
        ctx.engines.db.execute(CREATE)
    errors: list[BaseException] = []
    results: dict[int, Any] = {}
    barrier = threading.Barrier(50)

    def worker(n: int) -> None:
        try:
            barrier.wait()
            with dm.context(meta={"user": f"user{n}"}) as ctx:
                assert dm.require_active_context() is ctx
                got = ctx.dal.rows.add_and_list(n)
                assert dm.get_active_context().meta.user == f"user{n}"  # type: ignore[union-attr]
            assert dm.get_active_context() is None
            results[n] = got
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == {n: [n * 10, n * 10 + 1, n * 10 + 2] for n in range(50)}
    assert dm.get_engine().pool.checkedout() == 0
    with dm.context() as ctx:
        assert ctx.engines.db.execute(text("SELECT count(*) FROM t")).scalar() == 150
    dm.close()


async def test_two_hundred_tasks(db_url: str) -> None:
    async with AsyncDataManager() as dm:
        dm.add_engine("db", db_url, pool_size=10, max_overflow=0, pool_timeout=60,
                      busy_timeout=30000)  # fmt: skip
        dm.register_services(rows=AsyncRows())
        async with dm.context() as ctx:
            await (await ctx.engines.db).execute(CREATE)
        start = asyncio.Event()

        async def worker(n: int) -> list[int]:
            await start.wait()
            async with dm.context(meta={"user": f"user{n}"}) as ctx:
                got = await ctx.dal.rows.add_and_list(n)
                assert dm.require_active_context() is ctx
                assert ctx.meta.user == f"user{n}"
            assert dm.get_active_context() is None
            return got  # type: ignore[no-any-return]

        tasks = [asyncio.create_task(worker(n)) for n in range(200)]
        await asyncio.sleep(0)
        start.set()
        results = await asyncio.gather(*tasks)
        assert results == [[n * 10, n * 10 + 1, n * 10 + 2] for n in range(200)]
        assert dm.get_engine().pool.checkedout() == 0
        async with dm.context() as ctx:
            conn = await ctx.engines.db
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 600

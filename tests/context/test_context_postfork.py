"""``dm.postfork()``: after a fork parent and child each use their own connections."""

from __future__ import annotations

import os
import sys

import pytest
from sqlalchemy import text

from storeroom.context import AsyncDataManager, DataManager

INSERT = text("INSERT INTO t (who) VALUES (:who)")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_parent_and_child_keep_working(db_url: str) -> None:
    dm = DataManager()
    dm.add_engine("db", db_url)
    with dm.context() as ctx:
        ctx.engines.db.execute(text("CREATE TABLE t (who TEXT, pid INTEGER)"))
        ctx.engines.db.execute(INSERT, {"who": "parent-before"})
    engine = dm.get_engine("db")
    parent_pool = engine.pool
    assert parent_pool.checkedin() == 1  # the parent's connection is pooled

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            os.close(read)
            dm.postfork()
            assert engine.pool is not parent_pool and engine.pool.checkedin() == 0
            with dm.context() as ctx:
                ctx.engines.db.execute(INSERT, {"who": "child"})
            assert engine.pool.checkedout() == 0
            os.write(write, b"ok")
            code = 0
        except BaseException as exc:  # noqa: BLE001
            os.write(write, repr(exc).encode())
        finally:
            sys.stdout.flush()
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    message = os.read(read, 1000)
    os.close(read)
    assert os.WEXITSTATUS(status) == 0, message
    assert engine.pool is parent_pool  # the parent kept its pool and its connection
    with dm.context() as ctx:
        ctx.engines.db.execute(INSERT, {"who": "parent-after"})
    with dm.context() as ctx:
        got = ctx.engines.db.execute(text("SELECT who FROM t ORDER BY rowid")).scalars().all()
    assert got == ["parent-before", "child", "parent-after"]
    assert parent_pool.checkedout() == 0
    dm.close()


async def test_async_postfork_replaces_pools(db_url: str) -> None:
    async with AsyncDataManager() as dm:
        dm.add_engine("db", db_url)
        async with dm.context() as ctx:
            await (await ctx.engines.db).execute(text("SELECT 1"))
        before = dm.get_engine().sync_engine.pool
        dm.postfork()
        assert dm.get_engine().sync_engine.pool is not before
        async with dm.context() as ctx:
            assert (await (await ctx.engines.db).execute(text("SELECT 1"))).scalar() == 1

"""Issue 8.1: every model's table is ready on its first use in a context, whichever model
an engine served first (SQLite, PostgreSQL, MySQL/MariaDB; sync and async).

Before the fix the table of a second model was created on another connection while the
context's transaction kept its snapshot: SQLite then said "no such table", MySQL "Table
definition has changed" (and a context holding SQLite's write lock made the other
connection wait for it).
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest

from storeroom import field, stored
from storeroom.backends.sql import testing
from storeroom.context import AsyncDataManager, DataManager
from storeroom.errors import BackendError
from tests.servers import skip_or_fail


@stored(key="name")
class First:
    name: str


@stored(key="name")
class Second:
    name: str
    n: int = 0


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/first_use.db"
    reason = testing.unavailable_reason(request.param)
    if reason is not None:
        skip_or_fail(f"{request.param}: {reason}")
    return testing.fresh_url(request.param, f"t{uuid.uuid4().hex}")


def test_second_model_after_a_read(url: str) -> None:
    with DataManager() as dm:
        dm.add_engine("db", url)
        dm.register_models(First, Second)
        with dm.context() as ctx:
            assert ctx.store(First).read("x") is None
            assert ctx.store(Second).read("b") is None
            ctx.store(Second).create(Second(name="b"))
            assert ctx.store(Second).read("b") == Second(name="b")
        with dm.context() as ctx:
            assert ctx.store(Second).read("b") == Second(name="b")


async def test_second_model_after_a_read_async(url: str) -> None:
    async with AsyncDataManager() as dm:
        dm.add_engine("db", url)
        dm.register_models(First, Second)
        async with dm.context() as ctx:
            assert await ctx.store(First).read("x") is None
            assert await ctx.store(Second).read("b") is None
            await ctx.store(Second).create(Second(name="b"))
            assert await ctx.store(Second).read("b") == Second(name="b")
        async with dm.context() as ctx:
            assert await ctx.store(Second).read("b") == Second(name="b")


def test_second_model_after_a_write(url: str) -> None:
    with DataManager() as dm:
        dm.add_engine("db", url)
        dm.register_models(First, Second)
        with dm.context() as ctx:
            ctx.store(First).create(First(name="a"))
            ctx.store(Second).create(Second(name="b"))
        with dm.context() as ctx:
            assert ctx.store(First).read("a") == First(name="a")
            assert ctx.store(Second).read("b") == Second(name="b")


def test_model_registered_after_the_engine_served_another(tmp_path: Path) -> None:
    # the late model's table is created in the context's own transaction (SQLite)
    with DataManager() as dm:
        dm.add_engine("db", f"sqlite:///{tmp_path}/late.db")
        dm.register_models(First)
        with dm.context() as ctx:
            ctx.store(First).create(First(name="a"))
        dm.register_models(Second)
        with dm.context() as ctx:
            assert ctx.store(First).read("a") == First(name="a")
            ctx.store(Second).create(Second(name="b"))
            assert ctx.store(Second).read("b") == Second(name="b")
        with dm.context() as ctx:
            assert ctx.store(Second).read("b") == Second(name="b")


def test_table_created_in_a_rolled_back_context_is_created_again(tmp_path: Path) -> None:
    with DataManager() as dm:
        dm.add_engine("db", f"sqlite:///{tmp_path}/rollback.db")
        dm.register_models(First)
        with dm.context() as ctx:
            ctx.store(First).read("a")
        dm.register_models(Second)
        with pytest.raises(ValueError), dm.context() as ctx:
            ctx.store(First).read("a")
            ctx.store(Second).create(Second(name="gone"))
            raise ValueError("roll back, table and all")
        with dm.context() as ctx:
            assert ctx.store(Second).read("gone") is None
            ctx.store(Second).create(Second(name="b"))
        with dm.context() as ctx:
            assert ctx.store(Second).read("b") == Second(name="b")


def test_second_model_read_through_a_replica(tmp_path: Path) -> None:
    path = tmp_path / "replica.db"
    with DataManager() as dm:
        dm.add_engine("writer", f"sqlite:///{path}", default=True)
        dm.add_engine("reader", f"sqlite:///{path}", read_only=True)
        dm.register_models(First, Second)
        with dm.context() as ctx:
            assert ctx.store(First).read("x") is None  # from the replica
            assert ctx.store(Second).read("b") is None
            ctx.store(Second).create(Second(name="b"))  # the writer
            assert ctx.store(Second).read("b") == Second(name="b")  # read-your-writes
            assert ctx.engines.status == {"writer": "start", "reader": "start"}
        with dm.context() as ctx:
            assert ctx.store(Second).read("b") == Second(name="b")


@stored(key="name")
class Clashing:
    name: str
    tag: str = field(default="", index=True)


def test_a_model_whose_table_cannot_be_made_does_not_stop_the_others(tmp_path: Path) -> None:
    path = tmp_path / "clash.db"
    with sqlite3.connect(path) as raw:  # an index already named like Clashing's
        raw.execute("CREATE TABLE other (x TEXT)")
        raw.execute("CREATE INDEX ix_clashing_tag ON other (x)")
    with DataManager() as dm:
        dm.add_engine("db", f"sqlite:///{path}")
        dm.register_models(Clashing, First)
        with dm.context() as ctx:
            ctx.store(First).create(First(name="a"))
        with pytest.raises(BackendError, match="ix_clashing_tag") as err, dm.context() as ctx:
            ctx.store(Clashing).create(Clashing(name="c"))
        assert err.value.__cause__ is not None
        with dm.context() as ctx:
            assert ctx.store(First).read("a") == First(name="a")

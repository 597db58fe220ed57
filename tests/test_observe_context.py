"""The observer seam in a DataManager context: every record names its engine (SQL and
store engines alike), the context's own BEGIN / COMMIT / ROLLBACK are recorded, and SQL
records name the store's table (db.collection.name)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from storeroom import QueryLog, open_store, stored
from storeroom.context import AsyncDataManager, DataManager
from tests.servers import skip_or_fail


@stored
class Gadget:
    id: int
    name: str = ""


@stored
class Gizmo:
    id: int


@pytest.fixture
def dm(tmp_path: Path) -> Iterator[DataManager]:
    dm = DataManager()
    dm.add_engine("primary", f"sqlite:///{tmp_path}/c.db")
    dm.add_engine("mem", f"memory://obs-{tmp_path.name}")
    dm.register_models(Gadget)
    dm.register_models(Gizmo, engine="mem")
    with dm.context() as ctx:  # tables made before any log opens
        ctx.store(Gadget).create(Gadget(id=0))
        ctx.store(Gizmo).create(Gizmo(id=0))
    yield dm
    dm.close()


def test_engine_name_on_a_memory_and_a_sqlite_engine(dm: DataManager) -> None:
    with QueryLog() as log, dm.context() as ctx:
        ctx.store(Gadget).create(Gadget(id=1))
        ctx.store(Gizmo).create(Gizmo(id=1))
        assert ctx.store(Gizmo).read(1) == Gizmo(id=1)
        assert [g.id for g in ctx.store(Gizmo).search_all()] == [0, 1]
    mem = [r for r in log.records if r.backend == "memory"]
    sql = [r for r in log.records if r.backend == "sqlite"]
    assert mem and sql
    assert {r.engine for r in mem} == {"mem"}, mem
    assert {r.engine for r in sql} == {"primary"}, sql
    # outside the context's operations nothing is named after the engine any more
    with QueryLog() as log:
        open_store(Gadget, f"memory://obs-standalone-{id(log)}").read(1)
    assert [r.engine for r in log.records] == [None]


def test_a_context_with_one_write_records_begin_statement_commit(dm: DataManager) -> None:
    with QueryLog() as log, dm.context() as ctx:
        ctx.store(Gadget).create(Gadget(id=2))
    sql = [r for r in log.records if r.backend == "sqlite"]
    assert [r.statement.split()[0] for r in sql] == ["BEGIN", "INSERT", "COMMIT"], sql
    assert {r.engine for r in sql} == {"primary"}
    assert all(r.error is None for r in sql)


def test_a_failed_context_records_rollback(dm: DataManager) -> None:
    with QueryLog() as log, pytest.raises(RuntimeError), dm.context() as ctx:
        ctx.store(Gadget).create(Gadget(id=3))
        raise RuntimeError("fails after the write")
    sql = [r.statement.split()[0] for r in log.records if r.backend == "sqlite"]
    assert sql == ["BEGIN", "INSERT", "ROLLBACK"], sql
    with dm.context() as ctx:
        assert ctx.store(Gadget).read(3) is None


def test_no_log_no_records_and_autocommit_has_no_transaction(dm: DataManager) -> None:
    with dm.context(autocommit=True) as ctx, QueryLog() as log:
        ctx.store(Gadget).create(Gadget(id=4))
    assert [r.statement.split()[0] for r in log.records] == ["INSERT"]


def test_sql_records_name_the_table(dm: DataManager, tmp_path: Path) -> None:
    with QueryLog() as log, dm.context() as ctx:
        ctx.store(Gadget).read(0)
    select = [r for r in log.records if r.statement.startswith("SELECT")]
    assert select and {r.collection for r in select} == {"gadget"}
    s = open_store(Gadget, f"sqlite:///{tmp_path}/s.db", table="things")
    try:
        with QueryLog() as log:
            s.read(0)
        # the lazy DDL (recorded too) and the SELECT all name the table
        assert log.statements()[-1].startswith("SELECT")
        assert {r.collection for r in log.records} == {"things"}
    finally:
        s.close()


async def test_async_context_records_engine_and_transaction_control(tmp_path: Path) -> None:
    async with AsyncDataManager() as dm:
        dm.add_engine("primary", f"sqlite:///{tmp_path}/a.db")
        dm.add_engine("mem", f"memory://obs-async-{tmp_path.name}")
        dm.register_models(Gadget)
        dm.register_models(Gizmo, engine="mem")
        async with dm.context() as ctx:
            await ctx.store(Gadget).create(Gadget(id=0))
        async with QueryLog() as log:
            async with dm.context() as ctx:
                await ctx.store(Gadget).create(Gadget(id=1))
                await ctx.store(Gizmo).create(Gizmo(id=1))
                assert [g.id async for g in ctx.store(Gizmo).search_all()] == [1]
        sql = [r for r in log.records if r.backend == "sqlite"]
        assert [r.statement.split()[0] for r in sql] == ["BEGIN", "INSERT", "COMMIT"], sql
        assert {r.engine for r in log.records} == {"primary", "mem"}
        assert {r.engine for r in log.records if r.backend == "memory"} == {"mem"}


_SERVERS = {
    "mongodb": ("storeroom.backends.mongodb.testing", ()),
    "redis": ("storeroom.backends.redis.testing", ()),
    "dynamodb": ("storeroom.backends.dynamodb.testing", ("dynamodb_tx",)),
}


@pytest.mark.parametrize("backend", sorted(_SERVERS))
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_engine_name_on_server_store_engines(backend: str, mode: str) -> None:
    import importlib
    import uuid

    module, args = _SERVERS[backend]
    testing = importlib.import_module(module)
    reason = testing.unavailable_reason(*args)
    if reason:
        skip_or_fail(f"{backend}: {reason}")  # skipped locally, a failure in CI
    url = testing.fresh_url(*args, f"obs{uuid.uuid4().hex[:8]}")
    system = {"dynamodb": "aws.dynamodb"}.get(backend, backend)
    if mode == "sync":
        dm = DataManager()
        dm.add_engine("x", url)
        dm.register_models(Gizmo)
        try:
            with QueryLog() as log, dm.context() as ctx:
                ctx.store(Gizmo).create(Gizmo(id=1))
                assert ctx.store(Gizmo).read(1) == Gizmo(id=1)
                assert [g.id for g in ctx.store(Gizmo).search_all()] == [1]
            with QueryLog() as outside:
                dm.get_engine("x").store(Gizmo).read(1)
        finally:
            dm.close()
    else:
        async with AsyncDataManager() as adm:
            adm.add_engine("x", url)
            adm.register_models(Gizmo)
            async with QueryLog() as log:
                async with adm.context() as actx:
                    await actx.store(Gizmo).create(Gizmo(id=1))
                    assert await actx.store(Gizmo).read(1) == Gizmo(id=1)
                    assert [g.id async for g in actx.store(Gizmo).search_all()] == [1]
            async with QueryLog() as outside:
                await adm.get_engine("x").store(Gizmo).read(1)
    mine = [r for r in log.records if r.backend == system]
    assert mine and {r.engine for r in mine} == {"x"}, mine
    # the engine's standalone store is outside any context: no engine name
    assert outside.records and {r.engine for r in outside.records} == {None}

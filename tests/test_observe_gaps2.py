"""Observer-seam gaps closed: a context's savepoints, the lazy DDL of every backend, and
a MongoDB client the user passes in are all recorded as the rest of the round trips."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from storeroom import QueryLog, StoreroomError, field, open_async_store, open_store, stored
from storeroom.context import AsyncDataManager, DataManager
from tests.servers import require, skip_or_fail


@stored
class Part:
    id: int
    name: str = ""


def _words(log: QueryLog, backend: str = "sqlite") -> list[str]:
    # the statements' leading keywords, savepoint names left out (SQLAlchemy picks them)
    out = []
    for r in log.records:
        if r.backend != backend:
            continue
        words = r.statement.split()
        if "SAVEPOINT" in words:
            words = words[:words.index("SAVEPOINT") + 1]
        out.append(" ".join(words[:3] if words[0] in ("RELEASE", "ROLLBACK") else words[:1]))
    return out


@pytest.fixture
def dm(tmp_path: Path) -> Iterator[DataManager]:
    dm = DataManager()
    dm.add_engine("primary", f"sqlite:///{tmp_path}/sp.db")
    dm.register_models(Part)
    with dm.context() as ctx:  # the table made before any log opens
        ctx.store(Part).create(Part(id=0))
    yield dm
    dm.close()


# ---- 1. ctx.savepoint() ---------------------------------------------------------------

def test_a_context_savepoint_is_recorded_released_and_rolled_back(dm: DataManager) -> None:
    with QueryLog() as log, dm.context() as ctx:
        ctx.store(Part).create(Part(id=1))
        with ctx.savepoint():
            ctx.store(Part).create(Part(id=2))
        with pytest.raises(RuntimeError), ctx.savepoint():
            ctx.store(Part).create(Part(id=3))
            raise RuntimeError("undo the savepoint's work")
    assert _words(log) == ["BEGIN", "INSERT", "SAVEPOINT", "INSERT", "RELEASE SAVEPOINT",
                           "SAVEPOINT", "INSERT", "ROLLBACK TO SAVEPOINT", "COMMIT"], \
        log.statements()
    sp = [r for r in log.records if "SAVEPOINT" in r.statement]
    assert {r.engine for r in sp} == {"primary"} and all(r.error is None for r in sp)
    # each RELEASE / ROLLBACK TO names the savepoint that was opened
    opened = [r.statement.split()[-1] for r in sp if r.statement.startswith("SAVEPOINT")]
    closed = [r.statement.split()[-1] for r in sp if not r.statement.startswith("SAVEPOINT")]
    assert opened == closed and opened[0].startswith("sa_savepoint"), sp
    with dm.context() as ctx:
        assert [p.id for p in ctx.store(Part).search_all()] == [0, 1, 2]


def test_an_engine_opened_inside_a_savepoint_records_its_savepoint(dm: DataManager) -> None:
    with QueryLog() as log, dm.context() as ctx:
        with ctx.savepoint():  # no engine open yet: it joins when it opens
            ctx.store(Part).read(0)
    assert _words(log) == ["BEGIN", "SAVEPOINT", "SELECT", "RELEASE SAVEPOINT", "COMMIT"], \
        log.statements()


async def test_async_context_savepoint_is_recorded(tmp_path: Path) -> None:
    async with AsyncDataManager() as adm:
        adm.add_engine("primary", f"sqlite:///{tmp_path}/asp.db")
        adm.register_models(Part)
        async with adm.context() as ctx:
            await ctx.store(Part).create(Part(id=0))
        async with QueryLog() as log:
            async with adm.context() as ctx:
                async with ctx.savepoint():
                    await ctx.store(Part).create(Part(id=1))
                with pytest.raises(RuntimeError):
                    async with ctx.savepoint():
                        await ctx.store(Part).create(Part(id=2))
                        raise RuntimeError("undo")
    assert _words(log) == ["BEGIN", "SAVEPOINT", "INSERT", "RELEASE SAVEPOINT",
                           "SAVEPOINT", "INSERT", "ROLLBACK TO SAVEPOINT", "COMMIT"], \
        log.statements()


# ---- 2. DDL ---------------------------------------------------------------------------

@stored
class Indexed:
    id: int
    name: str = field(default="", max_length=40, index=True)


def _sql_url(server: str, tmp_path: Path, name: str) -> str:
    if server == "sqlite":
        return f"sqlite:///{tmp_path}/{name}.db"
    from storeroom.backends.sql import testing
    require(server)
    return testing.fresh_url(server, f"{name}{uuid.uuid4().hex[:8]}")


def _check_ddl(log: QueryLog, system: str) -> None:
    mine = [r for r in log.records if r.backend == system]
    words = [r.statement.split()[0].upper() for r in mine]
    create = [r for r in mine if r.statement.startswith("CREATE TABLE")]
    index = [r for r in mine if r.statement.startswith("CREATE INDEX")]
    assert create and "indexed" in create[0].statement, log.statements()
    assert index and "name" in index[0].statement, log.statements()
    # the DDL's own transaction: BEGIN first, COMMIT after the DDL, then the INSERT
    assert words[0] == "BEGIN" and words[-1] == "INSERT", words
    assert words.index("COMMIT") > mine.index(index[-1]), words
    assert {r.collection for r in create + index} == {"indexed"}
    assert all(r.error is None for r in mine) and {r.engine for r in mine} == {None}


@pytest.mark.parametrize("server", ["sqlite", "postgres", "mysql"])
def test_sql_lazy_ddl_is_recorded(server: str, tmp_path: Path) -> None:
    url = _sql_url(server, tmp_path, "ddl")
    system = {"postgres": "postgresql"}.get(server, server)
    with QueryLog() as log:
        s = open_store(Indexed, url)
        try:
            s.create(Indexed(id=1, name="a"))
        finally:
            s.close()
    _check_ddl(log, system)


async def test_async_sql_lazy_ddl_is_recorded(tmp_path: Path) -> None:
    async with QueryLog() as log:
        s = open_async_store(Indexed, f"sqlite:///{tmp_path}/addl.db")
        try:
            await s.create(Indexed(id=1, name="a"))
        finally:
            await s.close()
    _check_ddl(log, "sqlite")


def test_sql_ddl_in_a_context_names_the_engine(tmp_path: Path) -> None:
    dm = DataManager()
    dm.add_engine("primary", f"sqlite:///{tmp_path}/cddl.db")
    dm.register_models(Indexed)
    try:
        with QueryLog() as log, dm.context() as ctx:
            ctx.store(Indexed).create(Indexed(id=1))
    finally:
        dm.close()
    ddl = [r for r in log.records if r.statement.startswith("CREATE")]
    assert len(ddl) == 2 and {r.engine for r in ddl} == {"primary"}, log.statements()


def test_a_failed_ddl_statement_is_recorded_with_its_error(tmp_path: Path) -> None:
    import sqlite3
    path = tmp_path / "bad.db"
    raw = sqlite3.connect(path)
    # the name of the model's index is taken (on another table): CREATE INDEX fails
    raw.execute("CREATE TABLE other (x INTEGER)")
    raw.execute(f"CREATE INDEX {_index_name()} ON other (x)")
    raw.close()
    with QueryLog() as log:
        s = open_store(Indexed, f"sqlite:///{path}")
        try:
            with pytest.raises(StoreroomError):
                s.create(Indexed(id=1))
        finally:
            s.close()
    failed = [r for r in log.records if r.error]
    assert failed and failed[0].statement.startswith("CREATE INDEX"), log.records
    assert failed[0].error == "OperationalError"
    assert log.statements()[-1] == "ROLLBACK", log.statements()


def _index_name() -> str:
    with QueryLog() as log:
        s = open_store(Indexed, "sqlite://")
        s.create_tables()
        s.close()
    made = [r.statement for r in log.records if r.statement.startswith("CREATE INDEX")]
    return made[0].split()[2]


def test_the_bookkeeping_table_is_recorded(tmp_path: Path) -> None:
    s = open_store(Indexed, f"sqlite:///{tmp_path}/bk.db")
    try:
        s.create(Indexed(id=1))
        s.create(Indexed(id=2))
        with QueryLog() as log:
            assert s.search(limit=1).next is not None  # a cursor: the secret is made
    finally:
        s.close()
    meta = [r for r in log.records if r.collection == "storeroom_meta"]
    assert any(r.statement.startswith("CREATE TABLE IF NOT EXISTS storeroom_meta")
               for r in meta), log.statements()
    assert any(r.statement.startswith("INSERT") for r in meta), log.statements()


_DDL_SERVERS = {
    "mongodb": ("storeroom.backends.mongodb.testing", (), "mongodb", "createIndexes"),
    "dynamodb": ("storeroom.backends.dynamodb.testing", ("dynamodb",), "aws.dynamodb",
                 "CreateTable"),
}


@pytest.mark.parametrize("backend", sorted(_DDL_SERVERS))
def test_store_backend_ddl_is_recorded(backend: str) -> None:
    import importlib

    module, args, system, ddl = _DDL_SERVERS[backend]
    testing = importlib.import_module(module)
    reason = testing.unavailable_reason(*args)
    if reason:
        skip_or_fail(f"{backend}: {reason}")
    url = testing.fresh_url(*args, f"ddl{uuid.uuid4().hex[:8]}")
    with QueryLog() as log:
        s = open_store(Indexed, url)
        try:
            s.create(Indexed(id=1, name="a"))
        finally:
            s.close()
    made = [r for r in log.records if r.statement == ddl]
    assert made and {r.backend for r in made} == {system}, log.statements()


# ---- 3. a user's MongoDB client -------------------------------------------------------

def _mongo_url() -> str:
    from storeroom.backends.mongodb import testing
    reason = testing.unavailable_reason()
    if reason:
        skip_or_fail(f"mongodb: {reason}")
    return testing.fresh_url(f"uc{uuid.uuid4().hex[:8]}")


def _mongo_commands(log: QueryLog) -> list[str]:
    return [r.statement for r in log.records if r.backend == "mongodb"]


def test_a_users_mongo_client_is_observed() -> None:
    from pymongo import MongoClient
    url = _mongo_url()
    client: MongoClient[Any] = MongoClient(url)  # made without storeroom's listener
    try:
        s = open_store(Part, url, client=client)
        s.create(Part(id=0))  # the collection made before the log opens
        with QueryLog() as log:
            s.create(Part(id=1))
            assert s.read(1) == Part(id=1)
        # one record per command: a second store on the client adds no second listener
        other = open_store(Indexed, url, client=client)
        with QueryLog() as again:
            s.read(1)
        other.close()
        s.close()
    finally:
        client.close()
    assert _mongo_commands(log) == ["insert", "find"], log.statements()
    assert {r.collection for r in log.records} == {"part"}
    assert _mongo_commands(again) == ["find"], again.statements()


async def test_a_users_async_mongo_client_is_observed() -> None:
    from pymongo import AsyncMongoClient
    url = _mongo_url()
    client: AsyncMongoClient[Any] = AsyncMongoClient(url)
    try:
        s = open_async_store(Part, url, client=client)
        await s.create(Part(id=0))
        async with QueryLog() as log:
            await s.create(Part(id=1))
            assert await s.read(1) == Part(id=1)
        await s.close()
    finally:
        await client.close()
    assert _mongo_commands(log) == ["insert", "find"], log.statements()


def test_a_users_mongo_client_as_an_engine_option_is_observed() -> None:
    from pymongo import MongoClient
    url = _mongo_url()
    client: MongoClient[Any] = MongoClient(url)
    dm = DataManager()
    dm.add_engine("docs", url, client=client)
    dm.register_models(Part)
    try:
        with dm.context() as ctx:
            ctx.store(Part).create(Part(id=0))
        with QueryLog() as log, dm.context() as ctx:
            assert ctx.store(Part).read(0) == Part(id=0)
    finally:
        dm.close()
        client.close()
    mine = [r for r in log.records if r.backend == "mongodb"]
    # the read, then the context's commitTransaction (when the server runs transactions)
    assert [r.statement for r in mine][:1] == ["find"], mine
    assert {r.engine for r in mine} == {"docs"}, mine


def test_sql_ddl_in_the_contexts_own_transaction_is_recorded(tmp_path: Path) -> None:
    # SQLite: a context holding the writer creates tables in its own transaction
    dm = DataManager()
    dm.add_engine("primary", f"sqlite:///{tmp_path}/held.db")
    dm.register_models(Part)
    try:
        with dm.context() as ctx:
            ctx.store(Part).create(Part(id=0))
        dm.register_models(Indexed)
        with QueryLog() as log, dm.context() as ctx:
            ctx.store(Part).create(Part(id=1))  # the context holds the connection now
            ctx.store(Indexed).create(Indexed(id=1))
    finally:
        dm.close()
    words = _words(log)
    assert words[:2] == ["BEGIN", "INSERT"] and words[-2:] == ["INSERT", "COMMIT"], words
    assert words.count("BEGIN") == 1 and "CREATE" in words, log.statements()
    assert {r.engine for r in log.records} == {"primary"}


@pytest.mark.parametrize("server", ["postgres", "mysql"])
def test_a_context_savepoint_is_recorded_on_servers(server: str, tmp_path: Path) -> None:
    url = _sql_url(server, tmp_path, "sp")
    dm = DataManager()
    dm.add_engine("primary", url)
    dm.register_models(Part)
    try:
        with dm.context() as ctx:
            ctx.store(Part).create(Part(id=0))
        with QueryLog() as log, dm.context() as ctx:
            with ctx.savepoint():
                ctx.store(Part).create(Part(id=1))
            with pytest.raises(RuntimeError), ctx.savepoint():
                ctx.store(Part).create(Part(id=2))
                raise RuntimeError("undo")
    finally:
        dm.close()
    assert _words(log, {"postgres": "postgresql"}.get(server, server)) == [
        "BEGIN", "SAVEPOINT", "INSERT", "RELEASE SAVEPOINT", "SAVEPOINT", "INSERT",
        "ROLLBACK TO SAVEPOINT", "COMMIT"], log.statements()

"""Named engines on SQLite (sync): laziness, unit of work, savepoints, replicas, read-only."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from storeroom.context import Context, DataManager, ReadOnlyError

INSERT = text("INSERT INTO t (id, v) VALUES (:id, :v)")


def rows(db_url: str) -> list[tuple[int, str]]:
    """What is really in the file (read with the stdlib driver)."""
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        return list(conn.execute("SELECT id, v FROM t ORDER BY id"))


@pytest.fixture
def dm(db_url: str) -> Iterator[DataManager]:
    manager = DataManager()
    manager.add_engine("writer", db_url, default=True)
    with manager.context() as ctx:
        ctx.engines.writer.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    yield manager
    manager.close()


def checkouts(engine: Any) -> list[int]:
    counter = [0]

    @event.listens_for(engine.pool, "checkout")
    def _count(*args: Any) -> None:
        counter[0] += 1

    return counter


def test_engines_are_lazy_and_untouched_engines_never_open(dm: DataManager, tmp_path: Any) -> None:
    dm.add_engine("logger", f"sqlite:///{tmp_path / 'log.db'}")
    # an engine whose server does not exist: touching its pool would fail
    dm.add_engine("ghost", "postgresql://nobody@127.0.0.1:1/none")
    logger_checkouts = checkouts(dm.get_engine("logger"))
    ghost_checkouts = checkouts(dm.get_engine("ghost"))
    with dm.context() as ctx:
        assert ctx.engines.status == {"writer": "init", "logger": "init", "ghost": "init"}
        conn = ctx.engines.writer
        assert conn is ctx.engines.get("writer") is ctx.engines.get()
        assert ctx.engines.status["writer"] == "start"
        assert ctx.engines.opened == ("writer",)
    assert ctx.engines.status == {"writer": "end", "logger": "init", "ghost": "init"}
    assert logger_checkouts == [0] and ghost_checkouts == [0]
    assert dm.get_engine("logger").pool.checkedout() == 0
    assert dm.get_engine("ghost").pool.checkedout() == 0
    assert dm.get_engine("writer").pool.checkedout() == 0


def test_unknown_engine_and_use_after_end(dm: DataManager) -> None:
    with dm.context() as ctx:
        with pytest.raises(AttributeError, match="nope"):
            ctx.engines.nope  # noqa: B018
        with pytest.raises(KeyError, match="nope"):
            ctx.engines.get("nope")
    with pytest.raises(RuntimeError):
        ctx.engines.writer  # noqa: B018


def test_clean_context_commits_and_raising_one_leaves_no_trace(dm: DataManager, db_url: str) -> None:
    with dm.context() as ctx:
        ctx.engines.writer.execute(INSERT, {"id": 1, "v": "kept"})
    with pytest.raises(ValueError):
        with dm.context() as ctx:
            ctx.engines.writer.execute(INSERT, {"id": 2, "v": "lost"})
            raise ValueError()
    assert rows(db_url) == [(1, "kept")]


@pytest.mark.parametrize("how", ["suppress", "replace"])
def test_rolled_back_when_middleware_suppresses_or_replaces(db_url: str, how: str) -> None:
    def mw(ctx: Context) -> Iterator[None]:
        try:
            yield
        except ValueError:
            if how == "replace":
                raise KeyError("replaced") from None

    dm = DataManager()
    dm.add_engine("w", db_url)
    with dm.context() as ctx:
        ctx.engines.w.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    dm.register_context_middleware(mw)
    try:
        with dm.context() as ctx:
            ctx.engines.w.execute(INSERT, {"id": 1, "v": "x"})
            raise ValueError()
    except KeyError:
        assert how == "replace"
    assert rows(db_url) == []


def test_middleware_teardown_error_rolls_back(db_url: str) -> None:
    def mw(ctx: Context) -> Iterator[None]:
        yield
        raise KeyError("late")

    dm = DataManager()
    dm.add_engine("w", db_url)
    with dm.context() as ctx:
        ctx.engines.w.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    dm.register_context_middleware(mw)
    with pytest.raises(KeyError):
        with dm.context() as ctx:
            ctx.engines.w.execute(INSERT, {"id": 1, "v": "x"})
    assert rows(db_url) == []


def test_middleware_writes_are_part_of_the_unit_of_work(db_url: str) -> None:
    def audit(ctx: Context) -> Iterator[None]:
        yield
        ctx.engines.w.execute(INSERT, {"id": 99, "v": "audit"})

    dm = DataManager()
    dm.add_engine("w", db_url)
    with dm.context() as ctx:
        ctx.engines.w.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    dm.register_context_middleware(audit)
    with dm.context():
        pass
    assert rows(db_url) == [(99, "audit")]


def test_savepoint_rollback_keeps_outer_work(dm: DataManager, db_url: str) -> None:
    with dm.context() as ctx:
        conn = ctx.engines.writer
        conn.execute(INSERT, {"id": 1, "v": "outer"})
        with ctx.savepoint():
            conn.execute(INSERT, {"id": 2, "v": "released"})
            with pytest.raises(ZeroDivisionError):
                with ctx.savepoint():
                    conn.execute(INSERT, {"id": 3, "v": "rolled back"})
                    1 / 0  # noqa: B018
            conn.execute(INSERT, {"id": 4, "v": "after inner"})
    assert rows(db_url) == [(1, "outer"), (2, "released"), (4, "after inner")]


def test_engine_opened_inside_a_savepoint_joins_it(dm: DataManager, db_url: str) -> None:
    with dm.context() as ctx:
        with pytest.raises(ZeroDivisionError):
            with ctx.savepoint():
                ctx.engines.writer.execute(INSERT, {"id": 1, "v": "x"})
                1 / 0  # noqa: B018
        ctx.engines.writer.execute(INSERT, {"id": 2, "v": "y"})
    assert rows(db_url) == [(2, "y")]


def test_autocommit_commits_per_statement(dm: DataManager, db_url: str) -> None:
    with pytest.raises(ValueError):
        with dm.context(autocommit=True) as ctx:
            ctx.engines.writer.execute(INSERT, {"id": 1, "v": "committed"})
            assert rows(db_url) == [(1, "committed")]  # visible to another connection already
            with pytest.raises(RuntimeError):
                with ctx.savepoint():
                    pass  # pragma: no cover
            raise ValueError()
    assert rows(db_url) == [(1, "committed")]
    # the pooled connection went back in transactional mode
    with pytest.raises(ValueError):
        with dm.context() as ctx:
            ctx.engines.writer.execute(INSERT, {"id": 2, "v": "lost"})
            raise ValueError()
    assert rows(db_url) == [(1, "committed")]


def test_on_commit_runs_after_success_only(dm: DataManager, db_url: str) -> None:
    seen: list[Any] = []
    with dm.context() as ctx:
        ctx.engines.writer.execute(INSERT, {"id": 1, "v": "x"})
        ctx.on_commit(lambda: seen.append(rows(db_url)))
        assert seen == []
    assert seen == [[(1, "x")]]  # committed before the callback ran
    with pytest.raises(ValueError):
        with dm.context() as ctx:
            ctx.on_commit(lambda: seen.append("never"))
            raise ValueError()
    assert seen == [[(1, "x")]]


def test_nested_context_has_its_own_transaction(dm: DataManager, db_url: str) -> None:
    # DEFERRED: the outer context that only read holds no write lock (IMMEDIATE would)
    dm.add_engine("deferred", f"{db_url}?transaction_mode=DEFERRED")
    with pytest.raises(ValueError):
        with dm.context() as outer:
            outer_conn = outer.engines.deferred
            assert outer_conn.execute(text("SELECT count(*) FROM t")).scalar() == 0
            with dm.context() as inner:
                assert inner.engines.deferred is not outer_conn
                inner.engines.deferred.execute(INSERT, {"id": 1, "v": "inner"})
            raise ValueError()
    assert rows(db_url) == [(1, "inner")]


def test_nested_context_waits_for_the_write_lock_of_its_parent(dm: DataManager,
                                                               db_url: str) -> None:
    # IMMEDIATE (the default): the outer context holds the write lock from its BEGIN
    dm.add_engine("impatient", db_url, busy_timeout=50)
    with dm.context() as outer:
        outer.engines.impatient.execute(text("SELECT count(*) FROM t"))
        with pytest.raises(OperationalError, match="locked"), dm.context() as inner:
            inner.engines.impatient.execute(text("SELECT count(*) FROM t"))
    assert rows(db_url) == []


def test_pool_is_empty_after_contexts(dm: DataManager) -> None:
    for i in range(20):
        try:
            with dm.context() as ctx:
                ctx.engines.writer.execute(INSERT, {"id": i, "v": "x"})
                if i % 2:
                    raise ValueError()
        except ValueError:
            pass
    assert dm.get_engine().pool.checkedout() == 0


# replicas and read-only ---------------------------------------------------
def test_same_file_reader_is_a_replica_and_reads_route(dm: DataManager, db_url: str) -> None:
    dm.add_engine("reader", db_url, read_only=True)
    assert dm.engine_role("reader")["primary"] == "writer"
    assert dm.engine_role("writer")["replica"] == "reader"
    with dm.context() as ctx:
        engines = ctx.engines
        assert engines.for_read("writer") is engines.reader
        assert engines.connection_for("reader") is engines.reader
        assert not engines.wrote("writer")
        w = engines.connection_for("writer", write=True)
        assert w is engines.writer
        w.execute(INSERT, {"id": 1, "v": "mine"})
        assert engines.wrote("writer") and engines.wrote("reader")
        # read-your-writes: reads now go to the writer and see the uncommitted row
        conn = engines.for_read("writer")
        assert conn is engines.writer
        assert engines.connection_for("reader") is engines.writer
        assert conn.execute(text("SELECT v FROM t")).scalar() == "mine"
        # a write through a replica goes to its primary
        assert engines.for_write("reader") is engines.writer
    assert rows(db_url) == [(1, "mine")]


def test_replica_of_names_the_primary(dm: DataManager, tmp_path: Any) -> None:
    dm.add_engine("copy", f"sqlite:///{tmp_path / 'copy.db'}", read_only=True, replica_of="writer")
    assert dm.engine_role("copy")["primary"] == "writer"
    other = DataManager()
    other.add_engine("ro", f"sqlite:///{tmp_path / 'other.db'}", read_only=True)
    assert other.engine_role("ro")["primary"] is None
    with other.context() as ctx:
        with pytest.raises(ReadOnlyError):
            ctx.engines.connection_for("ro", write=True)
        assert ctx.engines.status["ro"] == "init"  # refused before any connection
    with pytest.raises(ValueError):
        other.add_engine("bad", "sqlite://", replica_of="ro", read_only=True)
    with pytest.raises(ValueError):
        other.add_engine("bad", "sqlite://", replica_of="nope", read_only=True)
    with pytest.raises(ValueError):
        other.add_engine("bad", "sqlite://", replica_of="ro")


def test_write_through_read_only_engine_refused_before_database(
    dm: DataManager, db_url: str
) -> None:
    dm.add_engine("reader", db_url, read_only=True)
    statements: list[str] = []

    @event.listens_for(dm.get_engine("reader"), "after_cursor_execute")
    def _seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    with dm.context() as ctx:
        reader = ctx.engines.reader
        for sql in (
            "INSERT INTO t (id, v) VALUES (1, 'x')",
            "UPDATE t SET v = 'y'",
            "delete from t",
            "CREATE TABLE x (a int)",
            "WITH a AS (SELECT 1) INSERT INTO t (id, v) SELECT 1, 'z' FROM a",
        ):
            with pytest.raises(ReadOnlyError):
                reader.execute(text(sql))
        assert reader.execute(text("SELECT count(*) FROM t")).scalar() == 0
    assert not any("INSERT" in s or "UPDATE" in s for s in statements)
    assert rows(db_url) == []


def test_add_engine_errors(dm: DataManager) -> None:
    from storeroom.context import AlreadyExists

    with pytest.raises(AlreadyExists):
        dm.add_engine("writer", "sqlite://")
    with pytest.raises(ValueError):
        dm.add_engine("", "sqlite://")
    with pytest.raises(ValueError, match="replica_of"):
        dm.add_engine("r", "sqlite://", read_only=True, replica_of="nope")


def test_default_engine_and_close(db_url: str) -> None:
    dm = DataManager()
    dm.add_engine("a", "sqlite://")
    assert dm.default_engine == "a"
    dm.add_engine("b", db_url, default=True)
    assert dm.default_engine == "b"
    with dm:
        with dm.context() as ctx:
            assert ctx.engines.get() is ctx.engines.b
    with pytest.raises(RuntimeError):
        dm.context()

"""The first use of an async SQLite store costs a few thread hops, not a few dozen (issue 10).

A new aiosqlite connection gets storeroom's pragmas and functions in one call on its
thread (``engines._setup_on_thread``), and the table check of the first use is one read
there when the tables and their indexes exist (``sqlite_loop.tables_present``) instead
of SQLAlchemy's reflection through aiosqlite in a ``BEGIN IMMEDIATE`` transaction. When
anything is missing the check says so and ``create_all`` creates it as before: these
tests drop an index, rename one and leave a UNIQUE constraint's automatic index in place
of a unique index, and check what the async store's first use leaves behind.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from storeroom import Index, field, open_async_store, open_store, stored


@stored(key="id", table="fu_task", indexes=[Index("owner", "title")])
class FuTask:
    id: int
    owner: str = ""
    title: str = ""
    slug: str = field(default="", unique=True)
    tag: str = field(default="", index=True)


def _indexes(path: Path) -> dict[str, tuple[tuple[str, ...], bool]]:
    c = sqlite3.connect(path)
    try:
        out = {}
        for row in c.execute("PRAGMA index_list(fu_task)").fetchall():
            cols = tuple(r[2] for r in c.execute(f"PRAGMA index_info({row[1]})"))
            out[row[1]] = (cols, bool(row[2]))
        return out
    finally:
        c.close()


def _sql(path: Path, *statements: str) -> None:
    c = sqlite3.connect(path, isolation_level=None)
    try:
        for s in statements:
            c.execute(s)
    finally:
        c.close()


class _Hops:
    """Counts the calls that run on an aiosqlite connection's thread."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.names: list[str] = []
        plain = aiosqlite.Connection._execute

        async def counted(conn: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
            self.names.append(getattr(fn, "__name__", repr(fn)))
            return await plain(conn, fn, *args, **kwargs)

        monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)


async def test_first_use_on_an_existing_table_is_a_few_hops(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "db.sqlite"
    url = f"sqlite:///{path}?synchronous=NORMAL"
    with open_store(FuTask, url) as s:
        s.create(FuTask(id=1, owner="ann", slug="a"))
    hops = _Hops(monkeypatch)
    async with open_async_store(FuTask, url) as store:
        assert (await store.read(1)) == FuTask(id=1, owner="ann", slug="a")
        # SQLAlchemy's own first connect (its functions, PRAGMA read_uncommitted and a
        # rollback: 7 hops), storeroom's set-up (1), the table check (1); before: 39
        assert len(hops.names) <= 10, hops.names
        assert "_setup" in hops.names and "check" in hops.names, hops.names
        await store.read(1)
        await store.create(FuTask(id=2, slug="b"))
        assert len(hops.names) <= 10, hops.names  # and then none: statements run inline


async def test_first_use_adds_what_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    url = f"sqlite:///{path}"
    with open_store(FuTask, url) as s:
        s.create(FuTask(id=1, owner="ann", title="t", slug="a", tag="x"))
    made = _indexes(path)
    assert made["ix_fu_task_tag"] == (("tag",), False)
    # an older database: an index missing, one under another name
    _sql(path, "DROP INDEX ix_fu_task_tag",
         "CREATE INDEX old_name ON fu_task (owner, title)",
         "DROP INDEX ix_fu_task_owner_title")
    async with open_async_store(FuTask, url) as store:
        assert (await store.read(1)) is not None
    after = _indexes(path)
    assert after["ix_fu_task_tag"] == (("tag",), False)  # added back
    assert "old_name" in after and "ix_fu_task_owner_title" not in after  # not twice
    assert set(after) == (set(made) - {"ix_fu_task_owner_title"}) | {"old_name"}


async def test_a_unique_constraint_is_not_the_unique_index(tmp_path: Path) -> None:
    """As SQLAlchemy's reflection: a UNIQUE constraint's automatic index does not stand
    for the model's unique index (``create_all`` adds it)."""
    path = tmp_path / "db.sqlite"
    _sql(path, "CREATE TABLE fu_task (id INTEGER NOT NULL PRIMARY KEY, owner TEXT NOT NULL, "
               "title TEXT NOT NULL, slug TEXT NOT NULL UNIQUE, tag TEXT NOT NULL)",
         "CREATE INDEX a ON fu_task (owner, title)", "CREATE INDEX b ON fu_task (tag)")
    async with open_async_store(FuTask, f"sqlite:///{path}") as store:
        await store.create(FuTask(id=1, slug="a"))
    assert _indexes(path)["uq_fu_task_slug"] == (("slug",), True)


async def test_a_missing_table_is_created(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    _sql(path, "CREATE TABLE other (x INTEGER)")
    async with open_async_store(FuTask, f"sqlite:///{path}") as store:
        await store.create(FuTask(id=1, slug="a"))
        assert await store.count() == 1
    assert "ix_fu_task_tag" in _indexes(path)


async def test_pin_waits_off_the_loop_when_the_thread_has_the_connection(
        tmp_path: Path) -> None:
    """``pin`` / ``unpin`` set the busy timeout on the loop only when the connection's
    lock is free; while the thread holds it they queue behind it, and the loop ticks."""
    path = tmp_path / "db.sqlite"
    async with open_async_store(FuTask, f"sqlite:///{path}?synchronous=NORMAL") as store:
        await store.create(FuTask(id=1, slug="a"))
        driver: Any = store._base.src._idle[0]  # type: ignore[attr-defined]
        info = driver.info
        assert info is not None and driver.pinned
        held = threading.Event()
        release = threading.Event()

        def hold() -> None:
            with info.lock:
                held.set()
                release.wait(5)

        holder = threading.Thread(target=hold)
        holder.start()
        await asyncio.to_thread(held.wait)
        ticks: list[float] = []

        async def beat() -> None:
            for _ in range(15):
                ticks.append(time.perf_counter())
                await asyncio.sleep(0.01)
            release.set()

        beating = asyncio.create_task(beat())
        t0 = time.perf_counter()
        await driver.unpin()  # queued on the thread behind the holder
        waited = time.perf_counter() - t0
        await beating
        holder.join()
        assert waited >= 0.1  # it did wait for the lock, on the thread
        assert max(b - a for a, b in zip(ticks, ticks[1:], strict=False)) < 0.1
        assert driver.db.execute("PRAGMA busy_timeout").fetchone()[0] == info.busy_ms
        await driver.pin()  # the lock is free: inline
        assert driver.db.execute("PRAGMA busy_timeout").fetchone()[0] == 0


# --- the sync store: the same check, read on the caller's thread --------------------------
def test_sync_first_use_takes_no_write_lock_when_the_tables_exist(tmp_path: Path) -> None:
    """A sync store's first read on an existing database checks its tables with a few
    reads (``sqlite_loop.tables_present_sync``), not the reflection in a ``BEGIN
    IMMEDIATE`` transaction: another connection's write transaction does not make it
    wait or fail (WAL: readers never wait for the writer)."""
    path = tmp_path / "db.sqlite"
    url = f"sqlite:///{path}?busy_timeout=0"
    with open_store(FuTask, url) as s:
        s.create(FuTask(id=1, owner="ann", slug="a"))
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO fu_task VALUES (2, 'bob', '', 'b', '')")
        with open_store(FuTask, url) as s:
            assert s.read(1) == FuTask(id=1, owner="ann", slug="a")
            assert s.read(2) is None  # not committed
        writer.execute("COMMIT")
    finally:
        writer.close()


def test_sync_first_use_adds_what_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    url = f"sqlite:///{path}"
    with open_store(FuTask, url) as s:
        s.create(FuTask(id=1, owner="ann", title="t", slug="a", tag="x"))
    made = _indexes(path)
    _sql(path, "DROP INDEX ix_fu_task_tag", "CREATE INDEX old_name ON fu_task (owner, title)",
         "DROP INDEX ix_fu_task_owner_title")
    with open_store(FuTask, url) as s:
        assert s.read(1) is not None
    after = _indexes(path)
    assert set(after) == (set(made) - {"ix_fu_task_owner_title"}) | {"old_name"}
    unique = tmp_path / "u.sqlite"
    _sql(unique, "CREATE TABLE fu_task (id INTEGER NOT NULL PRIMARY KEY, owner TEXT NOT NULL, "
                 "title TEXT NOT NULL, slug TEXT NOT NULL UNIQUE, tag TEXT NOT NULL)",
         "CREATE INDEX a ON fu_task (owner, title)", "CREATE INDEX b ON fu_task (tag)")
    with open_store(FuTask, f"sqlite:///{unique}") as s:
        s.create(FuTask(id=1, slug="a"))
    assert _indexes(unique)["uq_fu_task_slug"] == (("slug",), True)

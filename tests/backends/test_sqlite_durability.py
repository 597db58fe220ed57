"""Issue 8.22: an acknowledged commit on SQLite is durable by default.

Stores and contexts ran ``synchronous=NORMAL``: in WAL mode no fsync per commit, so a
power loss could drop commits that had returned. The default is now SQLite's own,
``synchronous=FULL`` (the WAL is fsynced at every commit); ``?synchronous=NORMAL`` stays
as the documented opt-in. Checked on a new connection of a store and of a context.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from storeroom import open_async_store, open_store, stored
from storeroom.context import AsyncDataManager, DataManager

FULL, NORMAL = 2, 1


@stored(key="name")
class Entry:
    name: str


def _pragmas(conn: Any) -> tuple[int, str]:
    sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
    journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
    return sync, journal


def _store_pragmas(store: Any) -> tuple[int, str]:
    # a new connection of the store's own engine (the same set-up as every connection)
    engine = store._b.core.engine
    with engine.connect() as conn:
        return _pragmas(conn)


async def _async_store_pragmas(store: Any) -> tuple[int, str]:
    engine = store._b.core.engine
    async with engine.connect() as conn:
        return await conn.run_sync(_pragmas)


@pytest.mark.parametrize(("query", "expected"), [("", FULL), ("?synchronous=NORMAL", NORMAL),
                                                 ("?synchronous=full", FULL)])
def test_store_commits_are_durable_unless_told(tmp_path: Path, query: str,
                                               expected: int) -> None:
    with open_store(Entry, f"sqlite:///{tmp_path}/s.db{query}") as store:
        store.create(Entry(name="x"))
        assert _store_pragmas(store) == (expected, "wal")


@pytest.mark.parametrize(("query", "expected"), [("", FULL), ("?synchronous=NORMAL", NORMAL)])
async def test_async_store_commits_are_durable_unless_told(tmp_path: Path, query: str,
                                                           expected: int) -> None:
    async with open_async_store(Entry, f"sqlite:///{tmp_path}/a.db{query}") as store:
        await store.create(Entry(name="x"))
        assert await _async_store_pragmas(store) == (expected, "wal")


@pytest.mark.parametrize(("query", "options", "expected"), [
    ("", {}, FULL), ("?synchronous=NORMAL", {}, NORMAL), ("", {"synchronous": "NORMAL"}, NORMAL)])
def test_context_commits_are_durable_unless_told(tmp_path: Path, query: str,
                                                 options: dict[str, str], expected: int) -> None:
    with DataManager() as dm:
        dm.add_engine("db", f"sqlite:///{tmp_path}/c.db{query}", **options)
        with dm.context() as ctx:
            assert _pragmas(ctx.engines.db) == (expected, "wal")


async def test_async_context_commits_are_durable(tmp_path: Path) -> None:
    async with AsyncDataManager() as dm:
        dm.add_engine("db", f"sqlite:///{tmp_path}/ac.db")
        async with dm.context() as ctx:
            conn = await ctx.engines.db
            assert await conn.run_sync(_pragmas) == (FULL, "wal")


def test_bad_synchronous_value_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous must be one of"):
        open_store(Entry, f"sqlite:///{tmp_path}/x.db?synchronous=sometimes")


def test_raw_driver_reads_what_it_is_given(tmp_path: Path) -> None:
    # the check above reads the PRAGMA through SQLAlchemy: make sure it reports a change
    with DataManager() as dm:
        dm.add_engine("db", f"sqlite:///{tmp_path}/r.db")
        with dm.context(autocommit=True) as ctx:
            ctx.engines.db.execute(text("PRAGMA synchronous=OFF"))
            assert _pragmas(ctx.engines.db)[0] == 0

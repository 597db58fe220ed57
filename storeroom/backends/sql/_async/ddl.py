"""Running ``ddl.create_all`` on a connection of its own or on the caller's."""

from __future__ import annotations

from functools import partial
from typing import Any

from ....observe import OBSERVERS, Site, async_observed
from ..ddl import create_all, watched
from ..engines import BEGIN_OPTION

IS_ASYNC = True


async def create_tables(engine: Any, cores: list[Any], conn: Any = None, *,
                        engine_name: str | None = None,
                        collection: str | None = None) -> None:
    """Create the missing tables of ``cores``: in the open transaction of ``conn`` when
    given (the caller commits it), else in a transaction of their own, committed here.

    A transaction of their own on SQLite begins ``BEGIN IMMEDIATE`` whatever the engine's
    ``transaction_mode``: it checks and creates while holding the write lock. While
    something observes, every statement (and the own transaction's BEGIN / COMMIT /
    ROLLBACK) is recorded, named after ``engine_name`` and ``collection``.
    """
    fn: Any = partial(create_all, cores)
    logs = OBSERVERS.get()
    site = Site(engine.dialect.name, engine_name, collection) if logs else None
    if site is not None:
        fn = watched(fn, site, logs)
    if conn is not None:
        if site is None and await _present(conn, cores):
            return
        await conn.run_sync(fn)
        return
    own = await engine.connect()
    try:
        if site is None and await _present(own, cores):
            return  # nothing to create: no transaction, no write lock
        if own.dialect.name == "sqlite":
            own = await own.execution_options(**{BEGIN_OPTION: "BEGIN IMMEDIATE"})
        if site is None:
            async with own.begin():
                await own.run_sync(fn)
        else:
            await _observed_transaction(own, site, fn)
    finally:
        await own.close()


async def _present(conn: Any, cores: list[Any]) -> bool:
    """True when a SQLite connection's database has the tables of ``cores`` and their
    indexes already: async, ``sqlite_loop.tables_present`` (one call on its thread, not
    SQLAlchemy's reflection through aiosqlite); sync, ``tables_present_sync`` (a few
    PRAGMAs instead of the reflection, which was most of a sync store's first use).
    False elsewhere: ``create_all`` then checks and creates under the DDL lock. While
    something observes, the reflection is what it records."""
    if conn.dialect.name != "sqlite":
        return False
    if not IS_ASYNC:
        from ..sqlite_loop import tables_present_sync
        return tables_present_sync(conn, cores)
    from ..sqlite_loop import tables_present
    return bool(await tables_present(conn, cores))


async def _observed_transaction(own: Any, site: Site, fn: Any) -> None:
    # the DDL's own transaction with its control recorded (SQLite's BEGIN runs in the
    # "begin" event, before ``fn``'s statement listeners are on: recorded once)
    begin = "BEGIN IMMEDIATE" if own.dialect.name == "sqlite" else "BEGIN"
    tx = await async_observed(site, begin, None, own.begin)
    try:
        await own.run_sync(fn)
    except BaseException:
        if tx.is_active:
            await async_observed(site, "ROLLBACK", None, tx.rollback)
        raise
    await async_observed(site, "COMMIT", None, tx.commit)

"""The few driver calls storeroom makes on one DB-API connection, and where it comes from.

Statements run on the driver connection directly with SQL that SQLAlchemy compiled
once: the hot paths skip SQLAlchemy's execution layer, which costs more than the
database itself for point operations on SQLite. A standalone store takes its
connections from its engine's pool (``AsyncPooledSource``); a store bound to a context
uses the context's (``context_source``).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from sqlalchemy import pool as sa_pool

from ....errors import BackendError, Conflict, StoreroomError, ValidationError
from ....observe import OBSERVERS, Site, async_observed, autoconfigure
from ..engines import begin_statement
from ..schema import CHECK_NAMES
from .ddl import create_tables


def is_integrity_error(exc: BaseException) -> bool:
    """True for a driver's IntegrityError of a duplicate key or unique value (not a
    FOREIGN KEY's: ``is_reference_error``, nor a CHECK's: ``check_violation``)."""
    return (any(c.__name__ == "IntegrityError" for c in type(exc).__mro__)
            and not is_reference_error(exc) and check_violation(exc) is None)


_CK = re.compile(r"ck_[A-Za-z0-9_]+")


def check_violation(exc: BaseException) -> str | None:
    """The name of the ``@stored`` check whose CHECK constraint refused a write (the
    constraint's name is in every dialect's message), or None."""
    if not CHECK_NAMES:
        return None
    for found in _CK.findall(str(exc)):
        if found in CHECK_NAMES:
            return CHECK_NAMES[found]
    return None


def is_reference_error(exc: BaseException) -> bool:
    """True for a FOREIGN KEY violation (SQLite, PostgreSQL 23503, MySQL 1451 / 1452)."""
    return (any(c.__name__ == "IntegrityError" for c in type(exc).__mro__)
            and "foreign key" in str(exc).lower())


def wrap_error(exc: BaseException, what: str) -> StoreroomError:
    """A driver exception as a storeroom error with the original as its ``__cause__``;
    a storeroom error as it is. Raised without ``from``: ``raise e from e`` for an error
    that is already storeroom's would make it its own cause."""
    if isinstance(exc, StoreroomError):
        return exc
    err = _translate(exc, what)
    err.__cause__ = exc  # as ``raise err from exc`` (also suppresses the context)
    return err


def _translate(exc: BaseException, what: str) -> StoreroomError:
    """The storeroom error for a driver exception (``wrap_error``)."""
    if is_reference_error(exc):
        # storeroom checks references before writing: the FOREIGN KEY refuses what a
        # concurrent writer changed in between (a delete of the referenced item, or a
        # write referencing an item being deleted)
        if what.startswith("delete"):
            return Conflict(f"{what}: the item is referenced (on_delete='block'): {exc}")
        return ValidationError.one(None, None, "reference",
                                   f"{what}: a reference to a key no item has: {exc}")
    check = check_violation(exc)
    if check is not None:
        return ValidationError.one(None, None, check, f"{what}: the item does not satisfy "
                                   f"the check {check!r}")
    if is_integrity_error(exc):
        return Conflict(f"{what}: {exc}")
    from .drivers import is_connection_lost
    if is_connection_lost(exc):
        return BackendError(f"{what}: the connection to the database was lost "
                            f"({type(exc).__name__}: {exc}); the next call reconnects")
    return BackendError(f"{what}: {type(exc).__name__}: {exc}")


def _one_rows(row: Any) -> int:
    return 0 if row is None else 1


def _int(n: int) -> int | None:
    return n if isinstance(n, int) and n >= 0 else None


class AsyncDriver:
    """One driver connection: run statements, fetch rows, control transactions.

    ``begin_sql`` opens a transaction (SQLite: ``BEGIN IMMEDIATE`` unless the engine's
    ``transaction_mode`` says otherwise); ``sa`` is the SQLAlchemy connection it came
    from when a pooled source checked it out (None for a context's connection).
    """

    __slots__ = ("c", "in_tx", "_sp", "begin_sql", "sa", "site", "table")

    #: db.system.name of the dialect (the observer seam's ``QueryRecord.backend``)
    system = "sqlite"

    def __init__(self, conn: Any, in_tx: bool = False, begin_sql: str = "BEGIN",
                 sa: Any = None, info: Any = None) -> None:
        # info: the pool's record of the connection (SQLite's async driver reads it)
        self.c = conn
        self.in_tx = in_tx  # True while a transaction is open (ours or a context's)
        self._sp = 0
        self.begin_sql = begin_sql
        self.sa = sa
        self.site: Site | None = None  # built on the first observed round trip
        #: the store's table (the observer seam's db.collection.name), when one store's
        self.table: str | None = None

    def _site(self) -> Site:
        site = self.site
        if site is None:
            site = self.site = Site(self.system, collection=self.table)
        return site

    async def one(self, sql: str, params: Any) -> Any:
        """The first row, or None."""
        if OBSERVERS.get():
            return await async_observed(self._site(), sql, params,
                                        lambda: self.one(sql, params), _one_rows)
        cur = await self.c.execute(sql, params)
        return await cur.fetchone()

    async def all(self, sql: str, params: Any) -> list[Any]:
        """All rows."""
        if OBSERVERS.get():
            return await async_observed(self._site(), sql, params,
                                        lambda: self.all(sql, params), len)
        cur = await self.c.execute(sql, params)
        rows: list[Any] = await cur.fetchall()
        return rows

    async def run(self, sql: str, params: Any) -> int:
        """Execute; the number of rows changed."""
        if OBSERVERS.get():
            return await async_observed(self._site(), sql, params,
                                        lambda: self.run(sql, params), _int)
        cur = await self.c.execute(sql, params)
        count: int = cur.rowcount
        return count

    async def many(self, sql: str, rows: list[Any]) -> None:
        """Execute once per row of parameters."""
        if OBSERVERS.get():
            return await async_observed(self._site(), sql, rows,
                                        lambda: self.many(sql, rows), None)
        await self.c.executemany(sql, rows)

    async def insert_id(self, sql: str, params: Any) -> Any:
        """Execute an INSERT; the autoincrement value it generated."""
        if OBSERVERS.get():
            return await async_observed(self._site(), sql, params,
                                        lambda: self.insert_id(sql, params), _one_rows)
        cur = await self.c.execute(sql, params)
        return cur.lastrowid

    async def pin(self) -> None:
        """Prepare a connection a store keeps for itself (SQLite: already autocommit)."""

    async def unpin(self) -> None:
        """Undo ``pin`` before the connection goes back to SQLAlchemy's pool."""

    def broken(self) -> bool:
        """True when the connection can no longer be used."""
        return False

    async def begin(self) -> str | None:
        """Open a transaction, or a savepoint inside the open one; the savepoint's name."""
        if OBSERVERS.get():
            sql = f"SAVEPOINT sr_{self._sp + 1}" if self.in_tx else self.begin_sql
            return await async_observed(self._site(), sql, None, self.begin)
        if self.in_tx:
            self._sp += 1
            name = f"sr_{self._sp}"
            await self.c.execute(f"SAVEPOINT {name}")
            return name
        await self.c.execute(self.begin_sql)
        self.in_tx = True
        return None

    async def commit(self, savepoint: str | None) -> None:
        """Commit what ``begin`` opened."""
        if OBSERVERS.get():
            sql = f"RELEASE SAVEPOINT {savepoint}" if savepoint else "COMMIT"
            return await async_observed(self._site(), sql, None,
                                        lambda: self.commit(savepoint))
        if savepoint is not None:
            await self.c.execute(f"RELEASE SAVEPOINT {savepoint}")
            return
        self.in_tx = False
        await self.c.execute("COMMIT")

    async def rollback(self, savepoint: str | None) -> None:
        """Roll back what ``begin`` opened."""
        if OBSERVERS.get():
            sql = f"ROLLBACK TO SAVEPOINT {savepoint}" if savepoint else "ROLLBACK"
            return await async_observed(self._site(), sql, None,
                                        lambda: self.rollback(savepoint))
        if savepoint is not None:
            await self.c.execute(f"ROLLBACK TO SAVEPOINT {savepoint}")
            await self.c.execute(f"RELEASE SAVEPOINT {savepoint}")
            return
        self.in_tx = False
        await self.c.execute("ROLLBACK")


class AsyncPooledSource:
    """A standalone store's connections, checked out of its engine's pool as callers need them.

    One caller at a time reuses one connection (the hot path is a list pop and append,
    no pool checkout); concurrent callers (threads, tasks) each get their own, up to
    what the engine's pool allows (``pool_size`` + ``max_overflow``, then it waits
    ``pool_timeout``). Idle connections stay checked out by the store, at most the pool's
    ``pool_size`` of them: the others go back to the pool. A connection runs in
    autocommit mode (``pin``), so single statements commit by themselves and ``begin``
    opens a transaction explicitly. ``close`` returns every connection and disposes of
    the engine. An engine with a single connection (in-memory SQLite: ``StaticPool``)
    serves one caller at a time.
    """

    def __init__(self, engine: Any, collection: str | None = None) -> None:
        autoconfigure()  # the observer seam: loggers / tracing set up before the store
        self.engine = engine
        self.collection = collection  # the store's table, named on its observed records
        self._idle: list[AsyncDriver] = []
        self._dead: list[AsyncDriver] = []
        self._all: set[AsyncDriver] = set()
        pool = engine.pool
        single = isinstance(pool, sa_pool.StaticPool)
        # one caller at a time on a single shared connection
        self._gate = asyncio.Lock() if single else None
        size = pool.size() if isinstance(pool, sa_pool.QueuePool) else 1
        self._keep = max(1, size)
        self._begin = begin_statement(engine)
        self._driver_class: type[AsyncDriver] | None = None

    async def acquire(self, write: bool = True) -> AsyncDriver:
        """A connection for one operation, the caller's until ``release``."""
        gate = self._gate
        if gate is not None:
            await gate.acquire()
        idle = self._idle
        try:
            driver = idle.pop()
        except IndexError:
            return await self._open()
        if len(idle) >= self._keep:  # more idle than the pool keeps (after a burst)
            try:
                await self._give_back()
            except BaseException:  # cancelled: keep the connection for the next caller
                idle.append(driver)
                raise
        return driver

    def release(self, driver: AsyncDriver) -> None:
        """Give the connection back (a broken one is discarded on the next ``acquire``)."""
        if driver.broken():
            self._dead.append(driver)
        else:
            self._idle.append(driver)
        if self._gate is not None:
            self._gate.release()

    async def create_tables(self, core: Any) -> None:
        """Create the store's table in a transaction of its own (``ddl.create_all``)."""
        gate = self._gate
        if gate is not None:
            await gate.acquire()
        try:
            await create_tables(self.engine, [core], collection=self.collection)
        finally:
            if gate is not None:
                gate.release()
        core.ready = True

    async def _open(self) -> AsyncDriver:
        try:
            await self._discard_dead()
            conn = await self.engine.connect()
            try:
                raw = await conn.get_raw_connection()
                cls = self._driver_class
                if cls is None:
                    from .drivers import driver_class
                    cls = self._driver_class = driver_class(self.engine.dialect.name)
                driver = cls(raw.driver_connection, False, self._begin, conn, raw.info)
                driver.table = self.collection
                await driver.pin()
            except BaseException:
                await _invalidate(conn)
                raise
        except BaseException:
            if self._gate is not None:
                self._gate.release()
            raise
        self._all.add(driver)
        return driver

    async def _give_back(self) -> None:
        try:
            driver = self._idle.pop(0)  # the longest idle
        except IndexError:
            return
        self._all.discard(driver)
        try:
            await driver.unpin()
            await driver.sa.close()
        except Exception:
            await _invalidate(driver.sa)

    async def _discard_dead(self) -> None:
        # connections that were lost: invalidate them so the pool reconnects
        while True:
            try:
                driver = self._dead.pop()
            except IndexError:
                return
            self._all.discard(driver)
            await _invalidate(driver.sa)

    async def close(self) -> None:
        """Return every connection to the pool and dispose of the engine."""
        gate = self._gate
        if gate is not None:
            await gate.acquire()
        try:
            await self._discard_dead()
            # connections still lent to callers are closed too: the store is closed
            for driver in list(self._all):
                self._all.discard(driver)
                try:
                    if driver.in_tx:
                        await driver.rollback(None)
                    await driver.unpin()
                    await driver.sa.close()
                except Exception:
                    await _invalidate(driver.sa)
            self._idle.clear()
        finally:
            if gate is not None:
                gate.release()
        await self.engine.dispose()


async def _invalidate(conn: Any) -> None:
    try:
        await conn.invalidate()
        await conn.close()
    except Exception:  # noqa: S110 - it is gone either way
        pass

"""The few driver calls storeroom makes on one DB-API connection, and where it comes from.

Statements run on the driver connection directly with SQL that SQLAlchemy compiled
once: the hot paths skip SQLAlchemy's execution layer, which costs more than the
database itself for point operations on SQLite.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ....errors import BackendError, Conflict, StoreroomError


def is_integrity_error(exc: BaseException) -> bool:
    """True for a driver's IntegrityError (duplicate key or unique value)."""
    return any(c.__name__ == "IntegrityError" for c in type(exc).__mro__)


def wrap_error(exc: BaseException, what: str) -> StoreroomError:
    """A driver exception as a storeroom error (the original stays as ``__cause__``)."""
    if isinstance(exc, StoreroomError):
        return exc
    if is_integrity_error(exc):
        return Conflict(f"{what}: {exc}")
    from .drivers import is_connection_lost
    if is_connection_lost(exc):
        return BackendError(f"{what}: the connection to the database was lost "
                            f"({type(exc).__name__}: {exc}); the next call reconnects")
    return BackendError(f"{what}: {type(exc).__name__}: {exc}")


class AsyncDriver:
    """One driver connection: run statements, fetch rows, control transactions."""

    __slots__ = ("c", "in_tx", "_sp")

    def __init__(self, conn: Any, in_tx: bool = False) -> None:
        self.c = conn
        self.in_tx = in_tx  # True while a transaction is open (ours or a context's)
        self._sp = 0

    async def one(self, sql: str, params: Any) -> Any:
        """The first row, or None."""
        cur = await self.c.execute(sql, params)
        return await cur.fetchone()

    async def all(self, sql: str, params: Any) -> list[Any]:
        """All rows."""
        cur = await self.c.execute(sql, params)
        return await cur.fetchall()  # type: ignore[no-any-return]

    async def run(self, sql: str, params: Any) -> int:
        """Execute; the number of rows changed."""
        cur = await self.c.execute(sql, params)
        return cur.rowcount  # type: ignore[no-any-return]

    async def many(self, sql: str, rows: list[Any]) -> None:
        """Execute once per row of parameters."""
        await self.c.executemany(sql, rows)

    async def insert_id(self, sql: str, params: Any) -> Any:
        """Execute an INSERT; the autoincrement value it generated."""
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
        if self.in_tx:
            self._sp += 1
            name = f"sr_{self._sp}"
            await self.c.execute(f"SAVEPOINT {name}")
            return name
        await self.c.execute("BEGIN")
        self.in_tx = True
        return None

    async def commit(self, savepoint: str | None) -> None:
        """Commit what ``begin`` opened."""
        if savepoint is not None:
            await self.c.execute(f"RELEASE SAVEPOINT {savepoint}")
            return
        self.in_tx = False
        await self.c.execute("COMMIT")

    async def rollback(self, savepoint: str | None) -> None:
        """Roll back what ``begin`` opened."""
        if savepoint is not None:
            await self.c.execute(f"ROLLBACK TO SAVEPOINT {savepoint}")
            await self.c.execute(f"RELEASE SAVEPOINT {savepoint}")
            return
        self.in_tx = False
        await self.c.execute("ROLLBACK")


class AsyncPinnedSource:
    """A store's own connection, kept for its life and used by one caller at a time."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._conn: Any = None
        self._driver: AsyncDriver | None = None
        self._lock = asyncio.Lock()

    async def acquire(self, write: bool = True) -> AsyncDriver:
        """The driver connection, locked for the caller until ``release``."""
        await self._lock.acquire()
        if self._driver is None:
            try:
                if self._conn is not None:  # lost: replace it
                    await self._discard()
                self._conn = await self.engine.connect()
                raw = await self._conn.get_raw_connection()
                from .drivers import driver_class
                driver = driver_class(self.engine.dialect.name)(raw.driver_connection)
                await driver.pin()
            except BaseException:
                await self._discard()
                self._lock.release()
                raise
            self._driver = driver
        return self._driver

    def release(self, driver: AsyncDriver) -> None:
        """Give the connection back (a broken one is replaced on the next ``acquire``)."""
        if driver.broken() and driver is self._driver:
            self._driver = None
        self._lock.release()

    async def _discard(self) -> None:
        # a connection that failed or was lost: invalidate it so the pool reconnects
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.invalidate()
                await conn.close()
            except Exception:  # noqa: S110 - it is gone either way
                pass

    async def close(self) -> None:
        """Close the connection and dispose of the engine."""
        async with self._lock:
            if self._driver is not None:
                try:
                    await self._driver.unpin()
                except Exception:
                    await self._discard()
            if self._conn is not None:
                await self._conn.close()
                self._conn = None
                self._driver = None
        await self.engine.dispose()

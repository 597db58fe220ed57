"""Connections of a store bound to a context: the context's, inside its transaction."""

from __future__ import annotations

from typing import Any

from .driver import AsyncDriver
from .drivers import make_driver


class AsyncContextSource:
    """Takes each operation's connection from ``ctx.engines.connection_for``.

    Reads may go to a replica, writes go to the writer and mark the context as having
    written (read-your-writes). The context owns the transaction: storeroom only opens
    savepoints inside it (or its own transactions in an ``autocommit=True`` context),
    and never commits, rolls back or closes the context's connections.
    """

    holds_connections = False  # the context owns them: nothing to warn about

    def __init__(self, ctx: Any, engine_name: str | None) -> None:
        self.ctx = ctx
        self.name = engine_name
        self._drivers: dict[int, AsyncDriver] = {}
        # once the context wrote, every operation uses the writer (read-your-writes):
        # its driver is kept to skip routing on the hot path while the context lives
        self._writer: AsyncDriver | None = None

    async def acquire(self, write: bool = True) -> AsyncDriver:
        """The driver connection for one operation."""
        engines = self.ctx.engines
        w = self._writer
        if w is not None and not engines._ended:
            return w
        conn = await engines.connection_for(self.name, write)
        d = self._drivers.get(id(conn))
        if d is None:
            raw = await conn.get_raw_connection()
            d = make_driver(raw.driver_connection, conn.dialect.name,
                            in_tx=not self.ctx.autocommit)
            self._drivers[id(conn)] = d
        if write:
            self._writer = d
        return d

    def release(self, driver: AsyncDriver) -> None:
        """Nothing to give back: the context closes its connections."""

    async def ddl_connection(self) -> Any:
        """The connection to create tables on: the context's own for SQLite once it wrote
        (another connection would wait for the context's write lock), else None."""
        engines = self.ctx.engines
        if self.ctx.autocommit or not engines.wrote(self.name):
            return None
        conn = await engines.connection_for(self.name, True)
        return conn if conn.dialect.name == "sqlite" else None

    def after_commit(self, fn: Any) -> None:
        """Run ``fn`` once the context's transaction committed."""
        self.ctx.on_commit(fn)

    async def close(self) -> None:
        """Nothing to close: the context owns the connections."""

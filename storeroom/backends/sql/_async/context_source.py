"""Connections of a store bound to a context: the context's, inside its transaction."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from ....observe import Site
from ..ddl import mark_ready
from ..engines import begin_statement
from .ddl import create_tables
from .driver import AsyncDriver
from .drivers import make_driver


class AsyncContextSource:
    """Takes each operation's connection from ``ctx.engines.connection_for``.

    Reads may go to a replica, writes go to the writer and mark the context as having
    written (read-your-writes). The context owns the transaction: storeroom only opens
    savepoints inside it (or its own transactions in an ``autocommit=True`` context),
    and never commits, rolls back or closes the context's connections. ``tables()``
    gives the cores of every model registered on the engine: their tables are created
    together, on the engine's first use.
    """

    holds_connections = False  # the context owns them: nothing to warn about

    def __init__(self, ctx: Any, engine_name: str | None,
                 tables: Callable[[], list[Any]] | None = None,
                 collection: str | None = None) -> None:
        self.ctx = ctx
        self.collection = collection  # the store's table, named on its observed records
        self.name = engine_name
        self.tables = tables
        self._drivers: dict[int, AsyncDriver] = {}
        # once the context wrote, every operation uses the writer (read-your-writes):
        # its driver is kept to skip routing on the hot path while the context lives
        self._writer: AsyncDriver | None = None

    async def acquire(self, write: bool = True) -> AsyncDriver:
        """The driver connection for one operation."""
        engines = self.ctx.engines
        w = self._writer
        if w is not None and not engines.ended:
            return w
        conn = await engines.connection_for(self.name, write)
        d = self._drivers.get(id(conn))
        if d is None:
            raw = await conn.get_raw_connection()
            d = make_driver(raw.driver_connection, conn.dialect.name,
                            not self.ctx.autocommit, begin_statement(conn), raw.info)
            # the observer seam's QueryRecord.engine: the engine this connection is of
            d.site = Site(d.system, engines.name_of(conn) or self.name, self.collection)
            self._drivers[id(conn)] = d
        if write:
            self._writer = d
        return d

    def release(self, driver: AsyncDriver) -> None:
        """Nothing to give back: the context closes its connections."""

    async def create_tables(self, core: Any) -> None:
        """Create the missing tables of the engine's models (``core``'s among them).

        They are created on the writable engine (a replica's primary) before the
        context's first statement when they can be: then the context's transaction,
        whenever its snapshot started, sees them. On SQLite a context that already holds
        the writer's connection holds (or may take) its write lock, which another
        connection would wait for: the tables are created in the context's transaction
        there, and count as created once it commits. A read-only engine that replicates
        no writable one creates nothing: its tables are another program's.
        """
        ctx = self.ctx
        dm = ctx.data_manager
        role = dm.engine_role(self.name)
        writer = role["primary"] if role["read_only"] else role["name"]
        if writer is None:
            core.ready = True
            return
        cores = [c for c in (self.tables() if self.tables is not None else ()) if not c.ready]
        if core not in cores:
            cores.append(core)
        engine = dm.get_engine(writer)
        conn = await self._held_sqlite_writer(writer, engine)
        try:
            await create_tables(engine, cores, conn, engine_name=writer,
                                collection=self.collection)
        except Exception:
            if len(cores) == 1:
                raise
            # another model's table cannot be made: that must not stop this one
            cores = [core]
            await create_tables(engine, cores, conn, engine_name=writer,
                                collection=self.collection)
        if conn is not None:
            ctx.on_commit(partial(mark_ready, cores))
        else:
            mark_ready(cores)

    async def bookkeeping_connection(self) -> Any:
        """The connection storeroom's own bookkeeping (the cursor secret) must use in this
        context: the writer's when the context holds it on SQLite (another connection
        would wait for its write lock), else None (any connection will do)."""
        role = self.ctx.data_manager.engine_role(self.name)
        writer = role["primary"] if role["read_only"] else role["name"]
        if writer is None:
            return None
        return await self._held_sqlite_writer(writer, self.ctx.data_manager.get_engine(writer))

    def after_commit(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` once the context's transaction committed."""
        self.ctx.on_commit(fn)

    async def _held_sqlite_writer(self, writer: str, engine: Any) -> Any:
        """The context's connection to SQLite engine ``writer`` when it is open (then its
        transaction holds, or may take, the database's write lock), else None."""
        ctx = self.ctx
        if ctx.autocommit or engine.dialect.name != "sqlite" or writer not in ctx.engines.opened:
            return None
        return await ctx.engines.for_write(writer)

    async def close(self) -> None:
        """Nothing to close: the context owns the connections."""

"""``AsyncEngines``: the named engines of one context, opened lazily, one transaction each."""

from __future__ import annotations

from typing import Any

from ...errors import ReadOnlyError
from ...observe import OBSERVERS, Site, async_observed
from ..engine_specs import EngineSpec, EngineTopology
from ..sqlalchemy_setup import AUTOCOMMIT_OPTION, AsyncConnection
from ..states import ACTIVE, EXITING
from .store_engine import AsyncStoreUnit


class AsyncEngines:
    """``ctx.engines``: a lazily opened, memoized SQLAlchemy connection per named engine.

    ``await ctx.engines.get("writer")`` (or ``await ctx.engines["writer"]``, or
    ``await ctx.engines.writer`` for a name that is not an attribute of
    ``ctx.engines``) opens the engine's connection on first use and begins its
    transaction; later calls in the same context return the same connection.
    Engines a context never asks for are never touched. At the end of the context
    every opened connection commits (clean end) or rolls back (error) and is closed.
    A store engine (memory, MongoDB, ...) gives its :class:`AsyncStoreUnit`
    instead of a connection, and takes part in the same unit of work.

    Stores ask for connections with :meth:`connection_for`; reads go to a
    replica unless this context already wrote to its primary (read-your-writes).
    """

    __slots__ = ("_ctx", "_topology", "_conns", "_written", "ended", "_savepoints")

    def __init__(self, ctx: Any, topology: EngineTopology) -> None:
        self._ctx = ctx
        self._topology = topology
        self._conns: dict[str, Any] | None = None  # AsyncConnection or AsyncStoreUnit
        self._written: set[str] | None = None
        self.ended = False  # public: the SQL context source reads it on its hot path
        self._savepoints: list[Any] | None = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            self._topology.get(name)
        except KeyError as exc:
            raise AttributeError(exc.args[0]) from None
        return self.get(name)

    def __getitem__(self, name: str) -> Any:
        """``ctx.engines[name]``: as ``get(name)`` (awaited in the async flavor), any name.

        ``KeyError`` for a name that is no engine, at once (before any await).
        """
        if not isinstance(name, str):
            raise KeyError(name)
        self._topology.get(name)
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        """Whether ``name`` is an engine of the data manager."""
        return name in self._topology.specs

    def name_of(self, conn: Any) -> str | None:
        """The name of the engine whose open connection ``conn`` is (None if none)."""
        for name, c in (self._conns or {}).items():
            if c is conn:
                return name  # type: ignore[no-any-return]
        return None

    async def get(self, name: str | None = None) -> Any:
        """The connection of engine ``name`` (the default engine when ``None``).

        A SQLAlchemy ``AsyncConnection``, or for a store engine its ``AsyncStoreUnit``.
        """
        if name is None:
            name = self._topology.default
        conns = self._conns
        if conns is not None and name in conns and not self.ended:
            return conns[name]
        return await self._open(self._topology.get(name))

    async def _open(self, spec: EngineSpec) -> Any:
        ctx = self._ctx
        state = ctx._state
        if self.ended or (state != ACTIVE and state != EXITING):
            raise RuntimeError(
                f"engine {spec.name!r} used outside an active context (the context is {ctx.state})"
            )
        if not spec.is_sql:
            unit = AsyncStoreUnit(self, spec.name, ctx.autocommit)
            if self._conns is None:
                self._conns = {}
            self._conns[spec.name] = unit
            return unit
        conn = await spec.engine.connect()
        try:
            if ctx.autocommit:
                if spec.is_sqlite:
                    conn = await conn.execution_options(**{AUTOCOMMIT_OPTION: True})
                else:
                    conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            else:
                if OBSERVERS.get():  # the observer seam records the transaction control
                    await async_observed(_site(spec.name, conn), "BEGIN", None, conn.begin)
                else:
                    await conn.begin()
                if self._savepoints:
                    for savepoint in self._savepoints:
                        await savepoint._join(spec.name, conn)
        except BaseException:
            await conn.close()
            raise
        conns = self._conns
        if conns is None:
            conns = self._conns = {}
        elif spec.name in conns:  # another task of this context opened it meanwhile
            await conn.close()
            return conns[spec.name]
        conns[spec.name] = conn
        return conn

    # routing ------------------------------------------------------------
    async def for_read(self, name: str | None = None) -> AsyncConnection:
        """A connection to read the data of engine ``name`` (default engine when ``None``).

        A writable engine with a replica reads from the replica until this
        context wrote to the writable one; a replica whose primary this
        context wrote to reads from the primary (read-your-writes).
        """
        spec = self._topology.get(name)
        written = self._written
        if spec.read_only:
            if spec.primary is not None and written is not None and spec.primary in written:
                return await self.get(spec.primary)
            return await self.get(spec.name)
        if spec.replica is not None and (written is None or spec.name not in written):
            return await self.get(spec.replica)
        return await self.get(spec.name)

    async def for_write(self, name: str | None = None) -> AsyncConnection:
        """A connection to write the data of engine ``name``; marks the context as having written.

        ``name`` may be a replica: its primary is used. A read-only engine
        without a primary raises ``ReadOnlyError`` before any connection opens.
        """
        target = self._writable(name)
        self.mark_written(target)
        return await self.get(target)

    async def connection_for(self, name: str | None = None, write: bool = False) -> AsyncConnection:
        """What a store calls before each operation: ``for_write(name)`` or ``for_read(name)``."""
        if write:
            return await self.for_write(name)
        return await self.for_read(name)

    async def _store_backend(self, name: str, shared: Any, write: bool) -> Any:
        """What a store on store engine ``name`` runs each operation on (see
        :class:`AsyncStoreUnit`); a write marks the context as having written."""
        conns = self._conns
        unit: Any = conns.get(name) if conns is not None and not self.ended else None
        if unit is None:
            unit = await self._open(self._topology.get(name))
        if write:
            if self._written is None:
                self._written = {name}
            else:
                self._written.add(name)
        return await unit.backend(shared)

    def _writable(self, name: str | None) -> str:
        spec = self._topology.get(name)
        if not spec.read_only:
            return spec.name
        if spec.primary is None:
            raise ReadOnlyError(f"engine {spec.name!r} is read-only and replicates no writable engine")
        return spec.primary

    def mark_written(self, name: str | None = None) -> None:
        """Record that this context wrote to engine ``name`` (reads then go to it)."""
        target = self._writable(name)
        if self._written is None:
            self._written = {target}
        else:
            self._written.add(target)

    def wrote(self, name: str | None = None) -> bool:
        """Whether this context wrote to engine ``name`` (or its primary)."""
        return self._written is not None and self._writable(name) in self._written

    # introspection ------------------------------------------------------
    @property
    def status(self) -> dict[str, str]:
        """Each engine's state in this context: ``init`` (untouched), ``start`` (open), ``end`` (closed)."""
        conns = self._conns or {}
        opened = "end" if self.ended else "start"
        return {name: (opened if name in conns else "init") for name in self._topology.specs}

    @property
    def names(self) -> tuple[str, ...]:
        """The names of every engine of the data manager."""
        return tuple(self._topology.specs)

    @property
    def opened(self) -> tuple[str, ...]:
        """The engines this context opened, in order of opening."""
        return tuple(self._conns or ())

    @property
    def default(self) -> str | None:
        """The name of the default engine."""
        return self._topology.default

    # unit of work -------------------------------------------------------
    async def _finish(self, commit: bool) -> BaseException | None:
        """Commit (or roll back) and close every opened connection; the first error, if any."""
        self.ended = True
        conns = self._conns
        if not conns:
            return None
        error: BaseException | None = None
        watched = OBSERVERS.get()  # the observer seam records COMMIT / ROLLBACK of SQL ones
        for name, conn in conns.items():
            try:
                if watched and not isinstance(conn, AsyncStoreUnit) and \
                        not self._ctx.autocommit:
                    if commit and error is None:
                        await async_observed(_site(name, conn), "COMMIT", None, conn.commit)
                    else:
                        await async_observed(_site(name, conn), "ROLLBACK", None,
                                             conn.rollback)
                elif commit and error is None:
                    await conn.commit()
                else:
                    await conn.rollback()
            except BaseException as exc:  # noqa: BLE001
                if error is None:
                    error = exc
        for conn in conns.values():
            try:
                await conn.close()
            except BaseException as exc:  # noqa: BLE001
                if error is None:
                    error = exc
        return error

    def savepoint(self, name: str | None = None) -> Savepoint:
        """A savepoint on every open engine (or only engine ``name``); see ``ctx.savepoint``."""
        if name is not None:
            name = self._topology.get(name).name
        return Savepoint(self, name)

    def __repr__(self) -> str:
        return f"<AsyncEngines {self.status}>"


def _site(name: str, conn: Any) -> Site:
    # built only while something observes: a context's SQL connection and its engine
    return Site(conn.dialect.name, name)


def _savepoint_name(nested: Any) -> str:
    # SQLAlchemy names the savepoints it opens (sa_savepoint_N) on its transaction object
    tx = getattr(nested, "sync_transaction", nested)
    return str(getattr(tx, "_savepoint", "") or "")


def _savepoint_statement(nested: Any) -> str:
    name = _savepoint_name(nested)
    return f"SAVEPOINT {name}" if name else "SAVEPOINT"


class Savepoint:
    """``async with ctx.savepoint():`` a nested transaction on the context's connections.

    On a clean exit the savepoints are released; on an error they roll back
    (only the work done inside) and the error propagates. Engines first opened
    inside the block join it too.
    """

    __slots__ = ("_engines", "_only", "_nested", "_sites")

    def __init__(self, engines: AsyncEngines, only: str | None) -> None:
        self._engines = engines
        self._only = only
        self._nested: list[Any] = []
        # per nested transaction: (Site, savepoint name) of a SQL one joined while
        # something observed (its RELEASE / ROLLBACK TO is recorded too), else None
        self._sites: list[tuple[Site, str] | None] = []

    async def __aenter__(self) -> Savepoint:
        engines = self._engines
        if engines._ctx.autocommit:
            raise RuntimeError("savepoints need a transaction; this context is autocommit=True")
        state = engines._ctx._state
        if state != ACTIVE and state != EXITING:
            raise RuntimeError("savepoint outside an active context")
        if engines._conns:
            try:
                for name, conn in list(engines._conns.items()):
                    await self._join(name, conn)
            except BaseException:
                for nested in reversed(self._nested):  # the ones joined already
                    await nested.commit()
                self._nested = []
                self._sites = []
                raise
        if engines._savepoints is None:
            engines._savepoints = []
        engines._savepoints.append(self)
        return self

    async def _join(self, name: str, conn: Any) -> None:
        if self._only is None or self._only == name:
            if OBSERVERS.get() and not isinstance(conn, AsyncStoreUnit):
                # the observer seam records a SQL connection's SAVEPOINT (its name is
                # SQLAlchemy's, known once it ran) as it records the context's BEGIN
                site = _site(name, conn)
                nested = await async_observed(site, "SAVEPOINT", None, conn.begin_nested,
                                              statement_of=_savepoint_statement)
                self._nested.append(nested)
                self._sites.append((site, _savepoint_name(nested)))
                return
            nested = await conn.begin_nested()
            if nested is not None:  # None: a store engine without a transaction (yet)
                self._nested.append(nested)
                self._sites.append(None)

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        savepoints = self._engines._savepoints
        if savepoints is not None and self in savepoints:
            savepoints.remove(self)
        error: BaseException | None = None
        for nested, watched in zip(reversed(self._nested), reversed(self._sites),
                                   strict=True):
            try:
                if exc_type is None and error is None:
                    if watched is None:
                        await nested.commit()
                    else:
                        await async_observed(watched[0], f"RELEASE SAVEPOINT {watched[1]}".rstrip(),
                                             None, nested.commit)
                elif watched is None:
                    await nested.rollback()
                else:
                    await async_observed(watched[0], f"ROLLBACK TO SAVEPOINT {watched[1]}".rstrip(),
                                         None, nested.rollback)
            except BaseException as failure:  # noqa: BLE001
                if error is None:
                    error = failure
        self._nested = []
        self._sites = []
        if exc_type is not None or error is not None:
            # rolled back: mapped objects may hold values the database no longer has
            identity = self._engines._ctx._identity
            if identity is not None:
                identity.clear()
        if error is not None and exc_type is None:
            raise error

"""``AsyncDataManager``: the per-process registry of services, resources, middleware and engines."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

from sqlalchemy.engine import URL

from ...backends.registry import is_sql_url
from ...backends.sql.engines import create_sql_engine
from ...model.stored import default_engine
from ...query.cursor import CursorKeys, cursor_keys
from ...store.open import Secret
from ..engine_specs import EngineSpec, EngineTopology
from ..registry import Registry
from ..service import Service
from ..sqlalchemy_setup import AsyncEngine, install_read_only_guard, sync_engine_of
from ..urls import driver_url
from .context import AsyncContext
from .dal import DAL, call_method
from .store_engine import AsyncStoreEngine

IS_ASYNC = True


class AsyncDataManager:
    """The registry an application reaches storeroom through: one per process.

    Register services, resources, middleware, engines and models once at
    start-up, then run each request or task in ``async with dm.context(meta=...)``.
    ``async with AsyncDataManager() as dm:`` (or ``await dm.close()``) releases
    every engine at the end.

    ``secret`` signs the cursors of every store it serves: a str or bytes, or a list of
    them (the first signs, every one verifies: rotate by putting the new one first).
    Without it, ``STOREROOM_SECRET``; without that, a secret generated once and kept in
    each database, so that every process on one database accepts the same cursors.
    """

    def __init__(self, *, secret: Secret = None) -> None:
        self._cursor_keys: CursorKeys | None = None if secret is None else cursor_keys(secret)
        self._registry = Registry(call_method, async_generators=IS_ASYNC)
        self._topology = EngineTopology()
        self._active: ContextVar[AsyncContext | None] = ContextVar(
            f"storeroom_active_context_{id(self):x}", default=None
        )
        self._models: dict[type, str | None] = {}
        self._closed = False

    # services -----------------------------------------------------------
    def register_services(self, **services: Service) -> AsyncDataManager:
        """Register services under their keyword names; ``AlreadyExists`` for a taken name."""
        self._registry.add_services(self, services)
        return self

    def replace_service(self, name: str, service: Service) -> Service:
        """Register ``service`` under ``name``, replacing the one there (if any)."""
        return self._registry.replace_service(self, name, service)

    def get_service(self, name: str) -> Service | None:
        """The top-level service registered as ``name``, or ``None``."""
        return self._registry.services.get(name)

    # resources and middleware ------------------------------------------
    def register_resources(self, **resources: Callable[..., Any]) -> AsyncDataManager:
        """Register resources: generator callables ``def r(ctx): set up; yield value; tear down``.

        A resource opens on first use in a context (``await ctx.name``) and
        closes when the context ends. Anything but a generator callable (or an
        async generator callable, in the async flavor) raises ``TypeError``;
        a taken name raises ``AlreadyExists``.
        """
        self._registry.add_resources(resources)
        return self

    def replace_resource(self, name: str, resource: Callable[..., Any]) -> None:
        """Register ``resource`` under ``name``, replacing the one there (if any)."""
        self._registry.add_resources({name: resource}, replace=True)

    def register_context_middleware(self, *middleware: Callable[..., Any]) -> AsyncDataManager:
        """Append context middleware: generator callables run around every context, in order."""
        self._registry.add_context_middleware(middleware)
        return self

    def register_method_middleware(self, *middleware: Callable[..., Any]) -> AsyncDataManager:
        """Append method middleware ``mw(request, call_next)`` around every DAL call.

        The first registered is outermost. A middleware continues with
        ``call_next(request)`` (awaited in the async flavor), may change its
        result, or veto the call by raising.
        """
        self._registry.add_method_middleware(middleware)
        return self

    # engines ------------------------------------------------------------
    def add_engine(
        self,
        name: str,
        url: str | URL,
        default: bool = False,
        read_only: bool = False,
        replica_of: str | None = None,
        **options: Any,
    ) -> AsyncEngine | AsyncStoreEngine:
        """Add a named engine; returns it (no connection is made yet).

        ``name`` is any non-empty str. A SQL URL gives a SQLAlchemy engine; a
        ``memory://``, ``mongodb://``, ``redis://`` or ``dynamodb://`` URL gives an
        :class:`AsyncStoreEngine` whose stores join the contexts' unit of work
        (see ``docs/context.md``). The first engine added is the default unless a
        later one passes ``default=True``. A ``read_only`` SQL engine refuses writes
        with ``ReadOnlyError``; it replicates the writable engine ``replica_of``
        names, or without it a writable engine whose URL names the same
        database (store engines cannot be read-only). ``options`` go to ``create_engine`` except SQLite's own options
        (``busy_timeout`` in milliseconds, default 5000; ``transaction_mode``,
        ``synchronous``, ``journal_mode``, ``foreign_keys``), which may also be URL
        query parameters (docs/sql.md); for a store engine they go to ``open_store``.
        """
        topology = self._topology
        topology.check_new(name, read_only, replica_of)
        if isinstance(url, str) and not is_sql_url(url):
            if read_only or replica_of:
                raise ValueError(f"engine {name!r}: read_only and replica_of apply to SQL "
                                 "engines only")
            store_engine = AsyncStoreEngine(name, url, options, secret=self._cursor_keys)
            topology.add(EngineSpec(name, url, store_engine, False, None), default)
            return store_engine
        real_url = driver_url(url, IS_ASYNC)
        # one engine recipe for stores and contexts (SQLite BEGIN handling, pragmas,
        # storeroom's SQL functions, MySQL session settings)
        engine = create_sql_engine(real_url, is_async=IS_ASYNC, read_only=read_only, **options)
        sync_engine = sync_engine_of(engine)
        if read_only:
            install_read_only_guard(sync_engine, name)
        topology.add(EngineSpec(name, real_url, engine, read_only, replica_of), default)
        return engine

    def get_engine(self, name: str | None = None) -> AsyncEngine | AsyncStoreEngine:
        """The engine called ``name`` (the default one when ``None``): a SQLAlchemy
        engine, or the ``AsyncStoreEngine`` of a non-SQL URL."""
        return self._topology.get(name).engine  # type: ignore[no-any-return]

    @property
    def engine_names(self) -> tuple[str, ...]:
        """The names of the engines, in order of adding."""
        return tuple(self._topology.specs)

    @property
    def default_engine(self) -> str | None:
        """The name of the default engine (``None`` before any is added)."""
        return self._topology.default

    def engine_role(self, name: str | None = None) -> dict[str, Any]:
        """``{"name", "read_only", "primary", "replica"}`` of engine ``name``."""
        spec = self._topology.get(name)
        return {
            "name": spec.name,
            "read_only": spec.read_only,
            "primary": spec.primary,
            "replica": spec.replica,
        }

    # models -------------------------------------------------------------
    def register_models(self, *models: type, engine: str | None = None) -> AsyncDataManager:
        """Record that the stores of ``models`` live on ``engine``.

        Without ``engine``, each model's ``@stored(engine=...)``, else the default
        engine. An abstract model (``@stored(abstract=True)``) is a ``TypeError``.
        """
        if engine is not None:
            self._topology.get(engine)
        for model in models:
            # the model's own default engine (checked when a store opens, so models may
            # name engines added later); ``TypeError`` for an abstract or unstored class
            self._models[model] = engine if engine is not None else default_engine(model)
        return self

    def _engine_for_model(self, model: type) -> str:
        try:
            engine = self._models[model]
        except KeyError:
            raise LookupError(
                f"model {getattr(model, '__name__', model)!r} is not registered: "
                f"call dm.register_models({getattr(model, '__name__', 'Model')})"
            ) from None
        return self._topology.get(engine).name

    def _models_on(self, name: str) -> list[type]:
        """The registered models whose stores live on engine ``name``."""
        default = self._topology.default
        return [m for m, e in self._models.items() if (default if e is None else e) == name]

    def sql_metadata(self, engine: str | None = None) -> Any:
        """The SQLAlchemy ``MetaData`` of the models registered on the SQL engine
        ``engine`` (the default engine when ``None``), typed for its dialect: the
        ``target_metadata`` of alembic's ``env.py`` (``storeroom migrate``).
        storeroom's bookkeeping tables are not in it. ``ValueError`` for a non-SQL
        engine."""
        from ...sql import manager_metadata
        return manager_metadata(self, engine)

    # contexts -----------------------------------------------------------
    def context(
        self, meta: Mapping[str, Any] | None = None, *, autocommit: bool = False
    ) -> AsyncContext:
        """A new context (enter it once with ``async with``).

        ``meta`` becomes the read-only ``ctx.meta``; ``autocommit=True`` makes
        each statement commit on its own instead of one transaction per engine.
        """
        if self._closed:
            raise RuntimeError("this data manager is closed")
        return AsyncContext(self, meta, autocommit)

    def dal(self, meta: Mapping[str, Any] | None = None, *, autocommit: bool = False) -> DalScope:
        """``async with dm.dal(meta=...) as dal:`` a new context, giving its DAL."""
        return DalScope(self.context(meta, autocommit=autocommit))

    def get_active_context(self) -> AsyncContext | None:
        """The innermost context active in this thread or task, or ``None``."""
        return self._active.get()

    def require_active_context(self) -> AsyncContext:
        """The innermost active context; ``RuntimeError`` when none is active."""
        ctx = self._active.get()
        if ctx is None:
            raise RuntimeError("no context is active: use `with dm.context():` first")
        return ctx

    # process lifecycle -------------------------------------------------
    def postfork(self) -> None:
        """Call in a child process after ``fork``: give every engine a fresh pool.

        The parent's pooled connections are dropped without being closed (they
        still belong to the parent), as ``engine.dispose(close=False)`` does; a
        store engine forgets its stores the same way (the child opens new ones).
        """
        for spec in self._topology.specs.values():
            if spec.is_sql:
                sync_engine_of(spec.engine).dispose(close=False)
            else:
                spec.engine.postfork()

    async def close(self) -> None:
        """Dispose every engine (closing its pooled connections, and the stores of store
        engines); no new context can start."""
        self._closed = True
        for spec in self._topology.specs.values():
            if spec.is_sql:
                await spec.engine.dispose()
            else:
                await spec.engine.close()

    async def __aenter__(self) -> AsyncDataManager:
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        return (
            f"<AsyncDataManager services={sorted(self._registry.services)} "
            f"resources={sorted(self._registry.resources)} engines={list(self._topology.specs)}>"
        )


class DalScope:
    """``async with dm.dal() as dal:``: enters a new context and gives its DAL."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: AsyncContext) -> None:
        self._ctx = ctx

    @property
    def context(self) -> AsyncContext:
        """The context this scope enters."""
        return self._ctx

    async def __aenter__(self) -> DAL:
        await self._ctx.__aenter__()
        return self._ctx.dal

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        return await self._ctx.__aexit__(exc_type, exc, tb)

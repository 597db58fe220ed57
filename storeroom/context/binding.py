"""Stores bound to a context: ``ctx.store(Model)`` calls these (no I/O happens here).

This lives in the context package because it reads the data manager's engine topology
and registered models; the store package knows nothing of contexts."""

from __future__ import annotations

from typing import Any, TypeVar

from ..store._async.mapped import MappedAsyncStore
from ..store._sync.mapped import MappedStore

T = TypeVar("T")


def _borrow_related(store: Any, ctx: Any) -> Any:
    """Make ``store`` open its related models' stores as the context's stores (so a
    relation checked or loaded in a request uses the request's connections and map)."""
    store._opener = ctx.store
    store._borrows_related = True
    return store


def bind_store(model: type[T], ctx: Any, engine_name: str | None) -> MappedStore[T]:
    """A sync store of ``model`` on the context's connections of engine ``engine_name``."""
    return _borrow_related(_bind_store(model, ctx, engine_name), ctx)


def bind_async_store(model: type[T], ctx: Any, engine_name: str | None
                     ) -> MappedAsyncStore[T]:
    """An async store of ``model`` on the context's connections of engine ``engine_name``."""
    return _borrow_related(_bind_async_store(model, ctx, engine_name), ctx)


def _bind_store(model: type[T], ctx: Any, engine_name: str | None) -> MappedStore[T]:
    dm = ctx.data_manager
    spec = dm._topology.get(engine_name)
    if not spec.is_sql:
        # a store engine: the engine's shared backend, run in the context's unit of work
        from ._sync.store_engine import UnitBackend
        return MappedStore(model, UnitBackend(ctx.engines, spec.name,
                                              spec.engine.backend_for(model)),
                           ctx.identity_map, secret=dm._cursor_keys)
    from ..backends.sql import SqlBackend
    from ..backends.sql._sync.context_source import ContextSource
    core, tables = _core_and_tables(dm, model, spec)
    source = ContextSource(ctx, engine_name, tables, core.table.name)
    return MappedStore(model, SqlBackend(core, source), ctx.identity_map,
                       secret=dm._cursor_keys)


def _bind_async_store(model: type[T], ctx: Any, engine_name: str | None
                      ) -> MappedAsyncStore[T]:
    dm = ctx.data_manager
    spec = dm._topology.get(engine_name)
    if not spec.is_sql:
        from ._async.store_engine import AsyncUnitBackend
        return MappedAsyncStore(model, AsyncUnitBackend(ctx.engines, spec.name,
                                                        spec.engine.backend_for(model)),
                                ctx.identity_map, secret=dm._cursor_keys)
    from ..backends.sql import AsyncSqlBackend
    from ..backends.sql._async.context_source import AsyncContextSource
    core, tables = _core_and_tables(dm, model, spec)
    source = AsyncContextSource(ctx, engine_name, tables, core.table.name)
    return MappedAsyncStore(model, AsyncSqlBackend(core, source), ctx.identity_map,
                            secret=dm._cursor_keys)


def _core_and_tables(dm: Any, model: type, spec: Any) -> tuple[Any, Any]:
    """The model's ``SqlCore`` on the engine (kept by the engine's spec, so it lives as
    long as its data manager), and a function giving the cores of every model
    registered on that engine (their tables are created together)."""
    from ..backends.sql import core_for

    def tables() -> list[Any]:
        return [core_for(m, spec.engine, cache=spec.cores) for m in dm._models_on(spec.name)]

    return core_for(model, spec.engine, cache=spec.cores), tables

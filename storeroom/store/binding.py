"""Stores bound to a context: ``ctx.store(Model)`` calls these (no I/O happens here)."""

from __future__ import annotations

from typing import Any, TypeVar

from ._async.store import AsyncStore
from ._sync.store import Store

T = TypeVar("T")


def bind_store(model: type[T], ctx: Any, engine_name: str | None) -> Store[T]:
    """A sync store of ``model`` on the context's connections of engine ``engine_name``."""
    dm = ctx.data_manager
    spec = dm._topology.get(engine_name)
    if not spec.is_sql:
        # a store engine: the engine's shared backend, run in the context's unit of work
        from ..context._sync.store_engine import UnitBackend
        return Store(model, UnitBackend(ctx.engines, spec.name, spec.engine.backend_for(model)),
                     secret=dm._cursor_keys)
    from ..backends.sql import SqlBackend, core_for
    from ..backends.sql._sync.context_source import ContextSource
    engine = spec.engine
    return Store(model, SqlBackend(core_for(model, engine), ContextSource(ctx, engine_name)),
                 secret=dm._cursor_keys)


def bind_async_store(model: type[T], ctx: Any, engine_name: str | None) -> AsyncStore[T]:
    """An async store of ``model`` on the context's connections of engine ``engine_name``."""
    dm = ctx.data_manager
    spec = dm._topology.get(engine_name)
    if not spec.is_sql:
        from ..context._async.store_engine import AsyncUnitBackend
        return AsyncStore(model, AsyncUnitBackend(ctx.engines, spec.name,
                                                  spec.engine.backend_for(model)),
                          secret=dm._cursor_keys)
    from ..backends.sql import AsyncSqlBackend, core_for
    from ..backends.sql._async.context_source import AsyncContextSource
    engine = spec.engine
    return AsyncStore(model, AsyncSqlBackend(core_for(model, engine),
                                             AsyncContextSource(ctx, engine_name)),
                      secret=dm._cursor_keys)

"""Stores bound to a context: ``ctx.store(Model)`` calls these (no I/O happens here)."""

from __future__ import annotations

from typing import Any, TypeVar

from ._async.store import AsyncStore
from ._sync.store import Store

T = TypeVar("T")


def bind_store(model: type[T], ctx: Any, engine_name: str | None) -> Store[T]:
    """A sync store of ``model`` on the context's connections of engine ``engine_name``."""
    dm = ctx.data_manager
    if engine_name in dm._store_engines:
        return dm._shared_store(model, engine_name)  # type: ignore[no-any-return]
    from ..backends.sql import SqlBackend, core_for
    from ..backends.sql._sync.context_source import ContextSource
    engine = ctx.data_manager.get_engine(engine_name)
    return Store(model, SqlBackend(core_for(model, engine), ContextSource(ctx, engine_name)),
                 secret=dm._cursor_keys)


def bind_async_store(model: type[T], ctx: Any, engine_name: str | None) -> AsyncStore[T]:
    """An async store of ``model`` on the context's connections of engine ``engine_name``."""
    dm = ctx.data_manager
    if engine_name in dm._store_engines:
        return dm._shared_store(model, engine_name)  # type: ignore[no-any-return]
    from ..backends.sql import AsyncSqlBackend, core_for
    from ..backends.sql._async.context_source import AsyncContextSource
    engine = ctx.data_manager.get_engine(engine_name)
    return AsyncStore(model, AsyncSqlBackend(core_for(model, engine),
                                             AsyncContextSource(ctx, engine_name)),
                      secret=dm._cursor_keys)

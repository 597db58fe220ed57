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
    from ..backends.sql import SqlBackend
    from ..backends.sql._sync.context_source import ContextSource
    core, tables = _core_and_tables(dm, model, engine_name)
    return Store(model, SqlBackend(core, ContextSource(ctx, engine_name, tables)))


def bind_async_store(model: type[T], ctx: Any, engine_name: str | None) -> AsyncStore[T]:
    """An async store of ``model`` on the context's connections of engine ``engine_name``."""
    dm = ctx.data_manager
    if engine_name in dm._store_engines:
        return dm._shared_store(model, engine_name)  # type: ignore[no-any-return]
    from ..backends.sql import AsyncSqlBackend
    from ..backends.sql._async.context_source import AsyncContextSource
    core, tables = _core_and_tables(dm, model, engine_name)
    return AsyncStore(model, AsyncSqlBackend(core, AsyncContextSource(ctx, engine_name, tables)))


def _core_and_tables(dm: Any, model: type, engine_name: str | None) -> tuple[Any, Any]:
    """The model's ``SqlCore`` on the engine (kept by the engine's spec, so it lives as
    long as its data manager), and a function giving the cores of every model
    registered on that engine (their tables are created together)."""
    from ..backends.sql import core_for
    spec = dm._topology.get(engine_name)

    def tables() -> list[Any]:
        out = []
        for other in list(dm._models):
            try:
                name = dm._engine_for_model(other)
            except (LookupError, KeyError):
                continue
            if name == spec.name:
                out.append(core_for(other, spec.engine, cache=spec.cores))
        return out

    return core_for(model, spec.engine, cache=spec.cores), tables

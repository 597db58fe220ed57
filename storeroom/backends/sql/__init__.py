"""SQL backends (SQLite, PostgreSQL, MySQL/MariaDB) on SQLAlchemy Core."""

from __future__ import annotations

from typing import Any

from ...model.stored import meta_of
from ._async.backend import AsyncSqlBackend
from ._async.context_source import AsyncContextSource
from ._async.driver import AsyncPooledSource
from ._sync.backend import SqlBackend
from ._sync.context_source import ContextSource
from ._sync.driver import PooledSource
from .core import SqlCore
from .engines import create_sql_engine, dialect_name


def core_for(model: type, engine: Any, table: str | None = None, *,
             cache: dict[Any, SqlCore] | None = None) -> SqlCore:
    """The ``SqlCore`` of a model on an engine, kept in ``cache`` (created once there).

    The cache belongs to whoever owns the engine (a data manager's engine spec), so a
    core never outlives its engine's owner.
    """
    key = (model, table)
    core = cache.get(key) if cache is not None else None
    if core is None:
        name = engine.dialect.name
        core = SqlCore(meta_of(model), engine, "mysql" if name == "mariadb" else name, table)
        if cache is not None:
            core = cache.setdefault(key, core)  # one core per model, even when threads race
    return core


def backend_for_url(model: type, url: str, *, is_async: bool, table: str | None = None,
                    **options: Any) -> Any:
    """A store backend that owns its engine and takes connections from the engine's pool."""
    engine = create_sql_engine(url, is_async=is_async, **options)
    core = SqlCore(meta_of(model), engine, dialect_name(url), table)
    if is_async:
        return AsyncSqlBackend(core, AsyncPooledSource(engine, core.table.name))
    return SqlBackend(core, PooledSource(engine, core.table.name))


# the context sources are loaded with the package, not by a context's first store
# (``context.binding`` imports them lazily: a context that never opens a SQL store
# loads no SQL code), so no module is compiled inside a context's first operation
__all__ = ["AsyncContextSource", "ContextSource", "AsyncSqlBackend", "SqlBackend", "SqlCore",
           "core_for", "backend_for_url", "create_sql_engine", "dialect_name",
           "AsyncPooledSource", "PooledSource"]

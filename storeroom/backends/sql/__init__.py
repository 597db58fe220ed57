"""SQL backends (SQLite, PostgreSQL, MySQL/MariaDB) on SQLAlchemy Core."""

from __future__ import annotations

import threading
from typing import Any

from ...model.stored import meta_of
from ._async.backend import AsyncSqlBackend
from ._async.driver import AsyncPinnedSource
from ._sync.backend import SqlBackend
from ._sync.driver import PinnedSource
from .core import SqlCore
from .engines import create_sql_engine, dialect_name

_cores: dict[tuple[int, type, str | None], SqlCore] = {}
_cores_lock = threading.Lock()


def core_for(model: type, engine: Any, table: str | None = None) -> SqlCore:
    """The shared ``SqlCore`` of a model on an engine (created once)."""
    key = (id(engine), model, table)
    core = _cores.get(key)
    if core is None:
        with _cores_lock:
            core = _cores.get(key)
            if core is None:
                core = SqlCore(meta_of(model), engine, engine.dialect.name
                               if engine.dialect.name != "mariadb" else "mysql", table)
                _cores[key] = core
    return core


def backend_for_url(model: type, url: str, *, is_async: bool, table: str | None = None,
                    **options: Any) -> Any:
    """A store backend that owns its engine and one pinned connection."""
    engine = create_sql_engine(url, is_async=is_async, **options)
    core = SqlCore(meta_of(model), engine, dialect_name(url), table)
    if is_async:
        return AsyncSqlBackend(core, AsyncPinnedSource(engine))
    return SqlBackend(core, PinnedSource(engine))


__all__ = ["AsyncSqlBackend", "SqlBackend", "SqlCore", "core_for", "backend_for_url",
           "create_sql_engine", "dialect_name", "AsyncPinnedSource", "PinnedSource"]

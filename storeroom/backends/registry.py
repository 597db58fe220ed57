"""The backends by URL scheme: one table that ``open_store``, ``open_async_store`` and
the context layer (``DataManager.add_engine``'s store engines) all use.

A backend registers its scheme(s) with a *loader*: a function called only when a URL
of that scheme is opened, which imports the backend package and returns its factory
(``backend_for_url(model, url, *, is_async, **options)``). So a program that uses
SQLite never imports the MongoDB, Redis or DynamoDB backends or their drivers.

A URL's scheme is read without its ``+driver`` part (``postgresql+psycopg``,
``sqlite+aiosqlite``, ``mongodb+srv``) and through the aliases ``postgres`` ->
``postgresql`` and ``mariadb`` -> ``mysql``. An unknown scheme raises ``ValueError``
naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from ..model.registry import configure_model
from .drivers import require_driver


class BackendFactory(Protocol):
    """Makes the backend of one model at one URL, sync or async (no I/O yet)."""

    def __call__(self, model: type, url: str, *, is_async: bool, **options: Any) -> Any:
        """The backend of ``model`` at ``url``."""
        ...


Loader = Callable[[], BackendFactory]
"""Imports a backend package and returns its factory (called on first use)."""


@dataclass(frozen=True, slots=True)
class BackendEntry:
    """One registered scheme: its loader, and whether its backend is a SQL one."""

    scheme: str
    loader: Loader
    sql: bool = False


ALIASES = {"postgres": "postgresql", "mariadb": "mysql"}
"""Schemes that name another scheme's backend."""

_ENTRIES: dict[str, BackendEntry] = {}


def register(scheme: str, loader: Loader, *, sql: bool = False) -> None:
    """Register ``loader`` for URLs of ``scheme`` (lower case, without ``+driver``).

    Registering a scheme again replaces its loader.
    """
    if not scheme or "+" in scheme or scheme != scheme.lower():
        raise ValueError(f"a backend scheme is lower case without '+': {scheme!r}")
    _ENTRIES[scheme] = BackendEntry(scheme, loader, sql)


def scheme_of(url: str) -> str:
    """The backend scheme of ``url``: lower case, without ``+driver``, aliases resolved."""
    base = urlsplit(url).scheme.lower().split("+", 1)[0]
    return ALIASES.get(base, base)


def entry_for(url: str) -> BackendEntry:
    """The registered entry of ``url``'s scheme; ``ValueError`` for an unknown one."""
    scheme = scheme_of(url)
    entry = _ENTRIES.get(scheme)
    if entry is None:
        raise ValueError(f"unknown store URL scheme {scheme!r} in {url!r}")
    return entry


def is_sql_url(url: str) -> bool:
    """True when ``url``'s scheme is registered for a SQL backend (a SQLAlchemy engine)."""
    entry = _ENTRIES.get(scheme_of(url))
    return entry is not None and entry.sql


def schemes() -> tuple[str, ...]:
    """Every registered scheme, in order of registering."""
    return tuple(_ENTRIES)


def make_backend(model: type, url: str, *, is_async: bool, **options: Any) -> Any:
    """The backend object for a URL (sync or async form).

    ``ValueError`` for an unknown scheme; ``MissingDriver`` (naming the extra to
    install) when the URL's driver is missing.
    """
    # the one place a store opening configures its model (annotations resolved, metadata
    # built); everything after reads the plain ``__storeroom__`` attribute
    configure_model(model)
    entry = entry_for(url)
    require_driver(entry.scheme, is_async)
    return entry.loader()(model, url, is_async=is_async, **options)


# the built-in backends: each loader imports its package only when called ------------
def _memory_backend(model: type, url: str, *, is_async: bool, **options: Any) -> Any:
    """A memory backend: ``memory://name`` (stores of one name share their items)."""
    from . import memory
    parts = urlsplit(url)
    name = (parts.netloc + parts.path).strip("/")
    cls = memory.AsyncMemoryBackend if is_async else memory.MemoryBackend
    return cls(model, name)


def _memory() -> BackendFactory:
    return _memory_backend


def _sql() -> BackendFactory:
    from . import sql
    return sql.backend_for_url


def _dynamodb() -> BackendFactory:
    from . import dynamodb
    return dynamodb.backend_for_url


def _mongodb() -> BackendFactory:
    from . import mongodb
    return mongodb.backend_for_url


def _redis() -> BackendFactory:
    from . import redis
    return redis.backend_for_url


register("memory", _memory)
register("sqlite", _sql, sql=True)
register("postgresql", _sql, sql=True)
register("mysql", _sql, sql=True)
register("dynamodb", _dynamodb)
register("mongodb", _mongodb)
register("redis", _redis)
register("rediss", _redis)

__all__ = ["ALIASES", "BackendEntry", "BackendFactory", "Loader", "entry_for", "is_sql_url", "make_backend",
           "register", "scheme_of", "schemes"]

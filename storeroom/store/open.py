"""``open_store`` / ``open_async_store``: a store of a model at a URL."""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import urlsplit

from ..backends.drivers import require_driver
from ..model.registry import configure_model
from ..query.cursor import CursorKeys, cursor_keys
from ._async.store import AsyncStore
from ._sync.store import Store

T = TypeVar("T")

Secret = str | bytes | list[str | bytes] | tuple[str | bytes, ...] | CursorKeys | None
"""A cursor secret: one, or a list (the first signs, every one verifies)."""


def _scheme(url: str) -> str:
    scheme = urlsplit(url).scheme.lower()
    base = scheme.split("+", 1)[0]
    return {"postgres": "postgresql", "mariadb": "mysql"}.get(base, base)


def make_backend(model: type, url: str, *, is_async: bool, **options: Any) -> Any:
    """The backend object for a URL (sync or async form).

    ``MissingDriver`` (naming the extra to install) when the URL's driver is missing.
    """
    # the one place a store opening configures its model (annotations resolved, metadata
    # built); everything after reads the plain ``__storeroom__`` attribute
    configure_model(model)
    scheme = _scheme(url)
    require_driver(scheme, is_async)
    if scheme == "memory":
        from ..backends import memory
        parts = urlsplit(url)
        name = (parts.netloc + parts.path).strip("/")
        cls = memory.AsyncMemoryBackend if is_async else memory.MemoryBackend
        return cls(model, name)
    if scheme in ("sqlite", "postgresql", "mysql"):
        from ..backends import sql
        return sql.backend_for_url(model, url, is_async=is_async, **options)
    if scheme == "dynamodb":
        from ..backends import dynamodb  # type: ignore[attr-defined,unused-ignore]
        return dynamodb.backend_for_url(model, url, is_async=is_async, **options)
    if scheme in ("mongodb", "mongodb+srv"):
        from ..backends import mongodb  # type: ignore[attr-defined,unused-ignore]
        return mongodb.backend_for_url(model, url, is_async=is_async, **options)
    if scheme in ("redis", "rediss"):
        from ..backends import redis  # type: ignore[attr-defined,unused-ignore]
        return redis.backend_for_url(model, url, is_async=is_async, **options)
    raise ValueError(f"unknown store URL scheme {scheme!r} in {url!r}")


def open_store(model: type[T], url: str = "memory://", *, secret: Secret = None,
               **options: Any) -> Store[T]:
    """A sync store of ``model`` at ``url`` (``sqlite:///app.db``, ``memory://``, ...).

    ``secret`` signs the cursors of pages: a str or bytes, or a list of them (the first
    signs, every one verifies). Without it, ``STOREROOM_SECRET``; without that, a secret
    generated once and kept in the database, shared by every process on it.
    Close the store (or use it as a context manager) to release its connections.
    """
    keys = None if secret is None else cursor_keys(secret)
    return Store(model, make_backend(model, url, is_async=False, **options), secret=keys)


def open_async_store(model: type[T], url: str = "memory://", *, secret: Secret = None,
                     **options: Any) -> AsyncStore[T]:
    """An async store of ``model`` at ``url``; returned at once, I/O starts on first use.

    ``secret`` as for :func:`open_store`.
    """
    keys = None if secret is None else cursor_keys(secret)
    return AsyncStore(model, make_backend(model, url, is_async=True, **options), secret=keys)

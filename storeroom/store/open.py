"""``open_store`` / ``open_async_store``: a store of a model at a URL."""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import urlsplit

from ..model.stored import meta_of
from ._async.store import AsyncStore
from ._sync.store import Store

T = TypeVar("T")


def _scheme(url: str) -> str:
    scheme = urlsplit(url).scheme.lower()
    base = scheme.split("+", 1)[0]
    return {"postgres": "postgresql", "mariadb": "mysql"}.get(base, base)


def make_backend(model: type, url: str, *, is_async: bool, **options: Any) -> Any:
    """The backend object for a URL (sync or async form)."""
    meta_of(model)
    scheme = _scheme(url)
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


def open_store(model: type[T], url: str = "memory://", **options: Any) -> Store[T]:
    """A sync store of ``model`` at ``url`` (``sqlite:///app.db``, ``memory://``, ...)."""
    return Store(model, make_backend(model, url, is_async=False, **options))


def open_async_store(model: type[T], url: str = "memory://", **options: Any) -> AsyncStore[T]:
    """An async store of ``model`` at ``url``; returned at once, I/O starts on first use."""
    return AsyncStore(model, make_backend(model, url, is_async=True, **options))

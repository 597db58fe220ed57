"""``open_store`` / ``open_async_store``: a store of a model at a URL.

The backend comes from the registry of URL schemes (``storeroom.backends.registry``).
"""

from __future__ import annotations

from typing import Any, TypeVar

from ..backends.registry import make_backend
from ..query.cursor import CursorKeys, cursor_keys
from ._async.store import AsyncStore
from ._sync.store import Store

__all__ = ["Secret", "make_backend", "open_async_store", "open_store"]

T = TypeVar("T")

Secret = str | bytes | list[str | bytes] | tuple[str | bytes, ...] | CursorKeys | None
"""A cursor secret: one, or a list (the first signs, every one verifies)."""


def open_store(model: type[T], url: str = "memory://", *, secret: Secret = None,
               **options: Any) -> Store[T]:
    """A sync store of ``model`` at ``url`` (``sqlite:///app.db``, ``memory://``, ...).

    ``secret`` signs the cursors of pages: a str or bytes, or a list of them (the first
    signs, every one verifies). Without it, ``STOREROOM_SECRET``; without that, a secret
    generated once and kept in the database, shared by every process on it.
    Close the store (or use it as a context manager) to release its connections.
    """
    keys = None if secret is None else cursor_keys(secret)
    store: Store[T] = Store(model, make_backend(model, url, is_async=False, **options),
                            secret=keys)
    # the stores of related models open on the same database, with the same options
    store._opener = lambda m: open_store(m, url, secret=keys, **options)
    return store


def open_async_store(model: type[T], url: str = "memory://", *, secret: Secret = None,
                     **options: Any) -> AsyncStore[T]:
    """An async store of ``model`` at ``url``; returned at once, I/O starts on first use.

    ``secret`` as for :func:`open_store`.
    """
    keys = None if secret is None else cursor_keys(secret)
    store: AsyncStore[T] = AsyncStore(model, make_backend(model, url, is_async=True, **options),
                                      secret=keys)
    store._opener = lambda m: open_async_store(m, url, secret=keys, **options)
    return store

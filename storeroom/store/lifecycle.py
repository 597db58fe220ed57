"""A store's lifecycle: misuse made loud, as for files and sockets.

* A store that holds connections (its backend's ``holds_connections``, True unless the
  backend says otherwise) and is garbage-collected without ``close()`` emits a
  ``ResourceWarning`` naming it. Stores bound to a context and memory stores hold
  nothing and never warn.
* A closed store's backend is replaced by :class:`ClosedBackend`, so that any I/O
  method raises ``StoreClosed`` naming the store instead of silently reconnecting, at
  no cost to the methods of an open store.
"""

from __future__ import annotations

import warnings
import weakref
from typing import Any, NoReturn

from ..errors import StoreClosed


def _warn_unclosed(name: str) -> None:
    warnings.warn(f"unclosed store {name}: call close() (or use the store as a context "
                  "manager) to release its connections", ResourceWarning, stacklevel=2)


def watch_unclosed(store: Any, backend: Any) -> weakref.finalize[[str], None] | None:
    """A finalizer that warns when ``store`` is collected unclosed (None when its backend
    holds no connections). ``detach()`` it on close. It keeps nothing alive."""
    if not getattr(backend, "holds_connections", True):
        return None
    finalizer = weakref.finalize(store, _warn_unclosed, repr(store))
    finalizer.atexit = False  # at interpreter exit every connection goes anyway
    return finalizer


class ClosedBackend:
    """Stands in for the backend of a closed store: every use raises ``StoreClosed``."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> NoReturn:
        raise StoreClosed(f"{self._name} is closed: open a new store to use it again")

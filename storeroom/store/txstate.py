"""The state of ``store.transaction()`` (sans-I/O): who owns an open transaction."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any


def owner() -> tuple[int, Any]:
    """Who is running: the thread, and the asyncio task in it (None outside one).

    A transaction belongs to the thread / task that opened it; a task started inside
    its block copies the context variable but is not its owner, so it is not inside.
    """
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running loop in this thread
        task = None
    return (threading.get_ident(), task)


@dataclass(frozen=True, slots=True)
class OpenTransaction:
    """A store's open transaction: the backend's, the backend bound to it, its owner."""

    tx: Any
    backend: Any
    owner: tuple[int, Any]

"""The state of ``store.transaction()`` (sans-I/O): who owns an open transaction."""

from __future__ import annotations

import asyncio
import threading
from contextvars import ContextVar
from dataclasses import dataclass, field
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
    """A store's open transaction: the backend's, the backend bound to it, its owner,
    and the backends of related stores bound to it (the reference checks and
    ``on_delete`` of the store's writes run in the transaction)."""

    tx: Any
    backend: Any
    owner: tuple[int, Any]
    related: dict[type, Any] = field(default_factory=dict)


class PerTask:
    """Stands in for the backend of a store once it has opened a transaction: every
    member is looked up on the backend bound to the open transaction of the calling
    thread / task (``transaction()``), or on ``base`` outside one.

    A store that never opens a transaction keeps its backend itself (a plain attribute:
    nothing to pay on its hot path); only a store that does pays this lookup.
    """

    __slots__ = ("var", "base")

    def __init__(self, var: ContextVar[OpenTransaction | None], base: Any) -> None:
        self.var = var
        self.base = base

    def __getattr__(self, name: str) -> Any:
        tx = self.var.get()
        if tx is None or tx.owner != owner():
            return getattr(self.base, name)
        return getattr(tx.backend, name)

"""The object a ``with safe.transaction() as t:`` block works with."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, TypeVar

from storeroom.safe import engine, threads
from storeroom.safe.errors import SafeError, TransactionClosedError
from storeroom.safe.mapping import SafeMapping
from storeroom.safe.space import SpaceGuard
from storeroom.safe.threads import FORKING, GENERATION, ThreadState

if TYPE_CHECKING:
    from storeroom.safe.safe import Safe

T = TypeVar("T")


class Transaction(SafeMapping):
    """The safe, seen from inside one open transaction: a full ``MutableMapping``.

    Reads see the transaction's own writes; nothing is visible to other connections, nor
    durable, until the ``with`` block exits normally. If the block raises (or the process
    dies), every write made through it is undone. Usable only inside its ``with`` block.
    """

    __slots__ = ("_safe", "_st", "_open")

    def __init__(self, safe: Safe, state: ThreadState) -> None:
        self._safe = safe
        self._st = state
        self._open = True

    def _state(self) -> ThreadState:
        if not self._open:
            raise TransactionClosedError("this transaction has ended; use the safe instead")
        if FORKING[0]:
            threads.wait_for_fork()
        if self._st.gen != GENERATION[0]:  # its connection is the parent's: never touch it
            raise SafeError("the process forked inside this transaction; the child cannot use it")
        return self._st

    def _run(self, op: Callable[[sqlite3.Cursor], T]) -> T:
        state = self._state()
        try:
            return state.call(op)
        except sqlite3.Error as exc:
            raise engine.translate(exc, self._safe.path) from exc

    def _atomic(self) -> AbstractContextManager[ThreadState]:
        return self._safe._atomic_on(self._state())

    @property
    def _space(self) -> SpaceGuard:
        return self._safe._space

    @property
    def _path(self) -> str:
        return self._safe.path

    def __repr__(self) -> str:
        state = "open" if self._open else "closed"
        return f"<Transaction on {self._safe.path!r} ({state})>"

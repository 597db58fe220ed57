"""Per-thread, per-process connection state, and what happens to it across ``fork()``.

Every thread gets its own SQLite connection. A forked child must never use a connection it
inherited: SQLite forbids it, and the child's copy still counts the parent's locks as its own.
So right after a fork the child closes every inherited connection that is idle (which releases
the copied lock bookkeeping without touching the parent's real locks) and keeps the others alive
but unused forever. A generation number, bumped in the child, makes each safe notice the fork
on its next operation and open fresh connections.
"""

from __future__ import annotations

import os
import sqlite3
import weakref

#: Bumped in a forked child; states from an older generation belong to the parent.
GENERATION = [0]

#: Inherited connections that were busy at fork time: never used and never closed.
_ABANDONED: list[sqlite3.Connection] = []

#: Every live thread state of every safe in this process.
_LIVE: weakref.WeakSet[ThreadState] = weakref.WeakSet()


class ThreadState:
    """One thread's connection to one safe, and its transaction nesting depth."""

    __slots__ = ("conn", "cur", "gen", "depth", "__weakref__")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.cur = conn.cursor()
        self.gen = GENERATION[0]
        self.depth = 0
        _LIVE.add(self)

    def close(self) -> None:
        """Close the connection (only if this process opened it)."""
        if self.gen == GENERATION[0]:
            self.conn.close()


def _after_fork_in_child() -> None:
    GENERATION[0] += 1
    for state in list(_LIVE):
        conn = state.conn
        try:
            if conn.in_transaction:
                _ABANDONED.append(conn)
            else:
                conn.close()
        except sqlite3.Error:
            _ABANDONED.append(conn)
    _LIVE.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

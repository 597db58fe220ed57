"""Per-thread connection state: who owns each SQLite connection, and what ``fork()`` does to it.

Every thread gets its own SQLite connection, owned by one :class:`ThreadState`, which closes it
when it is closed or freed. A ``sqlite3.Connection`` alone sits in a reference cycle (with its
statement cache) and would stay open until some garbage collection; a thread state is in no
cycle, so a dropped :class:`~storeroom.safe.Safe` or a finished thread closes its connections at
once, deterministically.

Why that matters across ``fork()``: SQLite keeps, per process, the bookkeeping of the POSIX
locks it holds on each file (per inode), and POSIX locks are per process: a child inherits the
bookkeeping of every connection open at fork time but none of the locks. While an inherited
connection stays open in the child, the child's new connections to that file share its
bookkeeping and take no real locks; then a process closing its last connection believes it is
the only one, checkpoints and deletes the WAL that the child is committing to, and acknowledged
writes are lost. So right after a fork the child closes every inherited connection that was
idle: closing an idle WAL connection only tries for an exclusive lock (which fails while any
other process has the file open) and releases locks the child never had, then forgets the
bookkeeping. A connection that was busy at fork time — inside a transaction, or inside SQLite
on another thread — cannot be closed in the child: closing would roll back the parent's work in
the shared WAL index, or wait forever on a mutex held by a thread the child does not have. Such
a connection is kept open, never used, never closed; and since its bookkeeping would poison any
new connection, the child refuses to use that file at all (:func:`check_usable`). To make that
rare, ``fork()`` first waits (up to ``FORK_WAIT`` seconds) for statements running on other
threads to finish, holding back new ones meanwhile; only a transaction open on another thread
at fork time then makes its file unusable in the child.

A generation number, bumped in the child, makes each safe notice the fork on its next operation
and open fresh connections.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from typing import TypeVar

from storeroom.safe.errors import SafeError

T = TypeVar("T")

#: Bumped in a forked child; states from an older generation belong to the parent.
GENERATION = [0]
#: True while a ``fork()`` waits for running statements; new ones wait for it to happen.
FORKING = [False]
#: How long ``fork()`` waits for statements running on other threads to finish.
FORK_WAIT = 5.0

#: Every open thread state in this process (weakly: a state closes its connection when freed).
_LIVE: weakref.WeakSet[ThreadState] = weakref.WeakSet()
#: Guards ``_LIVE`` and ``_OPENING``; re-created in a forked child (a copy could be held).
_lock = threading.Lock()
#: Paths whose connections are being opened right now (not yet owned by a state).
_OPENING: list[str] = []
#: Inherited connections that were busy at fork time: kept open forever, never used.
_ABANDONED: list[sqlite3.Connection] = []
#: ``(st_dev, st_ino)`` of the files such connections are open on: unusable in this process.
_UNUSABLE: set[tuple[int, int]] = set()


class ThreadState:
    """One thread's connection to one safe: its cursor, its transaction depth and its owner.

    ``busy`` is true while a statement runs on the connection (or it is being closed), so that
    a fork from another thread at that moment leaves the connection alone in the child.
    """

    __slots__ = (
        "owner", "path", "conn", "cur", "gen", "depth", "busy", "closed", "thread", "__weakref__"
    )

    #: Kept on the class so that closing still works during interpreter shutdown.
    _generation = GENERATION

    def __init__(self, owner: object, path: str, conn: sqlite3.Connection) -> None:
        self.closed = False
        self.busy = False
        self.gen = GENERATION[0]
        self.depth = 0
        self.thread = threading.get_ident()
        self.owner = owner
        self.path = path
        self.conn = conn
        self.cur = conn.cursor()
        with _lock:
            _LIVE.add(self)

    def call(self, op: Callable[[sqlite3.Cursor], T]) -> T:
        """Run ``op`` on this state's cursor, marked busy while it runs."""
        self.busy = True
        try:
            return op(self.cur)
        finally:
            self.busy = False

    def close(self) -> None:
        """Close the connection, if this process opened it (an inherited one is never closed)."""
        if self.closed or self.gen != self._generation[0]:
            return
        self.busy = True
        try:
            self.conn.close()
        finally:
            self.closed = True
            self.busy = False

    __del__ = close


def open_state(owner: object, path: str, connect: Callable[[], sqlite3.Connection]) -> ThreadState:
    """Open a connection with ``connect`` and return the state that owns it.

    Raises :class:`SafeError` if this process cannot use ``path`` (see :func:`check_usable`).
    While ``connect`` runs, ``path`` is listed as being opened, so that a fork from another
    thread at that moment makes the child refuse the file.
    """
    if _UNUSABLE:
        check_usable(path)
    with _lock:
        _OPENING.append(path)
    try:
        return ThreadState(owner, path, connect())
    finally:
        with _lock:
            _OPENING.remove(path)


def check_usable(path: str) -> None:
    """Raise :class:`SafeError` if a connection busy at fork time is still open on ``path``."""
    try:
        st = os.stat(path)
    except OSError:  # not there: a new file, which no inherited connection has open
        return
    if (st.st_dev, st.st_ino) in _UNUSABLE:
        raise SafeError(
            f"safe {path} cannot be used in this process: it was forked while another thread "
            "was using the safe (or inside a transaction), and an SQLite connection must not "
            "cross fork(); open the safe in the child only, or fork while no thread uses it"
        )


def close_owned(owner: object) -> None:
    """Close every connection of ``owner`` (one safe) in this process, on every thread."""
    with _lock:
        states = [state for state in _LIVE if state.owner is owner]
    for state in states:
        state.close()


def wait_for_fork() -> None:
    """Hold a new statement back while a ``fork()`` waits for running ones to finish."""
    deadline = time.monotonic() + 2 * FORK_WAIT  # the fork goes ahead after FORK_WAIT anyway
    while FORKING[0] and time.monotonic() < deadline:
        time.sleep(0.0005)


def _before_fork() -> None:
    # Statements running on other threads hold their connection's mutex and maybe the write
    # lock: let them finish (new ones wait in wait_for_fork), so that the child can close every
    # connection that is not inside a transaction.
    FORKING[0] = True
    me = threading.get_ident()
    deadline = time.monotonic() + FORK_WAIT
    while True:
        with _lock:
            running = bool(_OPENING) or any(
                st.busy and st.thread != me and not _in_transaction(st) for st in _LIVE
            )
        if not running or time.monotonic() >= deadline:
            return
        time.sleep(0.0005)


def _after_fork_in_parent() -> None:
    FORKING[0] = False


def _in_transaction(state: ThreadState) -> bool:
    """Whether ``state`` is inside a transaction (then the child abandons it anyway)."""
    try:
        return state.conn.in_transaction
    except sqlite3.ProgrammingError:  # closed
        return False


def _keep_forever(conn: sqlite3.Connection) -> None:
    _ABANDONED.append(conn)
    # Interpreter shutdown frees module globals, and freeing a connection closes it: leak one
    # reference so that not even that ever closes it.
    try:
        import ctypes

        ctypes.pythonapi.Py_IncRef(ctypes.py_object(conn))
    except (ImportError, AttributeError, OSError):  # pragma: no cover - no ctypes here
        pass


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    FORKING[0] = False
    GENERATION[0] += 1
    suspects = list(_OPENING)
    _OPENING.clear()
    for state in list(_LIVE):
        if state.closed:
            continue
        try:
            busy = state.busy or state.conn.in_transaction
        except sqlite3.ProgrammingError:  # closed in the parent, just before the fork
            continue
        if not busy:
            try:
                state.conn.close()
            except sqlite3.Error:
                busy = True
        if busy:
            _keep_forever(state.conn)
            suspects.append(state.path)
        state.closed = True
    _LIVE.clear()
    for path in suspects:
        try:
            st = os.stat(path)
        except OSError:
            continue
        _UNUSABLE.add((st.st_dev, st.st_ino))


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )

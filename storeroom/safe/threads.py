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

import mmap
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from storeroom.safe import cache as read_cache
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
#: ``(st_dev, st_ino)`` of a ``-shm`` file -> [its mapping, its descriptor, states using it].
_SHM: dict[tuple[int, int], list[Any]] = {}
#: Descriptors of ``-shm`` files that could not be verified: never closed (see ``_unmap``).
_LEAKED: list[int] = []
#: ``(st_dev, st_ino)`` of the files such connections are open on: unusable in this process.
_UNUSABLE: set[tuple[int, int]] = set()


class ThreadState:
    """One thread's connection to one safe: its cursor, its transaction depth and its owner.

    ``busy`` is true while a statement runs on the connection (or it is being closed), so that
    a fork from another thread at that moment leaves the connection alone in the child.
    ``shm``, ``hdr``, ``dv`` and ``cache`` are the connection's read cache
    (:mod:`storeroom.safe.cache`): the mapped WAL-index header, its copy and the
    ``data_version`` when last validated, and the cached values.
    """

    __slots__ = (
        "owner", "path", "conn", "cur", "gen", "depth", "busy", "closed", "thread",
        "shm", "shm_id", "hdr", "dv", "cache", "__weakref__"
    )

    #: Kept on the class so that closing still works during interpreter shutdown.
    _generation = GENERATION
    _detach = staticmethod(read_cache.detach)
    _unmap: ClassVar[Callable[[tuple[int, int]], None]]  # set below, once defined

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
        self.shm: mmap.mmap | None = None
        self.shm_id: tuple[int, int] | None = None
        self.hdr = b""
        self.dv: int | None = None
        self.cache: dict[str, tuple[bytes, Any]] = {}
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
            # unmapped first: the -shm file may go away once the last connection closes
            self._detach(self)
            self.conn.close()
        finally:
            self.closed = True
            self.busy = False
        if self.shm_id is not None:
            type(self)._unmap(self.shm_id)
            self.shm_id = None

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
        state = ThreadState(owner, path, connect())
        map_shm(state)
        return state
    finally:
        with _lock:
            _OPENING.remove(path)


def map_shm(state: ThreadState) -> None:
    """Give ``state`` a read-only mapping of its file's WAL index (``-shm``), which turns its
    read cache on (:mod:`storeroom.safe.cache`); leave it off if there is no such file.

    Called while ``state.path`` is listed in ``_OPENING``, right after its connection opened
    (SQLite then has the ``-shm`` file open and locked: no other process truncates it).
    """
    shm_path = state.path + "-shm"
    try:
        st = os.stat(shm_path)
    except OSError:
        return
    if st.st_size < read_cache.HEADER_BLOCK:
        return
    ident = (st.st_dev, st.st_ino)
    with _lock:
        entry = _SHM.get(ident)
        if entry is None:
            try:
                fd = os.open(shm_path, os.O_RDONLY)
            except OSError:
                return
            try:
                same = (os.fstat(fd).st_dev, os.fstat(fd).st_ino) == ident
                shm = mmap.mmap(fd, read_cache.HEADER_BLOCK, access=mmap.ACCESS_READ)
            except (OSError, ValueError):
                same = False
            if not same:  # replaced meanwhile (or cannot be mapped): kept open, see _unmap
                _LEAKED.append(fd)
                return
            entry = _SHM[ident] = [shm, fd, 0]
        entry[2] += 1
    state.shm = entry[0]
    state.shm_id = ident


def _unmap(ident: tuple[int, int]) -> None:
    """A state stopped using the mapping ``ident`` (after closing its connection): close the
    mapping and its descriptors once no state of this process uses it and no connection is
    being opened. Closing any descriptor of a file releases every POSIX lock this process
    holds on it, so this must never happen while an SQLite connection here has it open."""
    try:
        with _lock:
            entry = _SHM.get(ident)
            if entry is None:
                return
            entry[2] -= 1
            if entry[2] > 0 or _OPENING:  # in use, or maybe about to be: keep it
                return
            del _SHM[ident]
            entry[0].close()  # closes the mapping's own duplicate of the descriptor
            os.close(entry[1])
    except Exception:  # pragma: no cover - interpreter shutdown: module globals are gone
        pass


#: Kept on the class so that closing still works during interpreter shutdown.
ThreadState._unmap = _unmap


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
        state.shm = None  # the parent's cache: never consulted here
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

"""The :class:`Safe`: a durable, process- and thread-safe ``MutableMapping`` in one file."""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

from storeroom.safe import engine, threads
from storeroom.safe.engine import Durability
from storeroom.safe.errors import SafeBusyError, SafeError
from storeroom.safe.mapping import SafeMapping
from storeroom.safe.space import DEFAULT_MIN_FREE_BYTES, SpaceGuard
from storeroom.safe.threads import FORKING, GENERATION, ThreadState
from storeroom.safe.transaction import Transaction

T = TypeVar("T")

#: SQLite's own busy handler polls at up to 100 ms intervals, so under contention a waiter can
#: starve for seconds while newcomers take the lock; the safe waits in :meth:`Safe._retry`
#: instead, polling at most every ``_MAX_DELAY`` seconds.
_SQLITE_WAIT = 0.0
_FIRST_DELAY = 0.0001
_MAX_DELAY = 0.002

#: How long an operation waits for locks held by other threads/processes before
#: :class:`SafeBusyError`.
DEFAULT_TIMEOUT = 30.0


class Safe(SafeMapping):
    """A dict-like store of picklable values under ``str`` keys, kept in one SQLite file.

    Every single operation is its own atomic transaction; with ``durability="full"`` (the
    default) a write is fsynced before it returns. ``durability="normal"`` skips that fsync: a
    crash of the process still loses nothing, but a power loss or OS crash may lose the last
    writes (never corrupting the file). Writes raise :class:`DiskFullError` before writing
    anything when less than ``min_free_bytes`` are free on the disk. Operations wait up to
    ``timeout`` seconds for locks held by other threads or processes, then raise
    :class:`SafeBusyError`.

    Values are pickled on write and unpickled on read: mutating a value you read changes
    nothing stored until you assign it back.

    Each thread uses its own connection, closed by :meth:`close`, when the thread ends, or as
    soon as the safe is dropped (no garbage collection needed). After ``fork()`` the child
    opens its own connections and never uses the parent's.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: Durability = "full",
        min_free_bytes: int = DEFAULT_MIN_FREE_BYTES,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if durability not in ("full", "normal"):
            raise ValueError(f"durability must be 'full' or 'normal', not {durability!r}")
        self.path = os.path.abspath(os.fspath(path))
        self.durability: Durability = durability
        self.timeout = float(timeout)
        self._guard = SpaceGuard(os.path.dirname(self.path), int(min_free_bytes))
        self._local = threading.local()
        #: Marks this safe's thread states; not the safe itself, which they must not keep alive.
        self._owner = object()

    @property
    def min_free_bytes(self) -> int:
        """The free-space floor under which writes raise :class:`DiskFullError`."""
        return self._guard.floor

    @property
    def _space(self) -> SpaceGuard:
        return self._guard

    @property
    def _path(self) -> str:
        return self.path

    # -- connections ------------------------------------------------------------------------

    def _state(self) -> ThreadState:
        if FORKING[0]:
            threads.wait_for_fork()
        try:
            state: ThreadState = self._local.state
        except AttributeError:
            return self._open()
        if state.gen != GENERATION[0]:  # forked since: the connection is the parent's
            return self._open()
        return state

    def _open(self) -> ThreadState:
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
        except OSError as exc:
            raise SafeError(f"safe {self.path}: cannot create its directory ({exc})") from exc
        state = threads.open_state(
            self._owner,
            self.path,
            lambda: self._retry(lambda: engine.connect(self.path, self.durability, _SQLITE_WAIT)),
        )
        self._local.state = state
        return state

    def close(self) -> None:
        """Close this process's connections, on every thread; the safe reopens them if used
        again."""
        self._local = threading.local()
        threads.close_owned(self._owner)

    def __enter__(self) -> Safe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running statements -----------------------------------------------------------------

    def _retry(self, op: Callable[[], T]) -> T:
        """Call ``op``, retrying with jittered exponential backoff while the safe is locked."""
        deadline = 0.0
        delay = _FIRST_DELAY
        while True:
            try:
                return op()
            except sqlite3.Error as exc:
                if not engine.is_busy(exc):
                    raise engine.translate(exc, self.path) from exc
                now = time.monotonic()
                if not deadline:
                    deadline = now + self.timeout
                elif now >= deadline:
                    raise SafeBusyError(
                        f"safe {self.path} stayed locked for more than {self.timeout} s "
                        f"(timeout): {exc}"
                    ) from exc
                time.sleep(min(delay * (0.5 + random.random()), max(0.0, deadline - now)))
                delay = min(delay * 1.5, _MAX_DELAY)

    def _run(self, op: Callable[[sqlite3.Cursor], T]) -> T:
        state = self._state()
        if state.depth:  # inside a transaction on this thread: already holds the write lock
            try:
                return state.call(op)
            except sqlite3.Error as exc:
                raise engine.translate(exc, self.path) from exc
        return self._retry(lambda: state.call(op))

    # -- transactions -----------------------------------------------------------------------

    def transaction(self) -> AbstractContextManager[Transaction]:
        """Group operations atomically: ``with safe.transaction() as t: t["a"] = 1; ...``.

        The block holds the safe's write lock; it commits (durably) when the block exits
        normally and rolls back if it raises or the process dies. ``t`` is a mutable mapping
        over the safe. Operations on the safe itself from the same thread join the open
        transaction; nested ``transaction()`` blocks are savepoints.
        """
        return self._transaction()

    @contextmanager
    def _transaction(self) -> Iterator[Transaction]:
        with self._atomic_on(self._state()) as state:
            txn = Transaction(self, state)
            try:
                yield txn
            finally:
                txn._open = False

    def _atomic(self) -> AbstractContextManager[ThreadState]:
        return self._atomic_on(self._state())

    @contextmanager
    def _atomic_on(self, state: ThreadState) -> Iterator[ThreadState]:
        if state.depth:
            yield from self._savepoint(state)
            return
        self._retry(lambda: state.call(_begin))
        state.depth = 1
        try:
            yield state
        except BaseException:
            state.depth = 0
            try:
                self._end(state, "ROLLBACK")
            finally:
                state.cache.clear()
            raise
        state.depth = 0
        try:
            self._end(state, "COMMIT")
        finally:
            # the transaction's writes bypassed the read cache: whatever it holds for the
            # keys they touched is stale now (or, after a rollback, was never committed)
            state.cache.clear()

    def _savepoint(self, state: ThreadState) -> Iterator[ThreadState]:
        name = f"safe_sp{state.depth}"
        _check_generation(state)
        state.call(lambda cur: cur.execute(f"SAVEPOINT {name}"))
        state.depth += 1
        try:
            yield state
        except BaseException:
            state.depth -= 1
            _check_generation(state)
            if state.conn.in_transaction:
                state.call(lambda cur: cur.execute(f"ROLLBACK TO {name}"))
                state.call(lambda cur: cur.execute(f"RELEASE {name}"))
            raise
        state.depth -= 1
        _check_generation(state)
        state.call(lambda cur: cur.execute(f"RELEASE {name}"))

    def _end(self, state: ThreadState, verb: str) -> None:
        _check_generation(state)
        try:
            if state.conn.in_transaction:
                state.call(lambda cur: cur.execute(verb))
        except sqlite3.Error as exc:
            if state.conn.in_transaction:
                state.call(_rollback)
            raise engine.translate(exc, self.path) from exc

    def __repr__(self) -> str:
        return f"Safe({self.path!r}, durability={self.durability!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_reopen, (self.path, self.durability, self.min_free_bytes, self.timeout))


def _begin(cur: sqlite3.Cursor) -> None:
    cur.execute("BEGIN IMMEDIATE")


def _rollback(cur: sqlite3.Cursor) -> None:
    cur.execute("ROLLBACK")


def _check_generation(state: ThreadState) -> None:
    """Refuse to touch a connection inherited across ``fork()`` (a transaction of the parent)."""
    if state.gen != GENERATION[0]:
        raise SafeError("the process forked inside a transaction; the child cannot use it")


def _reopen(path: str, durability: Durability, min_free_bytes: int, timeout: float) -> Safe:
    return Safe(path, durability=durability, min_free_bytes=min_free_bytes, timeout=timeout)

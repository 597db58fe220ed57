"""The mapping API shared by :class:`~storeroom.safe.Safe` and its transactions.

Subclasses say how to get the thread's connection state (``_state``), how to run a statement
that may have to wait for a lock (``_run``) and how to group statements atomically
(``_atomic``); everything else — pickling, key checks, the ``MutableMapping`` methods — lives
here once.
"""

from __future__ import annotations

import sqlite3
from abc import abstractmethod
from collections.abc import (
    Callable,
    ItemsView,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
    ValuesView,
)
from contextlib import AbstractContextManager
from typing import Any, TypeVar, overload

from storeroom.safe import cache as read_cache
from storeroom.safe import engine
from storeroom.safe.codec import check_key, damaged_value, dumps, load, loads, stored_key
from storeroom.safe.space import SpaceGuard
from storeroom.safe.threads import ThreadState

T = TypeVar("T")
_MISSING: Any = object()


class SafeMapping(MutableMapping[str, Any]):
    """A ``MutableMapping[str, Any]`` over one SQLite table of pickled values.

    Every method that takes a key checks it (:func:`~storeroom.safe.codec.check_key`); every
    read of a damaged file — a value that cannot be unpickled, a key that is not text, a file
    that is not (or no longer) an SQLite database — raises :class:`~storeroom.safe.SafeError`
    with the original error as ``__cause__``.
    """

    __slots__ = ()

    # -- what subclasses provide ------------------------------------------------------------

    @abstractmethod
    def _state(self) -> ThreadState:
        """This thread's connection state."""

    @abstractmethod
    def _run(self, op: Callable[[sqlite3.Cursor], T]) -> T:
        """Run ``op`` on this thread's cursor, waiting out locks held elsewhere; errors come out
        as :class:`~storeroom.safe.SafeError`."""

    @abstractmethod
    def _atomic(self) -> AbstractContextManager[ThreadState]:
        """A context in which several statements commit together or not at all."""

    @property
    @abstractmethod
    def _space(self) -> SpaceGuard:
        """The free-space guard of the safe's directory."""

    @property
    @abstractmethod
    def _path(self) -> str:
        """The safe's file, for error messages."""

    # -- reads ------------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        """Return the value stored under ``key``; raise ``KeyError`` if there is none."""
        value = self._lookup(key)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value under ``key``, or ``default`` if there is none."""
        value = self._lookup(key)
        return default if value is _MISSING else value

    def _lookup(self, key: str) -> Any:
        """The value under ``key`` or ``_MISSING``: from this connection's read cache while
        nothing was committed since it was validated (:mod:`storeroom.safe.cache`), else from
        the file. This is the hottest path: statements run inline, ``_run`` only on errors."""
        if type(key) is not str or not key.isascii():
            key = check_key(key)
        st = self._state()
        shm = st.shm
        cached = shm is not None and not st.depth
        st.busy = True  # inlined ThreadState.call
        try:
            if cached:
                try:
                    same = shm[:read_cache.HEADER] == st.hdr  # type: ignore[index]
                except ValueError:  # unmapped meanwhile: the safe was closed
                    same = cached = False
                if not same and cached:
                    read_cache.revalidate(st, st.cur)
                hit = st.cache.get(key) if cached else None
                if hit is not None:
                    value = hit[1]
                    # decoded once before: the pickle is sound
                    return loads(hit[0]) if value is read_cache.DECODE else value
            row = st.cur.execute(engine.GET, (key,)).fetchone()
        except sqlite3.Error:
            row = self._run(lambda cur: cur.execute(engine.GET, (key,)).fetchone())
            cached = False  # waited for a lock: validate again on the next read
        finally:
            st.busy = False
        if row is None:
            return _MISSING
        blob = row[0]
        try:
            value = loads(blob)
        except Exception as exc:
            raise damaged_value(self._path, key, exc) from exc
        if cached:
            read_cache.remember(st, key, blob, value)
        return value

    def __contains__(self, key: object) -> bool:
        """True if a value (possibly ``None``) is stored under ``key``."""
        k = check_key(key)
        return self._run(lambda cur: cur.execute(engine.HAS, (k,)).fetchone()) is not None

    def __len__(self) -> int:
        """The number of keys."""
        return int(self._run(lambda cur: cur.execute(engine.COUNT).fetchone()[0]))

    def __iter__(self) -> Iterator[str]:
        """Iterate over a snapshot of the keys, in sorted order."""
        rows = self._run(lambda cur: cur.execute(engine.KEYS).fetchall())
        path = self._path
        return iter([stored_key(path, key) for (key,) in rows])

    def _items(self) -> list[tuple[str, Any]]:
        rows = self._run(lambda cur: cur.execute(engine.ITEMS).fetchall())
        path = self._path
        return [(stored_key(path, key), load(path, key, blob)) for key, blob in rows]

    def items(self) -> ItemsView[str, Any]:
        """A view of the ``(key, value)`` pairs; each iteration reads one consistent snapshot."""
        return _ItemsView(self)

    def values(self) -> ValuesView[Any]:
        """A view of the values; each iteration reads one consistent snapshot."""
        return _ValuesView(self)

    # -- writes -----------------------------------------------------------------------------

    def __setitem__(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key``: atomic, and durable once this returns."""
        if type(key) is not str or not key.isascii():
            key = check_key(key)
        blob = dumps(value)
        self._space.check(len(blob) + len(key))
        params = (key, blob)
        st = self._state()
        if st.depth:  # inside a transaction: the cache is emptied when it ends
            self._run(lambda cur: cur.execute(engine.PUT, params))
            return
        ok = False
        st.busy = True  # inlined ThreadState.call: one autocommit statement
        try:
            st.cur.execute(engine.PUT, params)
            ok = True
        except sqlite3.Error:
            pass
        finally:
            st.busy = False
        try:
            if not ok:  # busy, or an error: wait and retry, or raise the safe's error
                self._run(lambda cur: cur.execute(engine.PUT, params))
        except BaseException:
            st.cache.pop(key, None)
            raise
        if st.shm is not None:  # this connection's own write: the cache follows it
            read_cache.remember(st, key, blob, value)

    def __delitem__(self, key: str) -> None:
        """Delete ``key``; raise ``KeyError`` if it is missing."""
        k = check_key(key)
        self._space.check(0)
        st = self._state()
        try:
            deleted = self._run(lambda cur: cur.execute(engine.DELETE, (k,)).rowcount)
        finally:
            st.cache.pop(k, None)
        if deleted == 0:
            raise KeyError(key)

    @overload
    def pop(self, key: str) -> Any: ...

    @overload
    def pop(self, key: str, default: Any) -> Any: ...

    def pop(self, key: str, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its value (atomically); ``default`` or ``KeyError`` if
        missing. A value that cannot be read stays stored (:class:`SafeError`)."""
        k = check_key(key)
        self._space.check(0)
        with self._atomic():  # unpickled inside, so that a damaged value is not deleted
            if engine.HAS_RETURNING:
                row = self._run(lambda cur: cur.execute(engine.POP, (k,)).fetchone())
            else:  # pragma: no cover - SQLite < 3.35
                row = self._run(lambda cur: cur.execute(engine.GET, (k,)).fetchone())
                if row is not None:
                    self._run(lambda cur: cur.execute(engine.DELETE, (k,)))
            value = _MISSING if row is None else load(self._path, k, row[0])
        if value is _MISSING:
            if default is _MISSING:
                raise KeyError(key)
            return default
        return value

    def popitem(self) -> tuple[str, Any]:
        """Remove and return the ``(key, value)`` pair with the smallest key; ``KeyError`` if
        empty. A value that cannot be read stays stored (:class:`SafeError`)."""
        self._space.check(0)
        with self._atomic():
            row = self._run(lambda cur: cur.execute(engine.FIRST).fetchone())
            if row is None:
                raise KeyError("popitem(): the safe is empty")
            key = stored_key(self._path, row[0])
            self._run(lambda cur: cur.execute(engine.DELETE, (key,)))
            value = load(self._path, key, row[1])
        return key, value

    def setdefault(self, key: str, default: Any = None) -> Any:
        """Return the value of ``key``; if missing, store ``default`` first (atomically)."""
        k = check_key(key)
        blob = dumps(default)
        self._space.check(len(blob) + len(k))
        with self._atomic():
            row = self._run(lambda cur: cur.execute(engine.GET, (k,)).fetchone())
            if row is not None:
                return load(self._path, k, row[0])
            self._run(lambda cur: cur.execute(engine.PUT, (k, blob)))
        return default

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Store many pairs as ONE transaction: all are written, or none.

        Accepts what ``dict.update`` accepts: a mapping, an iterable of pairs, keyword arguments.
        Every key is checked and every value pickled before anything is written.
        """
        pairs: Iterable[tuple[Any, Any]]
        if isinstance(other, Mapping):
            pairs = [(k, other[k]) for k in other]
        elif hasattr(other, "keys"):
            pairs = [(k, other[k]) for k in other.keys()]
        else:
            pairs = other
        rows = [(check_key(k), dumps(v)) for k, v in pairs]
        rows.extend((check_key(k), dumps(v)) for k, v in kwargs.items())
        if not rows:
            return
        self._space.check(sum(len(k) + len(b) for k, b in rows))
        with self._atomic():
            self._run(lambda cur: cur.executemany(engine.PUT, rows))

    def clear(self) -> None:
        """Delete every key, as one transaction."""
        self._space.check(0)
        st = self._state()
        try:
            self._run(lambda cur: cur.execute(engine.CLEAR))
        finally:
            st.cache.clear()


class _ItemsView(ItemsView[str, Any]):
    _mapping: SafeMapping

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return iter(self._mapping._items())


class _ValuesView(ValuesView[Any]):
    _mapping: SafeMapping

    def __iter__(self) -> Iterator[Any]:
        return iter([value for _, value in self._mapping._items()])

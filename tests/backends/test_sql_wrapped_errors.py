"""A driver error from a statement of storeroom's own transaction control (BEGIN,
SAVEPOINT, COMMIT, ROLLBACK) or of an update's locked read reaches the user as a typed
storeroom error, with the driver's as ``__cause__`` (SQLite's lock timeout here)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from storeroom import Create, Q, open_async_store, open_store, stored
from storeroom.errors import StoreroomError


@stored
class Row:
    id: int
    n: int = 0


def _lock(path: Path) -> sqlite3.Connection:
    """Another connection holding the write lock of the database."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


def _typed(exc: BaseException) -> None:
    assert isinstance(exc, StoreroomError), f"{type(exc).__module__}.{type(exc).__name__}"
    assert isinstance(exc.__cause__, Exception) and "locked" in str(exc.__cause__)


def test_sync_batches_and_locked_update(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    s = open_store(Row, f"sqlite:///{path}?busy_timeout=50")
    s.create(Row(id=1))  # the table exists before the lock is taken
    other = _lock(path)
    try:
        for call in (lambda: s.edit_batch([Create(Row(id=2))]),
                     lambda: s.edit_batch([Create(Row(id=2))], atomic=True),
                     # a precondition with a local part: read locked, in a transaction
                     lambda: s.update(1, precondition=Q(n=0) | Q(n__lt=5), n=2)):
            with pytest.raises(Exception) as info:  # noqa: PT011 - the type is the check
                call()
            _typed(info.value)
    finally:
        other.execute("ROLLBACK")
        other.close()
        s.close()


def test_async_batch(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"

    async def main() -> None:
        s = open_async_store(Row, f"sqlite:///{path}?busy_timeout=50")
        await s.create(Row(id=1))
        other = _lock(path)
        try:
            with pytest.raises(Exception) as info:  # noqa: PT011 - the type is the check
                await s.edit_batch([Create(Row(id=2))], atomic=True)
            _typed(info.value)
        finally:
            other.execute("ROLLBACK")
            other.close()
            await s.close()
    asyncio.run(main())


def test_a_driver_error_is_the_cause_and_the_context_is_suppressed(tmp_path: Path) -> None:
    """A real driver error (the table dropped under the store): its storeroom error has
    it as ``__cause__``, as ``raise … from`` gives."""
    path = tmp_path / "dropped.db"
    s = open_store(Row, f"sqlite:///{path}")
    s.create(Row(id=1))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("DROP TABLE row")
    other.close()
    try:
        with pytest.raises(StoreroomError) as info:
            s.read(1)
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
        assert info.value.__suppress_context__
    finally:
        s.close()


def test_a_storeroom_error_from_inside_is_not_its_own_cause(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A storeroom error raised under a statement (as the driver's own check of a
    multi-row INSERT's row count does) passes through the backend's wrapping as it is:
    it used to be raised ``from`` itself, so its ``__cause__`` was the error itself."""
    from storeroom.backends.sql._sync.driver import Driver
    from storeroom.errors import BackendError

    s = open_store(Row, f"sqlite:///{tmp_path / 'inner.db'}")
    s.create(Row(id=1))
    inner = BackendError("a multi-row INSERT of 2 rows inserted 1")

    def refuse(self: Driver, sql: str, params: object) -> object:
        raise inner

    monkeypatch.setattr(Driver, "all", refuse)
    monkeypatch.setattr(Driver, "one", refuse)
    try:
        for call in (lambda: s.read(1), lambda: list(s.search_all()), lambda: s.count()):
            with pytest.raises(BackendError) as info:
                call()
            assert info.value is inner
            assert info.value.__cause__ is not info.value
    finally:
        monkeypatch.undo()
        s.close()

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

"""The SQLite engine under a safe: opening connections, the schema, classifying errors.

A safe is one SQLite database in WAL mode holding one table ``safe(key TEXT PRIMARY KEY,
value BLOB) WITHOUT ROWID``. ``durability="full"`` runs with ``synchronous=FULL``: every commit
fsyncs the write-ahead log before it returns. ``durability="normal"`` runs with
``synchronous=NORMAL``: commits are atomic and the file is never corrupted, but the last commits
before a power loss or OS crash may be lost (a crash of the process alone loses nothing).
"""

from __future__ import annotations

import sqlite3
import sys
from typing import Literal

from storeroom.safe.errors import DiskFullError, SafeBusyError, SafeError

Durability = Literal["full", "normal"]

#: ``PRAGMA application_id`` of a safe file ("SAFE" in ASCII).
APPLICATION_ID = 0x53414645

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS safe "
    "(key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL) WITHOUT ROWID"
)

GET = "SELECT value FROM safe WHERE key = ?"
HAS = "SELECT 1 FROM safe WHERE key = ?"
PUT = "INSERT OR REPLACE INTO safe (key, value) VALUES (?, ?)"
DELETE = "DELETE FROM safe WHERE key = ?"
POP = "DELETE FROM safe WHERE key = ? RETURNING value"
COUNT = "SELECT count(*) FROM safe"
KEYS = "SELECT key FROM safe ORDER BY key"
ITEMS = "SELECT key, value FROM safe ORDER BY key"
FIRST = "SELECT key, value FROM safe ORDER BY key LIMIT 1"
CLEAR = "DELETE FROM safe"

#: ``DELETE ... RETURNING`` needs SQLite 3.35; older libraries pop inside a transaction.
HAS_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)

_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_NOTADB = 26


class Connection(sqlite3.Connection):
    """A ``sqlite3.Connection`` that can be weakly referenced."""


def _code(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def is_busy(exc: BaseException) -> bool:
    """True if ``exc`` says another connection holds a lock we need (retryable).

    Only SQLite's own result code counts: errors ``sqlite3`` raises itself (a text column that
    is not UTF-8, a closed connection) carry no code, and their message may quote stored text.
    """
    return _code(exc) in (_SQLITE_BUSY, _SQLITE_LOCKED)


def translate(exc: sqlite3.Error, path: str) -> SafeError:
    """Map a ``sqlite3`` error to the safe's error of the same meaning."""
    code = _code(exc)
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return SafeBusyError(f"safe {path} is busy: {exc}")
    if code == _SQLITE_FULL:
        return DiskFullError(f"safe {path}: the disk is full ({exc})")
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return SafeError(f"safe {path} is damaged or not an SQLite database: {exc}")
    if code is None and "decode" in str(exc):  # ``sqlite3`` could not read a stored text
        return SafeError(f"safe {path} is damaged: {exc}")
    return SafeError(f"safe {path}: {exc}")


def connect(path: str, durability: Durability, timeout: float) -> sqlite3.Connection:
    """Open a connection to the safe at ``path``, creating the file and its table if needed.

    ``timeout`` is SQLite's own busy timeout (the safe passes 0 and retries itself). May raise ``sqlite3.OperationalError`` (busy) while another process initialises the file;
    callers retry.
    """
    conn = sqlite3.connect(
        path,
        timeout=timeout,
        isolation_level=None,
        check_same_thread=False,
        factory=Connection,
        cached_statements=32,
    )
    try:
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise SafeError(f"safe {path}: cannot switch to WAL mode (got {mode!r})")
        sync = "FULL" if durability == "full" else "NORMAL"
        conn.execute(f"PRAGMA synchronous={sync}")
        if sys.platform == "darwin" and durability == "full":  # pragma: no cover - macOS
            conn.execute("PRAGMA fullfsync=ON")
            conn.execute("PRAGMA checkpoint_fullfsync=ON")
        _ensure_schema(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _ensure_schema(conn: sqlite3.Connection, path: str) -> None:
    if _has_table(conn):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not _has_table(conn):
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if tables and app_id != APPLICATION_ID:
                raise SafeError(f"{path} is an SQLite database but not a safe")
            conn.execute(SCHEMA)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _has_table(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'safe'")
    return row.fetchone() is not None

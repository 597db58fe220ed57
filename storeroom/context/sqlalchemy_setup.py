"""SQLAlchemy engine set-up shared by both flavors: the SQLite recipe and the read-only guard."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ..backends.sql.engines import AUTOCOMMIT_OPTION
from ..errors import ReadOnlyError

__all__ = [
    "AUTOCOMMIT_OPTION",
    "AsyncConnection",
    "AsyncEngine",
    "Connection",
    "Engine",
    "create_async_engine",
    "create_engine",
    "install_read_only_guard",
    "is_write_statement",
    "sync_engine_of",
]


def sync_engine_of(engine: Any) -> Engine:
    """The sync ``Engine`` behind ``engine`` (itself, or ``AsyncEngine.sync_engine``)."""
    return getattr(engine, "sync_engine", engine)


_READ_KEYWORDS = frozenset(
    {
        "SELECT", "WITH", "EXPLAIN", "SHOW", "DESCRIBE", "DESC", "VALUES", "PRAGMA", "BEGIN",
        "START", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "END", "SET", "RESET", "USE",
    }
)  # fmt: skip
_FIRST_WORD = re.compile(r"\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*\(*\s*([A-Za-z]+)", re.S)
_SELECT_INTO = re.compile(r"\s*\(*\s*SELECT\b(?:(?!\bFROM\b).)*\bINTO\b", re.I | re.S)
_WRITE_WORD = re.compile(
    r"\b(INSERT|UPDATE|DELETE|REPLACE|MERGE|CREATE|DROP|ALTER|TRUNCATE)\b", re.I
)


def is_write_statement(statement: str, context: Any = None) -> bool:
    """Whether ``statement`` may change the database (conservative: unknown means write).

    Compiled statements are judged by SQLAlchemy's own flags (insert, update,
    delete, DDL); text by its first keyword (a ``WITH`` or ``PRAGMA`` that
    contains a write keyword or an assignment counts as a write).
    """
    if context is not None and (
        context.isinsert or context.isupdate or context.isdelete or context.isddl
    ):
        return True
    m = _FIRST_WORD.match(statement)
    if m is None:
        return True
    word = m.group(1).upper()
    if word not in _READ_KEYWORDS:
        return True
    if word == "WITH":
        return _WRITE_WORD.search(statement) is not None
    if word == "PRAGMA":
        return "=" in statement and "query_only" not in statement.lower()
    if word == "SELECT":
        return _SELECT_INTO.match(statement) is not None
    return False


def install_read_only_guard(engine: Engine, name: str) -> None:
    """Refuse (``ReadOnlyError``) every write through ``engine`` before it reaches the database."""

    @event.listens_for(engine, "before_cursor_execute")
    def _guard(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if is_write_statement(statement, context):
            raise ReadOnlyError(
                f"engine {name!r} is read-only; refused to run: {statement.strip()[:80]!r}"
            )

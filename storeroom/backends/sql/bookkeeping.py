"""storeroom's bookkeeping table on SQL: ``storeroom_meta(name PRIMARY KEY, value)``.

It holds the cursor secret of the database (see ``backends.bookkeeping``). The table is
kept in a ``MetaData`` of its own, never in a model's, so user migrations leave it out.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import sqlalchemy as sa
from sqlalchemy.schema import CreateTable

from ..bookkeeping import BOOKKEEPING, CURSOR_SECRET, new_secret

META = sa.Table(
    BOOKKEEPING, sa.MetaData(),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(255), nullable=False),
)

_SELECT = sa.select(META.c.value).where(META.c.name == sa.bindparam("name"))
_CREATE = CreateTable(META, if_not_exists=True)

# the secret of each database, per engine of this process (loaded once)
_SECRETS: weakref.WeakKeyDictionary[Any, bytes] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _insert_if_absent(dialect: str) -> Any:
    """INSERT of a (name, value) row that does nothing when the name exists already."""
    values: dict[str, Any] = {"name": sa.bindparam("name"), "value": sa.bindparam("value")}
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert
        return sqlite_insert(META).values(values).on_conflict_do_nothing()
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        return pg_insert(META).values(values).on_conflict_do_nothing()
    from sqlalchemy.dialects.mysql import insert as mysql_insert
    stmt = mysql_insert(META).values(values)
    return stmt.on_duplicate_key_update(name=stmt.inserted.name)


def autocommit_options(dialect: str) -> dict[str, Any]:
    """Execution options that make a connection run each statement on its own."""
    from .engines import AUTOCOMMIT_OPTION
    if dialect == "sqlite":  # the driver autocommits; this tells storeroom not to BEGIN
        return {AUTOCOMMIT_OPTION: True}
    return {"isolation_level": "AUTOCOMMIT"}


def cached_secret(engine: Any) -> bytes | None:
    """The secret already loaded for ``engine``'s database in this process, or None."""
    return _SECRETS.get(getattr(engine, "sync_engine", engine))


def cache_secret(engine: Any, secret: bytes) -> None:
    """Remember ``engine``'s secret for every later store of this process."""
    with _LOCK:
        _SECRETS[getattr(engine, "sync_engine", engine)] = secret


def load_secret(conn: Any) -> bytes:
    """The database's cursor secret, created now if it has none (on a sync connection).

    ``conn`` runs each statement on its own (autocommit), or in a transaction that holds
    the write lock already (SQLite). Race-free: the table is created if absent and the
    row inserted if absent, then whatever row is there is read back.
    """
    params = {"name": CURSOR_SECRET}
    for attempt in range(3):
        try:
            value = conn.execute(_SELECT, params).scalar()
        except sa.exc.DBAPIError:
            value = None  # no table yet (autocommit, or a SQLite savepoint: nothing aborted)
        if value is not None:
            return str(value).encode()
        try:
            conn.execute(_CREATE)
            conn.execute(_insert_if_absent(conn.dialect.name),
                         {**params, "value": new_secret()})
        except sa.exc.DBAPIError:
            # another process created the table or the row at the same moment (PostgreSQL's
            # CREATE TABLE IF NOT EXISTS can fail on such a race): read what it wrote
            if attempt == 2:
                raise
    raise RuntimeError("unreachable")  # pragma: no cover

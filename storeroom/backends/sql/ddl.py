"""Table creation that is safe while other threads, tasks and processes create the same tables.

``create_all`` runs on a sync SQLAlchemy connection inside a transaction and first takes
a lock that serializes storeroom's DDL on the database, then creates what is missing
(``checkfirst``), so two creators never both see a table missing:

- SQLite: the transaction holds the database's write lock (``BEGIN IMMEDIATE``, or a
  context's transaction that already holds it), waiting ``busy_timeout`` for it.
- PostgreSQL: a transaction-level advisory lock (concurrent ``CREATE TABLE`` otherwise
  fails with a unique violation on ``pg_type``).
- MySQL/MariaDB: a named lock (``GET_LOCK``); DDL there commits by itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event

from ...errors import Conflict
from ...observe import QueryRecord, Site, emit

R = TypeVar("R")

# pg_advisory_xact_lock key: "storeroo" as a big-endian int64
PG_DDL_LOCK = 0x73746F7265726F6F
MYSQL_DDL_LOCK = "storeroom_ddl"
MYSQL_DDL_WAIT_S = 120


def create_all(cores: Iterable[Any], conn: Any) -> None:
    """Create the tables and indexes of ``cores`` that are missing, under the DDL lock."""
    name = conn.dialect.name
    if name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_DDL_LOCK})")
        _create(cores, conn)
    elif name in ("mysql", "mariadb"):
        got = conn.exec_driver_sql(
            f"SELECT GET_LOCK('{MYSQL_DDL_LOCK}', {MYSQL_DDL_WAIT_S})").scalar()
        if got != 1:
            raise TimeoutError(f"waited {MYSQL_DDL_WAIT_S} s for the lock {MYSQL_DDL_LOCK!r} "
                               f"held by another connection creating tables")
        try:
            _create(cores, conn)
        finally:
            conn.exec_driver_sql(f"SELECT RELEASE_LOCK('{MYSQL_DDL_LOCK}')")
    else:
        _create(cores, conn)


def _create(cores: Iterable[Any], conn: Any) -> None:
    for core in cores:
        create_missing(core.metadata, conn)


def create_missing(metadata: sa.MetaData, conn: Any) -> None:
    """Create the tables of ``metadata`` that are missing (with their indexes) and, on
    tables that exist already, the indexes they lack; never drops or alters anything.

    An index counts as present when the table has one over the same columns in the same
    order with the same uniqueness, whatever its name: a database made before storeroom
    followed alembic's naming convention (or by hand) keeps its own names.
    """
    existing = set(sa.inspect(conn).get_table_names())
    metadata.create_all(conn, checkfirst=True)
    inspector = None
    for table in metadata.sorted_tables:
        if table.name not in existing or not table.indexes:
            continue
        if inspector is None:  # after create_all: a fresh view of the database
            inspector = sa.inspect(conn)
        have = {(tuple(ix["column_names"]), bool(ix["unique"]))
                for ix in inspector.get_indexes(table.name)}
        missing = [ix for ix in sorted(table.indexes, key=lambda i: str(i.name))
                   if (tuple(c.name for c in ix.columns), bool(ix.unique)) not in have]
        # a unique index over rows that already share values: refused before any index
        # is created (MySQL commits each CREATE INDEX by itself: nothing half-built)
        for ix in missing:
            if ix.unique:
                _refuse_duplicates(table, ix, conn)
        for ix in missing:
            try:
                ix.create(conn)
            except sa.exc.IntegrityError as exc:  # duplicates written since the check
                raise Conflict(f"{table.name}: cannot build the unique index {ix.name}: "
                               f"stored rows share values ({exc.orig}); nothing was built"
                               ) from exc


def _refuse_duplicates(table: sa.Table, ix: sa.Index, conn: Any) -> None:
    """``Conflict`` naming the values that several rows of ``table`` share in the
    columns of the unique index ``ix`` (rows with a NULL in them never conflict)."""
    cols = list(ix.columns)
    q = (sa.select(*cols).where(*(c.is_not(None) for c in cols)).group_by(*cols)
         .having(sa.func.count() > 1).limit(5))
    dups = conn.execute(q).all()
    if not dups:
        return
    shown = "; ".join(", ".join(f"{c.name}={v!r}" for c, v in zip(cols, row, strict=True))
                      for row in dups)
    raise Conflict(f"{table.name}: cannot make {', '.join(c.name for c in cols)} unique "
                   f"({ix.name}): stored rows share values ({shown}); nothing was built")


def mark_ready(cores: Iterable[Any]) -> None:
    """Record that the tables of ``cores`` exist (after the transaction that made them)."""
    for core in cores:
        core.ready = True


def watched(fn: Callable[[Any], R], site: Site, logs: Any) -> Callable[[Any], R]:
    """``fn(conn)`` with every statement SQLAlchemy sends on the sync connection ``conn``
    recorded on the observer seam (``logs``: what ``OBSERVERS.get()`` gave the caller).

    storeroom's own statements skip SQLAlchemy's execution layer and are recorded by its
    driver; DDL (``create_all``) and the bookkeeping statements do run through SQLAlchemy
    (table reflection, ``CREATE TABLE``, ``CREATE INDEX``, the DDL locks): its cursor
    events see them. The listeners are on ``conn`` only, for the call only (SQLAlchemy's
    ``handle_error`` cannot be per connection: a statement that raised is the one whose
    ``after`` never came).
    """
    def run(conn: Any) -> R:
        pending: list[tuple[float, str, Any]] = []

        def before(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any,
                   _many: bool) -> None:
            pending.append((time.perf_counter(), statement, params))

        def after(_c: Any, cursor: Any, statement: str, params: Any, _ctx: Any,
                  _many: bool) -> None:
            t0 = pending.pop()[0] if pending else time.perf_counter()
            n = getattr(cursor, "rowcount", -1)
            emit(logs, QueryRecord(site.backend, site.engine, statement.strip(), params,
                                   time.perf_counter() - t0,
                                   n if isinstance(n, int) and n >= 0 else None,
                                   site.collection))

        event.listen(conn, "before_cursor_execute", before)
        event.listen(conn, "after_cursor_execute", after)
        try:
            return fn(conn)
        except BaseException as exc:
            if pending:  # the statement that failed
                t0, statement, params = pending.pop()
                emit(logs, QueryRecord(site.backend, site.engine, statement.strip(), params,
                                       time.perf_counter() - t0, None, site.collection,
                                       type(exc).__name__))
            raise
        finally:
            event.remove(conn, "before_cursor_execute", before)
            event.remove(conn, "after_cursor_execute", after)
    return run

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

from collections.abc import Iterable
from typing import Any

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
        core.create(conn)


def mark_ready(cores: Iterable[Any]) -> None:
    """Record that the tables of ``cores`` exist (after the transaction that made them)."""
    for core in cores:
        core.ready = True

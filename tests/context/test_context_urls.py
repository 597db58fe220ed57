"""URL identity (which engines are replicas) and the read-only statement classifier."""

from __future__ import annotations

import pytest

from storeroom.context.sqlalchemy_setup import is_write_statement
from storeroom.context.urls import database_identity, driver_url, same_database


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("postgresql://writer:pw@db:5432/app", "postgresql+psycopg://reader:other@db/app", True),
        ("postgresql://u@db/app", "postgresql://u@db/other", False),
        ("postgresql://u@db/app", "postgresql://u@replica/app", False),
        ("postgresql://u@db:5433/app", "postgresql://u@db/app", False),
        ("mysql://a@127.0.0.1/app", "mysql+pymysql://b@localhost:3306/app", True),
        ("mysql://a@db/app", "postgresql://a@db/app", False),
        ("sqlite:////tmp/x/app.db", "sqlite+aiosqlite:////tmp/x/../x/app.db", True),
        ("sqlite:///:memory:", "sqlite:///:memory:", False),
        ("sqlite://", "sqlite://", False),
    ],
)
def test_same_database(a: str, b: str, same: bool) -> None:
    assert same_database(a, b) is same


def test_identity_and_drivers() -> None:
    assert database_identity("sqlite://") is None
    assert driver_url("sqlite:///a.db", True).drivername == "sqlite+aiosqlite"
    assert driver_url("sqlite:///a.db", False).drivername == "sqlite"
    assert driver_url("postgres://h/db", False).drivername == "postgresql+psycopg"
    assert driver_url("mysql://h/db", True).drivername == "mysql+aiomysql"
    assert driver_url("postgresql+asyncpg://h/db", True).drivername == "postgresql+asyncpg"


@pytest.mark.parametrize(
    "sql",
    ["INSERT INTO t VALUES (1)", "  update t set a=1", "DELETE FROM t", "CREATE TABLE x (a int)",
     "DROP TABLE t", "REPLACE INTO t VALUES (1)", "WITH a AS (SELECT 1) DELETE FROM t",
     "SELECT a INTO new_t FROM t", "PRAGMA journal_mode=DELETE", "VACUUM", "/* c */ INSERT INTO t"],
)  # fmt: skip
def test_writes(sql: str) -> None:
    assert is_write_statement(sql)


@pytest.mark.parametrize(
    "sql",
    ["SELECT 1", " select a from t", "WITH a AS (SELECT 1) SELECT * FROM a", "BEGIN",
     "SAVEPOINT sa_1", "RELEASE SAVEPOINT sa_1", "ROLLBACK", "EXPLAIN SELECT 1",
     "PRAGMA table_info(t)", "-- note\nSELECT 1", "(SELECT 1) UNION (SELECT 2)",
     "SELECT a FROM t WHERE b = 'INTO'"],
)  # fmt: skip
def test_reads(sql: str) -> None:
    assert not is_write_statement(sql)

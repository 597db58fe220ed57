"""What differs between SQL dialects: text operators, native kinds, errors."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from .compiler import SqlDialect, like_escape, local_kinds_sqlite


def _text_match(op: str, value: Any, x: Any) -> int:
    """SQLite function ``sr_text(op, value, x)``: Python's string semantics, in SQLite."""
    if value is None:
        return 0
    if op == "contains":
        return x in value
    if op == "icontains":
        return x.lower() in value.lower()
    if op == "startswith":
        return value.startswith(x)
    if op == "istartswith":
        return value.lower().startswith(x.lower())
    if op == "endswith":
        return value.endswith(x)
    if op == "iendswith":
        return value.lower().endswith(x.lower())
    if op == "iexact":
        return value.lower() == x.lower()
    raise ValueError(op)


def register_sqlite_functions(dbapi_conn: Any) -> None:
    """Add storeroom's SQL functions to a SQLite connection (sqlite3 or aiosqlite adapter)."""
    dbapi_conn.create_function("sr_text", 3, _text_match, deterministic=True)


def _sqlite_text_params(op: str, x: str) -> list[Any]:
    return [x]


def _sqlite_text_sql(col: Any, params: list[Any], op: str) -> Any:
    # SQLite's LIKE folds ASCII only and instr/substr stop at NUL: a deterministic
    # Python function gives exact semantics, still evaluated inside SQLite
    return sa.func.sr_text(sa.literal_column(f"'{op}'"), col, params[0]) == sa.literal_column("1")


SQLITE = SqlDialect("sqlite", _sqlite_text_params, _sqlite_text_sql, local_kinds_sqlite())


def _pg_text_params(op: str, x: str) -> list[Any]:
    e = like_escape(x)
    if op in ("contains", "icontains"):
        return ["%" + e + "%"]
    if op in ("startswith", "istartswith"):
        return [e + "%"]
    if op in ("endswith", "iendswith"):
        return ["%" + e]
    return [e]  # iexact


def _pg_text_sql(col: Any, params: list[Any], op: str) -> Any:
    p = params[0]
    if op.startswith("i"):
        return col.ilike(p, escape="\\")
    return col.like(p, escape="\\")


POSTGRESQL = SqlDialect("postgresql", _pg_text_params, _pg_text_sql, frozenset())


def _mysql_text_sql(col: Any, params: list[Any], op: str) -> Any:
    p = params[0]
    if op.startswith("i"):
        # fold both sides in a case-insensitive binary-safe way
        return sa.func.lower(sa.cast(col, sa.Text)).op("LIKE")(sa.func.lower(p))
    return col.like(p, escape="\\")


MYSQL = SqlDialect("mysql", _pg_text_params, _mysql_text_sql, frozenset())

DIALECTS = {"sqlite": SQLITE, "postgresql": POSTGRESQL, "mysql": MYSQL}

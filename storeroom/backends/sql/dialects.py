"""What differs between SQL dialects: text operators, native kinds, errors."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ...model.types import DECIMAL
from ...query.ast import TEXT_OPERATORS, Cond
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


def _like_params(op: str, x: str) -> list[Any]:
    # the i-variants compare Python's ``str.lower()`` of both sides: the needle is lowered
    # here, in Python; the column in SQL (see each dialect's text_sql)
    e = like_escape(x.lower() if op.startswith("i") else x)
    if op in ("contains", "icontains"):
        return ["%" + e + "%"]
    if op in ("startswith", "istartswith"):
        return [e + "%"]
    if op in ("endswith", "iendswith"):
        return ["%" + e]
    return [e]  # iexact


# PostgreSQL ---------------------------------------------------------------------------
# Text columns use COLLATE "C" (schema.py): comparisons, ORDER BY and LIKE are by code
# point. ``lower()`` under "C" folds ASCII only, and under a libc UTF-8 locale it differs
# from Python for U+0130 and the final sigma; ICU's root collation ("und-x-icu") lowers
# exactly as ``str.lower()`` does (checked for every code point and the sigma contexts by
# tests/backends/test_sql_servers.py). So the i-variants compile to
# ``lower(col COLLATE "und-x-icu") LIKE <lowered, escaped needle>`` (PostgreSQL must be
# built with ICU, as Debian's and the official images are).
PG_LOWER_COLLATION = "und-x-icu"


def _pg_text_sql(col: Any, params: list[Any], op: str) -> Any:
    p = params[0]
    if op.startswith("i"):
        return sa.func.lower(col.collate(PG_LOWER_COLLATION)).like(p, escape="\\")
    return col.like(p, escape="\\")


def _no_nul(v: Any) -> bool:
    if isinstance(v, str):
        return "\x00" not in v
    if isinstance(v, tuple | list):
        return all(_no_nul(x) for x in v)
    return True


def _pg_value_ok(a: Any, c: Cond) -> bool:
    # PostgreSQL text cannot hold NUL: such a value can match no stored string, and
    # local evaluation says exactly what it does match
    return _no_nul(c.value)


POSTGRESQL = SqlDialect("postgresql", _like_params, _pg_text_sql, frozenset(), _pg_value_ok,
                        error_aborts_tx=True)


# MySQL / MariaDB ---------------------------------------------------------------------
# Text columns use utf8mb4_nopad_bin (schema.py): by code point, and 'a' <> 'a ' (the PAD
# SPACE utf8mb4_bin would call them equal). MariaDB's LOWER() differs from Python's
# ``str.lower()`` for about 740 non-ASCII code points (newer Unicode letters, U+0130, the
# final sigma), but none of them lowers to or from an ASCII character once U+0130 is
# replaced by Python's lowering of it. An i-variant whose lowered needle is ASCII therefore
# matches exactly what Python matches; other needles are evaluated locally.
_I_DOT = "\u0130"
_I_DOT_LOWER = _I_DOT.lower()  # "i" + U+0307


def _mysql_text_sql(col: Any, params: list[Any], op: str) -> Any:
    p = params[0]
    if op.startswith("i"):
        folded = sa.func.lower(sa.func.replace(col, sa.literal_column(f"'{_I_DOT}'"),
                                               sa.literal_column(f"'{_I_DOT_LOWER}'")))
        return folded.like(p, escape="\\")
    return col.like(p, escape="\\")


def _finite(v: Any) -> bool:
    if isinstance(v, float):
        return v - v == 0.0
    if isinstance(v, tuple | list):
        return all(_finite(x) for x in v)
    return True


def _mysql_value_ok(a: Any, c: Cond) -> bool:
    if c.op in TEXT_OPERATORS and c.op.startswith("i"):
        return isinstance(c.value, str) and c.value.lower().isascii()
    return _finite(c.value)  # MySQL has no infinite floats: compared locally


def _mysql_order_key(col: Any, a: Any) -> Any:
    # MariaDB's filesort keys for utf8mb4_nopad_bin pad with zero bytes, so '' and '\x00'
    # (or 'a' and 'a\x00') tie and a sort with LIMIT may return them in either order;
    # binary strings sort by bytes and length (UTF-8 byte order is code point order)
    if a.is_text:
        from sqlalchemy.dialects.mysql import BINARY
        return sa.cast(col, BINARY())
    return col


# DECIMAL is stored as its exact text (a SQL DECIMAL needs a fixed scale and would not
# give back Decimal("1.10") as written), which does not compare numerically: local.
MYSQL = SqlDialect("mysql", _like_params, _mysql_text_sql, frozenset({DECIMAL}),
                   _mysql_value_ok, _mysql_order_key)

DIALECTS = {"sqlite": SQLITE, "postgresql": POSTGRESQL, "mysql": MYSQL}

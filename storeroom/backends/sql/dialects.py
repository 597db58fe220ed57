"""What differs between SQL dialects: text operators, native kinds, errors."""

from __future__ import annotations

import json
import math
import sqlite3
from contextlib import closing
from typing import Any

import pydantic_core
import sqlalchemy as sa

from ...model.types import BOOL, BYTES, DECIMAL, ENUM, FLOAT, INT, STR
from ...query.ast import TEXT_OPERATORS, Cond
from ...query.evaluate import plain
from .compiler import SqlDialect, like_escape, local_kinds_sqlite


def _text_match(op: str, value: str | None, x: str) -> int:
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


def _json_at(doc: Any, path: str) -> Any:
    """The value at ``path`` ("a.b", plain keys) of the JSON text ``doc``; None if missing."""
    if doc is None:
        return None
    v = json.loads(doc)
    for k in path.split(".") if path else ():
        if type(v) is not dict:
            return None
        v = v.get(k)
    return v


def _json_str(doc: Any, path: str) -> str | None:
    """SQLite function ``sr_json_str(doc, path)``: the string at the path, exactly (SQLite's
    own JSON functions stop at NUL), or NULL."""
    v = _json_at(doc, path)
    return v if type(v) is str else None


def _json_has(doc: Any, path: str, x: Any) -> int:
    """SQLite function ``sr_json_has(doc, path, x)``: the list at the path holds the
    string ``x`` (exactly, NUL included)."""
    v = _json_at(doc, path)
    return int(type(v) is list and any(type(e) is str and e == x for e in v))


def register_sqlite_functions(dbapi_conn: Any) -> None:
    """Add storeroom's SQL functions to a SQLite connection (sqlite3 or aiosqlite adapter)."""
    dbapi_conn.create_function("sr_text", 3, _text_match, deterministic=True)
    dbapi_conn.create_function("sr_json_str", 2, _json_str, deterministic=True)
    dbapi_conn.create_function("sr_json_has", 3, _json_has, deterministic=True)


# Nested paths (query/paths.py) on SQLite: int and bool leaves through json_extract and
# json_each (C speed); strings through sr_json_str / sr_json_has, since SQLite's JSON
# functions cut a string at an escaped NUL ("a\u0000b" would read as "a").
def _sqlite_path(keys: tuple[str, ...]) -> Any:
    return sa.literal_column("'$" + "".join("." + k for k in keys) + "'")


def _sqlite_json_scalar(col: Any, keys: tuple[str, ...], kind: str) -> Any:
    if kind == STR:
        return sa.func.sr_json_str(col, sa.literal_column("'" + ".".join(keys) + "'"))
    return sa.func.json_extract(col, _sqlite_path(keys))


def _sqlite_json_member(col: Any, keys: tuple[str, ...], p: Any, kind: str) -> Any:
    if kind == STR:
        return sa.func.sr_json_has(col, sa.literal_column("'" + ".".join(keys) + "'"),
                                   p) == sa.literal_column("1")
    each = sa.func.json_each(col, _sqlite_path(keys)).table_valued("value", "type")
    # json_each gives true/false as 1/0: a list[int] holds no bools, a list[bool] no ints
    return sa.exists(sa.select(sa.literal_column("1")).select_from(each)
                     .where(each.c.value == p))


def _sqlite_text_params(op: str, x: str) -> list[Any]:
    return [x]


def _sqlite_text_sql(col: Any, params: list[Any], op: str) -> Any:
    # SQLite's LIKE folds ASCII only and instr/substr stop at NUL: a deterministic
    # Python function gives exact semantics, still evaluated inside SQLite
    return sa.func.sr_text(sa.literal_column(f"'{op}'"), col, params[0]) == sa.literal_column("1")


# Lists bind as one JSON parameter: ``col IN (SELECT value FROM json_each(?))``, for every
# length (one statement), and beyond SQLite's limit on parameters. JSON carries text,
# 64-bit integers, booleans (1/0, as SQLite stores them) and finite floats exactly
# (SQLite parses the shortest repr back to the same double); SQLite's JSON text stops at
# NUL and has no blobs, so bytes, and text holding NUL, compare as ``hex(col)`` with
# hex text; infinite floats get one parameter each.
def _sqlite_list_form(a: Any, values: tuple[Any, ...]) -> str | None:
    kind = a.kind
    if kind == BYTES:
        return "hex"
    if kind == FLOAT:
        return "json" if all(map(math.isfinite, values)) else None
    if kind == STR:
        return "hex" if "\x00" in "".join(values) else "json"
    if kind == ENUM:  # by the members' values
        plains = {plain(v) for v in set(values)}
        if all(isinstance(p, str) for p in plains):
            return "hex" if any("\x00" in p for p in plains) else "json"
        return "json" if all(type(p) is int for p in plains) else None
    return "json"


def _sqlite_list_value(form: str, values: list[Any]) -> str:
    if form == "hex":
        values = [(v if isinstance(v, bytes) else v.encode()).hex().upper() for v in values]
    return json.dumps(values, ensure_ascii=False, separators=(",", ":"))


def _sqlite_list_sql(col: Any, p: Any, form: str) -> Any:
    each = sa.func.json_each(p).table_valued("value")
    return (sa.func.hex(col) if form == "hex" else col).in_(sa.select(each.c.value))


def _sqlite_max_params() -> int:
    """SQLite's limit on parameters in one statement (32766 since 3.32, 999 before),
    less a tenth for the parameters of keys and changes beside the filter's."""
    try:
        with closing(sqlite3.connect(":memory:")) as conn:
            limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    except (sqlite3.Error, AttributeError):
        limit = 999
    return limit - limit // 10


SQLITE = SqlDialect("sqlite", _sqlite_text_params, _sqlite_text_sql, local_kinds_sqlite(),
                    list_form=_sqlite_list_form, list_value=_sqlite_list_value,
                    list_sql=_sqlite_list_sql, max_params=_sqlite_max_params(),
                    json_scalar=_sqlite_json_scalar, json_member=_sqlite_json_member,
                    member_value=lambda v: v, json_kinds=frozenset({STR, INT, BOOL}))


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


# Lists bind as one array parameter: ``col = ANY(%s)`` (psycopg sends a Python list as
# an array of its values' type), one statement for every length. A list whose values
# are not all of one type (an Enum of mixed values) gets one parameter per value.
def _pg_list_form(a: Any, values: tuple[Any, ...]) -> str | None:
    first = type(plain(values[0]))
    return "array" if all(type(plain(v)) is first for v in values) else None


def _pg_list_value(form: str, values: list[Any]) -> list[Any]:
    return values


def _pg_list_sql(col: Any, p: Any, form: str) -> Any:
    return col == sa.func.any(p)


# Nested paths on PostgreSQL (jsonb): ``col #>> '{a,b}'`` as text COLLATE "C" (code
# point order, as the text columns), ::numeric for ints (never out of range), ::boolean;
# membership is jsonb containment, ``col #> '{a}' @> '["x"]'``.
def _pg_path(keys: tuple[str, ...]) -> Any:
    return sa.literal_column("'{" + ",".join(keys) + "}'")


def _pg_json_scalar(col: Any, keys: tuple[str, ...], kind: str) -> Any:
    text = col.op("#>>")(_pg_path(keys))
    if kind == STR:
        return sa.type_coerce(text, sa.Text()).collate("C")
    if kind in (INT, BOOL):
        return sa.cast(text, sa.Numeric() if kind == INT else sa.Boolean())
    return text  # isnull: #>> is NULL for a missing key and for JSON null


def _pg_json_member(col: Any, keys: tuple[str, ...], p: Any, kind: str) -> Any:
    from sqlalchemy.dialects.postgresql import JSONB
    doc = col.op("#>")(_pg_path(keys)) if keys else col
    return sa.and_(doc.is_not(None), doc.op("@>")(sa.cast(p, JSONB())))


POSTGRESQL = SqlDialect("postgresql", _like_params, _pg_text_sql, frozenset(), _pg_value_ok,
                        list_form=_pg_list_form, list_value=_pg_list_value,
                        list_sql=_pg_list_sql, max_params=65535 - 65535 // 10,
                        error_aborts_tx=True, json_scalar=_pg_json_scalar,
                        json_member=_pg_json_member,
                        member_value=lambda v: json.dumps([v], ensure_ascii=False),
                        json_kinds=frozenset({STR, INT, BOOL}))


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
# PyMySQL writes parameters into the statement text itself, so a list is one expanding
# parameter, compiled once and spread to one placeholder per value when it runs
# (compiler.expand): exactly the escaping of single values, and no limit on their
# number; the statement must stay within the server's max_allowed_packet (16 MiB by
# default), so a filter whose values would take more than 8 MiB of text is local.
def _mysql_list_form(a: Any, values: tuple[Any, ...]) -> str:
    return "expand"


def _mysql_list_value(form: str, values: list[Any]) -> list[Any]:
    return values


def _mysql_list_sql(col: Any, p: Any, form: str) -> Any:
    return col.in_(p)


# Nested paths on MySQL / MariaDB: JSON_VALUE (exact strings, NUL included) COLLATE
# utf8mb4_nopad_bin as the text columns, CAST AS DECIMAL(65, 0) for ints (never out of
# range), AS SIGNED for bools (JSON_VALUE gives 1 / 0); isnull by JSON_TYPE (JSON_VALUE
# is NULL for an object as well); membership by JSON_CONTAINS of the value's JSON text.
def _mysql_path(keys: tuple[str, ...]) -> Any:
    return sa.literal_column("'$" + "".join("." + k for k in keys) + "'")


def _mysql_json_scalar(col: Any, keys: tuple[str, ...], kind: str) -> Any:
    path = _mysql_path(keys)
    if kind == STR:
        return sa.type_coerce(sa.func.json_value(col, path), sa.Text()).collate(
            "utf8mb4_nopad_bin")
    if kind in (INT, BOOL):
        return sa.cast(sa.func.json_value(col, path),
                       sa.Numeric(65, 0) if kind == INT else sa.Integer())
    # isnull: NULL for a missing key and for JSON null, never for a document
    t = sa.func.json_type(sa.func.json_extract(col, path))
    return sa.case((t == sa.literal_column("'NULL'"), sa.null()), else_=t)


def _mysql_member_value(v: Any) -> str:
    # MariaDB's JSON_CONTAINS compares strings as their JSON text (escapes included):
    # written by the serializer that wrote the stored values (pydantic's)
    return pydantic_core.to_json(v).decode()


def _mysql_json_member(col: Any, keys: tuple[str, ...], p: Any, kind: str) -> Any:
    return sa.func.coalesce(sa.func.json_contains(col, p, _mysql_path(keys)),
                            sa.literal_column("0")) == sa.literal_column("1")


MYSQL = SqlDialect("mysql", _like_params, _mysql_text_sql, frozenset({DECIMAL}),
                   _mysql_value_ok, _mysql_order_key, list_form=_mysql_list_form,
                   list_value=_mysql_list_value, list_sql=_mysql_list_sql,
                   max_bytes=8 * 1024 * 1024, json_scalar=_mysql_json_scalar,
                   json_member=_mysql_json_member,
                   member_value=_mysql_member_value,
                   json_kinds=frozenset({STR, INT, BOOL}))

DIALECTS = {"sqlite": SQLITE, "postgresql": POSTGRESQL, "mysql": MYSQL}

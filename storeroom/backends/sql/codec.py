"""Values to and from a SQL driver, per dialect. Rows become objects without validation."""

from __future__ import annotations

import keyword
import re
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from ...errors import ValidationError
from ...model.attrs import Attr
from ...model.codegen import compile_generated
from ...model.stored import ModelMeta
from ...model.types import BOOL, DATE, DATETIME, DECIMAL, ENUM, FLOAT, JSON, STR, UUID
from ..common import UNREADABLE_EXCEPT, unreadable_env
from ..values import iso_utc, json_text_dumper, json_text_loader

Conv = Callable[[Any], Any] | None


_iso_utc = iso_utc
_json_dump = json_text_dumper
_json_load = json_text_loader


def _nul_error(name: str, value: Any) -> ValidationError:
    return ValidationError.one(
        name, value, "nul", "PostgreSQL cannot store the NUL character (U+0000) in text; "
        "this value is refused rather than altered (see docs/backends.md, Backend limits)")


def _pg_text(name: str) -> Callable[[Any], Any]:
    def text(v: str) -> str:
        if "\x00" in v:
            raise _nul_error(name, v)
        return v
    return text


# a JSON ``\u0000`` escape (an odd number of backslashes before "u0000")
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def _pg_json_dump(a: Attr) -> Callable[[Any], Any]:
    dump_plain = _json_dump(a)
    name = a.name

    def dump(v: Any) -> str:
        text = dump_plain(v)
        if "u0000" in text and _JSON_NUL.search(text):  # jsonb refuses \u0000 as well
            raise _nul_error(name, v)
        return text
    return dump


def _mysql_float(name: str) -> Callable[[Any], Any]:
    def finite(v: float) -> float:
        if v - v != 0.0:  # inf (NaN is refused by validation)
            raise ValidationError.one(name, v, "inf", "MySQL/MariaDB cannot store an "
                                      "infinite float (see docs/backends.md, Backend limits)")
        return v
    return finite


def to_db(a: Attr, dialect: str) -> Conv:
    """The converter of a Python value to the driver's value (None: no conversion)."""
    kind = a.kind
    if kind == ENUM:
        return _enum_value
    if kind == JSON:
        return _pg_json_dump(a) if dialect == "postgresql" else _json_dump(a)
    if dialect == "postgresql" and kind == STR:
        return _pg_text(a.name)
    if dialect == "mysql" and kind == FLOAT:
        return _mysql_float(a.name)
    if dialect == "sqlite":
        table: dict[str, Conv] = {DATETIME: _iso_utc, DATE: date.isoformat, UUID: str,
                                  DECIMAL: str}
        return table.get(kind)
    if dialect == "mysql":
        my: dict[str, Conv] = {DATETIME: _naive_utc, UUID: str, DECIMAL: _dec_sortable}
        return my.get(kind)
    return None


def from_db(a: Attr, dialect: str, returning: bool = False) -> Conv:
    """The converter of a driver's value to the Python value (None: no conversion).

    ``returning``: the value comes from a RETURNING clause, where SQLite hands back a
    REAL that has no fractional part as an int (``3.0`` as ``3``).
    """
    kind = a.kind
    if kind == FLOAT and returning and dialect == "sqlite":
        return float
    if kind == ENUM:
        enum_cls: type[Enum] = a.inner  # an Enum class converts its values
        return enum_cls
    if kind == JSON:
        return _json_load(a)
    if kind == BOOL and dialect != "postgresql":  # psycopg returns bools already
        return bool
    # SQLite's REAL affinity, psycopg's float8 and PyMySQL's DOUBLE give floats already
    if kind == FLOAT and dialect not in ("sqlite", "postgresql", "mysql"):
        return float
    if dialect == "sqlite":
        lite: dict[str, Conv] = {DATETIME: datetime.fromisoformat, DATE: date.fromisoformat,
                                 UUID: uuid.UUID, DECIMAL: Decimal}
        return lite.get(kind)
    if dialect == "mysql":
        myr: dict[str, Conv] = {DATETIME: _aware_utc, UUID: uuid.UUID,
                                DECIMAL: _dec_from_sortable}
        return myr.get(kind)
    if dialect == "postgresql":
        return {DATETIME: _pg_utc}.get(kind)
    return None


def _enum_value(v: Any) -> Any:
    return v.value


def _naive_utc(v: datetime) -> datetime:
    return v.astimezone(UTC).replace(tzinfo=None)


def _aware_utc(v: datetime) -> datetime:
    return v.replace(tzinfo=UTC)


def _pg_utc(v: datetime) -> datetime:
    # a store's own connections run in UTC (``PgDriver.pin``): their values need nothing
    return v if v.tzinfo is UTC else v.astimezone(UTC)


def _dec_sortable(v: Decimal) -> str:
    return str(v)


def _dec_from_sortable(v: str) -> Decimal:
    return Decimal(v)


def row_builder(meta: ModelMeta, names: tuple[str, ...], dialect: str,
                returning: bool = False) -> Callable[[Any], Any]:
    """A fast function ``row -> item`` for rows holding ``names`` in order
    (``returning``: rows of a RETURNING clause, see ``from_db``).

    Generated as Python source (as attrs and msgspec do) so that each row costs one
    dict display and the conversions it really needs.
    """
    env: dict[str, Any] = {"new": object.__new__, "cls": meta.cls,
                           **unreadable_env(meta)}
    src = ("def build(row):\n    try:\n        o = new(cls)\n"
           + assign_attributes(meta, names, _row_dict(meta, names, dialect, returning, env),
                               " " * 8)
           + UNREADABLE_EXCEPT + "    return o\n")
    compile_generated(src, env, f"row_builder[{dialect}]", meta.cls)
    build: Callable[[Any], Any] = env["build"]
    return build


def rows_builder(meta: ModelMeta, names: tuple[str, ...], dialect: str
                 ) -> Callable[[list[Any]], list[Any]]:
    """A fast function ``rows -> [item]``: ``row_builder``'s work for a whole result as
    one generated loop (no call per row: iterating a large result builds its items
    about a tenth faster)."""
    env: dict[str, Any] = {"new": object.__new__, "cls": meta.cls,
                           **unreadable_env(meta)}
    # each row unpacked into locals by the for statement itself (no subscript per value)
    cells = [f"r{i}" for i in range(len(names))]
    target = "(" + ", ".join(cells) + ",)"
    body = assign_attributes(meta, names, _row_dict(meta, names, dialect, False, env, cells),
                             " " * 12)
    src = ("def build_rows(rows):\n    out = []\n    append = out.append\n    try:\n"
           f"        for {target} in rows:\n            o = new(cls)\n" + body
           + "            append(o)\n" + UNREADABLE_EXCEPT + "    return out\n")
    compile_generated(src, env, f"rows_builder[{dialect}]", meta.cls)
    build_rows: Callable[[list[Any]], list[Any]] = env["build_rows"]
    return build_rows


def assign_attributes(meta: ModelMeta, names: Sequence[str],
                      entries: list[tuple[str, str]], pad: str) -> str:
    """The lines giving the new instance ``o`` its attributes: one by one where that is
    plain (``_plain_attributes``: CPython then keeps them inline in the instance, about
    twice as fast as building a dict and replacing the instance's with it), else the
    ``__dict__`` assigned as a dict display."""
    if _plain_attributes(meta, names):
        return "".join(f"{pad}o.{n} = {e}\n" for n, e in entries)
    return f"{pad}o.__dict__ = {{" + ", ".join(f"{n!r}: {e}" for n, e in entries) + "}\n"


def _plain_attributes(meta: ModelMeta, names: Sequence[str]) -> bool:
    """True when setting each attribute of a new instance (``o.name = v``) stores it as
    assigning the instance's ``__dict__`` would: the class does not define
    ``__setattr__`` (a frozen dataclass does) and no attribute is a data descriptor
    (a property, a slot) on it."""
    cls = meta.cls
    if cls.__setattr__ is not object.__setattr__:  # type: ignore[comparison-overlap]
        return False
    every = [*names, *(a.name for a in meta.attrs.values() if not a.store)]
    for n in every:
        if not n.isidentifier() or keyword.iskeyword(n):
            return False
        for klass in cls.__mro__:
            if n in klass.__dict__:
                found = type(klass.__dict__[n])
                if hasattr(found, "__set__") or hasattr(found, "__delete__"):
                    return False
                break
    return True


def _row_dict(meta: ModelMeta, names: tuple[str, ...], dialect: str, returning: bool,
              env: dict[str, Any], cells: list[str] | None = None) -> list[tuple[str, str]]:
    """The attributes of one item built from ``row`` and their expressions (converters
    put into ``env``); ``cells``: the locals holding the row's values, else ``row[i]``.

    A ``bool`` conversion is written inline as ``(True if v else False)``: what
    ``bool(v)`` gives for every value, without the call."""
    parts: list[tuple[str, str]] = []
    for i, name in enumerate(names):
        a = meta.attrs[name]
        conv = from_db(a, dialect, returning)
        v = cells[i] if cells is not None else f"row[{i}]"
        if conv is None:
            parts.append((name, v))
            continue
        if conv is bool:
            expr = f"(True if {v} else False)"
        else:
            env[f"c{i}"] = conv
            expr = f"c{i}({v})"
        if a.optional:
            parts.append((name, f"(None if {v} is None else {expr})"))
        else:
            parts.append((name, expr))
    for a in meta.attrs.values():
        if not a.store:
            env[f"d_{a.name}"] = a
            parts.append((a.name, f"d_{a.name}.default_value()"))
    return parts


def value_encoder(meta: ModelMeta, dialect: str) -> dict[str, Conv]:
    """Per attribute, the converter to the driver's value."""
    return {a.name: to_db(a, dialect) for a in meta.stored_attrs}

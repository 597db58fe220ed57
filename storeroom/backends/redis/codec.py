"""Values to and from Redis.

Two encodings:

* the **document**: an item is one JSON string (datetimes ISO, Decimal as string,
  bytes base64, UUID string, Enum value, JSON attributes through pydantic), read back
  without validation by a generated builder;
* the **sort encoding** of a scalar: bytes whose order (``memcmp``, which is what
  ``ZRANGEBYLEX`` uses) is the order of the values, and which are self-delimiting, so
  that ``enc(value) + enc(key)`` members of a score-0 sorted set sort by (value, key) and
  can be split again. Equal values encode equally (``-0.0`` as ``0.0``, ``Decimal("1.0")``
  as ``Decimal("1")``).
"""

from __future__ import annotations

import base64
import enum
import json
import struct
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from functools import partial
from typing import Any

from ...model.attrs import Attr
from ...model.codegen import compile_generated
from ...model.jsonvalues import json_loader, json_python_dumper
from ...model.stored import ModelMeta
from ...model.types import (
    BOOL,
    BYTES,
    DATE,
    DATETIME,
    DECIMAL,
    ENUM,
    FLOAT,
    INT,
    JSON,
    STR,
    UUID,
    enum_value_kind,
)
from ..common import UNREADABLE_EXCEPT, unreadable_env
from ..evolution import absent_value

# --- sort encoding --------------------------------------------------------------------

Enc = Callable[[Any], bytes]
Skip = Callable[[bytes, int], int]
Dec = Callable[[bytes, int], tuple[Any, int]]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def enc_text(v: str) -> bytes:
    """UTF-8 (code point order), ``\\x00`` escaped as ``\\x00\\x01``, ended by ``\\x00\\x00``."""
    return v.encode("utf-8", "surrogatepass").replace(b"\x00", b"\x00\x01") + b"\x00\x00"


def text_prefix(v: str) -> bytes:
    """The bytes every encoding of a string starting with ``v`` starts with."""
    return v.encode("utf-8", "surrogatepass").replace(b"\x00", b"\x00\x01")


def enc_bytes(v: bytes) -> bytes:
    """Bytes escaped like text."""
    return bytes(v).replace(b"\x00", b"\x00\x01") + b"\x00\x00"


def _skip_escaped(buf: bytes, pos: int) -> int:
    end = buf.find(b"\x00\x00", pos)
    if end < 0:
        raise ValueError("unterminated string in index member")
    return end + 2


def _dec_bytes(buf: bytes, pos: int) -> tuple[Any, int]:
    end = _skip_escaped(buf, pos)
    return buf[pos:end - 2].replace(b"\x00\x01", b"\x00"), end


def _dec_text(buf: bytes, pos: int) -> tuple[Any, int]:
    raw, end = _dec_bytes(buf, pos)
    return raw.decode("utf-8", "surrogatepass"), end


def enc_int(v: int) -> bytes:
    """Sign and length in the first byte, then the big-endian magnitude (complemented if < 0)."""
    if v >= 0:
        n = (v.bit_length() + 7) // 8
        if n > 126:
            raise ValueError("integer too large to index")
        return bytes((0x80 + n,)) + v.to_bytes(n, "big")
    m = -v
    n = (m.bit_length() + 7) // 8
    if n > 126:
        raise ValueError("integer too large to index")
    return bytes((0x7F - n,)) + ((1 << (8 * n)) - 1 - m).to_bytes(n, "big")


def _int_len(head: int) -> int:
    return head - 0x80 if head >= 0x80 else 0x7F - head


def _skip_int(buf: bytes, pos: int) -> int:
    return pos + 1 + _int_len(buf[pos])


def _dec_int(buf: bytes, pos: int) -> tuple[Any, int]:
    head = buf[pos]
    n = _int_len(head)
    body = int.from_bytes(buf[pos + 1:pos + 1 + n], "big")
    if head >= 0x80:
        return body, pos + 1 + n
    return -((1 << (8 * n)) - 1 - body), pos + 1 + n


def enc_bool(v: bool) -> bytes:
    return b"\x01" if v else b"\x00"


def _dec_bool(buf: bytes, pos: int) -> tuple[Any, int]:
    return buf[pos] == 1, pos + 1


_NAN = float("nan")
_TOP = 1 << 63
_ALL = (1 << 64) - 1


def enc_float(v: float) -> bytes:
    """IEEE-754 bits, sign bit flipped (all bits flipped for negatives)."""
    v = float(v)
    if v == 0:
        v = 0.0
    elif v != v:
        v = _NAN
    i = int.from_bytes(struct.pack(">d", v), "big")
    i = i ^ _ALL if i & _TOP else i | _TOP
    return i.to_bytes(8, "big")


def _dec_float(buf: bytes, pos: int) -> tuple[Any, int]:
    i = int.from_bytes(buf[pos:pos + 8], "big")
    i = i & ~_TOP if i & _TOP else i ^ _ALL
    return struct.unpack(">d", i.to_bytes(8, "big"))[0], pos + 8


def enc_decimal(v: Decimal) -> bytes:
    """Sign class, then exponent and significant digits (inverted for negatives)."""
    if not v.is_finite():
        if v.is_nan():
            raise ValueError("NaN cannot be indexed")
        return b"\x83" if v > 0 else b"\x7f"
    if v == 0:
        return b"\x81"
    sign, digits, exp = v.as_tuple()
    ds = list(digits)
    assert isinstance(exp, int)
    while ds and ds[-1] == 0:
        ds.pop()
        exp += 1
    while ds and ds[0] == 0:
        ds.pop(0)
    body = enc_int(exp + len(ds)) + bytes(0x30 + d for d in ds) + b"\x00"
    if sign:
        return b"\x80" + bytes(255 - b for b in body)
    return b"\x82" + body


def _skip_decimal(buf: bytes, pos: int) -> int:
    head = buf[pos]
    if head in (0x7F, 0x81, 0x83):
        return pos + 1
    if head == 0x82:
        p = _skip_int(buf, pos + 1)
        return buf.index(b"\x00", p) + 1
    p = pos + 2 + _int_len(255 - buf[pos + 1])
    return buf.index(b"\xff", p) + 1


def _dec_decimal(buf: bytes, pos: int) -> tuple[Any, int]:
    end = _skip_decimal(buf, pos)
    head = buf[pos]
    if head == 0x7F:
        return Decimal("-Infinity"), end
    if head == 0x81:
        return Decimal(0), end
    if head == 0x83:
        return Decimal("Infinity"), end
    body = buf[pos + 1:end]
    if head == 0x80:
        body = bytes(255 - b for b in body)
    e, p = _dec_int(body, 0)
    digits = body[p:-1].decode("ascii")
    val = Decimal(f"0.{digits}").scaleb(e)
    return (-val if head == 0x80 else val), end


def enc_datetime(v: datetime) -> bytes:
    """Microseconds since the epoch (naive datetimes taken as UTC)."""
    if v.tzinfo is None:
        v = v.replace(tzinfo=UTC)
    return enc_int((v - _EPOCH) // _US)


def _dec_datetime(buf: bytes, pos: int) -> tuple[Any, int]:
    n, end = _dec_int(buf, pos)
    return _EPOCH + timedelta(microseconds=n), end


def enc_date(v: date) -> bytes:
    return enc_int(v.toordinal())


def _dec_date(buf: bytes, pos: int) -> tuple[Any, int]:
    n, end = _dec_int(buf, pos)
    return date.fromordinal(n), end


def enc_uuid(v: uuid.UUID) -> bytes:
    return v.bytes


def _dec_uuid(buf: bytes, pos: int) -> tuple[Any, int]:
    return uuid.UUID(bytes=bytes(buf[pos:pos + 16])), pos + 16


_BY_KIND: dict[str, tuple[Enc, Skip, Dec]] = {
    STR: (enc_text, _skip_escaped, _dec_text),
    BYTES: (enc_bytes, _skip_escaped, _dec_bytes),
    INT: (enc_int, _skip_int, _dec_int),
    BOOL: (enc_bool, lambda b, p: p + 1, _dec_bool),
    FLOAT: (enc_float, lambda b, p: p + 8, _dec_float),
    DECIMAL: (enc_decimal, _skip_decimal, _dec_decimal),
    DATETIME: (enc_datetime, _skip_int, _dec_datetime),
    DATE: (enc_date, _skip_int, _dec_date),
    UUID: (enc_uuid, lambda b, p: p + 16, _dec_uuid),
}


def sort_codec(a: Attr) -> tuple[Enc, Skip, Dec] | None:
    """(encode, skip, decode) of an attribute's sort encoding; None when not indexable."""
    if a.kind == ENUM:
        values = [m.value for m in a.inner]
        kind = enum_value_kind(a.inner)
        if kind == STR and not all(isinstance(v, str) for v in values):
            return None
        enc, skip, dec = _BY_KIND[kind]
        cls = a.inner

        def enc_enum(v: Any) -> bytes:
            return enc(v.value if isinstance(v, enum.Enum) else v)

        def dec_enum(buf: bytes, pos: int) -> tuple[Any, int]:
            raw, end = dec(buf, pos)
            return cls(raw), end
        return enc_enum, skip, dec_enum
    return _BY_KIND.get(a.kind)


def succ(b: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with ``b`` (None: +inf)."""
    s = b.rstrip(b"\xff")
    if not s:
        return None
    return s[:-1] + bytes((s[-1] + 1,))


# --- documents ------------------------------------------------------------------------

def _b64(v: bytes) -> str:
    return base64.b64encode(v).decode("ascii")


def _json_dump(a: Attr) -> Callable[[Any], Any]:
    return json_python_dumper(a.inner)


def _json_load(a: Attr) -> Callable[[Any], Any]:
    return json_loader(a.inner)


def _to_doc(a: Attr) -> Callable[[Any], Any] | None:
    kind = a.kind
    if kind == ENUM:
        return _enum_value
    if kind == JSON:
        return _json_dump(a)
    table: dict[str, Callable[[Any], Any]] = {
        DATETIME: datetime.isoformat, DATE: date.isoformat, UUID: str, DECIMAL: str,
        BYTES: _b64}
    return table.get(kind)


def _from_doc(a: Attr) -> Callable[[Any], Any] | None:
    kind = a.kind
    if kind == ENUM:
        enum_cls: type[Enum] = a.inner  # an Enum class converts its values
        return enum_cls
    if kind == JSON:
        return _json_load(a)
    table: dict[str, Callable[[Any], Any]] = {
        DATETIME: datetime.fromisoformat, DATE: date.fromisoformat, UUID: uuid.UUID,
        DECIMAL: Decimal, BYTES: base64.b64decode}
    return table.get(kind)


def _enum_value(v: Any) -> Any:
    return v.value


_dumps = json.JSONEncoder(separators=(",", ":")).encode


def doc_value(a: Attr, v: Any) -> str:
    """The JSON of one attribute's value, as ``doc_codec``'s ``encode`` writes it."""
    to = _to_doc(a)
    return _dumps(v if v is None or to is None else to(v))


def _fill_absent(meta: ModelMeta, d: dict[str, Any], raw: Any) -> dict[str, Any]:
    """``d`` (a decoded item document) with each stored attribute it lacks set to the
    stored form of its default (``absent_value``: an error when it has none)."""
    where = tuple(d.get(n) for n in meta.key.attrs)
    for a in meta.stored_attrs:
        if a.name not in d:
            v = absent_value(meta, a.name, where[0] if len(where) == 1 else where)
            to = _to_doc(a)
            d[a.name] = v if v is None or to is None else to(v)
    return d


def doc_codec(meta: ModelMeta) -> tuple[Callable[[dict[str, Any]], str],
                                         Callable[[Any], dict[str, Any]],
                                         Callable[[Any], Any]]:
    """``(encode(values) -> str, values(raw) -> dict, build(raw) -> item)``, generated."""
    env: dict[str, Any] = {"dumps": _dumps, "loads": json.loads, "new": object.__new__,
                           "cls": meta.cls, **unreadable_env(meta)}
    enc_parts = []
    dec_parts = []
    for i, a in enumerate(meta.stored_attrs):
        n = a.name
        to, fr = _to_doc(a), _from_doc(a)
        if to is None:
            enc_parts.append(f"{n!r}: v[{n!r}]")
        else:
            env[f"t{i}"] = to
            enc_parts.append(f"{n!r}: (None if (x := v[{n!r}]) is None else t{i}(x))"
                             if a.optional else f"{n!r}: t{i}(v[{n!r}])")
        if fr is None:
            dec_parts.append(f"{n!r}: d[{n!r}]")
        else:
            env[f"f{i}"] = fr
            dec_parts.append(f"{n!r}: (None if (x := d[{n!r}]) is None else f{i}(x))"
                             if a.optional else f"{n!r}: f{i}(d[{n!r}])")
    unstored = []
    for a in meta.attrs.values():
        if not a.store:
            env[f"u_{a.name}"] = a
            unstored.append(f"{a.name!r}: u_{a.name}.default_value()")
    # an item written before an attribute was added lacks it (KeyError): the slow path
    # fills it with its default, or names the item and attribute (``fill_absent``); the
    # try block costs nothing on the common path
    env["fill"] = partial(_fill_absent, meta)
    dec = "{" + ", ".join(dec_parts) + "}"
    src = (
        "def encode(v):\n    return dumps({" + ", ".join(enc_parts) + "})\n"
        "def values(raw):\n    try:\n        d = loads(raw)\n        try:\n"
        "            return " + dec + "\n"
        "        except KeyError:\n            d = fill(d, raw)\n"
        "        return " + dec + "\n" + UNREADABLE_EXCEPT +
        "def build(raw):\n    o = new(cls)\n    try:\n        d = loads(raw)\n        try:\n"
        "            o.__dict__ = {" + ", ".join(dec_parts + unstored) + "}\n"
        "            return o\n"
        "        except KeyError:\n            d = fill(d, raw)\n"
        "        o.__dict__ = {" + ", ".join(dec_parts + unstored) + "}\n"
        "        return o\n" + UNREADABLE_EXCEPT
    )
    compile_generated(src, env, "redis_codec", meta.cls)
    return env["encode"], env["values"], env["build"]

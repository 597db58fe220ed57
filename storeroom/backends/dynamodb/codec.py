"""Python values to DynamoDB attribute values and back, one codec per attribute.

Wire forms (low-level client format, ``{"S": ...}``):

- str, str-valued Enum, datetime (fixed-width ISO 8601 in UTC), date, UUID: ``S``
  (string order is UTF-8 byte order = code point order, so these sort correctly);
- int, float (``repr``, exact), Decimal, int-valued Enum: ``N`` (a Decimal must fit a
  DynamoDB number, 38 significant digits and magnitude 1E-130 .. <1E+126: others are
  refused with ``ValidationError``, rule ``range``);
- bytes: ``B``; bool: ``BOOL`` (``N`` 0/1 when the attribute is part of a key);
- list / dict / dataclass values: the JSON pydantic writes, as a document: objects as
  ``M`` (keys escaped as key strings are, ``esc_s``: DynamoDB and moto refuse an empty
  map key), arrays as ``L``, strings ``S``, ``true``/``false`` ``BOOL``, ``null``
  ``NULL``, ints ``N`` (38 significant digits at most, else refused, rule ``range``),
  floats ``N`` (``repr``) when they are not integral and of magnitude 1e-120 .. 1e121
  (DynamoDB trims "2.0" to "2", so a number read back is an int exactly when it is
  integral), any other float ``B`` holding its ``repr`` (no JSON value is binary:
  bytes are base64 text). A value stored as ``S`` is the JSON text that earlier versions
  wrote for every such value, and still reads (as does a value whose JSON is a string);
- ``None``: the attribute is left out (so ``attribute_not_exists`` is ``isnull`` and
  secondary indexes stay sparse).

DynamoDB rejects an empty string or empty binary in a key attribute (table or index
key). Such attributes ("keyish") are stored escaped: a value that is empty or starts
with NUL gets a NUL prefixed. The escape is injective and keeps order and prefixes,
so comparisons and ``begins_with`` on escaped values agree with the plain values.
"""

from __future__ import annotations

import base64
import enum
import math
import uuid
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ...errors import ValidationError
from ...model.attrs import Attr
from ...model.jsonvalues import json_dumper
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
)
from ..values import iso_utc, json_doc_dumper, json_doc_loader


def esc_s(v: str) -> str:
    """A string as stored in a key attribute (never empty, order kept)."""
    return "\x00" + v if not v or v[0] == "\x00" else v


def unesc_s(v: str) -> str:
    """The inverse of :func:`esc_s`."""
    return v[1:] if v[:1] == "\x00" else v


def esc_b(v: bytes) -> bytes:
    """Bytes as stored in a key attribute (never empty, order kept)."""
    return b"\x00" + v if not v or v[0] == 0 else v


def unesc_b(v: bytes) -> bytes:
    """The inverse of :func:`esc_b`."""
    return v[1:] if v[:1] == b"\x00" else v


def utf16_order_safe(text: str) -> bool:
    """True when comparing ``text`` with any string gives the same answer by UTF-16 code
    units as by code points: ``text`` has no character from U+D800 up.

    DynamoDB (and moto) compare strings by their UTF-8 bytes, which is code point order,
    as local evaluation does; dynalite compares JavaScript strings, by UTF-16 code units,
    which puts U+E000..U+FFFF after every character beyond U+FFFF. The two orders differ
    only where the first differing characters of the two strings are one of each group,
    so a comparison whose operand has neither agrees in both.
    """
    return not text or max(text) < "\ud800"


def _int(s: str) -> int:
    try:
        return int(s)
    except ValueError:  # a server that answers "1E+3"
        return int(Decimal(s))


# DynamoDB numbers span 1e-130 .. 9.99e125 with 38 digits; floats span 5e-324 .. 1.8e308
# with 17. Floats of magnitude 1e-120 .. 1e121 are stored as themselves (``repr``); the
# others are mapped, exactly and keeping order, into bands no plain float uses:
# 1e121 <= |n| < 2e121 for large ones and 1e-126 <= |n| < 2.1e-126 for tiny ones, as
# digits "1" + 3-digit exponent code + 17 significand digits.
_BIG = Decimal("1e121")
_TINY = Decimal("1e-120")
_INF = Decimal("9e121")


def float_n(v: float) -> str:
    """A float as a DynamoDB number string (exact, order-preserving, full range)."""
    v = float(v)
    if v != v:
        raise ValueError("NaN cannot be stored in DynamoDB")
    if v == 0.0:
        return "0"
    if v in (float("inf"), float("-inf")):
        return ("-" if v < 0 else "") + str(_INF)
    text = repr(v)
    d = Decimal(text)
    e = d.adjusted()
    if -120 <= e <= 120:
        return text
    sign, digits, _ = d.as_tuple()
    m = "".join(map(str, digits)).ljust(17, "0")[:17]
    if e > 120:
        body = f"1{e - 121:03d}{m}E+101"
    else:
        body = f"1{e + 324:03d}{m}E-146"
    return ("-" if sign else "") + body


def n_float(s: str) -> float:
    """The inverse of :func:`float_n`."""
    d = Decimal(s)
    a = abs(d)
    if a < _BIG and (a >= _TINY or a == 0):
        return float(s)
    if a == _INF:
        return float("-inf") if d < 0 else float("inf")
    if a >= _BIG:
        digits = str(int(a.scaleb(-101)))
        e = int(digits[1:4]) + 121
    else:
        digits = str(int(a.scaleb(146)))
        e = int(digits[1:4]) - 324
    m = digits[4:21]
    out = float(f"{m[0]}.{m[1:]}e{e}")
    return -out if d < 0 else out


def decimal_fits(v: Decimal) -> bool:
    """True when DynamoDB can hold ``v`` as a number: at most 38 significant digits
    (leading and trailing zeros do not count) and 0 or a magnitude of 1E-130 .. <1E+126."""
    if not v.is_finite():
        return False
    digits = "".join(map(str, v.as_tuple().digits)).strip("0")
    if not digits:
        return True  # zero, any exponent
    return len(digits) <= 38 and -130 <= v.adjusted() <= 125


def _decimal_n(name: str) -> Callable[[Any], Any]:
    def enc(v: Decimal) -> str:
        if not decimal_fits(v):
            raise ValidationError.one(
                name, v, "range", "DynamoDB numbers hold at most 38 significant digits and "
                "a magnitude of 1E-130 to below 1E+126; this value is refused rather than "
                "altered (see docs/backends.md, Backend limits)")
        return str(v)
    return enc


def _to_av(name: str, v: Any) -> dict[str, Any]:
    """Parsed JSON as a DynamoDB attribute value (see the module docstring)."""
    t = type(v)
    if t is str:
        return {"S": v}
    if t is bool:
        return {"BOOL": v}
    if t is int:
        if not decimal_fits(Decimal(v)):
            raise ValidationError.one(
                name, v, "range", f"{v!r} in {name}: DynamoDB numbers hold at most 38 "
                "significant digits; this value is refused rather than altered")
        return {"N": str(v)}
    if t is float:
        if math.isfinite(v) and not v.is_integer() and \
                -120 <= Decimal(repr(v)).adjusted() <= 120:
            return {"N": repr(v)}
        return {"B": repr(v).encode()}
    if v is None:
        return {"NULL": True}
    if t is list:
        return {"L": [_to_av(name, x) for x in v]}
    return {"M": {esc_s(k): _to_av(name, x) for k, x in v.items()}}


def _from_av(av: dict[str, Any]) -> Any:
    """The inverse of :func:`_to_av`."""
    ((tag, x),) = av.items()
    if tag == "S" or tag == "BOOL":
        return x
    if tag == "N":
        d = Decimal(x)
        return int(d) if d == d.to_integral_value() else float(x)
    if tag == "M":
        return {unesc_s(k): _from_av(y) for k, y in x.items()}
    if tag == "L":
        return [_from_av(y) for y in x]
    if tag == "NULL":
        return None
    if tag == "B":
        return float(bytes(x).decode())
    raise ValueError(f"not a JSON document value: {tag}")


def _doc_dumper(attr: Attr) -> Callable[[Any], Any]:
    """``value -> attribute value`` of a list/dict/dataclass attribute."""
    name = attr.name

    def to_native(j: Any) -> Any:
        return _to_av(name, j)
    enc = json_doc_dumper(attr, to_native)

    def av(v: Any) -> Any:
        out = enc(v)
        return {"S": out} if isinstance(out, str) else out
    return av


def _doc_loader(attr: Attr) -> Callable[[Any], Any]:
    """``attribute value -> value``: ``S`` is JSON text, anything else a document."""
    dec = json_doc_loader(attr, _from_av)

    def load(av: dict[str, Any]) -> Any:
        text = av.get("S")
        return dec(text) if text is not None else dec(av)
    return load


def _enum_value(v: Any) -> Any:
    return v.value if isinstance(v, enum.Enum) else v


def _bool_n(v: Any) -> str:
    return "1" if v else "0"


class AttrCodec:
    """How one attribute is written to and read from DynamoDB."""

    __slots__ = ("name", "tag", "enc", "dec", "keyish", "attr", "text", "doc")

    def __init__(self, attr: Attr, keyish: bool) -> None:
        self.name = attr.name
        self.attr = attr
        self.keyish = keyish
        self.text = attr.is_text
        kind = attr.kind
        self.doc = kind == JSON  # enc gives, dec takes, the whole attribute value
        vkind = attr.value_kind
        enc: Callable[[Any], Any]
        dec: Callable[[Any], Any]
        if kind == JSON:
            tag = "M"
            enc, dec = _doc_dumper(attr), _doc_loader(attr)
        elif kind == ENUM:
            cls = attr.inner
            if vkind == INT:
                tag = "N"

                def enc(v: Any) -> Any:
                    return str(int(_enum_value(v)))

                def dec(v: Any) -> Any:
                    return cls(_int(v))
            else:
                tag = "S"
                if keyish:
                    def enc(v: Any) -> Any:
                        return esc_s(_enum_value(v))

                    def dec(v: Any) -> Any:
                        return cls(unesc_s(v))
                else:
                    def enc(v: Any) -> Any:
                        return _enum_value(v)

                    def dec(v: Any) -> Any:
                        return cls(v)
        elif kind == STR:
            tag = "S"
            enc, dec = (esc_s, unesc_s) if keyish else (str, str)
        elif kind == INT:
            tag, enc, dec = "N", lambda v: str(int(v)), _int
        elif kind == FLOAT:
            tag, enc, dec = "N", float_n, n_float
        elif kind == DECIMAL:
            tag, enc, dec = "N", _decimal_n(attr.name), Decimal
        elif kind == BOOL:
            if keyish:
                tag, enc, dec = "N", _bool_n, lambda v: v not in ("0", "-0")
            else:
                tag, enc, dec = "BOOL", bool, bool
        elif kind == DATETIME:
            tag, enc, dec = "S", iso_utc, datetime.fromisoformat
        elif kind == DATE:
            tag, enc, dec = "S", date.isoformat, date.fromisoformat
        elif kind == UUID:
            tag, enc, dec = "S", str, uuid.UUID
        elif kind == BYTES:
            tag = "B"
            enc, dec = (esc_b, unesc_b) if keyish else (bytes, bytes)
        else:  # pragma: no cover - every kind is handled above
            raise TypeError(f"no DynamoDB codec for kind {kind!r}")
        self.tag: str = tag
        self.enc = enc
        self.dec = dec

    def fits(self, value: Any) -> bool:
        """True when a (non-None) filter operand has a DynamoDB form; a Decimal beyond
        DynamoDB's numbers has none (and no stored value equals it)."""
        return self.attr.kind != DECIMAL or decimal_fits(value)

    def order_safe(self, value: Any) -> bool:
        """True when ``<``, ``>`` with this operand compare as local evaluation does on
        every DynamoDB endpoint (see :func:`utf16_order_safe`)."""
        return not self.text or utf16_order_safe(_enum_value(value))

    def av(self, value: Any) -> dict[str, Any]:
        """The attribute value of a (non-None) Python value."""
        if self.doc:
            enc: Any = self.enc
            out: dict[str, Any] = enc(value)
            return out
        return {self.tag: self.enc(value)}

    def load(self, av: dict[str, Any]) -> Any:
        """The Python value of an attribute value (None for NULL or a foreign type)."""
        if self.doc:
            load: Any = self.dec
            return load(av)
        raw = av.get(self.tag)
        if raw is None:
            return None
        return self.dec(raw)

    def canonical(self, value: Any) -> str:
        """A string that is equal for equal values (uniqueness records)."""
        if self.doc:
            return json_dumper(self.attr.inner)(value)
        wire: Any = self.enc(value)
        if self.tag == "N":
            d = Decimal(wire)
            return "0" if d == 0 else str(d.normalize())
        if self.tag == "B":
            return base64.b64encode(wire).decode()
        if self.tag == "BOOL":
            return "1" if wire else "0"
        return str(wire)

    @property
    def key_type(self) -> str:
        """The AttributeType of this attribute in a key schema (S, N or B)."""
        return self.tag if self.tag in ("S", "N", "B") else "S"

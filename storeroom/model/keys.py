"""Keys: one attribute or several, with a string form for URLs and cursors.

The string form of a key (``KeyConfig.to_str``, ``store.key_str``) is one URL path
segment: each part is written as text after its kind (an int in decimal, a float as
``repr``, a bool as ``true`` / ``false``, a Decimal exactly, a datetime as ISO 8601 in
UTC with microseconds, a date as ISO, a UUID canonically, bytes as unpadded URL-safe
base64, an Enum by its value), percent-encoded with nothing left unescaped but the
unreserved characters ``A-Z a-z 0-9 - . _ ~``, and the parts joined by ``,``. So that
the string never collides with a route name and is never dropped from a URL, an empty
part is written ``~`` (and a part that is ``~`` as ``%7E``), and a leading ``_`` or
``.`` of a part is percent-encoded: no key string is empty, starts with ``_`` or is a
``.`` / ``..`` segment. ``KeyConfig.from_str`` (``store.parse_key``) is the inverse.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from ..errors import ValidationError
from .types import BOOL, BYTES, DATE, DATETIME, DECIMAL, ENUM, FLOAT, INT, STR, UUID

if TYPE_CHECKING:
    from .attrs import Attr

SEPARATOR = ","
EMPTY = "~"


@dataclass(frozen=True, slots=True)
class PartCodec:
    """How one key part is written as text and read back (``from_text`` raises ValueError)."""

    to_text: Callable[[Any], str]
    from_text: Callable[[str], Any]


_STR_CODEC = PartCodec(str, str)


@dataclass(frozen=True)
class KeyConfig:
    """Which attributes form an item's key: ``KeyConfig("id")`` or ``KeyConfig("owner", "id")``."""

    attrs: tuple[str, ...]
    # set by @stored: how each part is written as text and parsed back (typed)
    _codecs: tuple[PartCodec, ...] = field(default=(), compare=False, repr=False)

    def __init__(self, *attrs: str, _codecs: tuple[PartCodec, ...] = ()) -> None:
        if len(attrs) == 1 and isinstance(attrs[0], tuple | list):
            attrs = tuple(attrs[0])
        if not attrs:
            raise TypeError("a key needs at least one attribute")
        object.__setattr__(self, "attrs", tuple(attrs))
        object.__setattr__(self, "_codecs", _codecs)

    @property
    def composite(self) -> bool:
        """True when the key has more than one attribute (read with a tuple)."""
        return len(self.attrs) > 1

    def of(self, item: Any) -> Any:
        """The key of an item: a scalar, or a tuple for a composite key."""
        if len(self.attrs) == 1:
            return getattr(item, self.attrs[0])
        return tuple(getattr(item, a) for a in self.attrs)

    def parts(self, key: Any) -> tuple[Any, ...]:
        """A key value as a tuple of its components."""
        if len(self.attrs) == 1:
            return (key,)
        if not isinstance(key, tuple | list) or len(key) != len(self.attrs):
            raise ValidationError.one(
                ",".join(self.attrs), key, "key",
                f"a key of {len(self.attrs)} parts {self.attrs} is needed, got {key!r}",
            )
        return tuple(key)

    def _part_codecs(self) -> tuple[PartCodec, ...]:
        return self._codecs or (_STR_CODEC,) * len(self.attrs)

    def to_str(self, key: Any) -> str:
        """The string form of a (validated) key value: URL-safe, one path segment."""
        pieces = []
        for name, part, codec in zip(self.attrs, self.parts(key), self._part_codecs(),
                                     strict=True):
            try:
                pieces.append(_escape(codec.to_text(part)))
            except UnicodeEncodeError:
                raise ValidationError.one(name, part, "unicode",
                                          "a key holding a lone surrogate has no string form"
                                          ) from None
        return SEPARATOR.join(pieces)

    def from_str(self, text: str) -> Any:
        """Parse the string form back into a key value (typed like the attributes)."""
        names = ",".join(self.attrs)
        if not isinstance(text, str):
            raise ValidationError.one(names, text, "key", f"a key string is a str, got {text!r}")
        pieces = text.split(SEPARATOR)
        if len(pieces) != len(self.attrs):
            raise ValidationError.one(names, text, "key",
                                      f"not a key string of {len(self.attrs)} parts: {text!r}")
        values = []
        for name, piece, codec in zip(self.attrs, pieces, self._part_codecs(), strict=True):
            try:
                values.append(codec.from_text(_unescape(piece)))
            except (ValueError, UnicodeDecodeError) as exc:
                detail = exc.errors[0]["message"] if isinstance(exc, ValidationError) else ""
                raise ValidationError.one(
                    name, piece, "key", f"{piece!r} is not the string form of a {name} key part"
                    + (f" ({detail})" if detail else "")) from None
        return values[0] if len(values) == 1 else tuple(values)

    def internal_str(self, key: Any) -> str:
        """A fixed text form of a key value for backends that name stored things after keys
        (Redis item keys, DynamoDB uniqueness records). Not the public string form, and
        never changed: data already stored depends on it."""
        return "/".join(quote(_component_str(p), safe="") for p in self.parts(key))


def _escape(text: str) -> str:
    if not text:
        return EMPTY
    q = quote(text, safe="", errors="strict")
    if q == EMPTY:
        return "%7E"
    if q[0] == "_":
        return "%5F" + q[1:]
    if q[0] == ".":
        return "%2E" + q[1:]
    return q


def _unescape(piece: str) -> str:
    if piece == EMPTY:
        return ""
    return unquote(piece, errors="strict")


def _component_str(value: Any) -> str:
    if hasattr(value, "isoformat"):
        return value.isoformat()  # type: ignore[no-any-return]
    if hasattr(value, "value") and not isinstance(value, str | int | float):
        return str(value.value)  # Enum
    return str(value)


# part codecs by attribute kind --------------------------------------------------------------
_INT = re.compile(r"-?[0-9]+")
_FLOAT = re.compile(r"-?(?:inf|[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_DECIMAL = re.compile(r"-?(?:Infinity|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)")


def _int(text: str) -> int:
    if not _INT.fullmatch(text):
        raise ValueError(text)
    return int(text)


def _float(text: str) -> float:
    if not _FLOAT.fullmatch(text):
        raise ValueError(text)
    return float(text)


def _float_text(value: float) -> str:
    return repr(value) if value else "0.0"  # -0.0 is the same key as 0.0


def _bool(text: str) -> bool:
    if text == "true":
        return True
    if text == "false":
        return False
    raise ValueError(text)


def _bool_text(value: Any) -> str:
    return "true" if value else "false"


def _decimal(text: str) -> Decimal:
    if not _DECIMAL.fullmatch(text):
        raise ValueError(text)
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ValueError(text) from None


def _datetime_text(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _bytes_text(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode("ascii")


def _bytes(text: str) -> bytes:
    if not _BASE64URL.fullmatch(text):
        raise ValueError(text)
    try:
        out = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except binascii.Error:
        raise ValueError(text) from None
    if _bytes_text(out) != text:  # stray bits: not the one string form of these bytes
        raise ValueError(text)
    return out


def _enum_codec(cls: type[enum.Enum]) -> PartCodec:
    def text_of(value: Any) -> str:
        v = value.value if isinstance(value, enum.Enum) else value
        return _bool_text(v) if isinstance(v, bool) else str(v)

    table: dict[str, enum.Enum] = {}
    for member in cls:
        table.setdefault(text_of(member), member)

    def parse(text: str) -> Any:
        member = table.get(text)
        if member is None:
            raise ValueError(text)
        return member
    return PartCodec(text_of, parse)


_BY_KIND: dict[str, PartCodec] = {
    STR: _STR_CODEC,
    INT: PartCodec(str, _int),
    FLOAT: PartCodec(_float_text, _float),
    BOOL: PartCodec(_bool_text, _bool),
    DECIMAL: PartCodec(str, _decimal),
    DATETIME: PartCodec(_datetime_text, datetime.fromisoformat),
    DATE: PartCodec(date.isoformat, date.fromisoformat),
    UUID: PartCodec(str, uuid.UUID),
    BYTES: PartCodec(_bytes_text, _bytes),
}


def part_codec(attr: Attr, check: Callable[[Any], Any]) -> PartCodec:
    """The codec of one key attribute; ``check`` validates a parsed value (ValueError)."""
    base = _enum_codec(attr.inner) if attr.kind == ENUM else _BY_KIND[attr.kind]
    parse = base.from_text

    def from_text(text: str) -> Any:
        return check(parse(text))
    return PartCodec(base.to_text, from_text)

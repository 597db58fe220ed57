"""Opaque keyset cursors: the last item's order values, bound to store, filter and order.

A cursor is ``base64url(json([fingerprint, values]) + mac)``, the MAC an HMAC-SHA256
(truncated to 16 bytes) under the store's cursor keys (:class:`CursorKeys`): the
``secret=`` given to ``open_store`` / ``DataManager`` (a list rotates: the first signs,
every one verifies), else ``STOREROOM_SECRET``, else a secret generated once and kept in
the database (each backend's ``cursor_secret()``), so that every process on one database
accepts the same cursors.

Values are type-tagged so that they decode exactly. Decoding is strict: a body of any
other shape, even a correctly signed one, is ``InvalidCursor``, and decoded values are
checked against the attributes' types, so a cursor cannot inject anything. A cursor
holds only values of readable attributes (``parse_order`` refuses the others).
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ..errors import InvalidCursor, ValidationError
from ..model.stored import ModelMeta
from .ast import And, Cond, Node, Or
from .order import Order

ENV_SECRET = "STOREROOM_SECRET"
_MAC_LEN = 16
_MAX_LEN = 8192  # characters of a cursor


class CursorKeys:
    """The HMAC keys of cursors: the first signs, every one verifies (key rotation)."""

    __slots__ = ("keys",)

    def __init__(self, keys: tuple[bytes, ...]) -> None:
        if not keys or not all(isinstance(k, bytes) and k for k in keys):
            raise ValueError("cursor keys are non-empty bytes")
        self.keys = keys

    def __repr__(self) -> str:  # never show the keys themselves
        return f"<CursorKeys: {len(self.keys)} key(s)>"

    def sign(self, body: bytes) -> bytes:
        """The MAC of ``body`` under the first key."""
        return hmac.digest(self.keys[0], body, "sha256")[:_MAC_LEN]

    def verify(self, body: bytes, mac: bytes) -> bool:
        """True when ``mac`` is the MAC of ``body`` under any of the keys."""
        ok = False
        for key in self.keys:  # every key is tried: the time does not tell which matched
            ok |= hmac.compare_digest(hmac.digest(key, body, "sha256")[:_MAC_LEN], mac)
        return ok


def _secret_bytes(secret: Any) -> bytes:
    if isinstance(secret, str):
        secret = secret.encode()
    if isinstance(secret, bytes | bytearray) and secret:
        return bytes(secret)
    raise ValidationError.one("secret", None, "type",
                              "a cursor secret is a non-empty str or bytes, or a non-empty "
                              f"list of them (the first signs), got a {type(secret).__name__}")


def cursor_keys(secret: Any) -> CursorKeys:
    """The keys of ``secret=``: a str or bytes, or a list / tuple of them (the first signs,
    all verify); ``ValidationError`` for anything else. ``CursorKeys`` pass through."""
    if isinstance(secret, CursorKeys):
        return secret
    if isinstance(secret, list | tuple):
        if not secret:
            raise ValidationError.one("secret", None, "type",
                                      "a list of cursor secrets must not be empty")
        return CursorKeys(tuple(_secret_bytes(s) for s in secret))
    return CursorKeys((_secret_bytes(secret),))


def env_cursor_keys() -> CursorKeys | None:
    """The keys of ``STOREROOM_SECRET`` when it is set (and not empty), else None."""
    text = os.environ.get(ENV_SECRET)
    return CursorKeys((text.encode(),)) if text else None


def _enc(v: Any) -> Any:
    if v is None or isinstance(v, bool | int | str):
        return v
    if isinstance(v, float):
        return {"f": repr(v)}
    if isinstance(v, enum.Enum):
        return _enc(v.value)
    if isinstance(v, datetime):
        return {"dt": v.isoformat()}
    if isinstance(v, date):
        return {"d": v.isoformat()}
    if isinstance(v, Decimal):
        return {"dec": str(v)}
    if isinstance(v, uuid.UUID):
        return {"u": str(v)}
    if isinstance(v, bytes):
        return {"b": base64.b64encode(v).decode()}
    raise TypeError(f"cannot put {type(v).__name__} in a cursor")


def _decimal(text: str) -> Decimal:
    d = Decimal(text)
    if d.is_nan():  # NaN has no place in an order: no page ends with one
        raise ValueError(text)
    return d


def _bytes(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


_DECODERS: dict[str, Callable[[str], Any]] = {
    "f": float, "dt": datetime.fromisoformat, "d": date.fromisoformat, "dec": _decimal,
    "u": uuid.UUID, "b": _bytes,
}


def _dec(v: Any) -> Any:
    """One value of a cursor body: a JSON scalar, or ``{tag: text}`` for other types."""
    if v is None or isinstance(v, bool | int | str):
        return v
    if isinstance(v, dict) and len(v) == 1:
        ((tag, text),) = v.items()
        decode = _DECODERS.get(tag)
        if decode is not None and isinstance(text, str):
            try:
                return decode(text)
            except (ValueError, ArithmeticError, binascii.Error):
                pass
    raise InvalidCursor("cursor is malformed")


def _parse_body(body: bytes) -> tuple[Any, list[Any]]:
    """``[fingerprint, [values...]]`` of a verified body; ``InvalidCursor`` for any other shape."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):  # (RecursionError: nested thousands deep)
        raise InvalidCursor("cursor is malformed") from None
    if not (isinstance(doc, list) and len(doc) == 2 and isinstance(doc[0], str)
            and isinstance(doc[1], list)):
        raise InvalidCursor("cursor is malformed")
    return doc[0], doc[1]


def fingerprint(store_name: str, node: Node, order: Order) -> str:
    """A short digest of what a cursor belongs to: store, filter and order."""
    text = f"{store_name}|{node!r}|{order!r}"
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def encode_cursor(fp: str, values: tuple[Any, ...], keys: CursorKeys) -> str:
    """An opaque cursor for the item with these order values, signed with ``keys``."""
    body = json.dumps([fp, [_enc(v) for v in values]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(body + keys.sign(body)).decode().rstrip("=")


def decode_cursor(cursor: Any, fp: str, meta: ModelMeta, order: Order,
                  keys: CursorKeys) -> tuple[Any, ...]:
    """The order values in a cursor; ``InvalidCursor`` when forged or from elsewhere."""
    if not isinstance(cursor, str) or not cursor or len(cursor) > _MAX_LEN:
        raise InvalidCursor(f"not a cursor: {cursor!r:.60}")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (ValueError, TypeError):
        raise InvalidCursor("not a cursor: bad encoding") from None
    body, mac = raw[:-_MAC_LEN], raw[-_MAC_LEN:]
    if len(raw) <= _MAC_LEN or not keys.verify(body, mac):
        raise InvalidCursor("cursor is forged, or signed with another secret (bad signature)")
    cfp, vals = _parse_body(body)
    values = tuple(_dec(v) for v in vals)
    if cfp != fp:
        raise InvalidCursor("cursor belongs to another store, filter or ordering")
    if len(values) != len(order):
        raise InvalidCursor("cursor does not fit this ordering")
    typed: list[Any] = []
    for (name, _), v in zip(order, values, strict=True):
        a = meta.attrs.get(name)
        if a is None:  # across relations (category__name): None through a None reference
            from .order import rel_order_attr
            a = rel_order_attr(meta, name)
            if v is not None:
                v = _check_value(a, v, name)
            typed.append(v)
            continue
        if v is None:
            if not a.optional:
                raise InvalidCursor(f"cursor holds None for {name}")
            typed.append(None)
            continue
        errors: list[dict[str, Any]] = []
        # the checked value, typed like the attribute (an Enum comes back from its value)
        v = meta.checkers[name](v, errors)
        if errors:
            raise InvalidCursor(f"cursor holds a bad value for {name}")
        typed.append(v)
    return tuple(typed)


def _check_value(a: Any, v: Any, name: str) -> Any:
    """A cursor's value of an attribute of a related model, checked and typed."""
    from ..model.validate import _adapter
    try:
        return _adapter(a.inner).validate_python(v)
    except Exception:  # noqa: BLE001 - any failure is a bad cursor
        raise InvalidCursor(f"cursor holds a bad value for {name}") from None


def after_filter(order: Order, values: tuple[Any, ...],
                 nullable: Callable[[str], bool] | None = None) -> Node:
    """The keyset condition "comes after the item with these order values".

    None sorts last in both directions, so after a non-None value the None group still
    follows, and after None only later ties on the following attributes do.
    ``nullable(name)`` (when given) says which attributes can hold None at all: the
    None group of the others is left out of the condition.
    """
    alts: list[Node] = []
    prefix: list[Node] = []
    for (name, desc), v in zip(order, values, strict=True):
        if v is None:
            beyond: Node | None = None  # nothing sorts after the None group of this attribute
        elif nullable is not None and not nullable(name):
            beyond = Cond(name, "lt" if desc else "gt", v)
        else:
            beyond = Or((Cond(name, "lt" if desc else "gt", v), Cond(name, "isnull", True)))
        if beyond is not None:
            alts.append(And((*prefix, beyond)) if prefix else beyond)
        prefix.append(Cond(name, "isnull", True) if v is None else Cond(name, "eq", v))
    return Or(tuple(alts))

"""Opaque keyset cursors: the last item's order values, bound to store, filter and order.

A cursor is ``base64url(json(payload) + hmac)``. The HMAC key is ``STOREROOM_SECRET``
when set (set it when several processes serve one API), else random per process.
Values are type-tagged so that they decode exactly. Decoded values are also checked
against the attributes' types, so even a correctly signed cursor cannot inject anything.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import json
import os
import secrets
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ..errors import InvalidCursor
from ..model.stored import ModelMeta
from .ast import And, Cond, Node, Or
from .order import Order

_SECRET = os.environ.get("STOREROOM_SECRET", "").encode() or secrets.token_bytes(32)
_MAC_LEN = 16


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


def _dec(v: Any) -> Any:
    if not isinstance(v, dict):
        return v
    ((tag, s),) = v.items()
    if tag == "f":
        return float(s)
    if tag == "dt":
        return datetime.fromisoformat(s)
    if tag == "d":
        return date.fromisoformat(s)
    if tag == "dec":
        return Decimal(s)
    if tag == "u":
        return uuid.UUID(s)
    if tag == "b":
        return base64.b64decode(s)
    raise ValueError(tag)


def fingerprint(store_name: str, node: Node, order: Order) -> str:
    """A short digest of what a cursor belongs to: store, filter and order."""
    text = f"{store_name}|{node!r}|{order!r}"
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def encode_cursor(fp: str, values: tuple[Any, ...]) -> str:
    """An opaque cursor for the item with these order values."""
    body = json.dumps([fp, [_enc(v) for v in values]], separators=(",", ":")).encode()
    mac = hmac.digest(_SECRET, body, "sha256")[:_MAC_LEN]
    return base64.urlsafe_b64encode(body + mac).decode().rstrip("=")


def decode_cursor(cursor: Any, fp: str, meta: ModelMeta, order: Order) -> tuple[Any, ...]:
    """The order values in a cursor; ``InvalidCursor`` when forged or from elsewhere."""
    if not isinstance(cursor, str) or not cursor or len(cursor) > 8192:
        raise InvalidCursor(f"not a cursor: {cursor!r:.60}")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (ValueError, TypeError):
        raise InvalidCursor("not a cursor: bad encoding") from None
    body, mac = raw[:-_MAC_LEN], raw[-_MAC_LEN:]
    good = hmac.digest(_SECRET, body, "sha256")[:_MAC_LEN]
    if len(raw) <= _MAC_LEN or not hmac.compare_digest(mac, good):
        raise InvalidCursor("cursor is forged or from another process (bad signature)")
    try:
        cfp, vals = json.loads(body)
        values = tuple(_dec(v) for v in vals)
    except (ValueError, TypeError, KeyError):
        raise InvalidCursor("cursor is malformed") from None
    if cfp != fp:
        raise InvalidCursor("cursor belongs to another store, filter or ordering")
    if len(values) != len(order):
        raise InvalidCursor("cursor does not fit this ordering")
    typed: list[Any] = []
    for (name, _), v in zip(order, values, strict=True):
        a = meta.attrs[name]
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


def after_filter(order: Order, values: tuple[Any, ...]) -> Node:
    """The keyset condition "comes after the item with these order values".

    None sorts last in both directions, so after a non-None value the None group still
    follows, and after None only later ties on the following attributes do.
    """
    alts: list[Node] = []
    prefix: list[Node] = []
    for (name, desc), v in zip(order, values, strict=True):
        if v is None:
            beyond: Node | None = None  # nothing sorts after the None group of this attribute
        else:
            beyond = Or((Cond(name, "lt" if desc else "gt", v), Cond(name, "isnull", True)))
        if beyond is not None:
            alts.append(And((*prefix, beyond)) if prefix else beyond)
        prefix.append(Cond(name, "isnull", True) if v is None else Cond(name, "eq", v))
    return Or(tuple(alts))

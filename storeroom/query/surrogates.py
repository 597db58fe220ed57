"""Filter values holding a lone surrogate (see ``storeroom.model.text``).

No stored string holds a surrogate code point (validation refuses them), and no
database can even be sent one. A condition on a string attribute whose value holds one
is therefore decided here, before any backend sees it, exactly as local evaluation
decides it for every storable string: ``eq``, ``in`` and the text operators are false
for that value (so ``ne``, ``not_in`` and ``~`` are true), and an order comparison is
the same comparison with a surrogate-free bound.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..model.attrs import Attr
from ..model.text import has_surrogate, surrogate_free_bound
from ..model.types import STR
from .ast import EVERYTHING, NOTHING, TEXT_OPERATORS, And, Cond, Node

_PLAIN = (list, tuple, set, frozenset)


def _bad(value: Any) -> bool:
    return isinstance(value, str) and has_surrogate(value)


def without_surrogates(attr: Attr, c: Cond) -> Node | None:
    """The condition ``c`` (on a text attribute) decided for a lone-surrogate value.

    None when ``c`` holds no such value; otherwise a node without any, to be prepared
    in its place.
    """
    op, value = c.op, c.value
    if op in TEXT_OPERATORS:
        return NOTHING if _bad(value) else None
    if attr.kind != STR:  # a str-valued Enum: such a value is no member (InvalidFilter)
        return None
    if op == "eq":
        return NOTHING if _bad(value) else None
    if op == "ne":
        return EVERYTHING if _bad(value) else None
    if op in ("in", "not_in"):
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            return None  # refused by preparation
        values = value if isinstance(value, _PLAIN) else list(value)  # read an iterator once
        if not any(_bad(v) for v in values):
            return None if values is value else Cond(c.attr, op, values)
        return Cond(c.attr, op, [v for v in values if not _bad(v)])
    if op in ("lt", "lte"):  # s <= v is s < v: no stored s equals v
        return Cond(c.attr, "lt", surrogate_free_bound(value)) if _bad(value) else None
    if op in ("gt", "gte"):
        return Cond(c.attr, "gte", surrogate_free_bound(value)) if _bad(value) else None
    if op == "range" and isinstance(value, list | tuple) and len(value) == 2:
        lo, hi = tuple(value)
        if not (_bad(lo) or _bad(hi)):
            return None
        return And((Cond(c.attr, "gte", surrogate_free_bound(lo)) if _bad(lo)
                    else Cond(c.attr, "gte", lo),
                    Cond(c.attr, "lt", surrogate_free_bound(hi)) if _bad(hi)
                    else Cond(c.attr, "lte", hi)))
    return None

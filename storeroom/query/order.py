"""Ordering: ``order_by=["-created_at", "id"]`` validated, made total with the key."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import InvalidFilter
from ..model.stored import ModelMeta

Order = tuple[tuple[str, bool], ...]
"""Pairs of (attribute name, descending)."""


def parse_order(meta: ModelMeta, order_by: Iterable[str] | str | None) -> Order:
    """Validate ``order_by`` and append the key attributes so that the order is total."""
    if order_by is None:
        order_by = ()
    if isinstance(order_by, str):
        order_by = (order_by,)
    out: list[tuple[str, bool]] = []
    seen: set[str] = set()
    for spec in order_by:
        if not isinstance(spec, str) or not spec.lstrip("-+"):
            raise InvalidFilter(f"order_by entries are attribute names, got {spec!r}")
        desc = spec.startswith("-")
        name = spec.lstrip("-+")
        a = meta.attrs.get(name)
        if a is None or not a.store:
            raise InvalidFilter(f"cannot order by unknown attribute {name!r} of {meta.name}")
        if not a.orderable:
            raise InvalidFilter(f"cannot order by {name!r}: it is not sortable")
        if name not in seen:
            seen.add(name)
            out.append((name, desc))
    for k in meta.key.attrs:
        if k not in seen:
            out.append((k, False))
    return tuple(out)


def order_values(item: Any, order: Order) -> tuple[Any, ...]:
    """The values of an item for each attribute of an order (for cursors)."""
    return tuple(getattr(item, name) for name, _ in order)

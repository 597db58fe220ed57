"""Ordering: ``order_by=["-created_at", "id"]`` validated, made total with the key."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from typing import Any

from ..errors import InvalidFilter
from ..model.attrs import Attr
from ..model.stored import ModelMeta

Order = tuple[tuple[str, bool], ...]
"""Pairs of (attribute name, descending)."""


def parse_order(meta: ModelMeta, order_by: Iterable[str] | str | None) -> Order:
    """Validate ``order_by`` and append the key attributes so that the order is total.

    ``order_by`` is one attribute name or a sequence of them, each optionally prefixed by
    one ``-`` (descending) or ``+``. Unknown, unsortable and ``readable=False`` attributes
    are refused with ``InvalidFilter`` (a page's cursor carries the values of the order's
    attributes; key attributes are always readable, see ``@stored``).
    """
    if order_by is None:
        order_by = ()
    if isinstance(order_by, str):
        order_by = (order_by,)
    elif type(order_by) is not list and type(order_by) is not tuple and (
            isinstance(order_by, bytes | bytearray | Mapping | Set)
            or not isinstance(order_by, Iterable)):
        # (a mapping or a set has no order of its own to follow)
        raise InvalidFilter(f"order_by is an attribute name or a list of them, got {order_by!r}")
    out: list[tuple[str, bool]] = []
    seen: set[str] = set()
    for spec in order_by:
        if not isinstance(spec, str):
            raise InvalidFilter(f"order_by entries are attribute names, got {spec!r}")
        desc = spec.startswith("-")
        name = spec[1:] if spec[:1] in ("-", "+") else spec
        a = meta.attrs.get(name)
        if a is None and "__" in name and name.split("__", 1)[0] in meta.refs:
            rel_order_attr(meta, name)  # category__name: checked (InvalidFilter), kept
            if name not in seen:
                seen.add(name)
                out.append((name, desc))
            continue
        if a is None and ("." in name or "__" in name):
            root = meta.attrs.get(name.replace("__", ".").split(".")[0])
            if root is not None and root.store:  # decided: see docs/filters.md
                raise InvalidFilter(f"cannot order by {spec!r}: ordering by a nested path is "
                                    "not supported (MongoDB, DynamoDB and Redis keep nested "
                                    "values as JSON text)")
        if a is None or not a.store:
            raise InvalidFilter(f"cannot order by {spec!r}: {meta.name} has no attribute "
                                f"{name!r} (write a name, or -name for descending)")
        if not a.orderable:
            raise InvalidFilter(f"cannot order by {name!r}: it is not sortable")
        if not a.readable:
            raise InvalidFilter(f"cannot order by {name!r}: it is not readable "
                                "(a page's cursor would carry its values)")
        if name not in seen:
            seen.add(name)
            out.append((name, desc))
    for k in meta.key.attrs:
        if k not in seen:
            out.append((k, False))
    return tuple(out)


def order_values(item: Any, order: Order) -> tuple[Any, ...]:
    """The values of an item for each attribute of an order (for cursors); an attribute
    across relations (``category__name``) is read from the loaded related items."""
    try:
        return tuple(getattr(item, name) for name, _ in order)
    except AttributeError:
        return tuple(getattr(item, name) if "__" not in name else rel_value(item, name)
                     for name, _ in order)


def rel_order_attr(meta: ModelMeta, name: str) -> Attr:
    """The attribute at the end of an order across forward relations
    (``category__name``, ``category__parent__name``); ``InvalidFilter`` when a step is
    not a ``Ref`` or the attribute cannot order."""
    from ..model.stored import meta_of
    *steps, last = name.split("__")
    m = meta
    for step in steps:
        ref = m.refs.get(step)
        if ref is None:
            what = "a to-many relation" if step in m.manys else "not a Ref"
            raise InvalidFilter(f"cannot order by {name!r}: {m.name}.{step} is {what} (order "
                                "by attributes across Refs only)")
        m = meta_of(ref.target)
    a = m.attrs.get(last)
    if a is None or not a.store:
        raise InvalidFilter(f"cannot order by {name!r}: {m.name} has no attribute {last!r}")
    if not a.orderable:
        raise InvalidFilter(f"cannot order by {name!r}: {m.name}.{last} is not sortable")
    if not a.readable:
        raise InvalidFilter(f"cannot order by {name!r}: {m.name}.{last} is not readable "
                            "(a page's cursor would carry its values)")
    return a


def rel_value(item: Any, name: str) -> Any:
    """The value at ``category__name`` of an item whose related items are loaded: None
    through a None reference, or a dangling one (a stub: not loaded)."""
    from ..model.relations import Stub
    v = item
    for step in name.split("__"):
        if v is None or isinstance(v, Stub):
            return None
        v = getattr(v, step)
    return v

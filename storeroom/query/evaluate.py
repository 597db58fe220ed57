"""Local evaluation: the reference semantics every backend's native compilation must match."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .ast import And, Cond, Node, Not, Or


def plain(value: Any) -> Any:
    """The comparable form of a value (an Enum compares by its value)."""
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _cond_fn(c: Cond) -> Callable[[Any], bool]:
    name, op = c.attr, c.op
    if op == "isnull":
        want = bool(c.value)
        return lambda item: (getattr(item, name) is None) is want
    if op == "in":
        vals = frozenset(plain(v) for v in c.value)
        return lambda item: plain(getattr(item, name)) in vals
    if op == "not_in":
        vals = frozenset(plain(v) for v in c.value)
        return lambda item: plain(getattr(item, name)) not in vals
    if op == "range":
        lo, hi = plain(c.value[0]), plain(c.value[1])

        def in_range(item: Any) -> bool:
            v = plain(getattr(item, name))
            return v is not None and lo <= v <= hi
        return in_range
    x = plain(c.value)
    if op == "eq":
        return lambda item: plain(getattr(item, name)) == x
    if op == "ne":
        return lambda item: plain(getattr(item, name)) != x
    if op in ("lt", "lte", "gt", "gte"):
        cmp: Callable[[Any], bool] = {"lt": lambda v: v < x, "lte": lambda v: v <= x,
               "gt": lambda v: v > x, "gte": lambda v: v >= x}[op]

        def ordered(item: Any) -> bool:
            v = plain(getattr(item, name))
            return v is not None and cmp(v)
        return ordered
    xl = x.lower() if isinstance(x, str) else x
    text_ops: dict[str, Callable[[str], bool]] = {
        "contains": lambda v: x in v,
        "icontains": lambda v: xl in v.lower(),
        "startswith": lambda v: v.startswith(x),
        "istartswith": lambda v: v.lower().startswith(xl),
        "endswith": lambda v: v.endswith(x),
        "iendswith": lambda v: v.lower().endswith(xl),
        "iexact": lambda v: v.lower() == xl,
    }
    test = text_ops[op]

    def text(item: Any) -> bool:
        v = plain(getattr(item, name))
        return v is not None and test(v)
    return text


def compile_local(node: Node) -> Callable[[Any], bool]:
    """A predicate ``fn(item) -> bool`` for a prepared filter."""
    if isinstance(node, Cond):
        return _cond_fn(node)
    if isinstance(node, And):
        fns = [compile_local(n) for n in node.items]
        if not fns:
            return lambda item: True
        if len(fns) == 1:
            return fns[0]
        return lambda item: all(f(item) for f in fns)
    if isinstance(node, Or):
        fns = [compile_local(n) for n in node.items]
        if not fns:
            return lambda item: False
        return lambda item: any(f(item) for f in fns)
    if isinstance(node, Not):
        f = compile_local(node.item)
        return lambda item: not f(item)
    raise TypeError(f"not a filter node: {node!r}")


def matches(where: Any, item: Any) -> bool:
    """True when ``item`` satisfies the filter ``where`` (a Q, node or dict of lookups).

    For an item of a ``@stored`` class the filter is validated and its values coerced
    first, exactly as a store does; this is the reference semantics of every backend.
    """
    from .q import to_node
    node = to_node(where)
    meta = getattr(type(item), "__storeroom__", None)
    if meta is not None:
        from .prepare import prepare
        node = prepare(meta, node)
    return compile_local(node)(item)


def _attr_key(name: str) -> Callable[[Any], Any]:
    def key(item: Any) -> Any:
        return plain(getattr(item, name))
    return key


def sort_items(items: Iterable[Any], order: Sequence[tuple[str, bool]]) -> list[Any]:
    """Items sorted by ``order`` (pairs of attribute name and descending?); None last always."""
    out = list(items)
    # stable sorts from the last key to the first
    for name, desc in reversed(order):
        present = [i for i in out if getattr(i, name) is not None]
        missing = [i for i in out if getattr(i, name) is None]
        present.sort(key=_attr_key(name), reverse=desc)
        out = present + missing
    return out

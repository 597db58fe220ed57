"""Local evaluation: the reference semantics every backend's native compilation must match."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .ast import And, Cond, Node, Not, depth, fold


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


# Below this depth a filter becomes nested closures (fast); deeper, a flat program run by
# one loop, since calling nested closures recurses once per level.
CLOSURE_DEPTH = 50
# the last filter compiled, and its predicate
_last: tuple[Any, Callable[[Any], bool]] = (None, lambda item: True)


def compile_local(node: Node) -> Callable[[Any], bool]:
    """A predicate ``fn(item) -> bool`` for a prepared filter (of any depth)."""
    global _last
    t = type(node)
    if t is And and not node.items:  # type: ignore[attr-defined]
        return _true
    last = _last
    if last[0] is node:  # the same filter again (one check per item of a bulk write)
        return last[1]
    if t is Cond:
        fn = _cond_fn(node)  # type: ignore[arg-type]
    elif depth(node) <= CLOSURE_DEPTH:
        fn = fold(node, _leaf_fn, _closure)
    else:
        fn = _program(node)
    _last = (node, fn)  # one tuple: replaced atomically, safe across threads
    return fn


def _true(item: Any) -> bool:
    return True


def _false(item: Any) -> bool:
    return False


def _leaf_fn(node: Any) -> Callable[[Any], bool]:
    if isinstance(node, Cond):
        return _cond_fn(node)
    raise TypeError(f"not a filter node: {node!r}")


def _closure(node: Node, fns: list[Callable[[Any], bool]]) -> Callable[[Any], bool]:
    t = type(node)
    if t is Not:
        f = fns[0]
        return lambda item: not f(item)
    if t is And:
        if not fns:
            return _true
        if len(fns) == 1:
            return fns[0]
        return lambda item: all(f(item) for f in fns)
    if not fns:
        return _false
    return lambda item: any(f(item) for f in fns)


_LEAF, _AND, _OR, _NOT = 0, 1, 2, 3


def _program(node: Node) -> Callable[[Any], bool]:
    """The filter as postfix code: leaves push their result, And/Or/Not combine the top
    of the stack; one loop runs it, whatever the depth."""
    code: list[tuple[int, Any]] = []

    def leaf(c: Any) -> None:
        code.append((_LEAF, _leaf_fn(c)))

    def combine(n: Node, _: list[None]) -> None:
        t = type(n)
        if t is Not:
            code.append((_NOT, 1))
        else:
            code.append((_AND if t is And else _OR, len(n.items)))  # type: ignore[attr-defined]

    fold(node, leaf, combine)

    def run(item: Any) -> bool:
        stack: list[bool] = []
        push = stack.append
        for op, x in code:
            if op == _LEAF:
                push(x(item))
            elif op == _NOT:
                stack[-1] = not stack[-1]
            elif x == 0:
                push(op == _AND)
            else:
                vals = stack[-x:]
                del stack[-x:]
                push(all(vals) if op == _AND else any(vals))
        return stack[0]
    return run


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

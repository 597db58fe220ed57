"""Local evaluation: the reference semantics every backend's native compilation must match."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .ast import And, Cond, Node, Not, Or, depth, fold


def plain(value: Any) -> Any:
    """The comparable form of a value (an Enum compares by its value)."""
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _cond_fn(c: Cond) -> Callable[[Any], bool]:
    name, op = c.attr, c.op
    if "." in name:
        return _path_fn(c)
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
        "contains": lambda v: x in v if type(v) is str else member(v, x),
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


def _klass(v: Any) -> type:
    t = type(v)
    return float if t is int or t is float else t  # numbers are one JSON type


def member(values: Any, x: Any) -> bool:
    """``x`` is an element of the list ``values`` (of the same JSON type: True is not 1)."""
    if not isinstance(values, list | tuple | set | frozenset):
        return False
    k = _klass(x)
    for e in values:
        e = plain(e)
        if e == x and _klass(e) is k:
            return True
    return False


def path_getter(name: str) -> Callable[[Any], Any]:
    """``item -> value`` at the dotted path ``name``: dataclass fields and dict keys;
    None when a key is missing or a step meets None or something else."""
    root, *keys = name.split(".")

    def get(item: Any) -> Any:
        v = getattr(item, root)
        for k in keys:
            if type(v) is dict:
                v = v.get(k)
            elif hasattr(type(v), "__dataclass_fields__"):
                v = getattr(v, k, None)
            else:
                return None
        return v
    return get


def _path_fn(c: Cond) -> Callable[[Any], bool]:
    """A condition on a nested path: the stored value must be of the filter value's JSON
    type (a loose dict value may be anything), and never raises on a mismatch."""
    get, op, value = path_getter(c.attr), c.op, c.value
    if op == "isnull":
        want = bool(value)
        return lambda item: (get(item) is None) is want
    if op in ("in", "not_in"):
        vals = frozenset((_klass(plain(v)), plain(v)) for v in value)
        neg = op == "not_in"

        def listed(item: Any) -> bool:
            v = plain(get(item))
            try:
                return ((_klass(v), v) in vals) is not neg
            except TypeError:  # an unhashable stored value (a list, a dict): not listed
                return neg
        return listed
    if op == "contains":
        x = plain(value)

        def contains(item: Any) -> bool:
            v = plain(get(item))
            if type(v) is str:
                return type(x) is str and x in v
            return member(v, x)
        return contains
    if op == "range":
        lo, hi = plain(value[0]), plain(value[1])
        k = _klass(lo)

        def in_range(item: Any) -> bool:
            v = plain(get(item))
            if v is None or _klass(v) is not k:
                return False
            try:
                return bool(lo <= v <= hi)
            except TypeError:
                return False
        return in_range
    x = plain(value)
    k = _klass(x)
    if op == "ne":
        return lambda item: not _same(plain(get(item)), x, k)
    if op == "eq":
        return lambda item: _same(plain(get(item)), x, k)
    test = _cond_fn(Cond("v", op, value))

    def other(item: Any) -> bool:
        v = plain(get(item))
        if v is None or _klass(v) is not k:
            return False
        try:
            return test(_Box(v))
        except TypeError:
            return False
    return other


def _same(v: Any, x: Any, k: type) -> bool:
    return _klass(v) is k and v == x


class _Box:
    """A one-attribute holder, to reuse the top-level predicates on a nested value."""

    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v


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
    elif _flat(node):  # the common case: an And/Or of conditions
        fn = _closure(node, [_cond_fn(k) for k in node.items])  # type: ignore[attr-defined]
    elif depth(node) <= CLOSURE_DEPTH:
        fn = fold(node, _leaf_fn, _closure)
    else:
        fn = _program(node)
    _last = (node, fn)  # one tuple: replaced atomically, safe across threads
    return fn


def _flat(node: Node) -> bool:
    t = type(node)
    if t is not And and t is not Or:
        return False
    for k in node.items:  # type: ignore[attr-defined]
        if type(k) is not Cond:
            return False
    return True


def _true(item: Any) -> bool:
    return True


def _false(item: Any) -> bool:
    return False


def _leaf_fn(node: Any) -> Callable[[Any], bool]:
    if type(node) is Cond or isinstance(node, Cond):
        return _cond_fn(node)
    from .relations import Rel
    if type(node) is Rel:
        return _rel_fn(node)
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


def _rel_fn(rel: Any) -> Callable[[Any], bool]:
    """A lookup across a relation over the loaded graph: the referenced item (a row of
    Nones when there is none) or some item of the loaded ``Many`` matches."""
    from .relations import NULL_ROW, REF
    inner = compile_local(rel.node)
    name = rel.name
    if rel.kind == REF:
        on_none = bool(inner(NULL_ROW))

        def forward(item: Any) -> bool:
            v = getattr(item, name)
            return on_none if v is None else bool(inner(v))
        return forward

    def exists(item: Any) -> bool:
        return any(inner(v) for v in (getattr(item, name) or ()))
    return exists


_AND, _OR, _NOT = 1, 2, 3
_KINDS = {And: _AND, Not: _NOT}

# A deep filter as a tree of steps (kind, predicates, deeper steps): subtrees up to
# CLOSURE_DEPTH deep are predicates (closures); the rest is walked by one loop.
_Step = tuple[int, list[Callable[[Any], bool]], list[Any]]


def _program(node: Node) -> Callable[[Any], bool]:
    """The predicate of a deep filter: one loop with an explicit stack walks the deep
    part of the tree, testing the shallow parts (closures) of each level first and
    stopping as soon as a level is decided (an And with a false part, an Or with a
    true one), whatever the depth."""
    def leaf(c: Any) -> tuple[int, Any]:
        return 0, _leaf_fn(c)

    def combine(n: Node, parts: list[tuple[int, Any]]) -> tuple[int, Any]:
        d = 1 + max((p[0] for p in parts), default=0)
        if d <= CLOSURE_DEPTH:
            return d, _closure(n, [p[1] for p in parts])
        fns = [p[1] for p in parts if callable(p[1])]  # shallow parts: closures
        deeper = [p[1] for p in parts if not callable(p[1])]
        return d, (_KINDS.get(type(n), _OR), fns, deeper)

    _, root = fold(node, leaf, combine)
    if callable(root):
        return root  # type: ignore[no-any-return]
    return lambda item: _run(root, item)


def _run(root: _Step, item: Any) -> bool:
    stack: list[tuple[_Step, int]] = []
    step = root
    entering = True
    value = False
    while True:
        if entering:  # decide ``step`` by its predicates, or go down its first deeper step
            kind, fns, deeper = step
            if kind == _NOT:
                if fns:
                    value = not fns[0](item)
                else:
                    stack.append((step, 0))
                    step = deeper[0]
                    continue
            else:
                is_or = kind == _OR
                for f in fns:
                    if bool(f(item)) is is_or:
                        value = is_or
                        break
                else:
                    if deeper:
                        stack.append((step, 0))
                        step = deeper[0]
                        continue
                    value = not is_or
            entering = False
        # ``step`` has ``value``: give it to the step above
        if not stack:
            return value
        parent, i = stack.pop()
        kind, fns, deeper = parent
        step = parent
        if kind == _NOT:
            value = not value
            continue
        is_or = kind == _OR
        if value is is_or:  # decided
            continue
        i += 1
        if i < len(deeper):
            stack.append((parent, i))
            step = deeper[i]
            entering = True
            continue
        value = not is_or


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

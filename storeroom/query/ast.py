"""The filter AST: conditions combined with And, Or and Not. Nodes are immutable.

``And`` and ``Or`` are n-ary (``Q`` flattens chains of ``|`` and ``&`` as it builds
them), but a filter can still be deep: ``&`` and ``|`` alternating, or ``~`` nested.
Nothing in storeroom walks a tree by recursion on its depth: the walks here
(:func:`fold`, :func:`conds`, :func:`depth`, equality, hashing and ``repr`` of nodes)
use explicit stacks, so a filter nested 100,000 deep is as valid as a shallow one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

OPERATORS: frozenset[str] = frozenset({
    "eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "contains", "icontains",
    "startswith", "istartswith", "endswith", "iendswith", "iexact", "isnull", "range",
})
TEXT_OPERATORS: frozenset[str] = frozenset({
    "contains", "icontains", "startswith", "istartswith", "endswith", "iendswith", "iexact",
})
ORDER_OPERATORS: frozenset[str] = frozenset({"lt", "lte", "gt", "gte", "range"})
LIST_OPERATORS: frozenset[str] = frozenset({"in", "not_in"})


class Node:
    """Base of filter nodes."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Cond(Node):
    """``attr op value``: one condition on one attribute."""

    attr: str
    op: str
    value: Any


# And, Or and Not compare, hash and print without recursion (the dataclass versions
# recurse once per level); the hash is computed once and kept in ``_h``.
@dataclass(frozen=True, slots=True, eq=False, repr=False)
class And(Node):
    """All of ``items``; ``And(())`` matches everything."""

    items: tuple[Node, ...]
    _h: int | None = field(default=None, init=False, compare=False, repr=False)

    def __eq__(self, other: object) -> bool:
        return _equal(self, other) if isinstance(other, Node) else NotImplemented

    def __hash__(self) -> int:
        return self._h if self._h is not None else _hash(self)

    def __repr__(self) -> str:
        return node_repr(self)


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Or(Node):
    """Any of ``items``; ``Or(())`` matches nothing."""

    items: tuple[Node, ...]
    _h: int | None = field(default=None, init=False, compare=False, repr=False)

    def __eq__(self, other: object) -> bool:
        return _equal(self, other) if isinstance(other, Node) else NotImplemented

    def __hash__(self) -> int:
        return self._h if self._h is not None else _hash(self)

    def __repr__(self) -> str:
        return node_repr(self)


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Not(Node):
    """The negation of ``item`` (two-valued: a ``None`` attribute is simply "not equal")."""

    item: Node
    _h: int | None = field(default=None, init=False, compare=False, repr=False)

    def __eq__(self, other: object) -> bool:
        return _equal(self, other) if isinstance(other, Node) else NotImplemented

    def __hash__(self) -> int:
        return self._h if self._h is not None else _hash(self)

    def __repr__(self) -> str:
        return node_repr(self)


EVERYTHING = And(())
NOTHING = Or(())

_COMPOUND = (And, Or, Not)
_TAGS = {And: "and", Or: "or", Not: "not"}


def children(node: Node) -> tuple[Node, ...]:
    """The direct sub-nodes of a node (none for a condition)."""
    t = type(node)
    if t is And or t is Or:
        return node.items  # type: ignore[attr-defined, no-any-return]
    if t is Not:
        return (node.item,)  # type: ignore[attr-defined]
    return ()


def _equal(a: Node, b: Node) -> bool:
    stack = [(a, b)]
    pop, push = stack.pop, stack.append
    while stack:
        x, y = pop()
        if x is y:
            continue
        t = type(x)
        if t is not type(y):
            return False
        if t in _COMPOUND:
            hx, hy = x._h, y._h  # type: ignore[attr-defined]
            if hx is not None and hy is not None and hx != hy:
                return False
            if t is Not:
                push((x.item, y.item))  # type: ignore[attr-defined]
                continue
            xi, yi = x.items, y.items  # type: ignore[attr-defined]
            if len(xi) != len(yi):
                return False
            stack.extend(zip(xi, yi, strict=True))
        elif x != y:
            return False
    return True


def _hash(node: Node) -> int:
    """The hash of a compound node; computed bottom-up once, then kept on each node."""
    stack = [node]
    while stack:
        n = stack[-1]
        if n._h is not None:  # type: ignore[attr-defined]
            stack.pop()
            continue
        kids = children(n)
        todo = [k for k in kids if type(k) in _COMPOUND and k._h is None]  # type: ignore[attr-defined]
        if todo:
            stack.extend(todo)
            continue
        stack.pop()
        h = hash((_TAGS[type(n)],  # type: ignore[index]
                  tuple(k._h if type(k) in _COMPOUND else hash(k) for k in kids)))  # type: ignore[attr-defined]
        object.__setattr__(n, "_h", h)
    return node._h  # type: ignore[attr-defined, no-any-return]


def node_repr(node: Node) -> str:
    """``repr(node)`` exactly as the dataclasses print it, without recursion."""
    t = type(node)
    if t is And or t is Or:  # the common case first: an And/Or of conditions
        items = node.items  # type: ignore[attr-defined]
        for k in items:
            if type(k) in _COMPOUND:
                break
        else:
            inner = ", ".join([repr(k) for k in items])
            return f"{t.__qualname__}(items=({inner}{',' if len(items) == 1 else ''}))"
    out: list[str] = []
    stack: list[Any] = [node]
    while stack:
        x = stack.pop()
        t = type(x)
        if t is str:
            out.append(x)
        elif t is Not:
            out.append("Not(item=")
            stack.append(")")
            stack.append(x.item)
        elif t is And or t is Or:
            items = x.items
            out.append(f"{t.__qualname__}(items=(")
            stack.append(",))" if len(items) == 1 else "))")
            for i in range(len(items) - 1, -1, -1):
                stack.append(items[i])
                if i:
                    stack.append(", ")
        else:
            out.append(repr(x))
    return "".join(out)


R = TypeVar("R")


def fold(node: Node, leaf: Callable[[Any], R],
         combine: Callable[[Node, list[R]], R]) -> R:
    """Bottom-up over a tree without recursion: ``leaf(cond)`` for every condition (and
    anything that is not And/Or/Not), ``combine(node, results of its children)`` for
    And, Or and Not. Leaves are visited left to right, depth first."""
    t = type(node)
    if t not in _COMPOUND:
        return leaf(node)
    if t is not Not:  # the common case, an And/Or of conditions: no stack needed
        items = node.items  # type: ignore[attr-defined]
        for k in items:
            if type(k) in _COMPOUND:
                break
        else:
            return combine(node, [leaf(k) for k in items])
    out: list[R] = []
    todo: list[Any] = [node]
    pop, push = todo.pop, todo.append
    while todo:
        n = pop()
        t = type(n)
        if t is tuple:  # (node, number of children): its children are done
            m, k = n
            if k:
                args = out[-k:]
                del out[-k:]
            else:
                args = []
            out.append(combine(m, args))
        elif t is And or t is Or:
            items = n.items
            push((n, len(items)))
            todo.extend(reversed(items))
        elif t is Not:
            push((n, 1))
            push(n.item)
        else:
            out.append(leaf(n))
    return out[0]


def conds(node: Node) -> list[Cond]:
    """Every condition in a tree, depth first."""
    t = type(node)
    if t is Cond:
        return [node]  # type: ignore[list-item]
    if t is And or t is Or:  # the common case first: an And/Or of conditions
        items = node.items  # type: ignore[attr-defined]
        for k in items:
            if type(k) is not Cond:
                break
        else:
            return list(items)
    out: list[Cond] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Cond):
            out.append(n)
        elif isinstance(n, And | Or):
            stack.extend(reversed(n.items))
        elif isinstance(n, Not):
            stack.append(n.item)
    return out


def depth(node: Node) -> int:
    """How deeply And/Or/Not nest: 0 for a condition, 1 for an And of conditions."""
    t = type(node)
    if t is Cond:
        return 0
    if t is And or t is Or:
        for k in node.items:  # type: ignore[attr-defined]
            if type(k) in _COMPOUND:
                break
        else:
            return 1
    best = 0
    stack = [(node, 0)]
    while stack:
        n, d = stack.pop()
        t = type(n)
        if t is And or t is Or:
            d += 1
            stack.extend((k, d) for k in n.items)  # type: ignore[attr-defined]
        elif t is Not:
            d += 1
            stack.append((n.item, d))  # type: ignore[attr-defined]
        if d > best:
            best = d
    return best


def weight(node: Node) -> int:
    """A size measure: one per condition, plus one per value of an ``in``/``not_in``."""
    n = 0
    for c in conds(node):
        n += len(c.value) + 1 if c.op in LIST_OPERATORS else 1
    return n

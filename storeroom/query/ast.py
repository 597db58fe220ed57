"""The filter AST: conditions combined with And, Or and Not. Nodes are immutable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

OPERATORS: frozenset[str] = frozenset({
    "eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "contains", "icontains",
    "startswith", "istartswith", "endswith", "iendswith", "iexact", "isnull", "range",
})
TEXT_OPERATORS: frozenset[str] = frozenset({
    "contains", "icontains", "startswith", "istartswith", "endswith", "iendswith", "iexact",
})
ORDER_OPERATORS: frozenset[str] = frozenset({"lt", "lte", "gt", "gte", "range"})


class Node:
    """Base of filter nodes."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Cond(Node):
    """``attr op value``: one condition on one attribute."""

    attr: str
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class And(Node):
    """All of ``items``; ``And(())`` matches everything."""

    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or(Node):
    """Any of ``items``; ``Or(())`` matches nothing."""

    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not(Node):
    """The negation of ``item`` (two-valued: a ``None`` attribute is simply "not equal")."""

    item: Node


EVERYTHING = And(())
NOTHING = Or(())


def conds(node: Node) -> list[Cond]:
    """Every condition in a tree, depth first."""
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

"""The user-facing spellings of filters: django-style lookups, ``Q`` objects and ``attr(...)``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .ast import EVERYTHING, NOTHING, OPERATORS, And, Cond, Node, Not, Or, junction_items


def parse_lookup(key: str, value: Any) -> Cond:
    """``"title__icontains"`` -> ``Cond("title", "icontains", value)``; no suffix means eq.

    Unknown operators are kept as written; validation against the model rejects them.
    """
    name, sep, op = key.rpartition("__")
    if not sep:
        return Cond(key, "eq", value)
    if op not in OPERATORS and "__" not in name:
        # "a__b" where b is not an operator: keep whole so the error names the operator
        return Cond(name, op, value)
    return Cond(name, op, value)


def lookups_node(lookups: dict[str, Any]) -> Node:
    """And of the conditions in a dict of keyword lookups."""
    if not lookups:
        return EVERYTHING
    return And(tuple(parse_lookup(k, v) for k, v in lookups.items()))


class Q:
    """A filter you can combine: ``Q(done=False) & (Q(a=1) | ~Q(b=2))``.

    ``Q()`` matches everything and ``~Q()`` nothing.
    """

    __slots__ = ("node",)

    def __init__(self, *nodes: Q | Node, **lookups: Any) -> None:
        parts: list[Node] = [to_node(n) for n in nodes]
        if lookups:
            parts.extend(parse_lookup(k, v) for k, v in lookups.items())
        self.node: Node = parts[0] if len(parts) == 1 else And(tuple(parts))

    @classmethod
    def of(cls, node: Node) -> Q:
        """Wrap an AST node."""
        q = cls.__new__(cls)
        q.node = node
        return q

    # n-ary at construction: ``a | b | c`` is one Or of three, so that a long chain
    # (``functools.reduce(operator.or_, ...)``) stays flat instead of a deep binary tree
    def __and__(self, other: Q | Node) -> Q:
        return Q.of(And(junction_items(And, (self.node, to_node(other)))))

    def __or__(self, other: Q | Node) -> Q:
        return Q.of(Or(junction_items(Or, (self.node, to_node(other)))))

    def __invert__(self) -> Q:
        return Q.of(Not(self.node))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Q) and other.node == self.node

    def __hash__(self) -> int:
        return hash(self.node)

    def __repr__(self) -> str:
        return f"Q({self.node!r})"


def to_node(where: Any) -> Node:
    """Any filter spelling (None, Q, Node, dict of lookups) as an AST node."""
    if where is None:
        return EVERYTHING
    if isinstance(where, Q):
        return where.node
    if isinstance(where, Node):
        return where
    if isinstance(where, dict):
        return lookups_node(where)
    if where is True:
        return EVERYTHING
    if where is False:
        return NOTHING
    raise TypeError(f"not a filter: {where!r} (use Q(...), attr(...) or keyword lookups)")


class attr:  # noqa: N801 - reads as a function: attr("title").startswith("Mi")
    """An attribute in an expression: ``attr("priority") > 2``, ``attr("x").in_([1, 2])``."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def _c(self, op: str, value: Any) -> Q:
        return Q.of(Cond(self.name, op, value))

    def __eq__(self, value: object) -> Q:  # type: ignore[override]
        return self._c("eq", value)

    def __ne__(self, value: object) -> Q:  # type: ignore[override]
        return self._c("ne", value)

    def __lt__(self, value: Any) -> Q:
        return self._c("lt", value)

    def __le__(self, value: Any) -> Q:
        return self._c("lte", value)

    def __gt__(self, value: Any) -> Q:
        return self._c("gt", value)

    def __ge__(self, value: Any) -> Q:
        return self._c("gte", value)

    __hash__ = None  # type: ignore[assignment]

    def eq(self, value: Any) -> Q:
        """Equal to ``value``."""
        return self._c("eq", value)

    def ne(self, value: Any) -> Q:
        """Not equal to ``value`` (matches None)."""
        return self._c("ne", value)

    def in_(self, values: Iterable[Any]) -> Q:
        """One of ``values``."""
        return self._c("in", values)

    def not_in(self, values: Iterable[Any]) -> Q:
        """None of ``values`` (matches None)."""
        return self._c("not_in", values)

    def contains(self, text: str) -> Q:
        """Contains ``text`` (case-sensitive)."""
        return self._c("contains", text)

    def icontains(self, text: str) -> Q:
        """Contains ``text``, ignoring case."""
        return self._c("icontains", text)

    def startswith(self, text: str) -> Q:
        """Starts with ``text`` (case-sensitive)."""
        return self._c("startswith", text)

    def istartswith(self, text: str) -> Q:
        """Starts with ``text``, ignoring case."""
        return self._c("istartswith", text)

    def endswith(self, text: str) -> Q:
        """Ends with ``text`` (case-sensitive)."""
        return self._c("endswith", text)

    def iendswith(self, text: str) -> Q:
        """Ends with ``text``, ignoring case."""
        return self._c("iendswith", text)

    def iexact(self, text: str) -> Q:
        """Equal to ``text``, ignoring case."""
        return self._c("iexact", text)

    def isnull(self, value: bool = True) -> Q:
        """Is None (or, with False, is not None)."""
        return self._c("isnull", value)

    def range(self, low: Any, high: Any) -> Q:
        """Between ``low`` and ``high``, both included."""
        return self._c("range", (low, high))


__all__ = ["Q", "attr", "to_node", "lookups_node", "parse_lookup", "Not", "NOTHING", "EVERYTHING"]

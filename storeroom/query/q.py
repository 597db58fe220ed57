"""The user-facing spellings of filters: django-style lookups, ``Q`` objects and ``attr(...)``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import InvalidFilter
from .ast import EVERYTHING, NOTHING, OPERATORS, And, Cond, Node, Not, Or


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
    for k in lookups:
        if not isinstance(k, str):
            raise InvalidFilter(f"a lookup is a str like 'title__icontains', got {k!r}")
    return And(tuple(parse_lookup(k, v) for k, v in lookups.items()))


class Q:
    """A filter you can combine: ``Q(done=False) & (Q(a=1) | ~Q(b=2))``.

    Keyword lookups are ``attribute__operator=value`` (``eq`` when the operator is left
    out), ANDed: ``eq``, ``ne``, ``lt``, ``lte``, ``gt``, ``gte``, ``in``, ``not_in``,
    ``contains``, ``icontains``, ``startswith``, ``istartswith``, ``endswith``,
    ``iendswith``, ``iexact``, ``isnull``, ``range``. Semantics are Python's on every
    backend; ``ne``, ``not_in`` and ``~`` match an attribute that is ``None``.

    ``Q()`` matches everything and ``~Q()`` nothing. ``|`` and ``&`` build n-ary nodes:
    ``a | b | c`` is one Or of three, and a chain of any length (``functools.reduce(
    operator.or_, qs)``) takes linear time and stays flat.
    """

    # Either ``_node``, or a pending chain: this Q is ``_prev``'s items and ``_add``,
    # joined by ``_kind`` (And / Or). Joining is O(1); the node is made once, when first
    # asked for, by walking the chain back (nothing is shared or mutated but the cache).
    __slots__ = ("_node", "_kind", "_prev", "_add")

    def __init__(self, *nodes: Q | Node, **lookups: Any) -> None:
        parts: list[Node] = [to_node(n) for n in nodes]
        if lookups:
            parts.extend(parse_lookup(k, v) for k, v in lookups.items())
        self._node: Node | None = parts[0] if len(parts) == 1 else And(tuple(parts))
        self._kind: type | None = None
        self._prev: Q | None = None
        self._add: tuple[Node, ...] = ()

    @classmethod
    def of(cls, node: Node) -> Q:
        """Wrap an AST node."""
        q = cls.__new__(cls)
        q._node, q._kind, q._prev, q._add = node, None, None, ()
        return q

    @property
    def node(self) -> Node:
        """The filter's AST node."""
        n = self._node
        if n is None:
            kind: Any = self._kind
            chunks: list[tuple[Node, ...]] = []
            q: Q | None = self
            while q is not None and q._node is None:  # same-kind links (see _joined)
                chunks.append(q._add)
                q = q._prev
            if q is not None:
                base: Any = q._node
                chunks.append(base.items if type(base) is kind else (base,))
            items: list[Node] = []
            for c in reversed(chunks):
                items.extend(c)
            n = self._node = kind(tuple(items))
            self._prev, self._add = None, ()  # the chain is no longer needed here
        return n

    def _joined(self, kind: type, other: Q | Node) -> Q:
        o = to_node(other)
        q = Q.__new__(Q)
        q._node, q._kind = None, kind
        # a pending chain only ever links Qs of one kind: any other is made a node first
        q._prev = self if self._node is None and self._kind is kind else Q.of(self.node)
        q._add = o.items if type(o) is kind else (o,)  # type: ignore[attr-defined]
        return q

    def __and__(self, other: Q | Node) -> Q:
        return self._joined(And, other)

    def __or__(self, other: Q | Node) -> Q:
        return self._joined(Or, other)

    def __invert__(self) -> Q:
        return Q.of(Not(self.node))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Q) and other.node == self.node

    def __hash__(self) -> int:
        return hash(self.node)

    def __repr__(self) -> str:
        return f"Q({self.node!r})"

    def __reduce__(self) -> tuple[Any, ...]:  # pickle / copy the node, not a chain
        return (Q.of, (self.node,))


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
    raise InvalidFilter(f"not a filter: {where!r:.80} (use Q(...), attr(...) or keyword "
                        "lookups)")


class attr:  # noqa: N801 - reads as a function: attr("title").startswith("Mi")
    """An attribute in an expression: ``attr("priority") > 2``, ``attr("x").in_([1, 2])``;
    a nested one dotted or by key: ``attr("address.city")``, ``attr("address")["city"]``."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __getitem__(self, key: str) -> attr:
        """A field of a nested dataclass or a key of a dict: ``attr("address")["city"]``
        is ``attr("address.city")``."""
        if not isinstance(key, str) or not key or "." in key:
            raise InvalidFilter(f"attr({self.name!r})[{key!r}]: a key is a non-empty str "
                                "without '.'")
        return attr(f"{self.name}.{key}")

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

    def contains(self, text: Any) -> Q:
        """Contains ``text`` (case-sensitive); on a list attribute, has the element."""
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

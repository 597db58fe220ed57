"""What a query set is, without I/O: its immutable state and the pure steps over it.

A query set is a value: the model, the context, and a :class:`QueryState` holding the
filter (ANDed nodes: each ``filter`` call, each ``exclude`` call negated), the order,
the slice, the values mode and the engine name. Every chained call makes a new state;
the ``_async`` / ``_sync`` query sets run it against ``ctx.store(Model)``.

The state is a plain frozen record so that later layers (``select_related``,
``prefetch_related``) can add fields to it without touching how filters, slices and
shapes work.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from ..errors import InvalidFilter
from ..query.ast import And, Cond, Node, Not, Or
from ..query.q import Q, lookups_node, parse_lookup, to_node

# values modes
ITEMS, DICTS, TUPLES, FLAT = 0, 1, 2, 3


class QueryState(NamedTuple):
    """The immutable state of one query set (a named tuple: copying one is cheap, which
    keeps chaining within a few microseconds)."""

    # ANDed: filter nodes, or the keyword lookups of a ``filter(**lookups)`` call kept as
    # their dict (parsed once, by the store, when that is the whole filter)
    where: tuple[Node | dict[str, Any], ...] = ()
    order: tuple[str, ...] = ()
    start: int = 0
    stop: int | None = None
    mode: int = ITEMS
    fields: tuple[str, ...] = ()
    distinct: bool = False
    engine: str | None = None
    empty: bool = False
    # relation paths loaded with the items (``select_related`` / ``prefetch_related``)
    select: tuple[str, ...] = ()
    prefetch: tuple[str, ...] = ()

    @property
    def sliced(self) -> bool:
        """Whether a slice was taken (``qs[a:b]``)."""
        return self.start != 0 or self.stop is not None

    def node(self) -> Node | None:
        """The filter as one node (None: everything)."""
        w = self.where
        if not w:
            return None
        nodes: tuple[Node, ...] = tuple(filter_node((), x) if isinstance(x, dict) else x
                                        for x in w)
        return nodes[0] if len(nodes) == 1 else And(nodes)

    def loading(self) -> dict[str, Any]:
        """The relation-loading options of ``store.search`` for this set (often none)."""
        out: dict[str, Any] = {}
        if self.select:
            out["select_related"] = self.select
        if self.prefetch:
            out["prefetch_related"] = self.prefetch
        return out

    def lookups(self) -> dict[str, Any] | None:
        """The keyword lookups that are the whole filter (``store.search(**lookups)``
        takes them as they are), or None."""
        w = self.where
        if len(w) == 1 and type(w[0]) is dict and SEARCH_KEYWORDS.isdisjoint(w[0]):
            return w[0]
        return None


# search's own keyword parameters: lookups of attributes with these names go as a node
SEARCH_KEYWORDS = frozenset({"where", "order_by", "limit", "after", "query", "refresh",
                             "select_related", "prefetch_related"})


_INDEX = {n: i for i, n in enumerate(QueryState._fields)}
_new = tuple.__new__


def replace(state: QueryState, **changes: Any) -> QueryState:
    """``state`` with ``changes`` (faster than ``NamedTuple._replace``)."""
    values = list(state)
    for k, v in changes.items():
        values[_INDEX[k]] = v
    return _new(QueryState, values)  # type: ignore[type-var]


def with_where(state: QueryState, node: Node | dict[str, Any]) -> QueryState:
    """``state`` with one more ANDed filter node."""
    return _new(QueryState, (state[0] + (node,), *state[1:]))  # type: ignore[type-var]


def filter_node(args: tuple[Any, ...], lookups: Mapping[str, Any]) -> Node:
    """The node of one ``filter(*args, **lookups)`` call: every argument ANDed.

    An argument is a ``Q``, an AST node, a dict of lookups, or a list of dicts (the OR
    of its dicts, as atom-db's ``filter([{...}, {...}])``).
    """
    if not args:  # the common case: keyword lookups only (a plain name is eq)
        conds = [Cond(k, "eq", v) if "__" not in k else parse_lookup(k, v)
                 for k, v in lookups.items()]
        if len(conds) == 1:
            return conds[0]
        return And(tuple(conds))
    parts: list[Node] = []
    for a in args:
        if isinstance(a, list | tuple):
            if not a:
                raise InvalidFilter("filter([]) has no alternative: give at least one dict")
            parts.append(Or(tuple(_one(x) for x in a)))
        else:
            parts.append(_one(a))
    for k, v in lookups.items():
        # a plain name is eq (parse_lookup's answer, without its parsing)
        parts.append(Cond(k, "eq", v) if "__" not in k else parse_lookup(k, v))
    if len(parts) == 1:
        return parts[0]
    return And(tuple(parts))


def _one(a: Any) -> Node:
    if isinstance(a, dict):
        return lookups_node(a)
    if isinstance(a, Q | Node):
        return to_node(a)
    raise InvalidFilter(f"not a filter: {a!r:.80} (use keyword lookups, Q(...), a dict or a "
                        "list of dicts)")


def negate(node: Node) -> Node:
    """The node of an ``exclude`` call."""
    return Not(node)


def order_names(fields: tuple[Any, ...]) -> tuple[str, ...]:
    """``order_by`` arguments as attribute names (``"-x"`` descending)."""
    for f in fields:
        if not isinstance(f, str) or not f.strip("-"):
            raise InvalidFilter(f"order_by takes attribute names like 'title' or '-title', "
                                f"got {f!r}")
    return tuple(fields)


def reversed_order(order: tuple[str, ...], key_attrs: tuple[str, ...]) -> tuple[str, ...]:
    """The opposite order (``last`` is the first item of it); by key when unordered."""
    names = order or key_attrs
    return tuple(n[1:] if n.startswith("-") else "-" + n for n in names)


def sliced(state: QueryState, index: slice) -> QueryState:
    """The state of ``qs[a:b]`` (a slice of a slice narrows it, as in Django)."""
    a, b = index.start, index.stop
    if a is None and index.step is None and type(b) is int and b >= 0 and not state.sliced:
        return _new(QueryState, (*state[:2], 0, b, *state[4:]))  # type: ignore[type-var]
    if index.step is not None and index.step != 1:
        raise ValueError("query sets do not support a slice step")
    a, b = index.start, index.stop
    for v in (a, b):
        if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
            raise TypeError(f"query set indices are ints, got {v!r}")
        if v is not None and v < 0:
            raise ValueError("negative indexing is not supported")
    start = state.start + (a or 0)
    stop = state.stop
    if b is not None:
        stop = state.start + b if stop is None else min(stop, state.start + b)
    if stop is not None and stop < start:
        stop = start
    return _new(QueryState, (*state[:2], start, stop, *state[4:]))  # type: ignore[type-var]


def index_of(state: QueryState, index: int) -> tuple[int, int]:
    """``(start, stop)`` of item ``qs[index]``; ``IndexError`` past a slice's end."""
    if isinstance(index, bool) or not isinstance(index, int):
        raise TypeError(f"query set indices are ints or slices, got {index!r}")
    if index < 0:
        raise ValueError("negative indexing is not supported")
    at = state.start + index
    if state.stop is not None and at >= state.stop:
        raise IndexError("query set index out of range")
    return at, at + 1


def check_fields(meta: Any, fields: Iterable[Any]) -> tuple[str, ...]:
    """Attribute names for ``values`` / ``values_list`` (every readable stored one when
    none are named); ``InvalidFilter`` naming an unknown or unreadable one."""
    names = tuple(fields)
    if not names:
        return tuple(a.name for a in meta.attrs.values() if a.store and a.readable)
    for n in names:
        a = meta.attrs.get(n) if isinstance(n, str) else None
        if a is None or not a.readable:
            raise InvalidFilter(f"{meta.name} has no readable attribute {n!r}")
    return names


def shape(state: QueryState, items: list[Any]) -> list[Any]:
    """Items as the mode asks: the items, dicts, tuples or single values (deduplicated,
    first seen kept, with ``distinct``)."""
    mode = state.mode
    if mode == ITEMS:
        return items
    fields = state.fields
    rows: list[Any]
    if mode == DICTS:
        rows = [{f: getattr(i, f) for f in fields} for i in items]
    elif mode == TUPLES:
        rows = [tuple(getattr(i, f) for f in fields) for i in items]
    else:
        f = fields[0]
        rows = [getattr(i, f) for i in items]
    if state.distinct:
        seen: set[Any] = set()
        out = []
        for r in rows:
            k = _hashable(r)
            if k not in seen:
                seen.add(k)
                out.append(r)
        rows = out
    return rows


def _hashable(v: Any) -> Any:
    if isinstance(v, dict):
        return ("d", tuple((k, _hashable(x)) for k, x in v.items()))
    if isinstance(v, list | tuple):
        return ("t", tuple(_hashable(x) for x in v))
    try:
        hash(v)
    except TypeError:
        return ("r", repr(v))
    return v


def create_values(lookups: Mapping[str, Any], defaults: Mapping[str, Any] | None
                  ) -> dict[str, Any]:
    """The attributes of the item ``get_or_create`` makes: the plain (``eq``) lookups
    and the defaults (lookups with an operator are not values, as in Django)."""
    values = {}
    for k, v in lookups.items():
        name, sep, op = k.rpartition("__")
        if not sep:
            values[k] = v
        elif op == "eq" and "__" not in name:
            values[name] = v
    if defaults:
        values.update(defaults)
    return values


__all__ = ["QueryState", "with_where", "filter_node", "negate", "order_names", "reversed_order", "sliced",
           "index_of", "check_fields", "shape", "create_values", "replace", "ITEMS", "DICTS",
           "TUPLES", "FLAT"]

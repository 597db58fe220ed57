"""Ordering across forward relations (``order_by="category__name"``, any depth of Refs)
compiled to SQL (sans-I/O): the referenced tables are LEFT OUTER JOINed (``joins.py``'s
joins, one alias per path), the ORDER BY and the keyset condition of a cursor position
read their columns.

The meaning is the store's local rule (``AsyncStore._fetch_by_relation``): a value
across a None or dangling reference is None, and None sorts last in both directions;
the key attributes (always in the order) break ties. The keyset condition is the
expanded comparison of ``query.cursor.after_filter`` written over column expressions
(each cursor value bound once, however often the condition reads it).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ...model.stored import meta_of
from ...query.order import Order

# one entry of an order: (column expression, attribute, can be None, encoder or None)
Term = tuple[Any, Any, bool, Any]


def rel_names(core: Any, order: Order) -> bool:
    """True when ``order`` names an attribute across relations (not one of the model's)."""
    attrs = core.meta.attrs
    return any(n not in attrs for n, _ in order)


def join_paths(joins: tuple[Any, ...]) -> dict[tuple[str, ...], int]:
    """The Ref path of each join (``("category", "parent")``) → its position (the
    object at ``position + 1`` of a row, the table aliased ``j<position>``)."""
    paths: list[tuple[str, ...]] = []
    out: dict[tuple[str, ...], int] = {}
    for i, (parent, ref, _) in enumerate(joins):
        path = (paths[parent - 1] if parent else ()) + (ref.name,)
        paths.append(path)
        out[path] = i
    return out


def order_joins(core: Any, order: Order, target_core: Any) -> tuple[Any, ...] | None:
    """The joins an order across relations needs (``joins.Join`` tuples, a path shared by
    two entries joined once), or None when one is not native here: a table not on this
    database or not ready (``target_core(model)``: the SQL core of a related model's
    store, or None), or an attribute the database does not compare."""
    can = core.dialect.can_compare
    joins: list[Any] = []
    at: dict[tuple[str, ...], int] = {}
    for name, _ in order:
        if name in core.meta.attrs:
            if not can(core.meta.attrs[name].kind):
                return None
            continue
        *steps, last = name.split("__")
        m = core.meta
        parent = 0
        for i, step in enumerate(steps):
            ref = m.refs[step]
            path = tuple(steps[:i + 1])
            if path not in at:
                tcore = target_core(ref.target)
                if (tcore is None or not tcore.ready
                        or tcore.dialect_name != core.dialect_name
                        or str(tcore.engine.url) != str(core.engine.url)):
                    return None
                at[path] = len(joins)
                joins.append((parent, ref, tcore))
            parent = at[path] + 1
            m = meta_of(ref.target)
        if not can(m.attrs[last].kind):
            return None
    return tuple(joins)


def terms(core: Any, order: Order, joins: tuple[Any, ...], tables: list[Any]) -> list[Term]:
    """The column, attribute, nullability and encoder of each entry of ``order``
    (``tables``: the searched table, then each join's alias)."""
    paths = join_paths(joins)
    out: list[Term] = []
    for name, _ in order:
        a = core.meta.attrs.get(name)
        if a is not None:
            out.append((tables[0].c[name], a, a.optional, core.enc.get(name)))
            continue
        *steps, last = name.split("__")
        i = paths[tuple(steps)]
        tcore = joins[i][2]
        # None through a None or dangling reference, whatever the attribute
        out.append((tables[i + 1].c[last], tcore.meta.attrs[last], True, tcore.enc.get(last)))
    return out


def order_clauses(core: Any, order: Order, ts: list[Term]) -> list[Any]:
    """ORDER BY clauses with None last in both directions (``FilterCompiler.order_clauses``
    over the joined columns)."""
    key_of = core.dialect.order_key
    out: list[Any] = []
    for (_, desc), (col, a, nullable, _) in zip(order, ts, strict=True):
        if nullable:
            out.append(col.is_(None))
        key = key_of(col, a) if key_of else col
        out.append(key.desc() if desc else key.asc())
    return out


def keyset_values(order: Order, after: tuple[Any, ...], ts: list[Term]) -> list[Any]:
    """The bound values of ``keyset``: each non-None cursor value, encoded, in order."""
    return [v if enc is None else enc(v)
            for v, (_, _, _, enc) in zip(after, ts, strict=True) if v is not None]


def keyset_shape(after: tuple[Any, ...]) -> tuple[bool, ...]:
    """What of ``keyset``'s SQL depends on the cursor position: which values are None."""
    return tuple(v is None for v in after)


def keyset(order: Order, after: tuple[Any, ...], ts: list[Term], b: Any) -> Any:
    """The condition "comes after the item with order values ``after``" (None last in
    both directions, as ``after_filter``), binding ``keyset_values`` through ``b``."""
    params = [None if v is None else b.bind(None) for v in after]
    alts: list[Any] = []
    prefix: list[Any] = []
    for (_, desc), (col, _, nullable, _), p in zip(order, ts, params, strict=True):
        if p is not None:
            beyond = col < p if desc else col > p
            if nullable:  # after a value the None group still follows
                beyond = sa.or_(beyond, col.is_(None))
            alts.append(sa.and_(*prefix, beyond) if prefix else beyond)
        prefix.append(col.is_(None) if p is None else col == p)
    return sa.or_(*alts) if alts else sa.false()


__all__ = ["join_paths", "keyset", "keyset_shape", "keyset_values", "order_clauses",
           "order_joins", "rel_names", "terms"]

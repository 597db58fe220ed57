"""``select_related`` as one SELECT with a LEFT OUTER JOIN per Ref (sans-I/O): the SQL,
and the items built from its rows with their related objects attached.

A join is ``(parent, ref, core)``: the Ref ``ref`` of the item at position ``parent``
of a row's objects (0: the searched model; ``i + 1``: the target of join ``i``, for
``a__b``), whose target's table is ``core.table``, joined under the alias ``j<i>``.
The store front asks the backend for it (``find_joined``) when every target lives on
the same database; elsewhere ``select_related`` is one batched read per Ref.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ...model.relations import Dangling, RefInfo
from ...query.ast import Node
from ...query.order import Order
from .compiler import Binder
from .relorder import keyset, keyset_shape, keyset_values, order_clauses, rel_names, terms

Join = tuple[int, RefInfo, Any]


def joined_sql(core: Any, node: Node, order: Order, limit: bool,
               after: tuple[Any, ...] | None, joins: tuple[Join, ...]) -> tuple[Any, list[Any]]:
    """The compiled SELECT of ``core``'s rows matching ``node`` in ``order`` (after the
    cursor position ``after``, at most ``:lim`` rows when ``limit``), each with the
    columns of every join's target (NULLs when the Ref is None or dangles), and its
    values. An order across relations (``category__name``) reads the joined columns
    (``relorder.py``: ``joins`` then holds a join per Ref of its paths)."""
    fc = core.fc
    shp, values = fc.shape_values(node)
    across = rel_names(core, order)  # an order across relations reads the joined columns
    if across:
        kshape = None if after is None else keyset_shape(after)
        form = None
        if after is not None:
            values.extend(keyset_values(order, after, terms(
                core, order, joins, [core.table, *(c.table for _, _, c in joins)])))
    elif after is not None and order:
        form, kshape, kvalues = fc.keyset_shape(order, after)
        values.extend(kvalues)
    else:
        form = kshape = None
    key = ("joined", shp, order, limit, kshape,
           tuple((p, r.model, r.name, c.table.name) for p, r, c in joins))

    def make() -> Any:
        b = Binder()
        pred = fc.compile(node, b)
        if form is not None:
            pred = sa.and_(pred, fc.keyset(order, form, b))
        tables: list[Any] = [core.table]
        src: Any = core.table
        cols = list(core.cols)
        for i, (parent, ref, tcore) in enumerate(joins):
            alias = tcore.table.alias(f"j{i}")
            ptable = tables[parent]
            on = sa.and_(*[ptable.c[c] == alias.c[k]
                           for c, k in zip(ref.columns, ref.target_key, strict=True)])
            src = src.outerjoin(alias, on)
            tables.append(alias)
            cols.extend(alias.c[n] for n in tcore.names)
        if across:  # (the keyset condition bound after the filter's values, as listed)
            ts = terms(core, order, joins, tables)
            if after is not None:
                pred = sa.and_(pred, keyset(order, after, ts, b))
        stmt = sa.select(*cols).select_from(src).where(pred).set_label_style(
            sa.LABEL_STYLE_TABLENAME_PLUS_COL)
        if across:
            stmt = stmt.order_by(*order_clauses(core, order, ts))
        elif order:
            stmt = stmt.order_by(*fc.order_clauses(order))
        if limit:
            stmt = stmt.limit(sa.bindparam("lim", literal_execute=False))
        return stmt
    sql = core.cached(key, make)
    if core.expanding and "__[POSTCOMPILE_" in sql[0]:
        expanded: tuple[Any, list[Any]] = core._expand(sql, values)
        return expanded
    return sql, values


def build_joined(core: Any, joins: tuple[Join, ...], rows: list[Any]) -> list[Any]:
    """The items of ``rows`` (of ``joined_sql``), each Ref of ``joins`` attached: the
    target object (one per key within the result), None, or ``Dangling``."""
    n = len(core.names)
    plan: list[tuple[Any, ...]] = []
    at = n
    for parent, ref, tcore in joins:
        width = len(tcore.names)
        kpos = tuple(at + tcore.names.index(k) for k in ref.target_key)
        plan.append((parent, ref.name, ref.columns, at, at + width, kpos, tcore.build, {}))
        at += width
    build = core.build  # reads the first ``n`` values of a row: the whole row will do
    out = []
    if len(plan) == 1 and len(plan[0][2]) == 1:  # the common case: one single-column Ref
        _, name, (col,), start, end, (kp,), tbuild, seen = plan[0]
        out = [build(row) for row in rows]
        # a Ref mostly names an object met in an earlier row: look it up first
        for main, row in zip(out, rows, strict=True):
            d = main.__dict__
            v = d.get(col)
            if v is None:
                d[name] = None
                continue
            obj = seen.get(v)
            if obj is None:
                if row[kp] is None:
                    d[name] = Dangling((v,))
                    continue
                obj = seen[v] = tbuild(row[start:end])
            d[name] = obj
        return out
    for row in rows:
        main = build(row)
        objs = [main]
        for parent, name, columns, start, end, kpos, tbuild, seen in plan:
            owner = objs[parent]
            obj = None
            if owner is not None:
                d = owner.__dict__
                parts = tuple(d.get(c) for c in columns)
                if None in parts:
                    d[name] = None
                elif row[kpos[0]] is None:
                    d[name] = Dangling(parts)
                else:
                    obj = seen.get(parts)
                    if obj is None:
                        obj = seen[parts] = tbuild(row[start:end])
                    d[name] = obj
            objs.append(obj)
        out.append(main)
    return out


__all__ = ["Join", "build_joined", "joined_sql"]

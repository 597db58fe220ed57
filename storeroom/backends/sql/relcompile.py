"""Lookups across relations (``query/relations.py``'s ``Rel``) compiled to SQL: correlated
``EXISTS`` subqueries, so the outer statement keeps one row per item (cursors, paging,
ORDER BY, UPDATE and DELETE work unchanged).

* a forward ``Ref`` whose filter is false on a row of NULLs:
  ``EXISTS (SELECT 1 FROM target r WHERE r.key = outer.ref_id AND <filter on r>)``;
  true on a row of NULLs (``ne``, ``isnull``): ``NOT EXISTS (... AND NOT <filter>)``,
  which a NULL or dangling reference meets, as a LEFT JOIN would;
* a reverse ``Many``: ``EXISTS (SELECT 1 FROM related r WHERE r.ref_id = outer.key AND
  <filter on r>)``;
* many-to-many: ``EXISTS`` over the through table, around the forward ``EXISTS`` of its
  Ref to the target.

Every predicate stays two-valued (the filter compiler's rule), so ``NOT`` around a
relation lookup is exact. The related tables are those of the related stores' SQL cores
(same database: the store front checks it, see ``AsyncSqlBackend.compiles_rel``); each
subquery level has its own alias (``rel1``, ``rel2``...), so a model related to itself
compiles too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ...model.stored import meta_of
from ...query.ast import EVERYTHING, Node, conds
from ...query.relations import REF, Rel, null_value, rels

if TYPE_CHECKING:
    from .compiler import Binder, FilterCompiler


def rel_models(rel: Rel) -> list[type]:
    """Every model whose table a relation lookup reads (nested lookups included)."""
    out: list[type] = []
    todo = [rel]
    while todo:
        r = todo.pop()
        if r.kind != REF and r.info.through is not None:
            out.append(r.info.through)
        out.append(r.target)
        todo.extend(rels(r.node))
    return out


def rel_native(fc: FilterCompiler, rel: Rel) -> bool:
    """True when ``rel``'s filter compiles natively on the related compilers of ``fc``
    (``fc.related``: one per related model, set by the backend)."""
    inner = fc.related_compiler(rel.target, 1)
    if inner is None:
        return False
    if rel.kind != REF and rel.info.through is not None and (
            fc.related_compiler(rel.info.through, 1) is None):
        return False
    return inner.can_compile(rel.node) and all(rel_native(inner, r) for r in rels(rel.node))


def all_conds(node: Node) -> list[Any]:
    """The conditions of a filter, those inside relation lookups too (for size limits)."""
    out = list(conds(node))
    for r in rels(node):
        out.extend(all_conds(r.node))
    return out


def _eq(left: Any, lcols: tuple[str, ...], right: Any, rcols: tuple[str, ...]) -> Any:
    return sa.and_(*[left.c[a] == right.c[b] for a, b in zip(lcols, rcols, strict=True)])


def rel_sql(fc: FilterCompiler, rel: Rel, b: Binder) -> Any:
    """The SQL of one relation lookup, correlated to ``fc``'s table."""
    inner = fc.related_compiler(rel.target, fc.level + 1)
    assert inner is not None
    outer = fc.table
    if rel.kind == REF:
        ref = rel.info
        on = _eq(inner.table, ref.target_key, outer, ref.columns)
        cond = inner.compile(rel.node, b)
        if null_value(rel):  # true on a row of NULLs: NOT EXISTS a target that fails it
            return sa.not_(sa.exists().where(on, sa.not_(cond)))
        return sa.exists().where(on, cond)
    many = rel.info
    src, dst = many.route()
    if dst is None:  # reverse: src is the Ref on the target pointing back
        on = _eq(inner.table, src.columns, outer, meta_of(many.model).key.attrs)
        if rel.node == EVERYTHING:
            return sa.exists().where(on)
        return sa.exists().where(on, inner.compile(rel.node, b))
    through = fc.related_compiler(many.through, fc.level + 1)
    assert through is not None
    # the target's alias one level deeper than the through table's
    target = through.related_compiler(rel.target, fc.level + 2)
    assert target is not None
    on_src = _eq(through.table, src.columns, outer, meta_of(many.model).key.attrs)
    on_dst = _eq(target.table, dst.target_key, through.table, dst.columns)
    if rel.node == EVERYTHING:
        pred: Any = sa.exists().where(on_dst)
    else:
        pred = sa.exists().where(on_dst, target.compile(rel.node, b))
    return sa.exists().where(on_src, pred)


def rel_shape(fc: FilterCompiler, rel: Rel, out: list[Any]) -> Any:
    """The shape of a relation lookup (part of the compiled statement's cache key); its
    bound values are appended to ``out`` in the order ``rel_sql`` binds them."""
    if rel.kind != REF and rel.info.through is not None:
        through = fc.related_compiler(rel.info.through, fc.level + 1)
        assert through is not None
        inner = through.related_compiler(rel.target, fc.level + 2)
    else:
        inner = fc.related_compiler(rel.target, fc.level + 1)
    assert inner is not None
    shape, values = inner.shape_values(rel.node)
    out.extend(values)
    return ("rel", rel.kind, rel.name, rel.kind == REF and null_value(rel), shape)


__all__ = ["rel_models", "rel_native", "rel_sql", "rel_shape", "all_conds"]

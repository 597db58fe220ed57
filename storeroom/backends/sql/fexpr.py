"""``F`` expressions as SQL: ``SET a = a - :v`` guarded by the attribute's bounds."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ...store.fexpr import Expr, F, refs


def set_order(values: dict[str, Any]) -> list[str] | None:
    """The names of an update's changes in an order where each ``F`` is read before
    its attribute is assigned (MySQL assigns SET left to right); None when the
    expressions refer to each other in a cycle (``a=F("b"), b=F("a")``)."""
    after: dict[str, set[str]] = {}  # name -> names that must be assigned before it
    for n, v in values.items():
        after.setdefault(n, set())
        if isinstance(v, F):
            for r in refs(v):
                if r != n and r in values:
                    after.setdefault(r, set()).add(n)  # r is assigned after n reads it
    out: list[str] = []
    ready = [n for n in values if not after[n]]
    pending = {n: set(s) for n, s in after.items()}
    while ready:
        n = ready.pop()
        out.append(n)
        for m, s in pending.items():
            if n in s:
                s.discard(n)
                if not s and m not in out and m not in ready:
                    ready.append(m)
    return out if len(out) == len(values) else None


def _sql(table: sa.Table, e: Any, binds: list[Any]) -> Any:
    if type(e) is Expr:
        left, right = _sql(table, e.left, binds), _sql(table, e.right, binds)
        return left + right if e.op == "+" else left - right if e.op == "-" else left * right
    if type(e) is F:
        return table.c[e.name]
    binds.append(e)
    return sa.bindparam(f"p{len(binds) - 1}", type_=sa.Integer if type(e) is int
                        else sa.Float)


def expr_update(core: Any, key: tuple[Any, ...], values: dict[str, Any]
                ) -> tuple[Any, dict[str, Any]]:
    """The compiled UPDATE by key of changes holding ``F`` expressions (RETURNING the
    row where the dialect can), and its named parameters."""
    table = core.table
    order = set_order(values) or list(values)
    binds: list[Any] = []
    sets = []
    guards = []
    plain = {n: v for n, v in values.items() if not isinstance(v, F)}
    for n in order:
        v = values[n]
        if isinstance(v, F):
            e = _sql(table, v, binds)
            sets.append((table.c[n], e))
            a = core.meta.attrs[n]
            if a.ge is not None:
                binds.append(a.ge)
                guards.append(e >= sa.bindparam(f"p{len(binds) - 1}"))
            if a.le is not None:
                binds.append(a.le)
                guards.append(e <= sa.bindparam(f"p{len(binds) - 1}"))
        else:
            sets.append((table.c[n], sa.bindparam(f"s_{n}")))
    shape = ("fexpr", tuple(order), tuple(repr(_shape(values[n])) for n in order))

    def make() -> Any:
        stmt = table.update().where(sa.and_(core.key_where(), *guards)).ordered_values(*sets)
        return stmt.returning(*core.cols) if core.returning else stmt

    sql = core.cached(shape, make)
    named = {f"p{i}": v for i, v in enumerate(binds)}
    named.update(core.key_params(key))
    enc = core.encode(plain)
    for n in plain:
        named[f"s_{n}"] = enc[n]
    return sql, named


def _shape(e: Any) -> Any:
    """``e`` with its numbers replaced by their types: the statement's cache key."""
    if type(e) is Expr:
        return (e.op, _shape(e.left), _shape(e.right))
    if type(e) is F:
        return ("F", e.name)
    return type(e).__name__

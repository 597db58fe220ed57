"""Filters and orderings compiled to SQL, once per shape.

A filter's *shape* is its tree with the values taken out. Each shape compiles to SQL
text once (SQLAlchemy Core does the compiling, per dialect); later searches of the
same shape only bind new values. Every predicate is compiled two-valued (never NULL),
so ``NOT`` and ``ne`` match rows whose attribute is NULL, as local evaluation does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ...model.stored import ModelMeta
from ...model.types import DECIMAL, JSON
from ...query.ast import And, Cond, Node, Not, Or, conds
from ...query.order import Order
from .codec import Conv


def like_escape(text: str) -> str:
    """``text`` with LIKE wildcards escaped (escape character ``\\``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class Binder:
    """Collects bound values in compile order and names their parameters."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def bind(self, value: Any) -> sa.BindParameter[Any]:
        """A fresh bound parameter for ``value``."""
        name = f"p{len(self.values)}"
        self.values.append(value)
        return sa.bindparam(name, value=None)


@dataclass
class SqlDialect:
    """How one SQL dialect compiles what differs between dialects."""

    name: str
    # text operators: the values to bind for (op, text), and the SQL over those parameters
    text_params: Callable[[str, str], list[Any]]
    text_sql: Callable[[Any, list[Any], str], Any]
    # attribute kinds whose comparisons and ordering are not native
    local_kinds: frozenset[str] = frozenset()
    # value_ok(attr, cond): False when this condition's value cannot run natively (a
    # value the database cannot hold, a needle whose case folding would differ)
    value_ok: Callable[[Any, Cond], bool] | None = None
    # order_key(column, attr): the expression to ORDER BY instead of the column
    order_key: Callable[[Any, Any], Any] | None = None
    # True when a failed statement aborts the whole transaction (PostgreSQL), not just
    # itself: a write that may fail inside a caller's transaction must not raise there
    error_aborts_tx: bool = False

    def can_compare(self, kind: str) -> bool:
        """True when values of this kind compare natively (eq, lt, in, order by...)."""
        return kind not in self.local_kinds and kind != JSON


class FilterCompiler:
    """Compiles prepared filters of one model to SQLAlchemy expressions on one table."""

    def __init__(self, meta: ModelMeta, table: sa.Table, dialect: SqlDialect,
                 encoders: dict[str, Conv]) -> None:
        self.meta = meta
        self.table = table
        self.dialect = dialect
        self.enc = encoders

    # what is native --------------------------------------------------------------------
    def can_compile(self, node: Node) -> bool:
        """True when the whole node runs in the database."""
        return all(self._cond_native(c) for c in conds(node))

    def _cond_native(self, node: Cond) -> bool:
        """True when one condition runs natively with local evaluation's meaning."""
        a = self.meta.attrs[node.attr]
        if node.op == "isnull":
            return True
        ok = self.dialect.value_ok
        return self.dialect.can_compare(a.kind) and (ok is None or ok(a, node))

    def can_order(self, order: Order) -> bool:
        """True when the database can sort by this order."""
        return all(self.dialect.can_compare(self.meta.attrs[n].kind) for n, _ in order)

    # compiling ----------------------------------------------------------------------
    def _v(self, name: str, value: Any) -> Any:
        conv = self.enc.get(name)
        return value if conv is None else conv(value)

    def compile(self, node: Node, b: Binder) -> Any:
        """The SQL predicate of a node (two-valued)."""
        if isinstance(node, Cond):
            return self._cond(node, b)
        if isinstance(node, And):
            if not node.items:
                return sa.true()
            return sa.and_(*[self.compile(n, b) for n in node.items])
        if isinstance(node, Or):
            if not node.items:
                return sa.false()
            return sa.or_(*[self.compile(n, b) for n in node.items])
        if isinstance(node, Not):
            return sa.not_(self.compile(node.item, b))
        raise TypeError(node)

    def _cond(self, c: Cond, b: Binder) -> Any:
        col = self.table.c[c.attr]
        a = self.meta.attrs[c.attr]
        op = c.op
        nullable = a.optional
        if op == "isnull":
            return col.is_(None) if c.value else col.is_not(None)
        if op in ("eq", "ne", "lt", "lte", "gt", "gte"):
            p = b.bind(self._v(c.attr, c.value))
            expr = {"eq": col == p, "ne": col != p, "lt": col < p, "lte": col <= p,
                    "gt": col > p, "gte": col >= p}[op]
            if op == "ne":
                return sa.or_(col.is_(None), expr) if nullable else expr
            return sa.and_(col.is_not(None), expr) if nullable else expr
        if op in ("in", "not_in"):
            params = [b.bind(self._v(c.attr, v)) for v in c.value]
            if op == "in":
                expr = col.in_(params)
                return sa.and_(col.is_not(None), expr) if nullable else expr
            expr = col.not_in(params)
            return sa.or_(col.is_(None), expr) if nullable else expr
        if op == "range":
            lo, hi = (b.bind(self._v(c.attr, v)) for v in c.value)
            expr = sa.and_(col >= lo, col <= hi)
            return sa.and_(col.is_not(None), expr) if nullable else expr
        params = [b.bind(v) for v in self.dialect.text_params(op, c.value)]
        expr = self.dialect.text_sql(col, params, op)
        return sa.and_(col.is_not(None), expr) if nullable else expr

    def collect(self, node: Node, out: list[Any]) -> None:
        """Append the bound values of a node in the order ``compile`` binds them."""
        if isinstance(node, Cond):
            op, name = node.op, node.attr
            if op == "isnull":
                return
            if op in ("in", "not_in", "range"):
                out.extend(self._v(name, v) for v in node.value)
            elif op in ("eq", "ne", "lt", "lte", "gt", "gte"):
                out.append(self._v(name, node.value))
            else:
                out.extend(self.dialect.text_params(op, node.value))
        elif isinstance(node, And | Or):
            for n in node.items:
                self.collect(n, out)
        elif isinstance(node, Not):
            self.collect(node.item, out)

    def order_clauses(self, order: Order) -> list[Any]:
        """ORDER BY clauses with None last in both directions."""
        out: list[Any] = []
        for name, desc in order:
            col = self.table.c[name]
            a = self.meta.attrs[name]
            if a.optional:
                out.append(col.is_(None))
            key = self.dialect.order_key(col, a) if self.dialect.order_key else col
            out.append(key.desc() if desc else key.asc())
        return out


def shape(node: Node) -> Any:
    """A hashable form of a filter without its values (lists keep their length)."""
    if isinstance(node, Cond):
        if node.op in ("in", "not_in"):
            return (node.attr, node.op, len(node.value))
        if node.op == "isnull":
            return (node.attr, "isnull", bool(node.value))
        return (node.attr, node.op)
    if isinstance(node, And):
        return ("and", tuple(shape(n) for n in node.items))
    if isinstance(node, Or):
        return ("or", tuple(shape(n) for n in node.items))
    if isinstance(node, Not):
        return ("not", shape(node.item))
    raise TypeError(node)


def local_kinds_sqlite() -> frozenset[str]:
    """Kinds SQLite cannot compare natively with Python's semantics."""
    return frozenset({DECIMAL})

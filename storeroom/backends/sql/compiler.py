"""Filters and orderings compiled to SQL, once per shape.

A filter's *shape* is its tree with the values taken out. Each shape compiles to SQL
text once (SQLAlchemy Core does the compiling, per dialect); later searches of the
same shape only bind new values. An ``in`` / ``not_in`` list binds as one parameter
where the dialect can (``SqlDialect.list_form``), so lists of every length share one
statement and no list meets the dialect's limit on parameters. Every predicate is
compiled two-valued (never NULL), so ``NOT`` and ``ne`` match rows whose attribute is
NULL, as local evaluation does. Filters too deep or too big for one statement are left
to local evaluation by ``split`` (``can_compile``, ``fits``); see docs/filters.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ...model.stored import ModelMeta
from ...model.types import DECIMAL, JSON
from ...query.ast import LIST_OPERATORS, TEXT_OPERATORS, And, Cond, Node, Not, conds, depth, fold
from ...query.cursor import after_filter
from ...query.order import Order
from ...query.paths import LIST, TYPED, path_info
from ...query.relations import Rel
from .codec import Conv
from .relcompile import all_conds, rel_shape, rel_sql

# a key a path compiles natively: never an array index, nothing to quote in any dialect
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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

    def bind_list(self, value: Any) -> sa.BindParameter[Any]:
        """A fresh "expanding" parameter: ``IN (__[POSTCOMPILE_pN])``, one placeholder per
        value at execution (see ``expand``)."""
        name = f"p{len(self.values)}"
        self.values.append(value)
        return sa.bindparam(name, expanding=True)


class LiteralBinder(Binder):
    """Binds values as literals rendered into the SQL text: the predicate of a CHECK
    constraint (DDL has no parameters; SQLAlchemy renders them with ``literal_binds``)."""

    def bind(self, value: Any) -> sa.BindParameter[Any]:
        """A parameter carrying its value (rendered as a literal)."""
        self.values.append(value)
        return sa.bindparam(f"c{len(self.values)}", value=value, unique=True)

    def bind_list(self, value: Any) -> sa.BindParameter[Any]:
        """An expanding parameter carrying its values (rendered as a literal list)."""
        self.values.append(value)
        return sa.bindparam(f"c{len(self.values)}", value=list(value), expanding=True,
                            unique=True)


# SQL nesting: a flat AND/OR of k terms nests k-1 deep in SQLite's parse tree (and its
# "Expression tree is too large" limit is 1000); wider lists compile as a balanced tree of
# groups of at most GROUP terms. A native filter is at most MAX_SQL_DEPTH deep in these
# units, which also keeps SQLAlchemy's recursive compiler far from Python's recursion
# limit; a deeper one is evaluated locally (``split``).
GROUP = 8
MAX_SQL_DEPTH = 64


def _group_depth(k: int) -> int:
    """How deep ``_balanced`` nests a list of ``k`` terms."""
    if k <= GROUP:
        return max(k - 1, 0)
    return GROUP + math.ceil(math.log2(k / GROUP))


def _balanced(fn: Any, parts: list[Any]) -> Any:
    """``fn(*parts)`` (``sa.and_``/``sa.or_``) as a balanced tree of small groups."""
    if len(parts) <= GROUP:
        return fn(*parts)
    mid = len(parts) // 2
    return fn(_balanced(fn, parts[:mid]).self_group(), _balanced(fn, parts[mid:]).self_group())


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
    # the values of an in / not_in bind as ONE parameter where the dialect can:
    # list_form(attr, values) names how (None: one parameter per value), list_value(form,
    # driver values) is that parameter's value, list_sql(column, parameter, form) the SQL
    # of "column is one of them"; form "expand" is an expanding parameter (``expand``)
    list_form: Callable[[Any, tuple[Any, ...]], str | None] | None = None
    list_value: Callable[[str, list[Any]], Any] | None = None
    list_sql: Callable[[Any, Any, str], Any] | None = None
    # most bound parameters in one statement (None: no limit); the rest is local
    max_params: int | None = None
    # most bytes of values in one statement, for a driver that writes them into the SQL
    # text (None: values travel as parameters)
    max_bytes: int | None = None
    # nested paths (docs/filters.md): json_scalar(column, keys, kind) is the SQL value at
    # the path as that scalar kind (NULL when missing or null); json_member(column, keys,
    # parameter) is "the list at the path holds the parameter's value" and
    # member_value(value) that parameter; json_kinds the leaf kinds that are native
    # (None: no path is native); json_text(column, keys, op, parameters) the SQL of a
    # text condition where json_scalar would not be exact for text (None: json_scalar)
    json_scalar: Callable[[Any, tuple[str, ...], str], Any] | None = None
    json_member: Callable[[Any, tuple[str, ...], Any, str], Any] | None = None
    member_value: Callable[[Any], Any] | None = None
    json_kinds: frozenset[str] = frozenset()
    json_text: Callable[[Any, tuple[str, ...], str, list[Any]], Any] | None = None
    # True when ``(a, b) > (x, y)`` row-value comparisons compile and compare element by
    # element (the keyset condition of a uniform ascending / descending order)
    row_values: bool = True

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
        # relation lookups (relcompile.py): the table and encoders of each related model
        # on this database (shared by the compilers of one core, filled by the backend),
        # and how many subqueries deep this compiler's table is
        self.related: dict[type, tuple[sa.Table, dict[str, Conv]]] = {}
        self.level = 0

    def related_compiler(self, model: type, level: int) -> FilterCompiler | None:
        """A compiler of ``model``'s filters on its table aliased ``rel<level>`` (None
        when the backend did not give that model's table)."""
        found = self.related.get(model)
        if found is None:
            return None
        from ...model.stored import meta_of
        table, enc = found
        alias: Any = table.alias(f"rel{level}")  # columns as a table's: .c[name]
        fc = FilterCompiler(meta_of(model), alias, self.dialect, enc)
        fc.related, fc.level = self.related, level
        return fc

    # what is native --------------------------------------------------------------------
    def can_compile(self, node: Node) -> bool:
        """True when the whole node runs in the database: every condition is native and
        the tree is not nested deeper than ``MAX_SQL_DEPTH``."""
        if type(node) is Cond:
            return self._cond_native(node)
        native = self._cond_native
        for c in conds(node):
            if not native(c):
                return False
        return depth(node) == 1 or fold(node, _leaf_depth, _sql_depth) <= MAX_SQL_DEPTH

    def _cond_native(self, node: Cond) -> bool:
        """True when one condition runs natively with local evaluation's meaning."""
        a = self.meta.attrs.get(node.attr)
        if a is None or (a.kind == JSON and node.op == "contains"):
            return self._path_native(node)  # a nested path or list membership
        if node.op == "isnull":
            return True
        ok = self.dialect.value_ok
        return self.dialect.can_compare(a.kind) and (ok is None or ok(a, node))

    def _path_native(self, node: Cond) -> bool:
        """True when a condition on a nested path (or list membership) compiles with the
        dialect's JSON functions with local evaluation's meaning: paths of plain keys
        (never an array index), leaves of the dialect's ``json_kinds`` with their value
        coerced to that kind (a loose ``dict[str, Any]`` value is local: its meaning
        depends on the stored value's JSON type)."""
        d = self.dialect
        if d.json_scalar is None:
            return False
        info = path_info(self.meta, node.attr)
        if not all(map(_PLAIN_KEY.fullmatch, info.keys)):
            return False
        if node.op == "isnull":
            return True
        ok = d.value_ok
        if info.shape == TYPED:
            a = info.attr
            assert a is not None
            return a.kind in d.json_kinds and (ok is None or ok(a, node))
        if info.shape == LIST and node.op == "contains" and d.json_member is not None:
            ea = info.element_attr
            return ea is not None and ea.kind in d.json_kinds and (ok is None or ok(ea, node))
        return False

    def fits(self, node: Node) -> bool:
        """True when one statement can hold the node's values (parameter count, size)."""
        d = self.dialect
        cs = all_conds(node) if self.related else conds(node)
        if d.max_params is not None:
            n = 0
            for c in cs:
                n += self._list_params(c) if c.op in LIST_OPERATORS else 2  # others: 2 at most
            if n > d.max_params:
                return False
        if d.max_bytes is not None:
            size = 0
            for c in cs:
                size += _text_size(c.value)
            if size > d.max_bytes:
                return False
        return True

    def _list_params(self, c: Cond) -> int:
        """How many parameters an in / not_in binds."""
        return 1 if self._form(c) is not None else len(c.value)

    def _form(self, c: Cond) -> str | None:
        lf = self.dialect.list_form
        if lf is None:
            return None
        if c.attr not in self.meta.attrs:  # a nested path: one parameter per value
            return None
        return lf(self.meta.attrs[c.attr], c.value)

    def can_order(self, order: Order) -> bool:
        """True when the database can sort by this order."""
        return all(self.dialect.can_compare(self.meta.attrs[n].kind) for n, _ in order)

    # compiling ----------------------------------------------------------------------
    def _v(self, name: str, value: Any) -> Any:
        conv = self.enc.get(name)
        return value if conv is None else conv(value)

    def compile(self, node: Node, b: Binder) -> Any:
        """The SQL predicate of a node (two-valued)."""
        return fold(node, lambda c: self._leaf(c, b), _junction_sql)

    def _leaf(self, c: Any, b: Binder) -> Any:
        if not isinstance(c, Cond):
            if type(c) is Rel:
                return rel_sql(self, c, b)
            raise TypeError(c)
        return self._cond(c, b)

    def _cond(self, c: Cond, b: Binder) -> Any:
        a = self.meta.attrs.get(c.attr)
        if a is None or (a.kind == JSON and c.op == "contains"):
            return self._path_cond(c, b)
        return self._cond_on(self.table.c[c.attr], a.optional, c, b)

    def _path_cond(self, c: Cond, b: Binder) -> Any:
        info = path_info(self.meta, c.attr)
        d = self.dialect
        col = self.table.c[info.root]
        if info.shape == LIST and c.op == "contains":  # membership
            ea = info.element_attr
            assert ea is not None and d.json_member is not None and d.member_value
            p = b.bind(d.member_value(c.value))
            return d.json_member(col, info.keys, p, ea.kind)
        assert d.json_scalar is not None
        if c.op == "isnull":  # kind "": NULL when missing or null, whatever the type
            expr = d.json_scalar(col, info.keys, "")
            return expr.is_(None) if c.value else expr.is_not(None)
        assert info.attr is not None
        if c.op in TEXT_OPERATORS and d.json_text is not None:
            params = [b.bind(v) for v in d.text_params(c.op, c.value)]
            return d.json_text(col, info.keys, c.op, params)
        expr = d.json_scalar(col, info.keys, info.attr.kind)
        return self._cond_on(expr, True, c, b)

    def _cond_on(self, col: Any, nullable: bool, c: Cond, b: Binder) -> Any:
        op = c.op
        if op == "isnull":
            return col.is_(None) if c.value else col.is_not(None)
        if op in ("eq", "ne", "lt", "lte", "gt", "gte"):
            p = b.bind(self._v(c.attr, c.value))
            expr = {"eq": col == p, "ne": col != p, "lt": col < p, "lte": col <= p,
                    "gt": col > p, "gte": col >= p}[op]
            if op == "ne":
                return sa.or_(col.is_(None), expr) if nullable else expr
            return sa.and_(col.is_not(None), expr) if nullable else expr
        if op in LIST_OPERATORS:
            if not c.value:
                return sa.false() if op == "in" else sa.true()
            form = self._form(c)
            if form is None:
                expr = col.in_([b.bind(self._v(c.attr, v)) for v in c.value])
            else:
                value = self._list_value(c, form)
                p = b.bind_list(value) if form == "expand" else b.bind(value)
                expr = self.dialect.list_sql(col, p, form)  # type: ignore[misc]
            if op == "in":
                return sa.and_(col.is_not(None), expr) if nullable else expr
            expr = sa.not_(expr)
            return sa.or_(col.is_(None), expr) if nullable else expr
        if op == "range":
            lo, hi = (b.bind(self._v(c.attr, v)) for v in c.value)
            expr = sa.and_(col >= lo, col <= hi)
            return sa.and_(col.is_not(None), expr) if nullable else expr
        params = [b.bind(v) for v in self.dialect.text_params(op, c.value)]
        expr = self.dialect.text_sql(col, params, op)
        return sa.and_(col.is_not(None), expr) if nullable else expr

    def _list_value(self, c: Cond, form: str) -> Any:
        conv = self.enc.get(c.attr)
        vals = list(c.value) if conv is None else [conv(v) for v in c.value]
        return self.dialect.list_value(form, vals)  # type: ignore[misc]

    def shape_values(self, node: Node) -> tuple[Any, list[Any]]:
        """The node's *shape* (its tree without the values, the key of compiled SQL) and
        its bound values in the order ``compile`` binds them, in one walk."""
        out: list[Any] = []

        def leaf(c: Any) -> Any:
            if type(c) is Rel:
                return rel_shape(self, c, out)
            op, name = c.op, c.attr
            if op == "isnull":
                return (name, "isnull", bool(c.value))
            if op in LIST_OPERATORS:
                if not c.value:
                    return (name, op, 0)
                form = self._form(c)
                if form is None:
                    out.extend(self._v(name, v) for v in c.value)
                    return (name, op, len(c.value))
                out.append(self._list_value(c, form))
                return (name, op, form)
            if op == "range":
                out.extend(self._v(name, v) for v in c.value)
            elif op == "contains" and name not in self.meta.attrs or (
                    op == "contains" and self.meta.attrs[name].kind == JSON):
                info = path_info(self.meta, name)
                if info.shape == LIST:  # membership binds the element
                    out.append(self.dialect.member_value(c.value))  # type: ignore[misc]
                    return (name, "member")
                out.extend(self.dialect.text_params(op, c.value))
            elif op in ("eq", "ne", "lt", "lte", "gt", "gte"):
                out.append(self._v(name, c.value))
            else:
                out.extend(self.dialect.text_params(op, c.value))
            return (name, op)
        return fold(node, leaf, _shape_node), out

    # keyset conditions (a cursor's "comes after") -----------------------------------
    def keyset_shape(self, order: Order, after: tuple[Any, ...]) -> tuple[Any, Any, list[Any]]:
        """How the condition "comes after the item with order values ``after``" compiles:
        (its form, the part of the statement's cache key it adds, its bound values), in
        one walk.

        A row-value comparison ``(a, b) > (x, y)`` when every attribute sorts in one
        direction, none of them can be None (None sorts last, which a row comparison
        does not know) and the dialect has row values; else the expanded comparison
        ``a > x OR (a = x AND b > y) ...`` with None last (``after_filter``).
        """
        dirs = {d for _, d in order}
        attrs = self.meta.attrs
        if (len(dirs) == 1 and len(order) > 1 and self.dialect.row_values
                and not any(attrs[n].optional for n, _ in order)):
            desc = dirs.pop()
            return "row", ("row", desc, len(order)), [
                self._v(n, v) for (n, _), v in zip(order, after, strict=True)]
        node = after_filter(order, after, lambda n: attrs[n].optional)
        shape, values = self.shape_values(node)
        return node, shape, values

    def keyset(self, order: Order, form: Any, b: Binder) -> Any:
        """The SQL of a keyset condition of ``keyset_shape``'s form, binding its values
        (in the order ``keyset_shape`` lists them) through ``b``."""
        if form == "row":
            desc = order[0][1]
            cols = sa.tuple_(*[self.table.c[n] for n, _ in order])
            params = sa.tuple_(*[b.bind(None) for _ in order])
            return cols < params if desc else cols > params
        return self.compile(form, b)

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


def _junction_sql(node: Node, parts: list[Any]) -> Any:
    t = type(node)
    if t is Not:
        return sa.not_(parts[0])
    if not parts:
        return sa.true() if t is And else sa.false()
    return _balanced(sa.and_ if t is And else sa.or_, parts)


def _shape_node(node: Node, parts: list[Any]) -> Any:
    t = type(node)
    if t is Not:
        return ("not", parts[0])
    return ("and" if t is And else "or", tuple(parts))


def _leaf_depth(c: Any) -> int:
    return 2  # col IS NOT NULL AND col = ?


def _sql_depth(node: Node, depths: list[int]) -> int:
    if type(node) is Not:
        return depths[0] + 1
    return max(depths, default=0) + _group_depth(len(depths))


def _text_size(value: Any) -> int:
    """An upper bound of the SQL text a value takes once escaped into a statement."""
    if isinstance(value, str):
        return 4 * len(value) + 3
    if isinstance(value, bytes):
        return 2 * len(value) + 12
    if isinstance(value, tuple | list):
        return sum(_text_size(v) + 1 for v in value)
    return 40


def local_kinds_sqlite() -> frozenset[str]:
    """Kinds SQLite cannot compare natively with Python's semantics."""
    return frozenset({DECIMAL})

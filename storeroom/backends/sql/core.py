"""``SqlCore``: everything about one model on one SQL engine that is not I/O.

It holds the table, row builders, encoders and the compiled-SQL cache. Stores bound
to different connections (a standalone store, every context) share one core.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from ...model.codegen import compile_generated
from ...model.fastpath import FastRows, _never, make_fast_rows
from ...model.stored import ModelMeta
from ...model.types import FLOAT, INT
from ...query.ast import OPERATORS, Node
from ...query.order import Order
from ...query.relations import Rel
from ...store.aggregate import AggSpec
from ...store.plan import Split, list_superset, split_filter
from ..batch import written_names
from ..common import make_store_meta
from . import sequences
from .codec import assign_attributes, row_builder, rows_builder, value_encoder
from .compiler import Binder, FilterCompiler
from .dialects import DIALECTS
from .relcompile import rel_models, rel_native
from .relorder import order_joins

Sql = tuple[str, tuple[str, ...] | None, dict[str, Any] | None]
"""Compiled SQL text; for positional paramstyles the parameter names in order; and the
values of parameters SQLAlchemy added itself (such as SQLite's ``OFFSET``)."""

_OURS = re.compile(r"^(p\d+|k\d+|v_.*|s_.*|lim)$")
_LIST = re.compile(r"__\[POSTCOMPILE_p(\d+)\]")
_NAMED_P = re.compile(r"%\(p(\d+)\)s")


class SqlCore:
    """Table, compiled statements and row builders of one model on one engine's dialect."""

    def __init__(self, meta: ModelMeta, engine: Any, dialect: str,
                 table_name: str | None = None) -> None:
        self.meta = meta
        self.engine = engine
        self.sa_dialect = engine.dialect
        self.dialect = DIALECTS[dialect]
        self.dialect_name = dialect
        self.metadata = sa.MetaData()
        from .schema import build_table
        self.table = build_table(meta, dialect, self.metadata, table_name)
        self.enc = value_encoder(meta, dialect)
        self.fc = FilterCompiler(meta, self.table, self.dialect, self.enc)
        # every ``@stored`` check is a CHECK constraint of the table (else the store
        # front evaluates them; see schema.add_checks)
        from .schema import native_checks
        self.native_checks = native_checks(meta, self.table)
        self.names = meta.stored_names
        self.cols = [self.table.c[n] for n in self.names]
        self.build = row_builder(meta, self.names, dialect)
        self.build_rows = rows_builder(meta, self.names, dialect)
        self.build_returned = row_builder(meta, self.names, dialect, returning=True)
        self.key_names = meta.key.attrs
        self.key_cols = [self.table.c[n] for n in self.key_names]
        self.seq = meta.sequence_attr
        self.returning = bool(getattr(self.sa_dialect, "update_returning", False))
        self.insert_returning = bool(getattr(self.sa_dialect, "insert_returning", False))
        # an upsert's RETURNING row (not on MySQL: ON DUPLICATE KEY UPDATE has none)
        self.upsert_returning = self.insert_returning and dialect != "mysql"
        self._cache: dict[Any, Sql] = {}
        self._lock = threading.Lock()
        self.ready = False
        # FOREIGN KEYs enforced (off on a SQLite engine with foreign_keys=OFF), and per
        # Ref name whether this table's FOREIGN KEY covers it (``fk_enforces``)
        from .engines import FOREIGN_KEYS_OPTION
        self.foreign_keys: bool = bool(getattr(engine, "sync_engine", engine)
                                       .get_execution_options().get(FOREIGN_KEYS_OPTION, True))
        self.fk_refs: dict[str, bool] = {}
        local_ops: frozenset[str] = frozenset()  # every operator compiles; kinds may be local
        self.store_meta = make_store_meta(meta, dialect, native_ops=OPERATORS - local_ops,
                                          transactions=True, max_page=1000, max_batch=1000)
        self.positional = bool(self.sa_dialect.positional)
        # attributes a unique index covers: an update of one of them may conflict
        self.unique_names = frozenset(n for ix in meta.indexes if ix.unique for n in ix.attrs)
        self.error_aborts_tx = self.dialect.error_aborts_tx
        # generated.sequence(): its next value and its move past a given value (or None)
        nxt, bump = sequences.statements(meta, self.table, dialect)
        self.sql_seq_next: Sql | None = None if nxt is None else self.compile(nxt)
        self.sql_seq_bump: Sql | None = None if bump is None else self.compile(bump)
        self.seq_by_insert_id = dialect == "mysql"
        prep = self.sa_dialect.identifier_preparer
        self.seq_params = {"v_seqname": prep.format_table(self.table) if sequences.native(meta)
                           else self.table.name,
                           "v_seqcol": self.seq.name if self.seq is not None else None}
        # hot statements
        self.sql_get = self._key_select()
        # the row by key, locked until the transaction ends (SQLite has no FOR UPDATE: its
        # write transactions hold the database's write lock)
        self.sql_get_locked = self.compile(
            sa.select(*self.cols).where(self.key_where()).with_for_update())
        # the autoincrement key the database assigns (a sequence that is the whole key)
        self.auto: str | None = self.seq.name if self.seq is not None and \
            sequences.native(meta) else None
        #: the attributes of a create that leaves the key to the autoincrement (or of
        #: every create, without one): ``sql_insert`` and ``insert_row`` write exactly these
        self.insert_names: tuple[str, ...] = tuple(n for n in self.names if n != self.auto)
        self.sql_insert = self._insert()
        self.insert_row = self._row_encoder(self.sql_insert, self.insert_names)
        # the generated key of an INSERT: the cursor's lastrowid (SQLite, MySQL: free), or
        # a RETURNING row (PostgreSQL)
        self.insert_id_free = dialect in ("sqlite", "mysql")
        self.sql_insert_returning: Sql | None = None
        if self.auto is not None and not self.insert_id_free:
            self.sql_insert_returning = self.insert_sql(self.insert_names)
        # a batch of creates, keys included (allocated first, see ``bulk_ids``)
        self._insert_all: tuple[Sql, Callable[[dict[str, Any]], Any]] | None = None
        self._guarded_insert: tuple[Sql, Callable[[dict[str, Any]], Any]] | None = None
        self._fast_rows: FastRows | None = None
        self._keyed_items: Callable[[list[tuple[Any, ...]], int], list[Any]] | None = None
        # PostgreSQL: ``n`` values of the key's sequence in one statement
        self.sql_seq_block: Sql | None = None
        if self.auto is not None and dialect == "postgresql":
            self.sql_seq_block = self.compile(sa.text(
                "SELECT nextval(pg_get_serial_sequence(:v_seqname, :v_seqcol)) "
                "FROM generate_series(1, :v_count)"))
        # PostgreSQL: a run of creates is one COPY of every attribute (``copy_in``)
        self.bulk_copy = dialect == "postgresql"
        self._copy_in: tuple[str, Callable[[dict[str, Any]], tuple[Any, ...]]] | None = None
        # MySQL/MariaDB: a run of creates with an autoincrement key is one multi-row
        # INSERT whose keys follow its first (``bulk_auto_consecutive``)
        self.bulk_auto = self.auto is not None and dialect == "mysql"
        self.sql_delete = self.compile(self.table.delete().where(self.key_where()))
        self._batch_sql: dict[int, Sql] = {}
        self.array_batch = dialect == "postgresql"  # batch_sql binds one array
        self._update_sql: dict[tuple[str, ...], tuple[Sql, Callable[..., Any]]] = {}
        # lists compile to expanding parameters, spread when a statement runs
        self.expanding = dialect == "mysql"

    # DDL ---------------------------------------------------------------------------
    def create(self, conn: Any) -> None:
        """Create the table and its indexes on a sync SQLAlchemy connection."""
        self.metadata.create_all(conn, checkfirst=True)

    # compiling ---------------------------------------------------------------------
    def compile(self, stmt: Any) -> Sql:
        """SQL text for a statement, in this engine's dialect."""
        c = stmt.compile(dialect=self.sa_dialect)
        extra = {k: v for k, v in c.params.items() if not _OURS.match(k)}
        return str(c), (tuple(c.positiontup) if self.positional else None), extra or None

    def params(self, sql: Sql, named: dict[str, Any]) -> Any:
        """Parameters for compiled SQL: a tuple (positional) or the dict (named)."""
        order, extra = sql[1], sql[2]
        if extra is not None:
            named = {**extra, **named}
        if order is None:
            return named
        return tuple(named[n] for n in order)

    def cached(self, key: Any, make: Callable[[], Any]) -> Sql:
        """Compiled SQL for ``key``, compiling ``make()`` on first use."""
        sql = self._cache.get(key)
        if sql is None:
            sql = self.compile(make())
            with self._lock:
                if len(self._cache) > 2000:
                    self._cache.clear()
                self._cache[key] = sql
        return sql

    def key_where(self) -> Any:
        """``k1 = :k0 AND k2 = :k1``."""
        return sa.and_(*[c == sa.bindparam(f"k{i}") for i, c in enumerate(self.key_cols)])

    def _key_select(self) -> Sql:
        return self.compile(sa.select(*self.cols).where(self.key_where()))

    def _insert(self) -> Sql:
        stmt = self.table.insert().values({n: sa.bindparam(f"v_{n}")
                                           for n in self.insert_names})
        return self.compile(stmt)

    def guarded_insert(self) -> tuple[Sql, Callable[[dict[str, Any]], Any]]:
        """PostgreSQL, a create inside a transaction: the INSERT of ``insert_names`` with
        ``ON CONFLICT DO NOTHING`` (a duplicate inserts nothing instead of failing and
        aborting the transaction) and its row encoder. RETURNING only the autoincrement
        key, if any: without one the rowcount tells a duplicate (0), and the server
        sends no row back."""
        got = self._guarded_insert
        if got is None:
            from sqlalchemy.dialects.postgresql import insert as pg_insert
            stmt = pg_insert(self.table).values(
                {n: sa.bindparam(f"v_{n}") for n in self.insert_names}).on_conflict_do_nothing()
            sql = self.compile(stmt if self.auto is None
                               else stmt.returning(self.table.c[self.auto]))
            got = self._guarded_insert = (sql, self._row_encoder(sql, self.insert_names))
        return got

    def insert_all(self) -> tuple[Sql, Callable[[dict[str, Any]], Any]]:
        """The INSERT of every attribute, the autoincrement key included, and its row
        encoder (a batch of creates whose keys were allocated first)."""
        got = self._insert_all
        if got is None:
            sql = self.compile(self.table.insert().values(
                {n: sa.bindparam(f"v_{n}") for n in self.names}))
            got = self._insert_all = (sql, self._row_encoder(sql, self.names))
        return got

    def fast_rows(self) -> FastRows:
        """``rows(edits)`` of ``make_fast_rows`` for ``sql_insert`` (SQLite's positional
        parameters): each plain item's validated values of ``insert_names`` in the
        statement's order as a tuple, and those tuples encoded as its parameters, or
        None (the batch then goes the general way)."""
        got = self._fast_rows
        if got is None:
            order = self.sql_insert[1]
            if order is None:  # named parameters: no tuples to write straight
                got = _never
            else:
                got = make_fast_rows(self.meta, [n[2:] for n in order], self.enc)
            self._fast_rows = got
        return got

    def keyed_items(self, rows: list[tuple[Any, ...]], first: int) -> list[Any]:
        """The items of a run of creates whose autoincrement keys are ``first``,
        ``first + 1``, ...: each a new instance given the key and the values of its
        tuple of ``fast_rows`` (as ``ModelMeta.build_all``, for models without unstored
        defaults; one by one where the class sets attributes plainly, as the row
        builders), by one generated loop."""
        fn = self._keyed_items
        if fn is None:
            meta = self.meta
            order = self.sql_insert[1]
            assert order is not None  # as ``fast_rows``
            held = [n[2:] for n in order]
            names = [a.name for a in meta.stored_attrs]
            entries = [(n, "k" if n == self.auto else f"x{held.index(n)}") for n in names]
            env: dict[str, Any] = {"new": meta._new, "cls": meta.cls}
            unpack = "(" + "".join(f"x{j}, " for j in range(len(held))) + ")"
            src = ("def items(rows, first):\n"
                   "    out = []\n"
                   "    append = out.append\n"
                   f"    for k, {unpack} in enumerate(rows, first):\n"
                   "        o = new(cls)\n"
                   + assign_attributes(meta, names, entries, " " * 8)
                   + "        append(o)\n"
                   "    return out\n")
            compile_generated(src, env, f"keyed_items[{self.dialect_name}]", meta.cls)
            fn = self._keyed_items = env["items"]
        return fn(rows, first)

    def copy_in(self) -> tuple[str, Callable[[dict[str, Any]], tuple[Any, ...]]]:
        """PostgreSQL's ``COPY table (every attribute) FROM STDIN`` and its row encoder
        (values -> a tuple in the statement's column order).

        One COPY writes a run of creates several times faster than an executemany of
        INSERTs (pipelined or not: the server still runs one INSERT per row) and the
        rows it writes are the same: COPY applies the same constraints, FOREIGN KEYs and
        triggers, and any failing row fails it whole, so the run goes one by one."""
        got = self._copy_in
        if got is None:
            prep = self.sa_dialect.identifier_preparer
            cols = ", ".join(prep.quote(self.table.c[n].name) for n in self.names)
            sql = f"COPY {prep.format_table(self.table)} ({cols}) FROM STDIN"
            got = self._copy_in = (sql, self._tuple_encoder(self.names))
        return got

    def multi_insert(self) -> tuple[str, str]:
        """MySQL: the head ``INSERT INTO t (insert_names) VALUES `` of a multi-row
        INSERT and one row's ``(%s, ...)`` (PyMySQL's format placeholders), for
        ``bulk_auto``."""
        prep = self.sa_dialect.identifier_preparer
        cols = ", ".join(prep.quote(self.table.c[n].name) for n in self.insert_names)
        one = "(" + ", ".join(["%s"] * len(self.insert_names)) + ")"
        return f"INSERT INTO {prep.format_table(self.table)} ({cols}) VALUES ", one

    def insert_tuple(self) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
        """values -> the encoded values of ``insert_names`` as a tuple, in that order."""
        return self._tuple_encoder(self.insert_names)

    def bulk_insertable(self, values: dict[str, Any]) -> bool:
        """True when a create of these values can be one row of a batch's single
        statement: every attribute, the autoincrement key left to the database (SQLite,
        PostgreSQL: allocated for the whole batch first; MySQL: one multi-row INSERT
        whose keys follow its first, where the server's auto-increment settings say so,
        else the run goes one by one)."""
        if self.auto is None:
            return self.seq is None and len(values) == len(self.names)
        return len(values) == len(self.insert_names) and self.auto not in values

    def _tuple_encoder(self, names: Sequence[str]) -> Callable[[dict[str, Any]], Any]:
        """A generated ``values -> tuple`` of ``names``' encoded values, in that order."""
        env: dict[str, Any] = {}
        parts = []
        for i, n in enumerate(names):
            conv = self.enc.get(n)
            if conv is None:
                parts.append(f"v[{n!r}]")
            else:
                env[f"c{i}"] = conv
                parts.append(f"(None if v[{n!r}] is None else c{i}(v[{n!r}]))")
        src = "def row(v):\n    return (" + ", ".join(parts) + ",)\n"
        compile_generated(src, env, f"tuple_encoder[{self.dialect_name}]", self.meta.cls)
        row: Callable[[Any], Any] = env["row"]
        return row

    def _row_encoder(self, sql: Sql, names_: Sequence[str]) -> Callable[[dict[str, Any]], Any]:
        """A generated ``values -> parameters`` function for an INSERT of ``names_``."""
        env: dict[str, Any] = {}
        order = sql[1]
        names = [n[2:] for n in order] if order is not None else list(names_)
        parts = []
        for i, n in enumerate(names):
            conv = self.enc.get(n)
            if conv is None:
                parts.append(f"v[{n!r}]")
            else:
                env[f"c{i}"] = conv
                parts.append(f"(None if v[{n!r}] is None else c{i}(v[{n!r}]))")
        if order is not None:
            # a tuple, also of no values (a model whose only attribute is its sequence key)
            src = "def row(v):\n    return (" + "".join(p + ", " for p in parts) + ")\n"
        else:
            src = "def row(v):\n    return {" + ", ".join(
                f"'v_{n}': {p}" for n, p in zip(names, parts, strict=True)) + "}\n"
        compile_generated(src, env, f"row_encoder[{self.dialect_name}]", self.meta.cls)
        row: Callable[[Any], Any] = env["row"]
        return row

    def update_key_sql(self, names: tuple[str, ...]) -> Sql:
        """UPDATE of these attributes by key (RETURNING the row where the dialect can)."""
        return self.update_by_key(names)[0]

    def update_by_key(self, names: tuple[str, ...]
                      ) -> tuple[Sql, Callable[[tuple[Any, ...], dict[str, Any]], Any]]:
        """``update_key_sql(names)`` and a generated ``(key, values) -> parameters``
        function for it (the values encoded, in the statement's order)."""
        got = self._update_sql.get(names)
        if got is None:
            stmt = self.table.update().where(self.key_where()).values(
                {n: sa.bindparam(f"s_{n}") for n in names})
            sql = self.compile(stmt.returning(*self.cols) if self.returning else stmt)
            got = self._update_sql[names] = (sql, self._update_encoder(sql, names))
        return got

    def _update_encoder(self, sql: Sql, names: tuple[str, ...]
                        ) -> Callable[[tuple[Any, ...], dict[str, Any]], Any]:
        env: dict[str, Any] = {}
        parts: dict[str, str] = {}
        for i, n in enumerate(names):
            conv = self.enc.get(n)
            if conv is None:
                parts[f"s_{n}"] = f"v[{n!r}]"
            else:
                env[f"c{i}"] = conv
                parts[f"s_{n}"] = f"(None if v[{n!r}] is None else c{i}(v[{n!r}]))"
        for i, n in enumerate(self.key_names):
            conv = self.enc.get(n)
            if conv is None:
                parts[f"k{i}"] = f"key[{i}]"
            else:
                env[f"kc{i}"] = conv
                parts[f"k{i}"] = f"kc{i}(key[{i}])"
        order, extra = sql[1], sql[2]
        if extra:
            env["extra"] = extra
            parts.update({k: f"extra[{k!r}]" for k in extra})
        if order is not None:
            body = "(" + ", ".join(parts[n] for n in order) + ",)"
        else:
            body = "{" + ", ".join(f"{k!r}: {p}" for k, p in parts.items()) + "}"
        src = f"def params(key, v):\n    return {body}\n"
        compile_generated(src, env, f"update_encoder[{self.dialect_name}]", self.meta.cls)
        fn: Callable[[tuple[Any, ...], dict[str, Any]], Any] = env["params"]
        return fn

    def batch_sql(self, n: int) -> Sql:
        """SELECT of ``n`` single-attribute keys (parameters in key order)."""
        if self.array_batch:  # PostgreSQL: one array parameter ``k0`` (any n)
            n = 0
        sql = self._batch_sql.get(n)
        if sql is None:
            col = self.key_cols[0]
            if self.array_batch:
                # one short statement for every batch size: psycopg caches the parsing of
                # statements with at most 50 parameters, and the server prepares it once
                sql = self.compile(sa.select(*self.cols).where(
                    col == sa.func.any(sa.bindparam("k0"))))
            else:
                sql = self.compile(sa.select(*self.cols).where(
                    col.in_([sa.bindparam(f"k{i}") for i in range(n)])))
            self._batch_sql[n] = sql
        return sql

    def insert_sql(self, names: Sequence[str], guarded: bool = False) -> Sql:
        """INSERT of exactly these attributes (RETURNING the sequence key when there is one).

        ``guarded`` (PostgreSQL): ``ON CONFLICT DO NOTHING RETURNING`` a key column, so
        that a duplicate returns no row instead of failing (and aborting the transaction).
        """
        def make() -> Any:
            values: dict[str, Any] = {n: sa.bindparam(f"v_{n}") for n in names}
            if guarded:
                from sqlalchemy.dialects.postgresql import insert as pg_insert
                col = self.table.c[self.seq.name] if self.seq is not None else self.key_cols[0]
                return pg_insert(self.table).values(values).on_conflict_do_nothing() \
                    .returning(col)
            stmt = self.table.insert().values(values)
            if self.seq is not None and self.insert_returning and self.seq.name not in names:
                stmt = stmt.returning(self.table.c[self.seq.name])
            return stmt
        return self.cached(("insert", tuple(names), guarded), make)

    def upsert_sql(self, names: Sequence[str]) -> Sql:
        """One INSERT that updates the row at the key when it exists (an upsert).

        SQLite / PostgreSQL: ``ON CONFLICT (key) DO UPDATE`` of the written attributes
        (``RETURNING`` the row). MySQL: ``ON DUPLICATE KEY UPDATE``, which also fires on a
        duplicate of another unique index: its first assignment sets the key to NULL
        unless the duplicate row is the one at this key, so that a unique value of
        another item fails (NOT NULL, an integrity error) instead of overwriting it.
        """
        def make() -> Any:
            values: dict[str, Any] = {n: sa.bindparam(f"v_{n}") for n in names}
            write = written_names(self.meta, names)
            if self.dialect_name == "mysql":
                from sqlalchemy.dialects.mysql import insert as my_insert
                ins = my_insert(self.table).values(values)
                same = sa.and_(*[c == ins.inserted[c.name] for c in self.key_cols])
                first = self.key_cols[0]
                sets: list[tuple[Any, Any]] = [(first.name, sa.func.IF(same, first, sa.null()))]
                sets += [(n, ins.inserted[n]) for n in write]
                return ins.on_duplicate_key_update(sets)
            if self.dialect_name == "postgresql":
                from sqlalchemy.dialects.postgresql import insert as pg_insert
                stmt: Any = pg_insert(self.table).values(values)
            else:
                from sqlalchemy.dialects.sqlite import insert as lite_insert
                stmt = lite_insert(self.table).values(values)
            if write:
                stmt = stmt.on_conflict_do_update(
                    index_elements=self.key_cols, set_={n: stmt.excluded[n] for n in write})
            else:
                stmt = stmt.on_conflict_do_nothing(index_elements=self.key_cols)
            if self.upsert_returning:
                stmt = stmt.returning(*self.cols)
            return stmt
        return self.cached(("upsert", tuple(names)), make)

    def may_conflict(self, names: Iterable[str]) -> bool:
        """True when writing these attributes may violate a unique index."""
        return not self.unique_names.isdisjoint(names)

    def encode(self, values: dict[str, Any]) -> dict[str, Any]:
        """Driver values of a dict of Python values."""
        enc = self.enc
        out = {}
        for k, v in values.items():
            conv = enc.get(k)
            out[k] = v if conv is None or v is None else conv(v)
        return out

    def key_params(self, key: tuple[Any, ...]) -> dict[str, Any]:
        """Named parameters of a key."""
        enc = self.enc
        out = {}
        for i, (n, v) in enumerate(zip(self.key_names, key, strict=True)):
            conv = enc.get(n)
            out[f"k{i}"] = v if conv is None else conv(v)
        return out

    def where_sql(self, kind: str, node: Node, order: Order | None = None,
                  limit: bool = False, names: Sequence[str] = (),
                  after: tuple[Any, ...] | None = None) -> tuple[Sql, list[Any]]:
        """Compiled SELECT / COUNT / UPDATE / DELETE (or a locking SELECT, ``lock``) over a
        filter (and, for a select, the keyset condition of the cursor position ``after``),
        and its values."""
        fc = self.fc
        # the cache key is the shape; the values come out of the same walk
        shp, values = fc.shape_values(node)
        if after is not None and order:
            form, kshape, kvalues = fc.keyset_shape(order, after)
            values.extend(kvalues)
        else:
            form = kshape = None
        key = (kind, shp, order, limit, tuple(names), kshape)

        def make() -> Any:
            b = Binder()
            pred = self.fc.compile(node, b)
            if form is not None:  # bound after the filter's values, as listed above
                pred = sa.and_(pred, self.fc.keyset(order, form, b))  # type: ignore[arg-type]
            if kind == "lock":  # the matching rows, locked until the transaction ends,
                # in key order: two writers locking rows in one order never deadlock
                return sa.select(*self.cols).where(pred).order_by(
                    *(self.table.c[n] for n in self.key_names)).with_for_update()
            if kind == "select":
                stmt: Any = sa.select(*self.cols).where(pred)
                if order:
                    stmt = stmt.order_by(*self.fc.order_clauses(order))
                if limit:
                    stmt = stmt.limit(sa.bindparam("lim", literal_execute=False))
                return stmt
            if kind == "count":
                return sa.select(sa.func.count()).select_from(self.table).where(pred)
            if kind == "delete":
                return self.table.delete().where(pred)
            if kind == "update":
                return self.table.update().where(pred).values(
                    {n: sa.bindparam(f"s_{n}") for n in names})
            if kind == "update_key":  # by key and precondition, returning the row
                stmt = self.table.update().where(sa.and_(self.key_where(), pred)).values(
                    {n: sa.bindparam(f"s_{n}") for n in names})
                return stmt.returning(*self.cols) if self.returning else stmt
            if kind == "delete_key":
                return self.table.delete().where(sa.and_(self.key_where(), pred))
            raise ValueError(kind)
        sql = self.cached(key, make)
        if self.expanding and "__[POSTCOMPILE_" in sql[0]:
            return self._expand(sql, values)
        return sql, values

    def aggregate_sql(self, node: Node, specs: tuple[AggSpec, ...]
                      ) -> tuple[Sql, list[Any]] | None:
        """One SELECT of the aggregate functions over a filter, and its values; None when
        an aggregate is not run natively (only Count, and Sum / Min / Max / Avg of int and
        float columns are: other kinds are stored in text forms). Avg selects the sum and
        the count (``store.aggregate.finish`` divides, so every backend rounds alike)."""
        if not all(s.attr is None or s.kind in (INT, FLOAT) for s in specs):
            return None
        fc = self.fc
        shp, values = fc.shape_values(node)
        shape = tuple((s.func, s.attr) for s in specs)

        def make() -> Any:
            c = self.table.c
            cols: list[Any] = []
            for s in specs:
                if s.attr is None:
                    cols.append(sa.func.count())
                elif s.func == "avg":
                    cols += [sa.func.sum(c[s.attr]), sa.func.count(c[s.attr])]
                else:
                    cols.append(getattr(sa.func, s.func)(c[s.attr]))
            return sa.select(*cols).select_from(self.table).where(fc.compile(node, Binder()))
        sql = self.cached(("aggregate", shp, shape), make)
        if self.expanding and "__[POSTCOMPILE_" in sql[0]:
            return self._expand(sql, values)
        return sql, values

    def _expand(self, sql: Sql, values: list[Any]) -> tuple[Sql, list[Any]]:
        """SQL with expanding parameters (``IN (__[POSTCOMPILE_pN])``) and its values,
        rewritten to one placeholder per value of each list, renumbered ``p0, p1, ...``."""
        text, order, extra = sql
        lists = {int(i) for i in _LIST.findall(text)}
        flat: list[Any] = []
        at: list[int] = []  # where the values of parameter i start in ``flat``
        for i, v in enumerate(values):
            at.append(len(flat))
            if i in lists:
                flat.extend(v)
            else:
                flat.append(v)

        def names(i: int) -> list[str]:
            n = len(values[i]) if i in lists else 1
            return [f"p{j}" for j in range(at[i], at[i] + n)]
        if order is None:  # named: %(pN)s
            text = _NAMED_P.sub(lambda m: f"%(p{at[int(m.group(1))]})s", text)
            text = _LIST.sub(lambda m: ", ".join(f"%({n})s" for n in names(int(m.group(1)))),
                             text)
            return (text, None, extra), flat
        mark = "?" if self.sa_dialect.paramstyle == "qmark" else "%s"
        text = _LIST.sub(lambda m: ", ".join([mark] * len(values[int(m.group(1))])), text)
        new_order: list[str] = []
        for n in order:
            if _OURS.match(n) and n[0] == "p" and n[1:].isdigit():
                new_order.extend(names(int(n[1:])))
            else:
                new_order.append(n)
        return (text, tuple(new_order), extra), flat

    def named(self, values: list[Any]) -> dict[str, Any]:
        """Filter values as named parameters p0, p1, ..."""
        return {f"p{i}": v for i, v in enumerate(values)}

    def split(self, node: Node) -> Split:
        """What of a filter runs in the database."""
        return split_filter(node, self.fc.can_compile, self.fc.fits, list_superset)

    def compiles_rel(self, rel: Rel, related: Callable[[type], Any]) -> bool:
        """True when a relation lookup compiles natively here (``relcompile.py``): every
        table it reads is a ready table of an SQL store on this database (``related``
        opens the store of a model), and every filter in it compiles. MySQL refuses a
        subquery over the table an UPDATE / DELETE writes: a lookup that reaches this
        model's own table is planned as key lookups there."""
        fc = self.fc
        models = rel_models(rel)
        if self.dialect_name == "mysql" and self.meta.cls in models:
            return False
        url = str(getattr(self.engine, "url", ""))
        for model in models:
            if model in fc.related:
                continue
            if model is self.meta.cls:
                core: Any = self
            else:
                core = getattr(getattr(related(model), "_base", None), "core", None)
                if (not isinstance(core, SqlCore) or not core.ready
                        or core.dialect_name != self.dialect_name
                        or str(getattr(core.engine, "url", "")) != url):
                    return False
            fc.related[model] = (core.table, core.enc)
        return rel_native(fc, rel)

    def can_order(self, order: Order) -> bool:
        """True when the database can sort by this order."""
        return self.fc.can_order(order)

    def order_joins(self, order: Order, related: Callable[[type], Any]
                    ) -> tuple[Any, ...] | None:
        """The LEFT OUTER JOINs (``joins.Join``) that sort by ``order``, an order across
        forward relations (``category__name``), in the database; None when a table it
        reads is not a ready table of an SQL store on this database (``related`` opens
        the store of a model) or an attribute does not compare natively (``relorder.py``)."""
        def target_core(model: type) -> Any:
            if model is self.meta.cls:
                return self
            core = getattr(getattr(related(model), "_base", None), "core", None)
            return core if isinstance(core, SqlCore) else None
        return order_joins(self, order, target_core)

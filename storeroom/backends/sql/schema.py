"""Tables from models: one SQLAlchemy Core ``Table`` per stored class and dialect."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ...model.attrs import Attr
from ...model.stored import ModelMeta
from ...model.types import (
    BOOL,
    BYTES,
    DATE,
    DATETIME,
    DECIMAL,
    ENUM,
    FLOAT,
    INT,
    JSON,
    STR,
    UUID,
)
from . import sequences


def column_type(a: Attr, dialect: str, indexed: bool = False) -> Any:
    """The column type of an attribute in a dialect (values are bound by storeroom's codecs).

    ``indexed``: the attribute is part of the key or of an index (MySQL needs a bounded
    VARCHAR / VARBINARY there).
    """
    kind = a.value_kind if a.kind == ENUM else a.kind
    if dialect == "sqlite":
        # SQLite: text forms that sort correctly (ISO datetimes in UTC, canonical UUIDs)
        if kind == INT:
            return sa.Integer()
        return {STR: sa.Text(), FLOAT: sa.Float(), BOOL: sa.Boolean(), DECIMAL: sa.Text(),
                DATETIME: sa.Text(), DATE: sa.Text(), UUID: sa.Text(), BYTES: sa.LargeBinary(),
                JSON: sa.Text()}[kind]
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql as pg
        # COLLATE "C": strings compare, sort and LIKE-match by code point, whatever the
        # database's locale (and btree indexes serve prefix LIKE)
        return {STR: sa.Text(collation="C"), INT: sa.BigInteger(), FLOAT: sa.Double(),
                BOOL: sa.Boolean(), DECIMAL: sa.Numeric(), DATETIME: sa.DateTime(timezone=True),
                DATE: sa.Date(), UUID: sa.Uuid(), BYTES: pg.BYTEA(), JSON: pg.JSONB()}[kind]
    # mysql / mariadb: utf8mb4_nopad_bin compares by code point and, unlike the PAD SPACE
    # utf8mb4_bin, keeps 'a' and 'a ' apart (MariaDB >= 10.2; MySQL 8 has no nopad_bin for
    # utf8mb4 but its utf8mb4_0900_bin is NO PAD: see MYSQL_TEXT_COLLATION)
    from sqlalchemy.dialects import mysql
    coll = MYSQL_TEXT_COLLATION
    if kind == STR:
        if indexed:  # InnoDB keys: at most 3072 bytes, 768 utf8mb4 characters
            return mysql.VARCHAR(min(a.max_length or 255, 768), charset="utf8mb4",
                                 collation=coll)
        return mysql.LONGTEXT(charset="utf8mb4", collation=coll)
    if kind == BYTES:
        return mysql.VARBINARY(min(a.max_length or 255, 3072)) if indexed else mysql.LONGBLOB()
    if kind == DECIMAL:  # exact text; compared locally (dialects.MYSQL)
        return (mysql.VARCHAR(255, charset="ascii", collation="ascii_bin") if indexed
                else mysql.LONGTEXT(charset="ascii", collation="ascii_bin"))
    return {INT: sa.BigInteger(), FLOAT: mysql.DOUBLE(), BOOL: sa.Boolean(),
            DATETIME: mysql.DATETIME(fsp=6), DATE: sa.Date(),
            UUID: mysql.CHAR(36, charset="ascii", collation="ascii_bin"),
            JSON: mysql.JSON()}[kind]


MYSQL_TEXT_COLLATION = "utf8mb4_nopad_bin"


#: the ON DELETE action of each ``on_delete`` with a FOREIGN KEY ("ignore" has none)
ON_DELETE_SQL = {"block": "RESTRICT", "cascade": "CASCADE", "nullify": "SET NULL"}


def build_table(meta: ModelMeta, dialect: str, metadata: sa.MetaData | None = None,
                table_name: str | None = None, _building: frozenset[type] = frozenset(),
                ) -> sa.Table:
    """The Core table of a model: stored attributes, primary key, indexes, and a FOREIGN
    KEY per ``Ref`` (but ``on_delete="ignore"``) with its ``ON DELETE`` action.

    The referenced tables join ``metadata`` (built the same way), so ``create_all``
    creates them first when they are missing: the tables of related models share the
    engine. A cycle of references between models (not to the model itself) gets no
    FOREIGN KEY on the edge that closes it: storeroom's own checks cover it.
    """
    md = metadata if metadata is not None else sa.MetaData()
    name = table_name or meta.name
    cols = []
    indexed = {n for ix in meta.indexes for n in ix.attrs}
    fks = []
    for ref in meta.refs.values():
        if ref.on_delete == "ignore":
            continue
        indexed.update(ref.columns)  # MySQL: the same bounded type as the key it references
        if ref.target is meta.cls:
            target_name = name
        else:
            if ref.target in _building:
                continue
            from ...model.stored import meta_of
            tmeta = meta_of(ref.target)
            target_name = tmeta.name
            if target_name not in md.tables:
                build_table(tmeta, dialect, md, None, _building | {meta.cls})
        fks.append(sa.ForeignKeyConstraint(
            list(ref.columns), [f"{target_name}.{k}" for k in ref.target_key],
            ondelete=ON_DELETE_SQL[ref.on_delete],
            name=f"fk_{name}_{ref.name}"[:63]))
    for a in meta.stored_attrs:
        auto = a is meta.sequence_attr and sequences.native(meta)
        col_type = column_type(a, dialect, a.is_key or a.name in indexed)
        if auto and dialect == "sqlite":
            col_type = sa.Integer()
        cols.append(sa.Column(a.name, col_type, primary_key=a.is_key,
                              nullable=a.optional and not a.is_key,
                              autoincrement=True if auto else False))
    table = sa.Table(name, md, *cols, *fks)
    for ix in meta.indexes:
        sa.Index(ix.index_name(name), *[table.c[n] for n in ix.attrs], unique=ix.unique)
    if dialect == "sqlite" and sequences.native(meta):
        table.kwargs["sqlite_autoincrement"] = True
        table.dialect_kwargs["sqlite_autoincrement"] = True
    if meta.sequence_attr is not None and not sequences.native(meta):
        sequences.counter_table(md, dialect)
    if meta.checks:
        add_checks(meta, dialect, table)
    return table


# constraint name -> the check's name, for the error of a refused write (every table's
# CHECK constraints are named ``ck_<table>_<check>``, so a name found in a driver's
# message tells which check refused it)
CHECK_NAMES: dict[str, str] = {}


def check_constraint_name(table: str, check: str) -> str:
    """``ck_<table>_<check>``: alembic's naming convention for a CHECK constraint."""
    return f"ck_{table}_{check}"


def add_checks(meta: ModelMeta, dialect: str, table: sa.Table) -> bool:
    """A CHECK constraint per ``@stored(checks=...)`` the SQL filter compiler compiles
    natively (values as literals); True when every check did (else storeroom evaluates
    them before writing, as on other backends)."""
    from sqlalchemy.sql.elements import conv

    from .codec import value_encoder
    from .compiler import FilterCompiler, LiteralBinder
    from .dialects import DIALECTS
    fc = FilterCompiler(meta, table, DIALECTS[dialect], value_encoder(meta, dialect))
    sa_dialect = sa.dialects.registry.load(dialect)()
    every = True
    for check, node in meta.checks.items():
        node = _lists_as_terms(node)
        if not fc.can_compile(node):
            every = False
            continue
        name = check_constraint_name(table.name, check)
        try:
            expr = fc.compile(node, LiteralBinder())
            # what the DDL will say: a value without a literal form, or a subquery (no
            # database takes one in a CHECK), leaves the check to storeroom
            text = str(expr.compile(dialect=sa_dialect, compile_kwargs={"literal_binds": True}))
        except (sa.exc.SQLAlchemyError, TypeError, ValueError, NotImplementedError):
            every = False
            continue
        if "select" in text.lower():
            every = False
            continue
        CHECK_NAMES[name] = check
        # conv: the name is final (a MetaData naming convention does not prefix it again)
        table.append_constraint(sa.CheckConstraint(expr, name=conv(name)))
    return every


def native_checks(meta: ModelMeta, table: sa.Table) -> bool:
    """True when every check of the model is a CHECK constraint of ``table``."""
    names = {c.name for c in table.constraints if isinstance(c, sa.CheckConstraint)}
    return all(check_constraint_name(table.name, c) in names for c in meta.checks)


def _lists_as_terms(node: Any) -> Any:
    """``in`` / ``not_in`` as ORs of ``eq`` / ANDs of ``ne`` (the same meaning): a
    dialect's list forms (arrays, ``json_each``) have no place in a CHECK."""
    from ...query.ast import And, Cond, Not, Or, fold

    def leaf(c: Any) -> Any:
        if isinstance(c, Cond) and c.op in ("in", "not_in"):
            if c.op == "in":
                return Or(tuple(Cond(c.attr, "eq", v) for v in c.value))
            return And(tuple(Cond(c.attr, "ne", v) for v in c.value))
        return c

    def combine(n: Any, parts: list[Any]) -> Any:
        if type(n) is Not:
            return Not(parts[0])
        return And(tuple(parts)) if type(n) is And else Or(tuple(parts))

    return fold(node, leaf, combine)

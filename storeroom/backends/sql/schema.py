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


def column_type(a: Attr, dialect: str) -> Any:
    """The column type of an attribute in a dialect (values are bound by storeroom's codecs)."""
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
        return {STR: sa.Text(), INT: sa.BigInteger(), FLOAT: sa.Double(), BOOL: sa.Boolean(),
                DECIMAL: sa.Numeric(), DATETIME: sa.DateTime(timezone=True), DATE: sa.Date(),
                UUID: sa.Uuid(), BYTES: pg.BYTEA(), JSON: pg.JSONB()}[kind]
    # mysql / mariadb: binary collation so comparisons are by code point
    from sqlalchemy.dialects import mysql
    text = (mysql.VARCHAR(a.max_length or 255, charset="utf8mb4", collation="utf8mb4_bin")
            if a.is_key or a.unique or a.index or (a.max_length and a.max_length <= 1024)
            else mysql.LONGTEXT(charset="utf8mb4", collation="utf8mb4_bin"))
    return {STR: text, INT: sa.BigInteger(), FLOAT: mysql.DOUBLE(), BOOL: sa.Boolean(),
            DECIMAL: mysql.VARCHAR(100, charset="ascii", collation="ascii_bin"),
            DATETIME: mysql.DATETIME(fsp=6), DATE: sa.Date(),
            UUID: mysql.CHAR(36, charset="ascii", collation="ascii_bin"),
            BYTES: mysql.LONGBLOB(), JSON: mysql.LONGTEXT(charset="utf8mb4",
                                                         collation="utf8mb4_bin")}[kind]


def build_table(meta: ModelMeta, dialect: str, metadata: sa.MetaData | None = None,
                table_name: str | None = None) -> sa.Table:
    """The Core table of a model: stored attributes, primary key, indexes."""
    md = metadata if metadata is not None else sa.MetaData()
    name = table_name or meta.name
    cols = []
    for a in meta.stored_attrs:
        auto = a.is_key and a.generator is not None and a.generator.kind == "sequence" \
            and not meta.key.composite
        col_type = column_type(a, dialect)
        if auto and dialect == "sqlite":
            col_type = sa.Integer()
        cols.append(sa.Column(a.name, col_type, primary_key=a.is_key,
                              nullable=a.optional and not a.is_key,
                              autoincrement=True if auto else False))
    table = sa.Table(name, md, *cols)
    for ix in meta.indexes:
        sa.Index(ix.index_name(name), *[table.c[n] for n in ix.attrs], unique=ix.unique)
    if dialect == "sqlite" and any(
            a.is_key and a.generator and a.generator.kind == "sequence" for a in meta.stored_attrs):
        table.kwargs["sqlite_autoincrement"] = True
        table.dialect_kwargs["sqlite_autoincrement"] = True
    return table

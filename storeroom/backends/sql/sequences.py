"""``generated.sequence()`` on SQL: the database's autoincrement where it has one, else a
counter row.

A sequence that is a model's whole key is an autoincrement primary key (SQLite
``INTEGER PRIMARY KEY AUTOINCREMENT``, PostgreSQL ``BIGSERIAL``, MySQL
``AUTO_INCREMENT``). Any other sequence (a part of a composite key, or an attribute
that is no key) takes its values from a counter in the table ``storeroom_sequences``
(one row per table), incremented in the same transaction as the insert, as the MongoDB,
Redis and DynamoDB backends keep their counters. A value given explicitly is kept, and
later generated values stay above it on every dialect: SQLite and MySQL move their
autoincrement themselves; PostgreSQL's sequence and the counters are moved here.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ...model.stored import ModelMeta

COUNTERS = "storeroom_sequences"


def native(meta: ModelMeta) -> bool:
    """True when the model's sequence is its whole key (an autoincrement column)."""
    seq = meta.sequence_attr
    return seq is not None and seq.is_key and not meta.key.composite


def counter_table(metadata: sa.MetaData, dialect: str | None) -> sa.Table:
    """The counters table (in ``metadata``, created with the model's table)."""
    if COUNTERS in metadata.tables:
        return metadata.tables[COUNTERS]
    name_type: Any = sa.String(255)
    if dialect == "mysql":
        from sqlalchemy.dialects import mysql
        name_type = mysql.VARCHAR(255, charset="utf8mb4", collation="utf8mb4_bin")
    return sa.Table(COUNTERS, metadata, sa.Column("name", name_type, primary_key=True),
                    sa.Column("n", sa.BigInteger(), nullable=False))


def statements(meta: ModelMeta, table: sa.Table, dialect: str) -> tuple[Any, Any]:
    """``(next, bump)`` statements of the model's sequence (each None when not needed).

    ``next`` gives the next value (a row on SQLite and PostgreSQL; the insert id on
    MySQL); ``bump`` makes later values greater than an explicitly given ``v_seqvalue``.
    Parameters: ``v_seqname`` (the table's name), ``v_seqvalue``.
    """
    seq = meta.sequence_attr
    if seq is None:
        return None, None
    if native(meta):
        if dialect != "postgresql":
            return None, None  # SQLite and MySQL move their autoincrement to the max
        setval = sa.text(
            "SELECT setval(s, :v_seqvalue) FROM pg_get_serial_sequence(:v_seqname, "
            ":v_seqcol) AS s WHERE COALESCE(pg_sequence_last_value(CAST(s AS regclass)), 0) "
            "< :v_seqvalue")
        return None, setval
    counters = table.metadata.tables[COUNTERS]
    name: Any = sa.bindparam("v_seqname")
    value: Any = sa.bindparam("v_seqvalue")
    nxt: Any
    bump: Any
    if dialect == "mysql":
        from sqlalchemy.dialects import mysql
        # LAST_INSERT_ID(expr) hands the new value back as the statement's insert id
        my_next = mysql.insert(counters).values(name=name, n=sa.func.last_insert_id(1))
        nxt = my_next.on_duplicate_key_update(n=sa.func.last_insert_id(counters.c.n + 1))
        my_bump = mysql.insert(counters).values(name=name, n=value)
        bump = my_bump.on_duplicate_key_update(
            n=sa.func.greatest(counters.c.n, my_bump.inserted.n))
        return nxt, bump
    insert: Any
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
        larger: Any = sa.func.greatest
    else:
        from sqlalchemy.dialects.sqlite import insert
        larger = sa.func.max
    first = insert(counters).values(name=name, n=1)
    nxt = first.on_conflict_do_update(index_elements=[counters.c.name],
                                      set_={"n": counters.c.n + 1}).returning(counters.c.n)
    given = insert(counters).values(name=name, n=value)
    bump = given.on_conflict_do_update(index_elements=[counters.c.name],
                                       set_={"n": larger(counters.c.n, given.excluded.n)})
    return nxt, bump


class KeysNotConsecutive(Exception):  # noqa: N818 - internal: caught, the run rolled back
    """SQLite: a run of inserts did not take consecutive autoincrement keys from its
    first (see ``SqlBackend._insert_keyed_run``); never reaches a user: the caller rolls
    the run back and applies it the general way."""

    def __init__(self, first: int, count: int, last: Any) -> None:
        super().__init__(f"{count} inserts from key {first} ended at {last!r}")

"""Raw SQL over storeroom's tables: ``storeroom.sql.table_of`` / ``metadata`` /
``dm.sql_metadata``, statements on ``ctx.engines.writer`` and ``store.restore(row)`` (plain
and labelled JOIN rows, through a context's identity map) on SQLite, PostgreSQL and
MariaDB, sync and async."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from storeroom import AsyncDataManager, DataManager, Ref, field, open_store, stored
from storeroom.sql import metadata, table_of


@stored(key="id", table="rw_author")
class RwAuthor:
    id: int
    name: str = ""


@stored(key="id", table="rw_book")
class RwBook:
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    title: str = ""
    price: Decimal = Decimal("0")
    at: datetime = field(default_factory=lambda: datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC))
    tags: list[str] = field(default_factory=list)
    done: bool = False
    author: Ref[RwAuthor] | None = field(default=None, on_delete="nullify")


def _join() -> sa.Select:
    a, b = table_of(RwAuthor), table_of(RwBook)
    return (sa.select(b, a).join(a).order_by(b.c.title)
            .set_label_style(sa.LABEL_STYLE_TABLENAME_PLUS_COL))


def test_join_rows_restore_both_models_through_the_identity_map(db_url: str) -> None:
    with DataManager() as dm:
        dm.add_engine("writer", db_url)
        dm.register_models(RwAuthor, RwBook)
        book = RwBook(title="b1", price=Decimal("1.50"), tags=["x"], done=True, author=1)
        with dm.context() as ctx:
            ctx.store(RwAuthor).create(RwAuthor(id=1, name="ann"))
            ctx.store(RwBook).create(book)
        with dm.context() as ctx:
            authors, books = ctx.store(RwAuthor), ctx.store(RwBook)
            mapped = authors.read(1)
            rows = ctx.engines.writer.execute(_join()).all()
            assert len(rows) == 1
            got = books.restore(rows[0])
            assert got == book and got is books.read(book.id)
            assert authors.restore(rows[0]) is mapped  # the mapped object
            # another table's columns: the row of a plain select, by column names
            plain = ctx.engines.writer.execute(sa.select(table_of(RwAuthor))).one()
            ctx.engines.writer.execute(sa.update(table_of(RwAuthor)).values(name="bea"))
            assert authors.restore(plain).name == "ann"  # not overwritten...
            fresh = ctx.engines.writer.execute(sa.select(table_of(RwAuthor))).one()
            assert authors.restore(fresh, refresh=True) is mapped and mapped.name == "bea"
            # explicit labels named as LABEL_STYLE_TABLENAME_PLUS_COL names them
            a, b = table_of(RwAuthor), table_of(RwBook)
            labelled = ctx.engines.writer.execute(
                sa.select(a.c.id.label("rw_author_id"), a.c.name.label("rw_author_name"),
                          b.c.id, b.c.title).join_from(a, b)).one()
            assert authors.restore(labelled) is mapped
            with pytest.raises(ValueError, match="lacks columns"):
                books.restore(plain)
    with open_store(RwAuthor, db_url) as plain_store:  # a store without a map
        assert plain_store.restore({"id": 7, "name": "z"}) == RwAuthor(id=7, name="z")
    with open_store(RwAuthor, "memory://rw") as memory, pytest.raises(TypeError):
        memory.restore({"id": 7, "name": "z"})


async def test_async_restore_and_metadata_of_an_engine(db_url: str) -> None:
    async with AsyncDataManager() as dm:
        dm.add_engine("writer", db_url)
        dm.add_engine("other", "memory://rw")
        dm.register_models(RwAuthor, RwBook)
        md = dm.sql_metadata()
        assert set(md.tables) == {"rw_author", "rw_book"}  # no bookkeeping table
        assert md.tables["rw_book"].c.author_id.foreign_keys
        with pytest.raises(ValueError, match="not a SQL engine"):
            dm.sql_metadata("other")
        async with dm.context() as ctx:
            await ctx.store(RwAuthor).create(RwAuthor(id=2, name="al"))
            conn = await ctx.engines.writer
            row = (await conn.execute(sa.select(table_of(RwAuthor)))).one()
            store = ctx.store(RwAuthor)
            assert store.restore(row) is await store.read(2)
    assert set(metadata(RwBook).tables) == {"rw_author", "rw_book"}

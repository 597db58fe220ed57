"""SQL names follow alembic's naming convention (DESIGN "Schema, raw SQL and migrations"),
and ``create_tables()`` on a database made with other names keeps working: an index is
found by its columns, a missing one is added, nothing is dropped."""

from __future__ import annotations

import sqlalchemy as sa

from storeroom import Index, Ref, field, open_store, stored
from tests.migrate.conftest import sync_engine


@stored(key="id", table="nm_owner")
class NmOwner:
    id: int
    name: str = ""


@stored(key="id", table="nm_task", indexes=[Index("owner", "title")])
class NmTask:
    id: int
    title: str = ""
    slug: str = field(default="", unique=True)
    tag: str = field(default="", index=True)
    owner: Ref[NmOwner] | None = field(default=None, on_delete="nullify")


def test_names_follow_the_convention(db_url: str) -> None:
    with open_store(NmTask, db_url) as tasks:
        tasks.create_tables()
    engine = sync_engine(db_url)
    try:
        insp = sa.inspect(engine)
        dialect = engine.dialect.name
        indexes = {ix["name"]: (tuple(ix["column_names"]), bool(ix["unique"]))
                   for ix in insp.get_indexes("nm_task")}
        assert indexes["ix_nm_task_owner_id_title"] == (("owner_id", "title"), False)
        assert indexes["ix_nm_task_tag"] == (("tag",), False)
        assert indexes["uq_nm_task_slug"] == (("slug",), True)
        fks = insp.get_foreign_keys("nm_task")
        assert [(fk["name"], fk["referred_table"]) for fk in fks] == [
            ("fk_nm_task_owner_id_nm_owner", "nm_owner")]
        if dialect != "mysql":  # MySQL names every primary key PRIMARY
            assert insp.get_pk_constraint("nm_task")["name"] == "pk_nm_task"
    finally:
        engine.dispose()


def test_create_tables_finds_indexes_by_columns_and_adds_missing_ones(db_url: str) -> None:
    with open_store(NmTask, db_url) as tasks:
        tasks.create_tables()
        tasks.create(NmTask(id=1, title="kept", slug="s"))
    engine = sync_engine(db_url)
    try:
        with engine.begin() as conn:  # an older database: other names, one index missing
            conn.execute(sa.text("DROP INDEX ix_nm_task_tag" +
                                 (" ON nm_task" if engine.dialect.name == "mysql" else "")))
            conn.execute(sa.text("CREATE INDEX old_name ON nm_task (owner_id, title)"))
            conn.execute(sa.text("DROP INDEX ix_nm_task_owner_id_title" +
                                 (" ON nm_task" if engine.dialect.name == "mysql" else "")))
        with open_store(NmTask, db_url) as tasks:
            tasks.create_tables()
            assert tasks.read(1) == NmTask(id=1, title="kept", slug="s")
        names = {ix["name"] for ix in sa.inspect(engine).get_indexes("nm_task")}
        assert "ix_nm_task_tag" in names and "old_name" in names
        assert "ix_nm_task_owner_id_title" not in names  # the same columns: not again
    finally:
        engine.dispose()

"""atom-db's documented schema scenarios (its README, in the project's seeds), as
storeroom spells them: a custom table name (``Meta.db_table`` → ``table=``), composite
indexes with generated and given names (``Meta.composite_indexes`` → ``indexes=``), a model
routed to another database (``__database__`` / ``Meta.db_name`` → ``engine=``), the
metadata for migrations (``mgr.metadata`` → ``dm.sql_metadata()``) and raw JOIN rows
restored into both models (``Model.restore(row)`` → ``store.restore(row)``; the
statement runs on the default engine's connection, ``ctx.engines.get()``)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from storeroom import DataManager, Index, Ref, field, stored
from storeroom.sql import table_of


@stored(key="id", table="custom_table_name")
class SomeModel:
    id: int
    a: int = 0
    b: int = 0
    c: int = 0


@stored(key="id", table="some_indexed",
        indexes=[Index("a", "b"), Index("b", "c", name="index_b_c")])
class SomeIndexed:
    id: int
    a: int = 0
    b: int = 0
    c: int = 0


@stored(key="id", table="external_data", engine="other")
class ExternalData:
    id: int
    note: str = ""


@stored(key="id", table="job_role")
class JobRole:
    id: int
    name: str = ""


@stored(key="id", table="job")
class Job:
    id: int
    title: str = ""
    role: Ref[JobRole] | None = field(default=None, on_delete="nullify")


def _inspect(path: Path) -> sa.Inspector:
    return sa.inspect(sa.create_engine(f"sqlite:///{path}"))


def test_atomdb_schema_scenarios_on_sqlite(tmp_path: Path) -> None:
    main, other = tmp_path / "main.db", tmp_path / "other.db"
    with DataManager() as dm:
        dm.add_engine("default", f"sqlite:///{main}")
        dm.add_engine("other", f"sqlite:///{other}")
        dm.register_models(SomeModel, SomeIndexed, ExternalData, JobRole, Job)
        with dm.context() as ctx:
            ctx.store(SomeModel).create(SomeModel(id=1, a=2))
            ctx.store(SomeIndexed).create(SomeIndexed(id=1))
            ctx.store(ExternalData).create(ExternalData(id=1, note="elsewhere"))
            ctx.store(JobRole).create(JobRole(id=7, name="admin"))
            ctx.store(Job).create(Job(id=1, title="ops", role=7))
        # the custom table name, and composite indexes: one named by the convention
        # (ix_<table>_<columns>), one by the name given
        inspector = _inspect(main)
        assert "custom_table_name" in inspector.get_table_names()
        indexes = {ix["name"]: ix["column_names"] for ix in inspector.get_indexes("some_indexed")}
        assert indexes["ix_some_indexed_a_b"] == ["a", "b"]
        assert indexes["index_b_c"] == ["b", "c"]
        # the model routed to the other database lives there only
        assert "external_data" in _inspect(other).get_table_names()
        assert "external_data" not in inspector.get_table_names()
        # the metadata for alembic, per engine
        assert {"custom_table_name", "some_indexed", "job", "job_role"} <= set(
            dm.sql_metadata().tables)
        assert set(dm.sql_metadata(engine="other").tables) == {"external_data"}
        # raw JOIN rows (labelled, as atom-db's use_labels=True) restored into both models
        with dm.context() as ctx:
            job_t, role_t = table_of(Job), table_of(JobRole)
            q = (sa.select(job_t, role_t).join(role_t)
                 .set_label_style(sa.LABEL_STYLE_TABLENAME_PLUS_COL))
            (row,) = ctx.engines.get().execute(q).all()
            job, role = ctx.store(Job).restore(row), ctx.store(JobRole).restore(row)
            assert (job.id, job.title, job.role_id) == (1, "ops", 7)
            assert (role.id, role.name) == (7, "admin")
            # through the identity map: the job's role is the restored role
            assert job.role is role

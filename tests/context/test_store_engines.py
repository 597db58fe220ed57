"""Non-SQL URLs in ``add_engine``: stores on them are opened once and shared by contexts."""

from __future__ import annotations

import uuid

import pytest

from storeroom import AlreadyExists, stored
from storeroom.context import AsyncDataManager, DataManager


@stored
class Note:
    id: int
    text: str


def test_memory_engine_serves_ctx_store(tmp_path):
    dm = DataManager()
    dm.add_engine("mem", f"memory://{uuid.uuid4().hex}", default=True)
    dm.add_engine("sql", f"sqlite:///{tmp_path}/a.db")
    dm.register_models(Note)
    with dm.context() as ctx:
        ctx.store(Note).create(Note(id=1, text="x"))
    with dm.context() as ctx:
        assert ctx.store(Note).read(1) == Note(id=1, text="x")
        assert ctx.store(Note).meta.backend == "memory"
        assert ctx.engines.status == {"sql": "init"}  # the SQL engine was never touched
    dm.close()


def test_store_engine_names_are_unique():
    dm = DataManager()
    dm.add_engine("a", "memory://x")
    with pytest.raises(AlreadyExists):
        dm.add_engine("a", "memory://y")
    with pytest.raises(ValueError):
        dm.add_engine("b", "memory://z", read_only=True)
    dm.close()


def test_models_on_a_named_sql_engine_beside_a_store_engine(tmp_path):
    dm = DataManager()
    dm.add_engine("mem", "memory://m2", default=True)
    dm.add_engine("sql", f"sqlite:///{tmp_path}/b.db")
    dm.register_models(Note, engine="sql")
    with dm.context() as ctx:
        ctx.store(Note).create(Note(id=2, text="y"))
        assert ctx.store(Note).meta.backend == "sqlite"
    dm.close()


async def test_async_memory_engine(tmp_path):
    dm = AsyncDataManager()
    dm.add_engine("mem", f"memory://{uuid.uuid4().hex}", default=True)
    dm.register_models(Note)
    async with dm.context() as ctx:
        await ctx.store(Note).create(Note(id=3, text="z"))
        assert (await ctx.store(Note).read(3)).text == "z"
    await dm.close()

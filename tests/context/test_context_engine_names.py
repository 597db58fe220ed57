"""Any non-empty str names an engine; ``ctx.engines[name]`` / ``.get(name)`` reach every one.

atom-db configurations name their engine ``"default"``; words of ``ctx.engines``
(``get``, ``status``, ...) and names that are not identifiers are engine names too.
Attribute access keeps working for the names that are not attributes of
``ctx.engines``.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from storeroom import stored
from storeroom.context import AsyncDataManager, DataManager

NAMES = ["default", "get", "status", "names", "for_write", "my-db", "two words", "_private", "é"]


@stored
class Memo:
    id: int
    text: str


def test_any_non_empty_str_names_an_engine(tmp_path) -> None:
    dm = DataManager()
    for i, name in enumerate(NAMES):
        dm.add_engine(name, f"sqlite:///{tmp_path}/{i}.db")
    assert dm.engine_names == tuple(NAMES)
    assert dm.default_engine == "default"
    with dm.context() as ctx:
        for name in NAMES:
            conn = ctx.engines[name]
            assert conn is ctx.engines.get(name)
            assert conn.execute(text("SELECT 1")).scalar() == 1
            assert name in ctx.engines
        assert ctx.engines.get() is ctx.engines["default"]
        assert "nope" not in ctx.engines
        with pytest.raises(KeyError, match="nope"):
            ctx.engines["nope"]  # noqa: B018
        # the words of ctx.engines keep their meaning as attributes
        assert ctx.engines.default == "default"
        assert set(ctx.engines.status) == set(NAMES)
        assert ctx.engines.status["get"] == "start"
        assert callable(ctx.engines.get)
    dm.close()


def test_attribute_access_for_names_that_do_not_collide(tmp_path) -> None:
    dm = DataManager()
    dm.add_engine("writer", f"sqlite:///{tmp_path}/w.db")
    with dm.context() as ctx:
        assert ctx.engines.writer is ctx.engines["writer"]
    dm.close()


@pytest.mark.parametrize("bad", ["", None, 3, b"x"])
def test_empty_or_non_str_name_refused(bad) -> None:
    dm = DataManager()
    with pytest.raises((ValueError, TypeError)):
        dm.add_engine(bad, "sqlite://")
    dm.close()


def test_models_and_stores_on_an_engine_named_default(tmp_path) -> None:
    dm = DataManager()
    dm.add_engine("default", f"sqlite:///{tmp_path}/d.db")
    dm.add_engine("get", f"memory://{uuid.uuid4().hex}")
    dm.register_models(Memo, engine="default")
    with dm.context() as ctx:
        ctx.store(Memo).create(Memo(id=1, text="x"))
        assert dm.engine_role("default")["name"] == "default"
    with dm.context() as ctx:
        assert ctx.store(Memo).read(1) == Memo(id=1, text="x")
        assert ctx.engines.status == {"default": "start", "get": "init"}
    dm.close()


async def test_async_engines_by_item_are_awaited_like_get(tmp_path) -> None:
    async with AsyncDataManager() as dm:
        dm.add_engine("default", f"sqlite:///{tmp_path}/a.db")
        dm.add_engine("status", f"sqlite:///{tmp_path}/b.db")
        async with dm.context() as ctx:
            conn = await ctx.engines["default"]
            assert conn is await ctx.engines.get("default")
            other = await ctx.engines["status"]
            assert (await other.execute(text("SELECT 2"))).scalar() == 2
            assert ctx.engines.status == {"default": "start", "status": "start"}
            with pytest.raises(KeyError):
                ctx.engines["nope"]  # noqa: B018 - refused before anything is awaited

"""``ctx.store(Model).upsert`` runs in the context's unit of work on every engine kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from storeroom import AsyncDataManager, DataManager, stored


@stored(key="id", table="gadgets")
class Gadget:
    id: str
    name: str
    n: int = 0


def _urls(tmp_path: Path) -> list[str]:
    return ["memory://ctx_upsert", f"sqlite:///{tmp_path}/u.db"]


@pytest.mark.parametrize("kind", [0, 1], ids=["memory", "sqlite"])
def test_upsert_in_a_context_commits_and_rolls_back(tmp_path: Path, kind: int) -> None:
    url = _urls(tmp_path)[kind].replace("ctx_upsert", f"ctx_upsert_{tmp_path.name}")
    dm = DataManager()
    dm.add_engine("main", url, default=True)
    dm.register_models(Gadget)
    with dm.context() as ctx:
        ctx.store(Gadget).upsert(Gadget(id="a", name="first"))
        ctx.store(Gadget).upsert(Gadget(id="a", name="second", n=2))
    with pytest.raises(RuntimeError), dm.context() as ctx:
        ctx.store(Gadget).upsert(Gadget(id="a", name="rolled back"))
        raise RuntimeError("abort")
    with dm.context() as ctx:
        got = ctx.store(Gadget).read("a")
    assert (got.name, got.n) == ("second", 2)
    dm.close()


@pytest.mark.parametrize("kind", [0, 1], ids=["memory", "sqlite"])
async def test_upsert_in_an_async_context(tmp_path: Path, kind: int) -> None:
    url = _urls(tmp_path)[kind].replace("ctx_upsert", f"ctx_upsert_a_{tmp_path.name}")
    dm = AsyncDataManager()
    dm.add_engine("main", url, default=True)
    dm.register_models(Gadget)
    async with dm.context() as ctx:
        await ctx.store(Gadget).upsert(Gadget(id="a", name="x"))
        await ctx.store(Gadget).upsert(Gadget(id="a", name="y"))
    async with dm.context() as ctx:
        got = await ctx.store(Gadget).read("a")
    assert got.name == "y"
    await dm.close()

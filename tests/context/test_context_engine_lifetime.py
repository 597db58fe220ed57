"""Issue 8.19: nothing global outlives what owns it.

The SQL backend kept every engine's per-model state in a module-level cache keyed by
``id(engine)``, so each closed data manager's engines (pools, compiled SQL, tables)
stayed in memory for good: 1,000 managers cost 35 MB. The state now lives on the
data manager's engine spec and goes with it.
"""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

from storeroom import open_async_store, open_store, stored
from storeroom.context import AsyncDataManager, DataManager


@stored(key="name")
class Kept:
    name: str


def _alive(refs: list[weakref.ref[object]]) -> int:
    gc.collect()
    return sum(r() is not None for r in refs)


def test_closed_data_managers_and_their_engines_are_freed(tmp_path: Path) -> None:
    refs: list[weakref.ref[object]] = []
    for i in range(20):
        dm = DataManager()
        dm.add_engine("db", f"sqlite:///{tmp_path}/{i}.db")
        dm.register_models(Kept)
        with dm.context() as ctx:
            ctx.store(Kept).create(Kept(name="x"))
        refs += [weakref.ref(dm), weakref.ref(dm.get_engine())]
        dm.close()
        del dm, ctx
    assert _alive(refs) == 0


async def test_closed_async_data_managers_and_their_engines_are_freed(tmp_path: Path) -> None:
    refs: list[weakref.ref[object]] = []
    for i in range(20):
        dm = AsyncDataManager()
        dm.add_engine("db", f"sqlite:///{tmp_path}/{i}.db")
        dm.register_models(Kept)
        async with dm.context() as ctx:
            await ctx.store(Kept).create(Kept(name="x"))
        refs += [weakref.ref(dm), weakref.ref(dm.get_engine().sync_engine)]
        await dm.close()
        del dm, ctx
    assert _alive(refs) == 0


async def test_closed_standalone_stores_are_freed(tmp_path: Path) -> None:
    refs: list[weakref.ref[object]] = []
    for i in range(10):
        with open_store(Kept, f"sqlite:///{tmp_path}/s{i}.db") as store:
            store.create(Kept(name="x"))
        async with open_async_store(Kept, f"sqlite:///{tmp_path}/a{i}.db") as astore:
            await astore.create(Kept(name="x"))
        refs += [weakref.ref(store), weakref.ref(astore)]
        del store, astore
    assert _alive(refs) == 0

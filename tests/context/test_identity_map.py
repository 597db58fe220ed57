"""The identity map of a context, on every backend a context runs on, sync and async.

Within one context ``ctx.store(M)`` (and ``M.objects``) returns the same object for the
same key; a later query does not overwrite a mapped object unless ``refresh=True``
(then it is updated in place); writes through the store update the mapped object;
``update_where`` / ``delete_where`` keep mapped objects current; a rolled-back
savepoint clears the map; stores opened with ``open_store`` have no map.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from storeroom import (
    AsyncStore,
    Create,
    Delete,
    Update,
    Upsert,
    field,
    open_async_store,
    open_store,
    stored,
)
from storeroom.context import AsyncDataManager, DataManager
from storeroom.store.identity import IdentityMap
from tests.backends.conftest import BACKENDS, MODES, SAME_CODE_AS, BackendSpec, unavailable

# the map does not depend on which server answers: one server per backend's code
MAP_BACKENDS = [b for b in BACKENDS if b.id not in SAME_CODE_AS]


@stored(key="id")
class MapTask:
    id: str
    owner: str
    title: str = field(default="", max_length=100)
    done: bool = False
    rank: int = 0


@stored(key=("owner", "num"))
class MapPair:
    owner: str
    num: int
    text: str = ""


class S:
    """A store of either flavor, its methods awaitable."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.is_async = isinstance(store, AsyncStore)

    @property
    def meta(self) -> Any:
        return self.store.meta

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.store, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            return await result if self.is_async else result

        return call

    async def all(self, **kw: Any) -> list[Any]:
        if self.is_async:
            return [x async for x in self.store.search_all(**kw)]
        return list(self.store.search_all(**kw))


async def run(value: Any, is_async: bool) -> Any:
    """A query-set terminal's value in either flavor."""
    return await value if is_async else value


class D:
    """A data manager of either flavor over one backend URL."""

    def __init__(self, is_async: bool, url: str) -> None:
        self.is_async = is_async
        self.url = url
        self.dm: Any = AsyncDataManager() if is_async else DataManager()
        try:
            self.dm.add_engine("main", url)
        except (ImportError, ValueError) as exc:
            unavailable(url.split(":", 1)[0], f"{type(exc).__name__}: {exc}")
        self.dm.register_models(MapTask, MapPair)

    @asynccontextmanager
    async def context(self, **kw: Any) -> AsyncIterator[Any]:
        if self.is_async:
            async with self.dm.context(**kw) as ctx:
                yield ctx
        else:
            with self.dm.context(**kw) as ctx:
                yield ctx

    @asynccontextmanager
    async def savepoint(self, ctx: Any) -> AsyncIterator[None]:
        if self.is_async:
            async with ctx.savepoint():
                yield
        else:
            with ctx.savepoint():
                yield

    async def close(self) -> None:
        if self.is_async:
            await self.dm.close()
        else:
            self.dm.close()


@pytest.fixture(params=MAP_BACKENDS, ids=[b.id for b in MAP_BACKENDS])
def backend(request: pytest.FixtureRequest) -> BackendSpec:
    spec: BackendSpec = request.param
    reason = spec.available()
    if reason is not None:
        unavailable(spec.id, reason)
    return spec


@pytest.fixture(params=MODES)
async def d(request: pytest.FixtureRequest, backend: BackendSpec,
            tmp_path: Path) -> AsyncIterator[D]:
    manager = D(request.param == "async", backend.url_factory(tmp_path,
                                                               f"t{uuid.uuid4().hex}"))
    yield manager
    await manager.close()


async def seed(d: D, n: int = 3) -> None:
    async with d.context() as ctx:
        tasks = S(ctx.store(MapTask))
        for i in range(n):
            await tasks.create(MapTask(id=f"t{i}", owner="ann", title=f"task {i}", rank=i))


async def test_reads_searches_and_objects_give_one_object_per_key(d: D) -> None:
    await seed(d)
    async with d.context() as ctx:
        tasks = S(ctx.store(MapTask))
        first = await tasks.read("t1")
        assert first is not None
        assert await tasks.read("t1") is first
        assert ctx.store(MapTask) is ctx.store(MapTask)
        page = await tasks.search(owner="ann", order_by="id")
        assert page.items[1] is first
        assert (await tasks.all(order_by="id"))[1] is first
        batch = await tasks.read_batch(["t0", "t1", "nope"])
        assert batch[1] is first and batch[2] is None
        assert batch[0] is page.items[0]
        # Model.objects goes through ctx.store, so through the map too
        objs = MapTask.objects
        assert await run(objs.get(id="t1"), d.is_async) is first
        listed = await run(objs.filter(owner="ann").order_by("id"), d.is_async)
        assert [x is y for x, y in zip(listed, page.items, strict=True)] == [True] * 3
        bulk = await run(objs.in_bulk(["t1"]), d.is_async)
        assert bulk["t1"] is first
        if d.is_async:
            seen = [t async for t in objs.order_by("id")]
        else:
            seen = list(objs.order_by("id").iterator())
        assert seen[1] is first
        assert len(ctx.identity_map) == 3


async def test_a_later_query_does_not_overwrite_unless_refresh(d: D) -> None:
    await seed(d)
    async with d.context() as ctx:
        tasks = S(ctx.store(MapTask))
        t = await tasks.read("t1")
        t.title = "local edit"  # not written: the map keeps the object as it is
        assert (await tasks.read("t1")).title == "local edit"
        assert (await tasks.search(id="t1")).items[0].title == "local edit"
        assert (await run(MapTask.objects.get(id="t1"), d.is_async)).title == "local edit"
        # refresh=True: the same object, its values read again in place
        assert await tasks.read("t1", refresh=True) is t
        assert t.title == "task 1"
        for refresh_read in (
            lambda: tasks.search(id="t1", refresh=True),
            lambda: tasks.read_batch(["t1"], refresh=True),
        ):
            t.title = "again"
            await refresh_read()
            assert t.title == "task 1"
        t.title = "again"
        assert (await tasks.all(refresh=True, id="t1"))[0] is t
        assert t.title == "task 1"


async def test_writes_update_the_mapped_object(d: D) -> None:
    await seed(d)
    async with d.context() as ctx:
        tasks = S(ctx.store(MapTask))
        t = await tasks.read("t1")
        out = await tasks.update("t1", title="partial")
        assert out is t and t.title == "partial"
        t.done = True
        assert await tasks.update(t) is t  # a full update of the mapped object itself
        assert (await tasks.read("t1")).done is True
        upserted = await tasks.upsert(MapTask(id="t1", owner="bob", title="upserted"))
        assert upserted is t and t.owner == "bob" and t.done is False
        assert await tasks.update("t1", precondition={"owner": "zed"}, title="no") is None
        assert t.title == "upserted"
        # create maps the item it returns
        made = await tasks.create(MapTask(id="new", owner="ann"))
        assert await tasks.read("new") is made
        fresh = await tasks.upsert(MapTask(id="newer", owner="ann"))
        assert await tasks.read("newer") is fresh
        # delete drops it: a later create and read give another object
        assert await tasks.delete("new") is True
        assert await tasks.read("new") is None
        again = await tasks.create(MapTask(id="new", owner="cat"))
        assert again is not made and await tasks.read("new") is again
        # composite keys
        pairs = S(ctx.store(MapPair))
        p = await pairs.create(MapPair(owner="ann", num=1, text="a"))
        assert await pairs.read(("ann", 1)) is p
        assert await pairs.update(("ann", 1), text="b") is p and p.text == "b"
        assert await pairs.delete(("ann", 1)) is True
        assert await pairs.read(("ann", 1)) is None


async def test_a_key_read_as_missing_leaves_the_map(d: D) -> None:
    await seed(d, 2)
    async with d.context() as ctx:
        tasks = S(ctx.store(MapTask))
        t = await tasks.read("t1")
        assert await tasks.delete_where(id="t1") == 1
        assert await tasks.read("t1") is None
        again = await tasks.create(MapTask(id="t1", owner="ann"))
        assert again is not t and await tasks.read("t1") is again


async def test_edit_batch_updates_the_map(d: D) -> None:
    await seed(d)
    async with d.context() as ctx:
        tasks = S(ctx.store(MapTask))
        t0, t1 = await tasks.read("t0"), await tasks.read("t1")
        results = await tasks.edit_batch([
            Create(MapTask(id="b", owner="ann")),
            Update("t0", title="batched"),
            Upsert(MapTask(id="t1", owner="bob", title="ups")),
            Delete("t2"),
            Update("missing", title="x"),
        ])
        assert [r.ok for r in results] == [True, True, True, True, False]
        assert await tasks.read("b") is results[0].item
        assert results[1].item is t0 and t0.title == "batched"
        assert results[2].item is t1 and t1.owner == "bob"
        assert await tasks.read("t2") is None
        assert len(ctx.identity_map.of(MapTask)) == 3  # b, t0, t1


async def test_update_where_and_delete_where_keep_mapped_objects_current(d: D) -> None:
    await seed(d, 4)
    async with d.context() as ctx:
        tasks = S(ctx.store(MapTask))
        items = await tasks.all(order_by="id")
        items[2].title = "unsaved"  # an attribute update_where does not change: kept
        items[3].done = True  # one it changes: takes the stored value
        assert await tasks.update_where(changes={"done": True}, rank__lt=2) == 2
        assert [t.done for t in items] == [True, True, False, False]
        assert items[2].title == "unsaved"
        items[2].title = "task 2"
        assert [await tasks.read(t.id) is t for t in items] == [True] * 4
        assert await run(MapTask.objects.filter(rank__gte=3).update(title="qs"),
                         d.is_async) == 1
        assert items[3].title == "qs"
        assert await tasks.delete_where(done=True) == 2
        mapped = ctx.identity_map.of(MapTask)
        assert sorted(mapped.objects) == ["t2", "t3"]
        assert await tasks.read("t2") is items[2]
        assert await run(MapTask.objects.filter(id="t3").delete(), d.is_async) == 1
        assert sorted(mapped.objects) == ["t2"]


async def test_a_rolled_back_savepoint_clears_the_map(d: D) -> None:
    await seed(d, 2)
    async with d.context() as ctx:
        tasks = S(ctx.store(MapTask))
        t = await tasks.read("t1")
        if tasks.meta.backend == "mongodb":  # no savepoints in MongoDB transactions
            return
        async with d.savepoint(ctx):  # released: the map stays
            await tasks.update("t1", title="kept")
        assert await tasks.read("t1") is t and t.title == "kept"
        with pytest.raises(ZeroDivisionError):
            async with d.savepoint(ctx):
                await tasks.update("t1", title="rolled back")
                assert t.title == "rolled back"
                1 / 0  # noqa: B018
        assert len(ctx.identity_map) == 0
        again = await tasks.read("t1")
        assert again is not t
        if tasks.meta.transactions:
            assert again.title == "kept"
        else:  # DynamoDB, Redis: written at once, a savepoint cannot undo it
            assert again.title == "rolled back"


async def test_each_context_has_its_own_map(d: D) -> None:
    await seed(d, 2)
    async with d.context() as ctx:
        mine = await S(ctx.store(MapTask)).read("t1")
    async with d.context() as ctx:
        other = await S(ctx.store(MapTask)).read("t1")
        assert other is not mine and other == mine
        assert await S(ctx.store(MapTask)).read("t1") is other


async def test_threads_and_tasks_each_get_their_contexts_map(d: D) -> None:
    await seed(d, 2)
    found: dict[int, list[Any]] = {}
    if d.is_async:
        async def worker(n: int) -> None:
            async with d.dm.context() as ctx:
                store = ctx.store(MapTask)
                a = await store.read("t1")
                await asyncio.sleep(0)
                found[n] = [a, await store.read("t1"), ctx]

        await asyncio.gather(*(worker(n) for n in range(3)))
        # tasks of one context share its map
        async with d.dm.context() as ctx:
            store = ctx.store(MapTask)
            # one after another: one context connection serves one statement at a time
            shared = [await asyncio.create_task(store.read("t0")) for _ in range(3)]
            assert all(x is shared[0] for x in shared)
    else:
        errors: list[BaseException] = []

        def work(n: int) -> None:
            try:
                with d.dm.context() as ctx:
                    store = ctx.store(MapTask)
                    found[n] = [store.read("t1"), store.read("t1"), ctx]
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
        assert not errors
    assert sorted(found) == [0, 1, 2]
    for a, b, _ in found.values():
        assert a is b
    firsts = [v[0] for v in found.values()]
    assert len({id(x) for x in firsts}) == 3  # one object per context


async def test_open_store_has_no_identity_map(d: D) -> None:
    await seed(d, 2)
    if d.url.startswith("memory://"):  # an engine's memory database is its own
        return
    opener = open_async_store if d.is_async else open_store
    store = opener(MapTask, d.url)
    try:
        s = S(store)
        a = await s.read("t1")
        assert a is not None
        assert await s.read("t1") is not a
        assert await s.read("t1", refresh=True) == a  # accepted; nothing to refresh
        assert (await s.search(id="t1", refresh=True)).items[0] is not a
        assert (await s.read_batch(["t1"], refresh=True))[0] is not a
        assert (await s.all(id="t1", refresh=True))[0] == a
    finally:
        result = store.close()
        if d.is_async:
            await result


async def test_objects_writes_and_engine_stores_share_the_map(d: D) -> None:
    await seed(d, 2)
    async with d.context() as ctx:
        objs = MapTask.objects
        made = await run(objs.create(id="c1", owner="ann"), d.is_async)
        assert await S(ctx.store(MapTask)).read("c1") is made
        got, created = await run(objs.get_or_create(id="c1", defaults={"owner": "x"}),
                                 d.is_async)
        assert got is made and created is False
        bulk = await run(objs.bulk_create([MapTask(id="c2", owner="ann")]), d.is_async)
        assert await run(objs.get(id="c2"), d.is_async) is bulk[0]
        t1 = await run(objs.get(id="t1"), d.is_async)
        again, created = await run(objs.update_or_create(id="t1", defaults={"title": "u"}),
                                   d.is_async)
        assert again is t1 and t1.title == "u" and created is False
        # a store of the model on a named engine is another store over the same map
        named = ctx.store(MapTask, engine="main")
        assert named is not ctx.store(MapTask)
        assert await S(named).read("t1") is t1


def test_a_stub_is_filled_in_place_by_a_later_full_load() -> None:
    mapping = IdentityMap().of(MapTask)
    stub = MapTask.__new__(MapTask)
    stub.__dict__.update(id="s1")  # only its key, as a relation's stub
    assert mapping.put_stub(stub) is stub
    full = MapTask(id="s1", owner="ann", title="full")
    assert mapping.adopt(full) is stub  # without refresh: a stub is filled
    assert (stub.owner, stub.title) == ("ann", "full")
    later = MapTask(id="s1", owner="bob")
    assert mapping.adopt(later) is stub and stub.owner == "ann"  # no longer a stub
    assert mapping.put_stub(MapTask(id="s1", owner="x")) is stub  # mapped already
    mapping.drop("s1")
    assert mapping.adopt(later) is later

"""MongoDB engines in contexts: one client session with a transaction per context.

The contract for every backend is ``test_data_manager_urls.py``; here what only
MongoDB does: models of one engine share one client (one transaction covers them),
raw pymongo operations join the context's transaction through its session, a failed
atomic batch aborts the transaction (no savepoints), ``transactions=False`` writes at
once.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from storeroom import AsyncStore, BatchError, Conflict, Create, Delete, Update, stored
from storeroom.context import AsyncDataManager, DataManager
from tests.servers import skip_or_fail

pymongo = pytest.importorskip("pymongo")

from storeroom.backends.mongodb.testing import fresh_url, unavailable_reason  # noqa: E402


@stored
class Order:
    id: str
    total: int = 0


@stored
class Line:
    id: str
    order: str = ""


@pytest.fixture
def url() -> Iterator[str]:
    reason = unavailable_reason()
    if reason is not None:
        skip_or_fail(reason)
    name = f"t{uuid.uuid4().hex}"
    yield fresh_url(name)
    client = pymongo.MongoClient(fresh_url(name), serverSelectionTimeoutMS=2000)
    client.drop_database(name)
    client.close()


@pytest.fixture(params=["sync", "async"])
def is_async(request: pytest.FixtureRequest) -> bool:
    return request.param == "async"


async def maybe(value: Any) -> Any:
    """``value`` awaited when it is awaitable (the async flavor)."""
    if hasattr(value, "__await__"):
        return await value
    return value


class D:
    def __init__(self, is_async: bool, url: str, **options: Any) -> None:
        self.is_async = is_async
        self.dm: Any = AsyncDataManager() if is_async else DataManager()
        self.engine = self.dm.add_engine("m", url, **options)
        self.dm.register_models(Order, Line)

    @asynccontextmanager
    async def context(self) -> AsyncIterator[Any]:
        if self.is_async:
            async with self.dm.context() as ctx:
                yield ctx
        else:
            with self.dm.context() as ctx:
                yield ctx

    async def close(self) -> None:
        await maybe(self.dm.close())


@pytest.fixture
async def d(is_async: bool, url: str) -> AsyncIterator[D]:
    manager = D(is_async, url)
    yield manager
    await manager.close()


async def test_models_of_one_engine_share_a_client_and_a_transaction(d: D) -> None:
    assert d.engine.backend == "mongodb"
    orders, lines = d.engine.backend_for(Order), d.engine.backend_for(Line)
    assert orders.client is lines.client
    with pytest.raises(RuntimeError):
        async with d.context() as ctx:
            await maybe(ctx.store(Order).create(Order(id="o1", total=3)))
            await maybe(ctx.store(Line).create(Line(id="l1", order="o1")))
            unit = await maybe(ctx.engines["m"])
            assert unit.transaction.session.in_transaction
            raise RuntimeError()
    async with d.context() as ctx:
        assert await maybe(ctx.store(Order).read("o1")) is None
        assert await maybe(ctx.store(Line).read("l1")) is None


async def test_raw_operations_join_the_context_transaction(d: D) -> None:
    with pytest.raises(RuntimeError):
        async with d.context() as ctx:
            await maybe(ctx.store(Order).create(Order(id="o1")))
            unit = await maybe(ctx.engines["m"])
            raw = d.engine.backend_for(Order).db["raw"]
            await maybe(raw.insert_one({"_id": 1}, session=unit.transaction.session))
            raise RuntimeError()
    raw = d.engine.backend_for(Order).db["raw"]
    assert await maybe(raw.count_documents({})) == 0


async def test_failed_atomic_batch_changes_nothing_and_the_context_goes_on(d: D) -> None:
    """MongoDB transactions have no savepoints and a server error aborts them: a failed
    atomic batch in a context is undone inside the transaction instead, so the context
    stays usable and commits the rest of its work."""
    async with d.context() as ctx:
        await maybe(ctx.store(Order).create(Order(id="o1", total=1)))
    async with d.context() as ctx:
        store = ctx.store(Order)
        assert isinstance(store, AsyncStore) == d.is_async
        await maybe(store.create(Order(id="o2")))
        with pytest.raises(BatchError):
            await maybe(store.edit_batch([Create(Order(id="o3")), Update("o1", total=5),
                                          Delete("o2"), Create(Order(id="o1"))],
                                         atomic=True))
        with pytest.raises(Conflict):
            await maybe(store.create(Order(id="o1")))
        assert (await maybe(store.read("o2"))).id == "o2"
        assert await maybe(store.read("o3")) is None
        await maybe(store.create(Order(id="o4")))
    async with d.context() as ctx:
        page = await maybe(ctx.store(Order).search())
        assert [(o.id, o.total) for o in page] == [("o1", 1), ("o2", 0), ("o4", 0)]


async def test_transactions_false_writes_at_once(is_async: bool, url: str) -> None:
    d = D(is_async, url, transactions=False)
    try:
        with pytest.raises(RuntimeError):
            async with d.context() as ctx:
                store = ctx.store(Order)
                assert store.meta.transactions is False
                await maybe(store.create(Order(id="o1")))
                unit = await maybe(ctx.engines["m"])
                assert unit.transaction is None
                raise RuntimeError()
        async with d.context() as ctx:
            assert await maybe(ctx.store(Order).read("o1")) is not None
    finally:
        await d.close()


async def test_tasks_that_begin_the_engine_at_once_share_one_transaction(url: str) -> None:
    """Two tasks of one context reach the engine first at the same time (while the
    collections are created): one transaction is kept, the other rolled back unused.

    (Operations themselves must not run concurrently on one MongoDB engine of a
    context: a pymongo session is not for concurrent use, as a SQL connection is not.)
    """
    import asyncio

    d = D(True, url)
    try:
        async with d.context() as ctx:
            unit = await ctx.engines["m"]
            orders, lines = d.engine.backend_for(Order), d.engine.backend_for(Line)
            a, b = await asyncio.gather(unit.backend(orders), unit.backend(lines))
            assert a._session is b._session is unit.transaction.session
            await ctx.store(Order).create(Order(id="o1"))
            await ctx.store(Line).create(Line(id="l1"))
        async with d.context() as ctx:
            assert await ctx.store(Order).count() == 1
            assert await ctx.store(Line).count() == 1
    finally:
        await d.close()

"""Every store URL works through ``DataManager.add_engine`` and ``ctx.store`` too.

Every engine joins the context's unit of work as its backend allows:

- SQL, memory and MongoDB (``StoreMeta.transactions``): one transaction per engine per
  context, committed at a clean end and rolled back otherwise; a context reads its own
  writes; other contexts do not see them before the commit.
- DynamoDB and Redis (``StoreMeta.transactions`` is False): a context's writes apply at
  once, and stay when the context raises (docs/context.md says so).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from contract_models import Note, Task

from storeroom import AsyncStore, BatchError, Create, UnsupportedOperation
from tests.dual_manager import DualManager


class S:
    """A store (``ctx.store(Model)``) whose methods are awaitable in both flavors."""

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

    async def all(self) -> list[Any]:
        if self.is_async:
            return [x async for x in self.store.search_all()]
        return list(self.store.search_all())


class D(DualManager):
    """A data manager of either flavor over the contract models."""

    def __init__(self, is_async: bool, url: str, **options: Any) -> None:
        super().__init__(is_async, url, (Task, Note), **options)


@pytest.fixture
async def d(store_factory) -> AsyncIterator[D]:
    manager = D(store_factory.is_async, store_factory.url)
    yield manager
    await manager.close()


def task(i: int, owner: str = "ann") -> Task:
    return Task(id=f"t{i}", owner=owner, title=f"task {i}")


async def test_add_engine_url_serves_ctx_store(d: D) -> None:
    assert d.dm.engine_names == ("main",)
    assert d.dm.default_engine == "main"
    assert d.dm.engine_role("main")["read_only"] is False
    async with d.context() as ctx:
        assert ctx.engines.status == {"main": "init"}
        created = await S(ctx.store(Task)).create(task(1))
        assert ctx.engines.status == {"main": "start"}
    assert ctx.engines.status == {"main": "end"}
    async with d.context() as ctx:
        assert await S(ctx.store(Task)).read("t1") == created
        assert await S(ctx.store(Task)).count(owner="ann") == 1


async def test_a_context_that_raised_rolls_back_or_wrote_at_once(d: D) -> None:
    async with d.context() as ctx:
        await S(ctx.store(Task)).create(task(1))
        await S(ctx.store(Note)).create(Note(owner="ann", num=0))
    with pytest.raises(RuntimeError):
        async with d.context() as ctx:
            tasks, notes = S(ctx.store(Task)), S(ctx.store(Note))
            transactional = tasks.meta.transactions
            await tasks.create(task(2, "bob"))
            await tasks.update("t1", title="changed")
            await notes.create(Note(owner="ann", num=1))
            assert (await tasks.read("t2")).owner == "bob"  # read-your-writes
            assert (await tasks.read("t1")).title == "changed"
            assert await tasks.count() == 2
            raise RuntimeError("boom")
    async with d.context() as ctx:
        tasks, notes = S(ctx.store(Task)), S(ctx.store(Note))
        if transactional:  # SQL, memory, MongoDB: all of it rolled back
            assert await tasks.read("t2") is None
            assert (await tasks.read("t1")).title == "task 1"
            assert await notes.read(("ann", 1)) is None
        else:  # DynamoDB, Redis: documented as applied at once
            assert tasks.meta.backend in ("dynamodb", "redis")
            assert await tasks.read("t2") is not None
            assert (await tasks.read("t1")).title == "changed"
            assert await notes.read(("ann", 1)) is not None


async def test_other_contexts_do_not_see_uncommitted_writes(d: D, store_factory) -> None:
    if store_factory.url.startswith("sqlite"):
        # a SQLite context holds the write lock from its start (transaction_mode=IMMEDIATE,
        # the default), so a nested one would wait for it: DEFERRED lets both run
        deferred = D(d.is_async, store_factory.url, transaction_mode="DEFERRED")
        try:
            await _not_seen_before_commit(deferred)
        finally:
            await deferred.close()
        return
    await _not_seen_before_commit(d)


async def _not_seen_before_commit(d: D) -> None:
    async with d.context() as ctx:
        tasks = S(ctx.store(Task))
        await tasks.create(task(1))
        async with d.context() as other:
            seen = await S(other.store(Task)).read("t1")
        if tasks.meta.transactions:
            assert seen is None
        else:  # DynamoDB, Redis: written at once, so visible at once
            assert seen is not None
    async with d.context() as ctx:
        assert await S(ctx.store(Task)).read("t1") is not None


async def test_on_commit_runs_after_every_engine_committed(d: D) -> None:
    ran: list[str] = []
    async with d.context() as ctx:
        await S(ctx.store(Task)).create(task(1))
        ctx.on_commit(lambda: ran.append("committed"))
    assert ran == ["committed"]
    with pytest.raises(ValueError):
        async with d.context() as ctx:
            await S(ctx.store(Task)).create(task(2))
            ctx.on_commit(lambda: ran.append("never"))
            raise ValueError()
    assert ran == ["committed"]


async def test_savepoint_per_engine_kind(d: D) -> None:
    async with d.context() as ctx:
        tasks = S(ctx.store(Task))
        await tasks.create(task(1))
        backend = tasks.meta.backend
        if backend == "mongodb":  # no savepoints in MongoDB transactions
            with pytest.raises(UnsupportedOperation, match="savepoint"):
                async with d.savepoint(ctx):
                    pass
            return
        with pytest.raises(ZeroDivisionError):
            async with d.savepoint(ctx):
                await tasks.create(task(2))
                1 / 0  # noqa: B018
        if tasks.meta.transactions:  # SQL, memory: only the inner work is undone
            assert await tasks.read("t2") is None
        else:  # DynamoDB, Redis: writes applied at once, a savepoint cannot undo them
            assert await tasks.read("t2") is not None
        assert await tasks.read("t1") is not None


async def test_atomic_batch_in_a_context(d: D) -> None:
    """A failed atomic batch changes nothing and the context goes on, on every engine
    (MongoDB, which has no savepoints, undoes the batch inside its transaction)."""
    async with d.context() as ctx:
        await S(ctx.store(Task)).create(task(1))
    async with d.context() as ctx:
        tasks = S(ctx.store(Task))
        await tasks.create(task(2))
        if not tasks.meta.atomic_batch:  # dynalite: refused, nothing written
            with pytest.raises(UnsupportedOperation):
                await tasks.edit_batch([Create(task(3)), Create(task(1))], atomic=True)
        else:
            with pytest.raises(BatchError):
                await tasks.edit_batch([Create(task(3)), Create(task(1))], atomic=True)
        assert await tasks.read("t3") is None
        assert await tasks.read("t2") is not None
    async with d.context() as ctx:
        ids = sorted(t.id for t in await S(ctx.store(Task)).all())
    assert ids == ["t1", "t2"]

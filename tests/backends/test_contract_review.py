"""Regressions found in the review of issue 9's seams, on every backend, sync and async."""

from __future__ import annotations

import pytest

from storeroom import QueryLog, stored
from storeroom.errors import StoreClosed
from tests.backends.test_contract_transaction import tx


@stored
class Part:
    id: int
    name: str = ""


async def test_an_upsert_is_recorded(store_factory):
    # memory's observer seam left upsert out: a QueryLog saw no record of it
    s = store_factory(Part)
    await s.create(Part(id=0))  # tables / scripts exist before the log opens
    async with QueryLog() as log:
        await s._call("upsert", Part(id=1, name="a"))
        await s._call("upsert", Part(id=1, name="b"))
    assert await s.read(1) == Part(id=1, name="b")
    assert len(log.records) >= 2, log.statements()
    if s.meta.backend == "memory":
        assert log.statements() == ["upsert", "upsert"]


async def test_a_store_that_opened_a_transaction_works_after_it_and_closes(store_factory):
    # the store keeps its backend as a plain attribute until its first transaction,
    # then looks it up per thread / task: both must run, and close, alike
    s = store_factory(Part)
    if not s.meta.transactions:
        pytest.skip(f"{s.meta.backend} has no transactions")
    async with tx(s):
        await s.create(Part(id=1, name="in"))
        assert await s.read(1) == Part(id=1, name="in")
    await s.create(Part(id=2, name="out"))
    assert [p.id for p in await s.all()] == [1, 2]
    await s.close()
    with pytest.raises(StoreClosed):
        await s.read(1)

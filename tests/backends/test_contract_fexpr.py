"""``F`` update expressions on every backend, sync and async: results, kept types,
refused attributes and operands, bounds checked atomically (nothing written), and races
(``STOREROOM_RACE_N`` increments per writer, 8 writers) that lose nothing and never
oversell."""

from __future__ import annotations

import os
from typing import Any

import pytest

from storeroom import BatchError, F, Q, Update, ValidationError, field, stored
from tests.backends.test_contract_precond import _persist, _race, _racy_server

RACE_N = int(os.environ.get("STOREROOM_RACE_N", "25"))
WRITERS = 8


def race_n(store_factory: Any) -> int:
    """Increments per writer: ``STOREROOM_RACE_N``, a fifth of it on MongoDB and DynamoDB
    when unset (SecantusDB takes 50-100 ms per write; on dynalite each write is read, then
    written guarded, and retried under contention): the race stays a few seconds."""
    if store_factory.spec.id in ("mongodb", "dynamodb") and \
            "STOREROOM_RACE_N" not in os.environ:
        return max(1, RACE_N // 5)
    return RACE_N


@stored
class Stock:
    id: str
    stock: int = field(default=0, ge=0)
    views: int = 0
    price: float = 1.0
    maxed: int = field(default=0, le=10)
    note: str = ""
    opt: int | None = None


async def test_update_with_f(store_factory):
    s = store_factory(Stock)
    await s.create(Stock(id="a", stock=5, views=2, price=2.5))
    got = await s.update("a", stock=F("stock") - 1, views=F("views") * 3 + F("stock"))
    assert (got.stock, got.views) == (4, 11)  # every F: the values before the update
    got = await s.update("a", price=2 * F("price") + 0.25, note="x")
    assert got.price == 5.25 and type(got.price) is float and got.note == "x"
    got = await s.update("a", views=10 - F("views"))
    assert got.views == -1 and type(got.views) is int
    back = await s.read("a")
    assert (back.stock, back.views, back.price, back.note) == (4, -1, 5.25, "x")
    assert type(back.stock) is int and type(back.price) is float
    # swapping two attributes: each F is the value before the update (MySQL too)
    await s.update("a", stock=F("views") + 5, views=F("stock"))
    back = await s.read("a")
    assert (back.stock, back.views) == (4, 4)
    # no cycle: MySQL's left-to-right SET must still read the values before the update
    got = await s.update("a", views=F("views") + 1, stock=F("views") * 2)
    assert (got.stock, got.views) == (8, 5)
    got = await s.update("a", views=0, stock=F("views") + 1)
    assert (got.stock, got.views) == (6, 0)
    assert await s.update("missing", stock=F("stock") + 1) is None


@pytest.mark.parametrize("changes", [
    {"stock": F("stock") + 1.5},          # int attribute, float operand
    {"stock": F("price") + 1},            # int attribute, float attribute
    {"stock": F("note") + 1},             # non-numeric attribute
    {"opt": F("opt") + 1},                # nullable attribute
    {"stock": F("opt") + 1},              # nullable operand
    {"stock": F("nope") + 1},             # unknown attribute
    {"stock": F("stock") + "1"},          # not a number
    {"price": F("price") + float("inf")},  # not finite
])
async def test_refused_expressions(store_factory, changes):
    s = store_factory(Stock)
    await s.create(Stock(id="a", stock=5))
    with pytest.raises(ValidationError):
        await s.update("a", **changes)
    with pytest.raises(ValidationError):
        await s.update_where(changes=changes)
    assert (await s.read("a")) == Stock(id="a", stock=5)


async def test_bounds_checked_nothing_written(store_factory):
    s = store_factory(Stock)
    await s.create(Stock(id="a", stock=1, maxed=9))
    with pytest.raises(ValidationError) as e:
        await s.update("a", stock=F("stock") - 2, note="changed")
    assert e.value.errors[0]["field"] == "stock" and e.value.errors[0]["rule"] == "ge"
    with pytest.raises(ValidationError):
        await s.update("a", maxed=F("maxed") + 2)
    assert (await s.read("a")) == Stock(id="a", stock=1, maxed=9)
    assert (await s.update("a", stock=F("stock") - 1)).stock == 0
    # update_where: one item out of bounds → nothing written anywhere
    await s.create(Stock(id="b", stock=3))
    with pytest.raises(ValidationError):
        await s.update_where(changes={"stock": F("stock") - 1, "views": F("views") + 1})
    assert [(i.id, i.stock, i.views) for i in await s.all()] == [("a", 0, 0), ("b", 3, 0)]


async def test_preconditions_combine(store_factory):
    s = store_factory(Stock)
    await s.create(Stock(id="a", stock=2, note="open"))
    assert await s.update("a", stock=F("stock") - 1, precondition=Q(note="shut")) is None
    got = await s.update("a", stock=F("stock") - 1, precondition=Q(note="open"))
    assert got.stock == 1
    assert (await s.read("a")).stock == 1


async def test_update_where_with_f(store_factory):
    s = store_factory(Stock)
    for i in range(4):
        await s.create(Stock(id=f"i{i}", views=i, note="x" if i % 2 else "y"))
    n = await s.update_where(changes={"views": F("views") + 10}, note="x")
    assert n == 2
    assert [i.views for i in await s.all()] == [0, 11, 2, 13]
    assert await s.update_where(changes={"views": F("views") * 2}) == 4
    assert [i.views for i in await s.all()] == [0, 22, 4, 26]


async def test_batch_update_with_f(store_factory):
    s = store_factory(Stock)
    await s.create(Stock(id="a", stock=2))
    await s.create(Stock(id="b", stock=0))
    res = await s.edit_batch([Update("a", stock=F("stock") - 1),
                              Update("b", stock=F("stock") - 1),
                              Update("zz", stock=F("stock") + 1)])
    assert [(r.ok, r.code) for r in res] == [(True, None), (False, "invalid"),
                                            (False, "missing_key")]
    assert res[0].item.stock == 1
    assert [i.stock for i in await s.all()] == [1, 0]
    if s.meta.atomic_batch:
        with pytest.raises(BatchError):
            await s.edit_batch([Update("a", stock=F("stock") + 1),
                                Update("b", stock=F("stock") - 1)], atomic=True)
        assert [i.stock for i in await s.all()] == [1, 0]
        res = await s.edit_batch([Update("a", stock=F("stock") + 1),
                                  Update("b", views=F("views") + 1)], atomic=True)
        assert all(r.ok for r in res)
        assert [(i.stock, i.views) for i in await s.all()] == [(2, 0), (0, 1)]


async def test_race_increments_lose_nothing(store_factory):
    if _racy_server(store_factory):
        pytest.skip("moto_server's conditional writes are not atomic")
    s = store_factory(Stock)
    await s.create(Stock(id="a"))
    await s.create(Stock(id="b"))
    n = race_n(store_factory)

    async def worker(store: Any, i: int, step: Any) -> None:
        await step()
        for _ in range(n):
            await _persist(store_factory, store.update, "a", views=F("views") + 1)
        await _persist(store_factory, store.update_where, changes={"stock": F("stock") + 1},
                       id="b")

    await _race(store_factory, Stock, worker, workers=WRITERS)
    assert (await s.read("a")).views == WRITERS * n
    assert (await s.read("b")).stock == WRITERS


async def test_race_never_oversells(store_factory):
    if _racy_server(store_factory):
        pytest.skip("moto_server's conditional writes are not atomic")
    s = store_factory(Stock)
    start = WRITERS * 2
    await s.create(Stock(id="a", stock=start))

    async def worker(store: Any, i: int, step: Any) -> int:
        sold = 0
        await step()
        for _ in range(4):
            try:
                if await _persist(store_factory, store.update, "a",
                                  stock=F("stock") - 1) is not None:
                    sold += 1
            except ValidationError:
                pass
        return sold

    sold = sum(await _race(store_factory, Stock, worker, workers=WRITERS))
    assert sold == start
    assert (await s.read("a")).stock == 0

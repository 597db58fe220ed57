"""Contract: ``update_where`` and ``delete_where`` are all or nothing on every backend,
sync and async, when a typed error stops them part way: a change touching a unique
attribute or a ``unique_together`` set that conflicts on one match (``Conflict``) writes
no match, whether the filter runs on the server or partly in storeroom (``ALWAYS_LOCAL``)
and whether the changes are plain values or ``F`` expressions. The conflicting match is
the last one in key and insertion order, so a write item by item reaches it after the
others (issue 11/12 review: atomicity gaps).

DynamoDB (moto_server): the item updates and the uniqueness records move in one
``TransactWriteItems``; a writer taking a tuple at the same time either makes the
whole ``update_where`` fail or loses to it (the race test). dynalite has no
transactions, so unique attributes are refused there (``UnsupportedOperation``) and the
tests return early.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import pytest

from storeroom import (
    BatchError,
    Conflict,
    Create,
    Delete,
    F,
    Q,
    Ref,
    ValidationError,
    field,
    stored,
)
from storeroom.context import AsyncDataManager, DataManager
from tests.backends.conftest import S
from tests.backends.test_contract_precond import _race, always_local

LOCAL = always_local("tag")  # true of every item, evaluated by storeroom somewhere
FILTERS = {"native": Q(), "local": LOCAL}


@stored(unique_together=[("owner", "title"), ("owner", "pos")])
class Slot:
    id: str
    owner: str = ""
    title: str = ""
    pos: int = 0
    group: str = "g"
    rank: int = field(default=0, unique=True)
    dec: Decimal = Decimal("0")
    tag: str = "t"


def _no_unique(store_factory: Any) -> bool:
    """dynalite has no transactions: unique attributes are refused there."""
    return "no_transactions" in store_factory.spec.limits


async def _fill(s: Any, n: int = 4) -> list[Any]:
    """``n`` slots of group g (owner o<i>, title old, rank 10*i) and a blocker outside it
    holding what the last one would move to: (o<n>, new), (o<n>, pos 1) and rank
    10*n+1."""
    for i in range(1, n + 1):
        await s.create(Slot(id=f"s{i}", owner=f"o{i}", title="old", rank=10 * i))
    await s.create(Slot(id="z", owner=f"o{n}", title="new", pos=1, group="other",
                        rank=10 * n + 1))
    return await s.all()


@pytest.mark.parametrize("where", list(FILTERS))
async def test_update_where_unique_together_conflict_writes_nothing(store_factory: Any,
                                                                    where: str) -> None:
    if _no_unique(store_factory):
        return
    s = store_factory(Slot)
    before = await _fill(s)
    with pytest.raises(Conflict):
        await s.update_where(FILTERS[where], group="g", changes={"title": "new"})
    assert await s.all() == before
    # without the blocker every match moves
    await s.delete("z")
    assert await s.update_where(FILTERS[where], group="g", changes={"title": "new"}) == 4
    assert await s.count(title="new") == 4


@pytest.mark.parametrize("where", list(FILTERS))
async def test_update_where_f_on_unique_conflict_writes_nothing(store_factory: Any,
                                                                where: str) -> None:
    if _no_unique(store_factory):
        return
    s = store_factory(Slot)
    before = await _fill(s)
    with pytest.raises(Conflict):
        await s.update_where(FILTERS[where], group="g", changes={"rank": F("rank") + 1})
    assert await s.all() == before
    await s.delete("z")
    assert await s.update_where(FILTERS[where], group="g",
                                changes={"rank": F("rank") + 1, "title": "t2"}) == 4
    assert sorted(i.rank for i in await s.all()) == [11, 21, 31, 41]


@pytest.mark.parametrize("where", list(FILTERS))
async def test_update_where_f_on_unique_together_conflict_writes_nothing(
        store_factory: Any, where: str) -> None:
    """An ``F`` on part of a unique set (not all of it: the filter's matches may take
    distinct tuples) conflicting on the last match."""
    if _no_unique(store_factory):
        return
    s = store_factory(Slot)
    before = await _fill(s)
    with pytest.raises(Conflict):
        await s.update_where(FILTERS[where], group="g", changes={"pos": F("pos") + 1})
    assert await s.all() == before
    await s.delete("z")
    assert await s.update_where(FILTERS[where], group="g", changes={"pos": F("pos") + 1}) == 4
    assert await s.count(pos=1) == 4


@pytest.mark.parametrize("where", list(FILTERS))
async def test_update_where_conflict_on_the_first_match_writes_nothing(store_factory: Any,
                                                                       where: str) -> None:
    """The other order: the first match conflicts (with an item outside the filter), the
    second is free; neither is written."""
    if _no_unique(store_factory):
        return
    s = store_factory(Slot)
    await s.create(Slot(id="a", owner="o", title="x", pos=1, rank=1))
    await s.create(Slot(id="b", owner="p", title="x", pos=2, rank=2))
    await s.create(Slot(id="c", owner="o", title="y", pos=3, group="other", rank=3))
    before = await s.all()
    with pytest.raises(Conflict):  # a: (o, x) -> (o, y) is c's
        await s.update_where(FILTERS[where], group="g", changes={"title": "y"})
    assert await s.all() == before


async def test_update_where_on_unique_over_more_than_one_transaction(store_factory: Any
                                                                     ) -> None:
    """34 matches: more than one DynamoDB transaction holds (33 for one unique set), so
    the writes go in chunks there; with ``F`` on a unique attribute too (it raised
    ``UnsupportedOperation`` before); a conflict found by the check writes nothing."""
    if _no_unique(store_factory):
        return
    s = store_factory(Slot)
    n = 34
    await s.edit_batch([Create(Slot(id=f"s{k:02d}", owner=f"o{k}", title="old", rank=10 * k))
                        for k in range(n)])
    await s.create(Slot(id="z", owner=f"o{n - 1}", title="new", pos=1, group="other",
                        rank=10 * n))
    before = await s.all()
    with pytest.raises(Conflict):
        await s.update_where(group="g", changes={"title": "new"})
    assert await s.all() == before
    await s.delete("z")
    assert await s.update_where(group="g", changes={"rank": F("rank") + 1}) == n
    assert await s.update_where(LOCAL, group="g", changes={"title": "new"}) == n
    assert sorted(i.rank for i in await s.all()) == [10 * k + 1 for k in range(n)]
    assert await s.count(title="new") == n


async def test_update_where_race_with_a_creator_is_all_or_nothing(store_factory: Any) -> None:
    """One writer moves four slots to title "new" while another keeps creating and
    deleting the tuple the last one moves to: the move is all (4) or nothing
    (``Conflict``, none moved), never a part; at most one item holds the tuple."""
    if _no_unique(store_factory):
        return
    rounds = 5
    done = [False] * rounds

    async def worker(s: Any, i: int, step: Any) -> list[Any]:
        out: list[Any] = []
        for r in range(rounds):
            await step()
            if i == 0:
                for k in range(1, 5):
                    await s.update(f"s{k}", title="old", group=f"g{r}")
            await step()
            if i == 0:
                try:
                    out.append(await s.update_where(group=f"g{r}", changes={"title": "new"}))
                except Conflict:
                    out.append("conflict")
                done[r] = True
            else:
                # the tuple taken and freed again and again until the move is over
                for _ in range(200):
                    if done[r]:
                        break
                    try:
                        await s.create(Slot(id=f"x{r}", owner="o4", title="new", pos=1,
                                            group="x", rank=1000 + r))
                    except Conflict:
                        continue
                    await s.delete(f"x{r}")
            await step()
            if i == 0:  # never a part of the move
                out.append(await s.count(group=f"g{r}", title="new"))
                out.append(await s.count(owner="o4", title="new"))
        return out

    s0 = store_factory(Slot)
    for k in range(1, 5):
        await s0.create(Slot(id=f"s{k}", owner=f"o{k}", title="old", group="init",
                             rank=10 * k))
    mover, _ = await _race(store_factory, Slot, worker)
    for r in range(rounds):
        moved, seen, holders = mover[3 * r:3 * r + 3]
        assert (moved, seen) in ((4, 4), ("conflict", 0)), (r, mover)
        assert holders <= 1, (r, mover)


async def test_delete_where_local_filter_is_all_or_nothing(store_factory: Any) -> None:
    """``delete_where`` with a filter storeroom evaluates deletes exactly the matches
    (each on condition it still matches) and leaves the rest."""
    if _no_unique(store_factory):
        return
    s = store_factory(Slot)
    await s.create(Slot(id="a", owner="o", title="x", rank=1))
    await s.create(Slot(id="b", owner="p", title="x", rank=2, dec=Decimal("5")))
    await s.create(Slot(id="c", owner="q", title="x", rank=3, dec=Decimal("7")))
    assert await s.delete_where(LOCAL & Q(dec__gt=Decimal("4"))) == 2
    assert [i.id for i in await s.all()] == ["a"]


@pytest.mark.parametrize("where", list(FILTERS))
async def test_objects_update_in_a_context_is_all_or_nothing(store_factory: Any,
                                                             where: str) -> None:
    """``Model.objects.filter(...).update(...)`` in a context (its unit of work: one
    transaction on SQL and MongoDB): the ``Conflict`` leaves every match as it was, and
    the context goes on and commits its other writes."""
    if _no_unique(store_factory):
        return
    from tests.backends.test_contract_objects import ev
    dm: Any = (AsyncDataManager() if store_factory.is_async else DataManager())
    dm.add_engine("main", store_factory.url)
    dm.register_models(Slot)
    try:
        async with _context(dm, store_factory.is_async):
            before = await _fill(S(Slot.objects._store()))
            with pytest.raises(Conflict):
                await ev(Slot.objects.filter(FILTERS[where], group="g").update(title="new"))
            with pytest.raises(Conflict):
                await ev(Slot.objects.filter(FILTERS[where], group="g").update(
                    pos=F("pos") + 1))
            assert await ev(Slot.objects.filter(title="new", group="g").count()) == 0
            await ev(Slot.objects.filter(id="s1").update(rank=5))
        async with _context(dm, store_factory.is_async):
            got = await S(Slot.objects._store()).all()
            assert got == [i if i.id != "s1" else dataclasses.replace(i, rank=5)
                           for i in before]
    finally:
        await ev(dm.close())


@asynccontextmanager
async def _context(dm: Any, is_async: bool) -> AsyncIterator[Any]:
    if is_async:
        async with dm.context() as ctx:
            yield ctx
    else:
        with dm.context() as ctx:
            yield ctx


@stored(key="id")
class AtomShelf:
    id: str


@stored(key="id", checks={"placed": Q(shelf_id__isnull=False) | Q(loose=True)})
class AtomBook:
    id: str
    shelf: Ref[AtomShelf] | None = field(default=None, on_delete="nullify")
    loose: bool = False


async def test_a_nullify_that_fails_a_check_refuses_the_delete(store_factory: Any) -> None:
    """``on_delete="nullify"`` on an item whose check needs the reference: the delete is
    refused (``ValidationError``, rule = the check's name) and nothing is deleted or
    nullified, as SQL's CHECK refuses the FOREIGN KEY's SET NULL; before, the other
    backends deleted and stored an item failing its check. (MariaDB refuses a CHECK
    on a column a FOREIGN KEY's referential action writes: such a model cannot be
    created there, a limit of its own.)"""
    if store_factory.spec.id == "mysql":
        return
    shelves, books = store_factory(AtomShelf), store_factory(AtomBook)
    await shelves.create(AtomShelf(id="a"))
    await books.create(AtomBook(id="b1", shelf="a"))
    await books.create(AtomBook(id="b2", shelf="a", loose=True))
    before = await books.all()
    for delete in (lambda: shelves.delete("a"), lambda: shelves.delete_where(id="a")):
        with pytest.raises(ValidationError) as exc:
            await delete()
        assert exc.value.errors[0]["rule"] == "placed"
        assert await shelves.read("a") is not None and await books.all() == before
    out = await shelves.edit_batch([Delete("a")])
    assert not out[0].ok and out[0].code == "invalid", out
    if shelves.meta.atomic_batch:
        with pytest.raises(BatchError):
            await shelves.edit_batch([Delete("a")], atomic=True)
    assert await shelves.read("a") is not None and await books.all() == before
    await books.update("b1", loose=True)
    assert await shelves.delete("a")
    assert [b.shelf_id for b in await books.all()] == [None, None]

"""``Model.objects`` query sets on every backend, sync and async (docs/queryset.md).

Each test runs in a context of a data manager whose one engine is the backend's URL;
``ev`` awaits what an async query set returns (sync ones return values), ``rows`` gives
a set's list in both flavors. Few rows: the suite's budget is tight.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import pytest

from storeroom import (
    Avg,
    Conflict,
    Count,
    Max,
    Min,
    MultipleFound,
    Q,
    QueryLog,
    Sum,
    ValidationError,
    field,
    generated,
    stored,
)
from storeroom.context import AsyncDataManager, DataManager
from storeroom.store.aggregate import local_aggregate, prepare_aggregates


@stored(key="id", table="qs_items")
class Item:
    id: int
    name: str
    group: str = "a"
    qty: int = 0
    price: float = 0.0
    cost: Decimal = Decimal("0")
    rank: int | None = None
    note: str = field(default="", max_length=50)


@stored(key="id", table="qs_users")
class User:
    id: str = generated.uuid()
    name: str
    email: str = ""
    age: int = 0
    active: bool = True


async def ev(value: Any) -> Any:
    """The value of a terminal call in either flavor."""
    return await value if inspect.isawaitable(value) else value


async def rows(qs: Any) -> list[Any]:
    """A query set's list in either flavor (``await qs`` / ``list(qs)``)."""
    return await qs if hasattr(qs, "__await__") else list(qs)


class DM:
    """A data manager of the test's flavor over the backend's URL."""

    def __init__(self, is_async: bool, url: str) -> None:
        self.is_async = is_async
        self.dm: Any = AsyncDataManager() if is_async else DataManager()
        self.dm.add_engine("main", url)
        self.dm.register_models(Item, User)

    @asynccontextmanager
    async def context(self) -> AsyncIterator[Any]:
        if self.is_async:
            async with self.dm.context() as ctx:
                yield ctx
        else:
            with self.dm.context() as ctx:
                yield ctx

    async def close(self) -> None:
        await ev(self.dm.close())


@pytest.fixture
async def dm(store_factory: Any) -> AsyncIterator[DM]:
    manager = DM(store_factory.is_async, store_factory.url)
    yield manager
    await manager.close()


GROUPS = ("a", "b", "c")


def make(i: int) -> Item:
    return Item(id=i, name=f"item {i}", group=GROUPS[i % 3], qty=i % 4, price=i / 4,
                cost=Decimal(i) / 8, rank=None if i % 3 == 0 else i)


async def fill(n: int = 9) -> list[Item]:
    return list(await ev(Item.objects.bulk_create([make(i) for i in range(n)])))


async def test_chaining_slicing_and_reading(dm: DM) -> None:
    async with dm.context():
        created = await fill()
        assert len(created) == 9
        qs = Item.objects.filter(qty__gte=1).exclude(group="c").order_by("-qty", "id")
        base = await rows(qs)
        expect = sorted((i for i in created if i.qty >= 1 and i.group != "c"),
                        key=lambda i: (-i.qty, i.id))
        assert [i.id for i in base] == [i.id for i in expect]
        # slices: the store's limit; a slice of a slice narrows it
        assert [i.id for i in await rows(qs[:2])] == [i.id for i in expect[:2]]
        assert [i.id for i in await rows(qs[1:3])] == [i.id for i in expect[1:3]]
        assert [i.id for i in await rows(qs[1:4][1:])] == [i.id for i in expect[2:4]]
        assert await rows(qs[50:60]) == []
        assert (await ev(qs[0])).id == expect[0].id
        with pytest.raises(IndexError):
            await ev(qs[50])
        with pytest.raises(ValueError, match="negative"):
            qs[-1]  # noqa: B018
        with pytest.raises(ValueError, match="negative"):
            qs[-2:]  # noqa: B018
        with pytest.raises(TypeError):
            qs[:2].filter(id=1)
        # the set is immutable: chaining left it unchanged
        assert [i.id for i in await rows(qs)] == [i.id for i in base]
        assert await ev(qs.count()) == len(expect)
        assert await ev(qs[1:3].count()) == 2
        assert await ev(qs.exists()) is True
        assert await ev(Item.objects.filter(id=99).exists()) is False
        # get: the one match, None, MultipleFound; on a key attribute too
        assert (await ev(Item.objects.get(id=4))).name == "item 4"
        assert await ev(Item.objects.get(id=99)) is None
        with pytest.raises(MultipleFound):
            await ev(Item.objects.get(group="a"))
        assert (await ev(Item.objects.filter(group="a").get(qty=3))).id == 3
        # first / last / earliest / latest, and on an empty set None
        assert (await ev(Item.objects.first())).id == 0
        assert (await ev(Item.objects.last())).id == 8
        assert (await ev(qs.first())).id == expect[0].id
        assert (await ev(qs.last())).id == expect[-1].id
        assert (await ev(Item.objects.earliest("price"))).id == 0
        assert (await ev(Item.objects.latest("price"))).id == 8
        empty = Item.objects.filter(name="nobody")
        for call in (empty.first, empty.last):
            assert await ev(call()) is None
        assert await ev(empty.earliest("qty")) is None
        assert await ev(empty.latest("qty")) is None
        assert await rows(Item.objects.none()) == []
        assert await ev(Item.objects.none().count()) == 0
        # iteration: async for / for, and iterator() streaming pages
        if dm.is_async:
            assert [i.id async for i in Item.objects.order_by("id")] == list(range(9))
            assert [i.id async for i in Item.objects.order_by("-id").iterator(chunk_size=4)
                    ] == list(range(8, -1, -1))
        else:
            assert [i.id for i in Item.objects.order_by("id")] == list(range(9))
            assert [i.id for i in Item.objects.order_by("-id").iterator(chunk_size=4)
                    ] == list(range(8, -1, -1))


async def test_values_distinct_in_bulk_and_key_filters(dm: DM) -> None:
    async with dm.context():
        await fill()
        vals = Item.objects.filter(id__lt=4).order_by("id").values("id", "group")
        assert await rows(vals) == [{"id": i, "group": GROUPS[i % 3]} for i in range(4)]
        assert await rows(vals[1:3]) == [{"id": i, "group": GROUPS[i % 3]} for i in (1, 2)]
        assert await rows(Item.objects.order_by("id").values_list("id", "qty")[:3]) == [
            (0, 0), (1, 1), (2, 2)]
        flat = Item.objects.order_by("id").values_list("id", flat=True)
        assert await rows(flat.filter(group="b")) == [1, 4, 7]
        groups = Item.objects.order_by("group").values_list("group", flat=True).distinct()
        assert await rows(groups) == ["a", "b", "c"]
        assert await rows(groups[1:]) == ["b", "c"]
        assert await ev(groups.count()) == 3
        assert await rows(Item.objects.order_by("id").values("group").distinct()) == [
            {"group": "a"}, {"group": "b"}, {"group": "c"}]
        with pytest.raises(TypeError):
            Item.objects.values_list("id", "qty", flat=True)
        bulk = await ev(Item.objects.in_bulk([1, 2, 99]))
        assert sorted(bulk) == [1, 2] and bulk[2].name == "item 2"
        assert sorted(await ev(Item.objects.filter(group="a").in_bulk([0, 1, 3]))) == [0, 3]
        assert sorted(await ev(Item.objects.filter(qty=3).in_bulk())) == [3, 7]
        assert await ev(Item.objects.filter(id__in=[2, 5]).count()) == 2
        assert await ev(Item.objects.exclude(id__gte=2).count()) == 2


async def test_atom_db_habits(dm: DM) -> None:
    # atom-db's README: django-style filters, a list of dicts as OR, get_or_create
    async with dm.context():
        await fill(6)
        either = Item.objects.filter([{"name": "item 1"}, {"group": "c", "qty": 1}])
        assert sorted(i.id for i in await rows(either)) == [1, 5]
        named = Item.objects.filter(name__in=["item 2", "item 4", "none"])
        assert sorted(i.id for i in await rows(named)) == [2, 4]
        mixed = Item.objects.filter(Q(qty=0) | Q(qty=3), name__startswith="item")
        assert sorted(i.id for i in await rows(mixed)) == [0, 3, 4]
        got, created = await ev(Item.objects.get_or_create(id=40, name="new",
                                                           defaults={"qty": 3}))
        assert created and got.qty == 3 and got.name == "new"
        again, created = await ev(Item.objects.get_or_create(id=40, name="new",
                                                             defaults={"qty": 1}))
        assert not created and again.qty == 3
        up, created = await ev(Item.objects.update_or_create(id=40, defaults={"qty": 2}))
        assert not created and up.qty == 2
        fresh, created = await ev(Item.objects.update_or_create(id=41, name="x",
                                                                defaults={"qty": 1}))
        assert created and fresh.qty == 1
        made = await ev(Item.objects.create(id=50, name="made"))
        assert (await ev(Item.objects.get(id=50))) == made
    async with dm.context():  # committed with the context
        assert (await ev(Item.objects.get(id=40))).qty == 2


async def test_atom_db_readme_scenario(dm: DM) -> None:
    # atom-db's "Django style queries", as its README writes them (generated keys)
    async with dm.context():
        john, created = await ev(User.objects.get_or_create(
            name="John Doe", email="", age=21, active=True))
        assert created and john.id
        jane, created = await ev(User.objects.get_or_create(
            name="Jane Doe", email="", age=48, active=False))
        assert created and jane.id != john.id
        again, created = await ev(User.objects.get_or_create(name="John Doe", email=""))
        assert not created and again == john
        assert await ev(User.objects.get(name__startswith="John")) == john
        users = await rows(User.objects.filter(name__in=[john.name, jane.name]))
        assert len(users) == 2
        users = await rows(User.objects.filter(active=False))
        assert len(users) == 1 and users[0].active is False
        assert len(await rows(User.objects.all())) == 2


async def test_update_delete_and_using(dm: DM) -> None:
    async with dm.context():
        await fill(6)
        assert await ev(Item.objects.filter(group="a").update(note="seen")) == 2
        # the number matched, also when nothing changes
        assert await ev(Item.objects.filter(group="a").update(note="seen")) == 2
        assert sorted(await rows(Item.objects.filter(note="seen").values_list(
            "id", flat=True))) == [0, 3]
        with pytest.raises(TypeError):
            await ev(Item.objects.all()[:2].update(note="x"))
        assert await ev(Item.objects.none().update(note="x")) == 0
        assert await ev(Item.objects.filter(id__in=[0, 1]).delete()) == 2
        assert await ev(Item.objects.none().delete()) == 0
        assert await ev(Item.objects.using("main").count()) == 4


async def test_bulk_create_is_all_or_nothing(dm: DM) -> None:
    """One object that cannot be stored (a key taken in the store or earlier in the
    same call, an invalid value) → its typed error, and none of the objects created
    (DynamoDB without transactions: created and taken back)."""
    async with dm.context():
        await ev(Item.objects.create(id=5, name="kept"))
        for bad, err in (([make(6), make(7), make(5)], Conflict),   # in the store
                         ([make(6), make(7), make(6)], Conflict),   # in the call
                         ([make(6), make(7), Item(id=8, name="x", note="n" * 51)],
                          ValidationError)):
            with pytest.raises(err):
                await ev(Item.objects.bulk_create(bad))
            assert sorted(await rows(Item.objects.values_list("id", flat=True))) == [5]
        made = await ev(Item.objects.bulk_create([make(6), make(7)]))
        assert [i.id for i in made] == [6, 7]
    async with dm.context():  # committed: the failures took nothing else back
        assert sorted(await rows(Item.objects.values_list("id", flat=True))) == [5, 6, 7]


# every one native on SQL and MongoDB (int and float attributes), and ones evaluated
# locally everywhere (Decimal and str are stored in text forms)
NATIVE = {"n": Count(), "ranked": Count("rank"), "qty": Sum("qty"), "avg": Avg("qty"),
          "low": Min("price"), "high": Max("price"), "mean": Avg("price"),
          "rank_sum": Sum("rank"), "rank_avg": Avg("rank"), "rank_min": Min("rank")}
LOCAL = {"n": Count(), "cost": Sum("cost"), "cost_avg": Avg("cost"), "top": Max("name"),
         "cheap": Min("cost")}


async def test_aggregates_agree_with_local_evaluation(dm: DM) -> None:
    async with dm.context():
        for named in (NATIVE, LOCAL):  # over no rows: None, and 0 for Count
            assert await ev(Item.objects.aggregate(**named)) == {
                k: (0 if isinstance(v, Count) else None) for k, v in named.items()}
        created = await fill(9)
        for named in (NATIVE, LOCAL):
            specs = prepare_aggregates(Item.__storeroom__, named)
            for qs, keep in ((Item.objects.all(), lambda i: True),
                             (Item.objects.filter(group__in=["a", "b"]),
                              lambda i: i.group in ("a", "b")),
                             (Item.objects.exclude(qty=1).filter(rank__isnull=False),
                              lambda i: i.qty != 1 and i.rank is not None),
                             (Item.objects.filter(name="nobody"), lambda i: False)):
                got = await ev(qs.aggregate(**named))
                expect = local_aggregate(specs, [i for i in created if keep(i)])
                assert got.keys() == expect.keys()
                for k, v in expect.items():
                    if isinstance(v, float):
                        assert got[k] == pytest.approx(v) and isinstance(got[k], float), k
                    else:
                        assert got[k] == v and type(got[k]) is type(v), (k, got[k], v)
        whole = await ev(Item.objects.aggregate(**NATIVE))
        assert whole["n"] == 9 and whole["ranked"] == 6 and whole["qty"] == 12
        assert isinstance(whole["avg"], float) and whole["avg"] == pytest.approx(12 / 9)
        assert whole["rank_avg"] == pytest.approx(sum((1, 2, 4, 5, 7, 8)) / 6)
        other = await ev(Item.objects.aggregate(**LOCAL))
        assert other["cost"] == Decimal(36) / 8 and isinstance(other["cost_avg"], Decimal)
        assert other["top"] == "item 8"
        # over a slice: the slice's items
        sliced = await ev(Item.objects.order_by("id")[:3].aggregate(s=Sum("qty"), n=Count()))
        assert sliced == {"s": 0 + 1 + 2, "n": 3}


async def test_aggregates_are_one_round_trip_on_sql_and_mongodb(dm: DM, store_factory: Any
                                                                 ) -> None:
    async with dm.context() as ctx:
        await fill(5)
        backend = ctx.store(Item).meta.backend
        with QueryLog() as log:
            got = await ev(Item.objects.filter(qty__gte=1).aggregate(**NATIVE))
        assert got["n"] == 3 and got["qty"] == 1 + 2 + 3
        if backend in ("sqlite", "postgresql", "mysql"):
            assert len(log.records) == 1
            text = log.records[0].statement.lower()
            assert "sum(" in text and "min(" in text and "max(" in text and "count(" in text
        elif backend == "mongodb":
            assert len(log.records) == 1 and "aggregate" in log.records[0].statement
        # the spec ids of the native backends name their backends
        assert (backend in ("sqlite", "postgresql", "mysql", "mongodb")) == (
            store_factory.spec.id in ("sqlite", "postgres", "mysql", "mongodb"))

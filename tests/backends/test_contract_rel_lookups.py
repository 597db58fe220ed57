"""Contract: lookups and ordering across relations on every backend, sync and async —
forward (``category__name``), reverse with exists semantics (``products__title``),
many-to-many through a model (``tags__label__in``), any depth, inside ``Q`` / ``~``, a
None reference seen as a LEFT JOIN sees it, and the Ref name itself as a filter."""

from __future__ import annotations

import pytest

from storeroom import InvalidFilter, Many, Q, QueryLog, Ref, field, stored

# the store front plans these on every backend: one server per backend's code
pytestmark = pytest.mark.one_server_per_backend


@stored(key="id")
class Shelf:
    id: int
    name: str = ""
    kinds: Many[Kind] = field(reverse="shelf")


@stored(key="id")
class Kind:
    id: int
    name: str = ""
    note: str | None = None
    shelf: Ref[Shelf] | None = None
    parts: Many[Part] = field(reverse="kind")


@stored(key="id")
class Label:
    id: int
    text: str = ""


@stored(key="id")
class Part:
    id: int
    title: str = ""
    price: int = 0
    kind: Ref[Kind] | None = field(default=None, on_delete="nullify")
    labels: Many[Label] = field(through="PartLabel")


@stored(key=("part", "label"))
class PartLabel:
    part: Ref[Part] = field(on_delete="cascade")
    label: Ref[Label] = field(on_delete="cascade")


async def _graph(store_factory):  # noqa: ANN001, ANN202
    shelves, kinds, labels = store_factory(Shelf), store_factory(Kind), store_factory(Label)
    parts, links = store_factory(Part), store_factory(PartLabel)
    await shelves.create(Shelf(id=1, name="top"))
    await shelves.create(Shelf(id=2, name="low"))
    await kinds.create(Kind(id=1, name="PCB", shelf=1))
    await kinds.create(Kind(id=2, name="Cable", note="n", shelf=2))
    await kinds.create(Kind(id=3, name="Empty"))
    for i, (title, price, kind) in enumerate(
            [("USB driver", 3, 1), ("board", 9, 1), ("cord", 2, 2), ("loose", 5, None)], 1):
        await parts.create(Part(id=i, title=title, price=price, kind=kind))
    await labels.create(Label(id=1, text="red"))
    await labels.create(Label(id=2, text="blue"))
    for p, lab in [(1, 1), (1, 2), (3, 2)]:
        await links.create(PartLabel(part=p, label=lab))
    return shelves, kinds, labels, parts, links


def _ids(items) -> list[int]:  # noqa: ANN001
    return sorted(x.id for x in items)


async def test_forward_reverse_and_many_to_many_lookups(store_factory) -> None:  # noqa: ANN001
    shelves, kinds, _, parts, _ = await _graph(store_factory)
    # forward, a None reference seen as a LEFT JOIN sees it
    assert _ids(await parts.search_all(kind__name="PCB")) == [1, 2]
    assert _ids(await parts.search_all(kind__name__ne="PCB")) == [3, 4]
    assert _ids(await parts.search_all(kind__name__isnull=True)) == [4]
    assert _ids(await parts.search_all(kind__note__isnull=True)) == [1, 2, 4]
    assert _ids(await parts.search_all(~Q(kind__name="PCB"))) == [3, 4]
    assert _ids(await parts.search_all(Q(kind__name="Cable") | Q(price__gte=9))) == [2, 3]
    # two levels forward
    assert _ids(await parts.search_all(kind__shelf__name="low")) == [3]
    assert _ids(await parts.search_all(~Q(kind__shelf__name="low"))) == [1, 2, 4]
    # reverse, exists semantics; "has none"
    assert _ids(await kinds.search_all(parts__title__icontains="DRIVER")) == [1]
    assert _ids(await kinds.search_all(parts__isnull=True)) == [3]
    assert _ids(await kinds.search_all(parts__isnull=False)) == [1, 2]
    assert _ids(await kinds.search_all(~Q(parts__price__gt=2))) == [2, 3]
    # each to-many leaf is its own "exists": two different parts meet these
    assert _ids(await kinds.search_all(parts__title="board", parts__price=3)) == [1]
    assert _ids(await shelves.search_all(kinds__parts__title="cord")) == [2]
    assert await kinds.count(parts__price__lt=3) == 1
    # many-to-many through PartLabel
    assert _ids(await parts.search_all(labels__text__in=["blue"])) == [1, 3]
    assert _ids(await parts.search_all(labels__text="red")) == [1]
    assert _ids(await parts.search_all(labels__isnull=True)) == [2, 4]
    assert _ids(await parts.search_all(~Q(labels__text="red") & Q(kind__name="PCB"))) == [2]
    assert _ids(await kinds.search_all(parts__labels__text="blue")) == [1, 2]
    # the Ref itself: an item, a key, a list of them, None; or its column
    pcb = await kinds.read(1)
    assert _ids(await parts.search_all(kind=pcb)) == [1, 2]
    assert _ids(await parts.search_all(kind=2)) == [3]
    assert _ids(await parts.search_all(kind__in=[pcb, 2])) == [1, 2, 3]
    assert _ids(await parts.search_all(kind__isnull=True)) == [4]
    assert _ids(await parts.search_all(kind_id=1)) == [1, 2]
    assert _ids(await parts.search_all(kind__ne=1)) == [3, 4]
    assert _ids(await parts.search_all(labels=2)) == [1, 3]
    with pytest.raises(InvalidFilter):
        await parts.search(kind__nosuch="x")
    with pytest.raises(InvalidFilter):
        await kinds.search(parts__gt=1)


async def test_writes_and_pages_by_relation_lookups(store_factory) -> None:  # noqa: ANN001
    _, _, _, parts, _ = await _graph(store_factory)
    page = await parts.search(kind__name="PCB", order_by="id", limit=1)
    assert [p.id for p in page] == [1] and page.next is not None
    rest = await parts.search(kind__name="PCB", order_by="id", limit=1, after=page.next)
    assert [p.id for p in rest] == [2]
    assert await parts.update_where(kind__shelf__name="low", changes={"price": 7}) == 1
    assert (await parts.read(3)).price == 7
    assert await parts.delete_where(labels__isnull=True, kind__name="PCB") == 1
    with pytest.raises(InvalidFilter):  # checked on the item itself
        await parts.update(1, price=1, precondition=Q(kind__name="PCB"))
    assert _ids(await parts.all()) == [1, 3, 4]


async def test_round_trips_of_a_relation_lookup(store_factory) -> None:  # noqa: ANN001
    """SQL runs a lookup in the statement itself (EXISTS); elsewhere each forward or
    reverse lookup is one search of the related model first (many-to-many: two), as the
    backends' docs pages say."""
    _, kinds, _, parts, _ = await _graph(store_factory)
    wheres = (Q(kind__name="PCB"), Q(labels__text="red"))
    for where in wheres:  # warm: every related store opened, its table ready
        assert await parts.search(where)
    counts = []
    for where in wheres:
        async with QueryLog() as log:
            found = await parts.search(where)
        counts.append(len(log.records))
        assert found.items
    backend = store_factory.spec.id
    if backend in ("sqlite", "postgres", "mysql"):
        assert counts == [1, 1] and "EXISTS" in log.records[-1].statement
    elif backend == "redis":  # a search is an index range and an MGET
        assert counts == [4, 6]
    elif backend != "memory":  # memory's scans of a related model are not round trips
        assert counts == [2, 3]


async def test_order_by_an_attribute_across_a_ref(store_factory) -> None:  # noqa: ANN001
    """None references sort as None does: last, in both directions; pages continue."""
    _, kinds, _, parts, _ = await _graph(store_factory)
    await parts.create(Part(id=5, title="spare", kind=2))
    got = [p.id for p in await parts.search_all(order_by=["kind__name", "-id"])]
    assert got == [5, 3, 2, 1, 4]  # Cable, Cable, PCB, PCB, None
    got = [p.id for p in await parts.search_all(order_by=["-kind__name", "id"], limit=2)]
    assert got == [1, 2, 3, 5, 4]
    assert [p.id for p in await parts.search_all(order_by="kind__shelf__name")] == [
        3, 5, 1, 2, 4]  # low, low, top, top, None
    page = await parts.search(Q(price__gte=3), order_by="-kind__name", limit=2)
    assert [p.id for p in page] == [1, 2]  # PCB, PCB, then None
    page = await parts.search(Q(price__gte=3), order_by="-kind__name", after=page.next)
    assert [p.id for p in page] == [4]
    with pytest.raises(InvalidFilter):
        await kinds.search(order_by="parts__title")
    with pytest.raises(InvalidFilter):
        await parts.search(order_by="kind__nosuch")


async def test_query_sets_take_relation_lookups(store_factory) -> None:  # noqa: ANN001
    """``Model.objects`` passes lookups and orderings across relations to the store."""
    import inspect

    from storeroom.context import AsyncDataManager, DataManager

    async def ev(value):  # noqa: ANN001, ANN202
        return await value if inspect.isawaitable(value) else value

    async def rows(qs):  # noqa: ANN001, ANN202
        return await qs if hasattr(qs, "__await__") else list(qs)

    dm = AsyncDataManager() if store_factory.is_async else DataManager()
    dm.add_engine("main", store_factory.url)
    dm.register_models(Shelf, Kind, Label, Part, PartLabel)
    try:
        ctx_manager = dm.context()
        ctx = await ctx_manager.__aenter__() if store_factory.is_async else ctx_manager.__enter__()
        try:
            for m, items in [(Shelf, [Shelf(id=1, name="top")]),
                             (Kind, [Kind(id=1, name="PCB", shelf=1), Kind(id=2, name="x")]),
                             (Label, [Label(id=1, text="red")]),
                             (Part, [Part(id=1, kind=1), Part(id=2, kind=1), Part(id=3)]),
                             (PartLabel, [PartLabel(part=1, label=1)])]:
                for item in items:
                    await ev(ctx.store(m).create(item))
            qs = Part.objects.filter(kind__name="PCB").exclude(labels__text="red")
            assert [p.id for p in await rows(qs)] == [2]
            assert await ev(Part.objects.filter(Q(kind__shelf__name="top")).count()) == 2
            ordered = await rows(Part.objects.order_by("kind__name", "-id"))
            assert [p.id for p in ordered] == [2, 1, 3]
            assert [k.id for k in await rows(Kind.objects.filter(parts__isnull=True))] == [2]
            found = await ev(Part.objects.filter(kind__name="PCB").in_bulk([1, 3]))
            assert sorted(found) == [1]
        finally:
            if store_factory.is_async:
                await ctx_manager.__aexit__(None, None, None)
            else:
                ctx_manager.__exit__(None, None, None)
    finally:
        await ev(dm.close())

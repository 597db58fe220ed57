"""atom-db's documented scenarios (its README, ``../shared/seeds/atom-db.txt``), written
against storeroom's ``Model.objects``: django-style filters, ``get_or_create``, a list of
dicts as OR, ``name__in``, the cache returning the same object (the context's identity
map), transactions (a context's unit of work), and select / prefetch related.

Sync and async, on memory and SQLite (the query set's code is the same on every backend;
the contract suite runs query sets everywhere). Few rows: the suite's budget is tight.
The relation-loading scenarios wait for eager loading: they are strict xfails, so the
merge that brings it must flip them.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from storeroom import (
    InvalidFilter,
    LazyLoadBlocked,
    Many,
    MultipleFound,
    Q,
    Ref,
    field,
    generated,
    is_loaded,
    stored,
)
from tests.dual_manager import DualManager


@stored(key="id", table="adb_user")
class User:
    id: str = generated.uuid()
    name: str
    email: str = ""
    age: int = 0
    active: bool = True


@stored(key="id", table="adb_category")
class Category:
    id: int = generated.sequence()
    name: str
    products: Many[Product] = field(reverse="category")


@stored(key="id", table="adb_product")
class Product:
    id: int = generated.sequence()
    title: str
    category: Ref[Category] | None = field(default=None, on_delete="nullify")


MODELS = (User, Category, Product)


async def ev(value: Any) -> Any:
    """The value of a terminal call in either flavor."""
    return await value if inspect.isawaitable(value) else value


async def rows(qs: Any) -> list[Any]:
    """A query set's list in either flavor."""
    return await qs if hasattr(qs, "__await__") else list(qs)


@pytest.fixture(params=["memory-sync", "memory-async", "sqlite-sync", "sqlite-async"])
async def d(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DualManager]:
    backend, mode = request.param.split("-")
    url = (f"memory://adb{uuid.uuid4().hex}" if backend == "memory"
           else f"sqlite:///{tmp_path / 'adb.sqlite'}")
    manager = DualManager(mode == "async", url, MODELS)
    yield manager
    await manager.close()


async def _people() -> tuple[Any, Any]:
    john, created = await ev(User.objects.get_or_create(
        name="John Doe", email="", age=21, active=True))
    assert created
    jane, created = await ev(User.objects.get_or_create(
        name="Jane Doe", email="", age=48, active=False))
    assert created
    return john, jane


async def test_django_style_queries_as_the_readme_writes_them(d: DualManager) -> None:
    async with d.context():
        john, jane = await _people()
        assert john.id and jane.id and john.id != jane.id
        # startswith; "in"; atom-db's ``active__is=False`` is a plain ``active=False``
        assert await ev(User.objects.get(name__startswith="John")) is john
        users = await rows(User.objects.filter(name__in=[john.name, jane.name]))
        assert len(users) == 2
        users = await rows(User.objects.filter(active=False))
        assert len(users) == 1 and users[0].active is False
        assert await rows(User.objects.filter(active__ne=True)) == users
        # more of the operators Django users write
        assert await rows(User.objects.filter(name__icontains="DOE", age__gte=30)) == [jane]
        assert await rows(User.objects.filter(age__range=(20, 30))) == [john]
        assert await rows(User.objects.filter(name__iendswith="doe").order_by("-age")) == [
            jane, john]
        assert await ev(User.objects.get(name="Nobody")) is None
        with pytest.raises(MultipleFound):
            await ev(User.objects.get(email=""))
        with pytest.raises(InvalidFilter):
            await rows(User.objects.filter(nickname="x"))


async def test_get_or_create_finds_or_makes_one(d: DualManager) -> None:
    async with d.context():
        john, _ = await _people()
        # found: by any lookups, operators included; defaults are not used then
        again, created = await ev(User.objects.get_or_create(name="John Doe",
                                                             defaults={"age": 99}))
        assert not created and again is john and again.age == 21
        found, created = await ev(User.objects.get_or_create(name__startswith="Jane"))
        assert not created and found.name == "Jane Doe"
        # made: of the plain lookups and the defaults (an operator lookup is not a value)
        bob, created = await ev(User.objects.get_or_create(
            name="Bob", age__gte=50, defaults={"age": 60, "email": "bob@x"}))
        assert created and (bob.name, bob.age, bob.email) == ("Bob", 60, "bob@x")
        # on a filtered set the filter is part of the search
        _, created = await ev(User.objects.filter(active=False).get_or_create(name="John Doe"))
        assert created
        assert await ev(User.objects.filter(name="John Doe").count()) == 2
    async with d.context():  # the context committed what it made
        assert await ev(User.objects.count()) == 4


async def test_a_list_of_dicts_is_an_or_of_its_dicts(d: DualManager) -> None:
    async with d.context():
        john, jane = await _people()
        await ev(User.objects.create(name="Ann", age=48, email="ann@x"))
        either = User.objects.filter([{"name": "John Doe"}, {"age": 48, "active": False}])
        assert sorted(u.name for u in await rows(either)) == ["Jane Doe", "John Doe"]
        # ANDed with keyword lookups and with further filters; exclude negates the OR
        assert await rows(User.objects.filter([{"age": 21}, {"age": 48}], active=True)
                          .order_by("name")) == [await ev(User.objects.get(name="Ann")), john]
        assert await rows(User.objects.exclude([{"age": 21}, {"name": "Ann"}])) == [jane]
        # a dict with operators, a dict next to a Q
        assert await rows(User.objects.filter([{"name__startswith": "Ja"},
                                               {"email__contains": "@"}], Q(age=48))
                          .order_by("name")) == [await ev(User.objects.get(name="Ann")), jane]
        assert await ev(User.objects.filter([{"name": "nobody"}]).count()) == 0
        with pytest.raises(InvalidFilter):
            User.objects.filter([])


async def test_in_lookups(d: DualManager) -> None:
    async with d.context():
        john, jane = await _people()
        assert await rows(User.objects.filter(name__in=("John Doe", "x")).order_by(
            "name")) == [john]
        assert await rows(User.objects.filter(name__in=[])) == []
        assert await rows(User.objects.filter(age__not_in=[21])) == [jane]
        assert await rows(User.objects.exclude(name__in=["John Doe"])) == [jane]
        assert await ev(User.objects.filter(id__in=[john.id, jane.id, "nope"]).count()) == 2
        assert sorted(await ev(User.objects.in_bulk([john.id, "nope"]))) == [john.id]


async def test_the_cache_returns_the_same_object(d: DualManager) -> None:
    # atom-db's Model.objects.cache: here the context's identity map
    async with d.context() as ctx:
        john, jane = await _people()
        assert await ev(User.objects.get(id=john.id)) is john
        assert (await rows(User.objects.filter(active=True)))[0] is john
        assert await ev(ctx.store(User).read(jane.id)) is jane
        assert (await ev(User.objects.in_bulk([jane.id])))[jane.id] is jane
        assert await ev(User.objects.order_by("age").first()) is john
        # writes through the set update the mapped object in place
        assert await ev(User.objects.filter(id=john.id).update(age=22)) == 1
        assert john.age == 22 and await ev(User.objects.get(id=john.id)) is john
        up, created = await ev(User.objects.update_or_create(id=jane.id,
                                                             defaults={"age": 49}))
        assert not created and up is jane and jane.age == 49
        ids = {john.id, jane.id}
    async with d.context():  # a new context has its own map: new objects, fresh values
        fresh = await ev(User.objects.get(id=john.id))
        assert fresh is not john and fresh == john and fresh.age == 22
        assert {u.id for u in await rows(User.objects.all())} == ids


async def test_transactions_roll_back_on_error(d: DualManager) -> None:
    async with d.context():
        john, _ = await _people()
    with pytest.raises(RuntimeError):
        async with d.context():
            await ev(User.objects.create(name="Temp"))
            await ev(User.objects.filter(name="John Doe").update(age=80))
            await ev(User.objects.filter(name="Jane Doe").delete())
            raise RuntimeError("the request failed")
    async with d.context() as ctx:  # nothing of the failed context is left
        assert sorted(u.name for u in await rows(User.objects.all())) == ["Jane Doe",
                                                                          "John Doe"]
        assert (await ev(User.objects.get(name="John Doe"))).age == 21
        # a savepoint undoes only its own part
        await ev(User.objects.create(name="Kept"))
        with pytest.raises(ValueError):
            async with d.savepoint(ctx):
                await ev(User.objects.create(name="Undone"))
                raise ValueError
        assert await ev(User.objects.filter(name__in=["Kept", "Undone"]).values_list(
            "name", flat=True).count()) == 1
    async with d.context():
        assert await ev(User.objects.filter(name="Kept").exists())
        assert not await ev(User.objects.filter(name="Undone").exists())


async def _catalog() -> tuple[Any, Any]:
    pcb = await ev(Category.objects.create(name="PCB"))
    driver = await ev(Product.objects.create(title="Stepper driver", category=pcb))
    await ev(Product.objects.create(title="Heatsink"))
    return pcb, driver


async def test_an_unloaded_relation_holds_only_its_key(d: DualManager) -> None:
    # atom-db's "unloaded" model with only the primary key (``__restored__`` False)
    async with d.context():
        pcb, _ = await _catalog()
    async with d.context():
        product = await ev(Product.objects.get(title__icontains="driver"))
        assert product.category_id == pcb.id
        stub = product.category
        assert stub.id == pcb.id and not is_loaded(stub)
        assert (await ev(Product.objects.get(title="Heatsink"))).category is None
        assert await rows(Product.objects.filter(category_id=pcb.id)) == [product]
        if d.is_async:  # async code never does hidden I/O
            with pytest.raises(LazyLoadBlocked, match="prefetch_related|load"):
                stub.name  # noqa: B018


EAGER = pytest.mark.xfail(raises=(TypeError, AttributeError), strict=True,
                          reason="eager loading not merged yet")


@EAGER
async def test_select_related_loads_the_category(d: DualManager) -> None:
    async with d.context():
        await _catalog()
    async with d.context():
        products = await rows(Product.objects.select_related("category")
                              .filter(title__icontains="driver"))
        assert len(products) == 1 and is_loaded(products[0].category)
        assert products[0].category.name == "PCB"


@EAGER
async def test_prefetch_related_loads_the_products(d: DualManager) -> None:
    async with d.context():
        await _catalog()
    async with d.context():
        category = await ev(Category.objects.prefetch_related("products").get(name="PCB"))
        assert [p.title for p in category.products] == ["Stepper driver"]
        # chained either way round, and on a whole set
        again = await ev(Category.objects.filter(name="PCB").prefetch_related("products")
                         .first())
        assert again is category
        assert [len(c.products) for c in await rows(
            Category.objects.prefetch_related("products"))] == [1]


@pytest.mark.xfail(strict=True, reason="a Ref's target is not taken from the context's "
                   "identity map yet (comes with eager loading)")
async def test_related_objects_come_from_the_cache(d: DualManager) -> None:
    # atom-db: "prefetch the related objects and they are pulled from the cache"
    async with d.context():
        await _catalog()
    async with d.context():
        all_categories = await rows(Category.objects.all())
        products = await rows(Product.objects.filter(title__icontains="driver"))
        assert products[0].category is all_categories[0]
        assert is_loaded(products[0].category)


#: DESIGN.md "Query sets": every method, on both flavors (select_related and
#: prefetch_related are in the eager-loading tests above)
METHODS = ("all filter exclude order_by get first last earliest latest count exists values "
           "values_list distinct aggregate in_bulk iterator create bulk_create get_or_create "
           "update_or_create update delete using none").split()


def test_every_query_set_method_of_the_design_exists() -> None:
    from storeroom.objects import AsyncQuerySet, QuerySet
    for cls in (QuerySet, AsyncQuerySet):
        missing = [m for m in METHODS if not callable(getattr(cls, m, None))]
        assert missing == [], (cls.__name__, missing)


async def test_django_readings_of_the_edges(d: DualManager) -> None:
    async with d.context():
        john, jane = await _people()
        ann = await ev(User.objects.create(name="Ann", age=48))
        # exclude() with nothing to exclude is the whole set, as in Django
        assert await ev(User.objects.exclude().count()) == 3
        # earliest / latest take tie-breaking fields, as in Django
        assert await ev(User.objects.latest("age", "name")) is jane
        assert await ev(User.objects.earliest("-age", "name")) is ann
        assert await ev(User.objects.latest("-age")) is john
        # in_bulk gives items by key: not after values()
        with pytest.raises(TypeError):
            await ev(User.objects.values("name").in_bulk([john.id]))
        # values / values_list chain, slice and count like sets
        ages = User.objects.order_by("age", "name").values_list("age", flat=True)
        assert await rows(ages) == [21, 48, 48]
        assert await rows(ages.distinct()) == [21, 48]
        assert await rows(ages.filter(active=True)[1:]) == [48]
        assert await ev(ages[0]) == 21 and await ev(ages.distinct().count()) == 2
        assert await rows(User.objects.values("name").filter(age=48).order_by("name")[:1]
                          ) == [{"name": "Ann"}]
        # none() asks nothing and answers like an empty set
        none = User.objects.none()
        assert await rows(none.values("name")) == [] and await ev(none.first()) is None
        assert await ev(none.in_bulk([john.id])) == {} and await ev(none.exists()) is False
        # iterator() streams the same rows, also of values
        if d.is_async:
            streamed = [n async for n in ages.iterator(chunk_size=2)]
        else:
            streamed = list(ages.iterator(chunk_size=2))
        assert streamed == [21, 48, 48]

"""Contract: lookups into list and nested attributes, on every backend, sync and async.

``tags__contains="x"`` is membership on a list attribute; ``address__city="Paris"``,
``address__zip__startswith="75"`` and ``attr("address")["city"]`` follow nested
dataclass fields and dict keys, any depth. Every result equals local evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

import pytest

from storeroom import InvalidFilter, Q, attr, field, stored
from storeroom.model import meta_of
from storeroom.query import build_filter, compile_local


@dataclass
class Geo:
    lat: int
    label: str | None = None


@dataclass
class Addr:
    city: str
    zip: str
    geo: Geo | None = None
    lines: list[str] = dc_field(default_factory=list)


@stored
class Person:
    id: int
    name: str = ""
    tags: list[str] = field(default_factory=list)
    nums: list[int] = field(default_factory=list)
    address: Addr | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, int] = field(default_factory=dict)


META = meta_of(Person)

PEOPLE = [
    Person(id=1, name="ann", tags=["x", "y"], nums=[1, 2],
           address=Addr("Paris", "75001", Geo(48, "centre"), ["1 rue A"]),
           meta={"k": 1, "s": "abc", "b": True, "deep": {"e": 2}}, scores={"a": 3}),
    Person(id=2, name="bob", tags=["y"], nums=[3],
           address=Addr("Lyon", "69001", Geo(45)), meta={"k": True, "s": "ABC"},
           scores={"a": 1, "b": 9}),
    Person(id=3, name="cy", tags=[], nums=[], address=None, meta={}, scores={}),
    Person(id=4, name="dee", tags=["X", "xy"], nums=[2, 1],
           address=Addr("Paris", "75016", None), meta={"k": "1", "s": 5, "b": 1},
           scores={"b": 2}),
    Person(id=5, name="eve", tags=["z", "x"], nums=[10],
           address=Addr("Nice", "06000", Geo(43, "port")),
           meta={"k": 2.5, "deep": {"e": "2"}, "s": None}),
]


@pytest.fixture
async def people(store_factory):
    s = store_factory(Person)
    for p in PEOPLE:
        await s.create(p)
    return s


def local(where: Any) -> list[int]:
    keep = compile_local(build_filter(META, where))
    return [p.id for p in PEOPLE if keep(p)]


async def ids(s, where: Any) -> list[int]:
    return [p.id for p in await s.search_all(where, order_by="id")]


# each filter and the ids it selects (checked against local evaluation as well)
CASES: list[tuple[Any, list[int]]] = [
    ({"tags__contains": "x"}, [1, 5]),
    ({"tags__contains": "X"}, [4]),
    ({"nums__contains": 1}, [1, 4]),
    ({"nums__contains": "2"}, [1, 4]),  # coerced to the element type
    ({"address__city": "Paris"}, [1, 4]),
    ({"address__city__ne": "Paris"}, [2, 3, 5]),  # None (no address) is "not equal"
    ({"address__zip__startswith": "75"}, [1, 4]),
    ({"address__zip__gte": "69001"}, [1, 2, 4]),
    ({"address__city__in": ["Lyon", "Nice"]}, [2, 5]),
    ({"address__city__not_in": ["Lyon", "Nice"]}, [1, 3, 4]),
    ({"address__city__icontains": "ARI"}, [1, 4]),
    ({"address__isnull": True}, [3]),
    ({"address__geo__isnull": True}, [3, 4]),
    ({"address__geo__lat__gt": 44}, [1, 2]),
    ({"address__geo__lat": "45"}, [2]),  # coerced to the field's type
    ({"address__geo__lat__range": (43, 45)}, [2, 5]),
    ({"address__geo__label__isnull": True}, [2, 3, 4]),
    ({"address__geo__label__endswith": "re"}, [1]),
    ({"address__lines__contains": "1 rue A"}, [1]),
    ({"meta__k": 1}, [1]),  # a number: not True, not "1"
    ({"meta__k": True}, [2]),
    ({"meta__k": "1"}, [4]),
    ({"meta__k__ne": 1}, [2, 3, 4, 5]),
    ({"meta__k__gt": 1}, [5]),  # numbers only: True and "1" are other types
    ({"meta__k__in": [1, "1"]}, [1, 4]),
    ({"meta__k__not_in": [1, True]}, [3, 4, 5]),
    ({"meta__k__isnull": True}, [3]),
    ({"meta__s__istartswith": "ab"}, [1, 2]),
    ({"meta__s__isnull": True}, [3, 5]),  # missing or null
    ({"meta__b": True}, [1]),
    ({"meta__deep__e": 2}, [1]),
    ({"meta__deep__e": "2"}, [5]),
    ({"meta__deep__e__lte": 2}, [1]),
    ({"meta__nope__ne": 1}, [1, 2, 3, 4, 5]),
    ({"scores__a__gte": 2}, [1]),
    ({"scores__b": "9"}, [2]),  # dict[str, int]: coerced to int
    ({"scores__b__isnull": False}, [2, 4]),
]


async def test_lookups(people):
    # one store for all the cases (a test per case would create the items 37 times)
    for lookups, want in CASES:
        assert local(lookups) == want, lookups
        assert await ids(people, lookups) == want, lookups
        assert await people.count(**lookups) == len(want), lookups
        assert await ids(people, ~Q(**lookups)) == [i for i in range(1, 6) if i not in want]


async def test_spellings_and_combinations(people):
    assert await ids(people, attr("address.city") == "Paris") == [1, 4]
    assert await ids(people, attr("address")["zip"].startswith("75")) == [1, 4]
    assert await ids(people, attr("tags").contains("y")) == [1, 2]
    assert await ids(people, attr("meta")["deep"]["e"] == 2) == [1]
    where = (Q(address__city="Paris") & ~Q(tags__contains="x")) | Q(meta__k=True)
    assert local(where) == [2, 4]
    assert await ids(people, where) == [2, 4]
    # a number and the bool equal to it stay two conditions
    assert await ids(people, Q(meta__k=1) | Q(meta__k=True)) == [1, 2]
    assert await ids(people, Q(meta__k=1) & Q(meta__k=True)) == []
    page = await people.search(Q(tags__contains="x"), order_by="-id", limit=1)
    assert [p.id for p in page.items] == [5]
    page = await people.search(Q(tags__contains="x"), order_by="-id", limit=1,
                               after=page.next)
    assert [p.id for p in page.items] == [1]


async def test_writes_with_nested_filters(people):
    assert await people.update_where(address__city="Paris", changes={"name": "paris"}) == 2
    assert await ids(people, Q(name="paris")) == [1, 4]
    assert await people.delete_where(meta__k__in=[True, "1"]) == 2
    assert [p.id for p in await people.all()] == [1, 3, 5]


INVALID: list[dict[str, Any]] = [
    {"address__country": "FR"},  # unknown field of a dataclass
    {"address__geo__lat__alt": 1},
    {"address__geo__lat": "north"},  # not an int
    {"address__city__zip": "1"},  # a str has no fields
    {"address__gte": 1},  # a dataclass compares with nothing
    {"tags__startswith": "x"},  # a list: membership only
    {"tags__x": 1},
    {"meta__k": [1]},  # a dict value compares with a JSON scalar
    {"meta__k": float("inf")},
    {"meta__k__isnull": "yes"},
    {"name__first": "a"},  # not a nested attribute
]


async def test_invalid(people):
    for lookups in INVALID:
        with pytest.raises(InvalidFilter):
            await people.search_all(**lookups)
        with pytest.raises(InvalidFilter):
            await people.count(Q(**lookups))


async def test_ordering_by_a_nested_path_is_refused(people):
    with pytest.raises(InvalidFilter):
        await people.search_all(order_by="address.city")

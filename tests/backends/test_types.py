"""Every attribute type round-trips exactly, with its exact Python type."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from contract_models import Color, Everything, Level, Point

from storeroom import ValidationError
from storeroom.model import meta_of

# value encoding is the backend's own code: moto_server runs the same DynamoDB code as
# dynalite, so these run once per backend's code (the 15-minute budget)
pytestmark = pytest.mark.one_server_per_backend


UTC5 = timezone(timedelta(hours=5, minutes=30))

VALUES = [
    ("s", ""), ("s", "plain"), ("s", "ünïcödé ß İ 😀 中文"), ("s", "a\x00b"), ("s", "\x00"),
    ("s", "'; DROP TABLE tasks; --"), ("s", "%_\\'\"`"), ("s", " padded  "), ("s", "x" * 5000),
    ("i", 0), ("i", -1), ("i", 2**63 - 1), ("i", -(2**63)), ("i", 2**53 + 1),
    ("f", 0.1), ("f", -2.5), ("f", 1e308), ("f", 5e-324), ("f", 1 / 3), ("f", 2.0**53 + 2),
    ("b", True), ("b", False),
    ("dec", Decimal("1.10")), ("dec", Decimal("-0.000001")), ("dec", Decimal("0")),
    ("dec", Decimal("12345678901234567890.123456789")), ("dec", Decimal("1E+3")),
    ("dt", datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC)),
    ("dt", datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC)),
    ("dt", datetime(1970, 1, 1, tzinfo=UTC)),
    ("dt", datetime(1, 1, 1, tzinfo=UTC)),
    ("dt", datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ("dt", None),
    ("d", date(2024, 2, 29)), ("d", date(1, 1, 1)), ("d", date(9999, 12, 31)), ("d", None),
    ("u", uuid.UUID("12345678-1234-5678-1234-567812345678")), ("u", uuid.UUID(int=0)),
    ("u", None),
    ("by", b""), ("by", b"\x00\xff\x00"), ("by", bytes(range(256))),
    ("color", Color.RED), ("color", Color.BLUE),
    ("level", Level.HIGH),
    ("opt", None), ("opt", ""), ("opt", "x"),
    ("opt_i", None), ("opt_i", 0), ("opt_i", 2**63 - 1),
    ("lst", []), ("lst", [1, -2, 2**62]),
    ("dct", {}), ("dct", {"a": [1, {"b": None}], "ü": "x", "n": 1.5, "t": True}),
    ("point", Point(x=1, y=-2)), ("point", None),
]


@pytest.mark.parametrize(("name", "value"), VALUES,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(VALUES)])
async def test_round_trip(store_factory, name, value):
    s = store_factory(Everything)
    item = Everything(id="k", **{name: value})
    if store_factory.refuses(value):  # a documented backend limit: refused, not altered
        with pytest.raises(ValidationError, match=name):
            await s.create(item)
        assert await s.count() == 0
        return
    created = await s.create(item)
    read = await s.read("k")
    for got in (created, read, (await s.search_all())[0], (await s.read_batch(["k"]))[0]):
        assert got == item
        v = getattr(got, name)
        assert type(v) is type(value)
        if isinstance(value, Decimal) and value.as_tuple().exponent <= 0:
            assert str(v) == str(value)  # keeps its digits: 1.10 stays 1.10
        if isinstance(value, datetime):
            assert v.utcoffset() == timedelta(0)
        if isinstance(value, float):
            assert v.hex() == value.hex()


async def test_key_types_round_trip(store_factory):
    s = store_factory(Everything)
    keys = ["", "a\x00b", "'; DROP TABLE tasks; --", "%", "_", "ß/İ 😀", "a b"]
    for key in keys:
        if store_factory.refuses(key):
            with pytest.raises(ValidationError):
                await s.create(Everything(id=key))
            continue
        await s.create(Everything(id=key))
        assert (await s.read(key)).id == key
        # a str key is read as given; its string form parses back to it
        assert meta_of(Everything).key.from_str(s.key_str(key)) == key
        assert "/" not in s.key_str(key)
    assert sorted(i.id for i in await s.all()) == sorted(
        k for k in keys if not store_factory.refuses(k))


async def test_non_utc_datetime_comes_back_as_the_same_instant_in_utc(store_factory):
    s = store_factory(Everything)
    local = datetime(2024, 6, 1, 12, 0, 0, 123456, tzinfo=UTC5)
    await s.create(Everything(id="k", dt=local))
    got = (await s.read("k")).dt
    assert got == local
    assert got.utcoffset() == timedelta(0)
    assert (got.year, got.month, got.day, got.hour, got.minute, got.second, got.microsecond) == (
        2024, 6, 1, 6, 30, 0, 123456)
    assert await s.count(dt=local) == 1
    assert await s.count(dt=local.astimezone(UTC)) == 1
    assert await s.count(dt__gt=local - timedelta(microseconds=1)) == 1
    assert await s.count(dt__gt=local) == 0
    await s.update("k", dt=datetime(2024, 6, 1, 0, 0, tzinfo=UTC5))
    assert (await s.read("k")).dt == datetime(2024, 5, 31, 18, 30, tzinfo=UTC)


async def test_update_round_trips_every_type(store_factory):
    s = store_factory(Everything)
    await s.create(Everything(id="k"))
    changes = {name: value for name, value in VALUES}  # the last value of each attribute
    got = await s.update("k", **changes)
    want = Everything(id="k", **changes)
    assert got == want
    assert await s.read("k") == want
    for read in (got, await s.read("k")):  # the annotated types, as create and read give them
        assert {n: type(getattr(read, n)) for n in changes} == {
            n: type(getattr(want, n)) for n in changes}


async def test_enum_is_stored_by_value(store_factory):
    s = store_factory(Everything)
    await s.create(Everything(id="1", color=Color.BLUE, level=Level.HIGH))
    await s.create(Everything(id="2", color=Color.GREEN))
    assert [i.id for i in await s.search_all(color="Blue")] == ["1"]
    assert [i.id for i in await s.search_all(color=Color.BLUE)] == ["1"]
    assert [i.id for i in await s.search_all(level=2)] == ["1"]
    assert [i.id for i in await s.search_all(color__in=["green", Color.BLUE])] == ["1", "2"]
    assert [i.id for i in await s.search_all(order_by="-color")] == ["2", "1"]  # by value


async def test_filters_on_typed_attributes(store_factory):
    s = store_factory(Everything)
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    await s.create(Everything(id="1", dec=Decimal("1.10"), d=date(2024, 1, 2), u=u, by=b"\x01",
                              f=0.5, i=2**62))
    await s.create(Everything(id="2", dec=Decimal("2"), d=date(2023, 1, 2), f=1.5, i=-5))
    assert await s.count(dec=Decimal("1.1")) == 1  # numeric equality, like Python
    assert await s.count(dec__gt=Decimal("1.5")) == 1
    assert await s.count(d__lt=date(2024, 1, 1)) == 1
    assert await s.count(u=str(u)) == 1
    assert await s.count(u__isnull=True) == 1
    assert await s.count(by=b"\x01") == 1
    assert await s.count(f__range=(0, 1)) == 1
    assert await s.count(i__gt=2**61) == 1
    assert [i.id for i in await s.search_all(order_by="-dec")] == ["2", "1"]
    assert [i.id for i in await s.search_all(order_by="d")] == ["2", "1"]

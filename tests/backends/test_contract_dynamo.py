"""Contract: filters on edge values (empty strings and bytes, false, zero, numbers beyond a
backend's range) select exactly what local evaluation selects, on every backend."""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Any

import pytest

from storeroom import Index, InvalidFilter, Q, ValidationError, stored


class Tint(enum.Enum):
    NONE = ""
    RED = "red"


@stored(indexes=[Index("ix"), Index("ix", "oix")])
class Edge:
    id: int
    s: str = "x"
    o: str | None = None
    ix: str = "x"  # an index key (DynamoDB stores index keys escaped)
    oix: str | None = None  # an index sort key
    by: bytes = b"x"
    ob: bytes | None = None
    b: bool = True
    ob_: bool | None = None
    t: Tint = Tint.RED
    ot: Tint | None = None
    mark: int = 0


# (attribute, its edge value, another value, optional?)
EDGES = [("s", "", "x", False), ("o", "", "x", True), ("ix", "", "x", False),
         ("oix", "", "x", True), ("by", b"", b"x", False), ("ob", b"", b"x", True),
         ("b", False, True, False), ("ob_", False, True, True),
         ("t", Tint.NONE, Tint.RED, False), ("ot", Tint.NONE, Tint.RED, True)]


async def ids(s: Any, where: Any) -> set[int]:
    return {i.id for i in await s.search_all(where)}


@pytest.mark.parametrize(("name", "edge", "other", "optional"), EDGES,
                         ids=[e[0] for e in EDGES])
async def test_membership_of_empty_and_false_values(store_factory, name, edge, other,
                                                    optional):
    s = store_factory(Edge)
    await s.create(Edge(id=1, **{name: edge}))
    await s.create(Edge(id=2, **{name: other}))
    everyone = {1, 2}
    if optional:
        await s.create(Edge(id=3, **{name: None}))
        everyone = {1, 2, 3}
    expected = [
        (Q(**{f"{name}__in": [edge]}), {1}),
        (Q(**{f"{name}__not_in": [edge]}), everyone - {1}),
        (Q(**{f"{name}__in": [other, edge]}), {1, 2}),
        (Q(**{f"{name}__not_in": [other, edge]}), everyone - {1, 2}),
        (Q(**{f"{name}__in": [edge, None]}), everyone - {2}),
        (Q(**{f"{name}__not_in": [edge, None]}), {2}),
        (~Q(**{f"{name}__in": [edge]}), everyone - {1}),
        (Q(**{name: edge}), {1}),
        (Q(**{f"{name}__ne": edge}), everyone - {1}),
        (Q(id=1) & Q(**{f"{name}__in": [edge]}), {1}),
    ]
    for where, want in expected:
        assert await ids(s, where) == want, where
        assert await s.count(where) == len(want), where
    assert await s.update_where(Q(**{f"{name}__in": [edge]}), changes={"mark": 1}) == 1
    assert await ids(s, Q(mark=1)) == {1}
    assert await s.delete_where(Q(**{f"{name}__not_in": [edge]})) == len(everyone) - 1
    assert await ids(s, None) == {1}


@stored
class Num:
    id: int
    d: Decimal = Decimal(0)
    od: Decimal | None = None


# beyond DynamoDB's numbers: more than 38 significant digits, or magnitude outside
# 1E-130 .. 1E+126
FAR = [Decimal("1E+200"), Decimal("-1E+200"), Decimal("1E-200"), Decimal("-1E-131"),
       Decimal("1E+126"), Decimal("1.00000000000000000000000000000000000001"),
       Decimal("12345678901234567890123456789012345678901")]
NEAR = [Decimal("9.9999999999999999999999999999999999999E+125"), Decimal("1E-130"),
        Decimal("-1E-130"), Decimal("1234567890123456789012345678901234567.8"),
        Decimal("1.0000000000000000000000000000000000000000"), Decimal("-0"), Decimal("0E-300")]


async def test_decimal_operands_beyond_a_backends_numbers(store_factory):
    s = store_factory(Num)
    await s.create(Num(id=1, d=Decimal(1), od=Decimal(1)))
    await s.create(Num(id=2, d=Decimal(-1)))
    await s.create(Num(id=3, d=Decimal(0), od=Decimal("-0.5")))
    big, tiny, long = Decimal("1E+200"), Decimal("1E-200"), FAR[5]
    expected = [
        (Q(d=big), set()), (Q(d__ne=big), {1, 2, 3}), (Q(od__ne=big), {1, 2, 3}),
        (Q(d__lt=big), {1, 2, 3}), (Q(d__gt=-big), {1, 2, 3}), (Q(d__gt=big), set()),
        (Q(od__lte=big), {1, 3}), (Q(d__gt=tiny), {1}), (Q(d__lt=-tiny), {2}),
        (Q(d__gte=-tiny), {1, 3}), (Q(d__lt=long), {1, 2, 3}), (Q(d__gt=long), set()),
        (Q(d=long), set()), (Q(d__in=[big, Decimal(1)]), {1}),
        (Q(d__not_in=[long, Decimal(0)]), {1, 2}), (Q(d__range=(-big, tiny)), {2, 3}),
        (Q(od__range=(tiny, big)), {1}), (Q(d__in=FAR), set()),
        (Q(od__not_in=FAR), {1, 2, 3}),
    ]
    for where, want in expected:
        assert await ids(s, where) == want, where
        assert await s.count(where) == len(want), where
    assert await s.update_where(Q(d__lt=big) & Q(d__gt=tiny), changes={"od": None}) == 1
    assert await s.delete_where(Q(d__in=[big, Decimal(-1)])) == 1
    assert await ids(s, None) == {1, 3}


@pytest.mark.parametrize("value", FAR + NEAR, ids=str)
async def test_decimals_are_stored_exactly_or_refused(store_factory, value):
    s = store_factory(Num)
    if store_factory.refuses(value):  # a documented limit: a typed error, nothing written
        with pytest.raises(ValidationError, match="d"):
            await s.create(Num(id=1, d=value))
        await s.create(Num(id=2))
        with pytest.raises(ValidationError, match="od"):
            await s.update(2, od=value)
        assert [(n.id, n.od) for n in await s.search_all()] == [(2, None)]
        return
    await s.create(Num(id=1, d=value, od=value))
    got = await s.read(1)
    assert got.d == value and got.od == value
    assert await ids(s, Q(d=value)) == {1}
    assert await ids(s, Q(od__in=[value])) == {1}
    assert await ids(s, Q(d__ne=value)) == set()


@stored(indexes=[Index("ix")])
class Word:
    id: int
    w: str
    ix: str  # an index key
    ow: str | None = None


# U+E000..U+FFFF against characters beyond U+FFFF: their UTF-16 order is the reverse
HIGH = ["", "a", "z", "\ud7ff", "\ue000", "\uffff", "ﬀ", "z\uffff", "\U00010000", "😀",
        "z😀", "\U0010ffff"]


async def test_text_compares_by_code_point_beyond_the_bmp(store_factory):
    s = store_factory(Word)
    words = {i: w for i, w in enumerate(HIGH)}
    for i, w in words.items():
        await s.create(Word(id=i, w=w, ix=w, ow=w if i % 2 else None))
    tests = {"lt": lambda a, b: a < b, "lte": lambda a, b: a <= b,
             "gt": lambda a, b: a > b, "gte": lambda a, b: a >= b}
    for x in HIGH:
        for op, test in tests.items():
            want = {i for i, w in words.items() if test(w, x)}
            for name in ("w", "ix"):
                assert await ids(s, Q(**{f"{name}__{op}": x})) == want, (name, op, x)
            want_o = {i for i in want if i % 2}
            assert await ids(s, Q(**{f"ow__{op}": x})) == want_o, ("ow", op, x)
        want = {i for i, w in words.items() if "a" <= w <= x}
        assert await ids(s, Q(w__range=("a", x))) == want, x
    in_order = [i for i, _ in sorted(words.items(), key=lambda p: p[1])]
    for name in ("w", "ix"):
        assert [i.id for i in await s.search_all(order_by=name, limit=2)] == in_order
        assert [i.id for i in await s.search_all(order_by="-" + name, limit=3)] == in_order[::-1]


@pytest.mark.parametrize("nan", [Decimal("NaN"), Decimal("-NaN"), Decimal("sNaN")], ids=str)
async def test_a_decimal_nan_filter_value_is_refused(store_factory, nan):
    s = store_factory(Num)
    await s.create(Num(id=1))
    for where in (Q(d=nan), Q(d__lt=nan), Q(od__in=[nan]), Q(d__range=(Decimal(0), nan))):
        with pytest.raises(InvalidFilter, match="NaN"):
            await s.search_all(where)
        with pytest.raises(InvalidFilter, match="NaN"):
            await s.count(where)

"""Differential test of lookups into list and nested attributes: random filters on a list
attribute, a nested dataclass and a dict of any JSON values agree with local evaluation
on every backend (natively with JSON functions where the backend declares it can,
otherwise split to local evaluation).

Small on purpose (a few examples, a few items each): the rest of the differential
suite already takes minutes.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from storeroom import Q, field, stored
from storeroom.model import meta_of
from storeroom.query import build_filter, compile_local


@dataclass
class NGeo:
    lat: int
    tag: str | None = None


@dataclass
class NAddr:
    city: str
    zip: str | None = None
    geo: NGeo | None = None


@stored
class NItem:
    id: int
    tags: list[str] = field(default_factory=list)
    nums: list[int] = field(default_factory=list)
    address: NAddr | None = None
    meta: dict[str, Any] = field(default_factory=dict)


META = meta_of(NItem)
TEXTS = ["", "a", "A", "ab", "b%", "_", "é", "É", "ß", "😀", "a'b", "\\", "1", "true",
         "a\x00b", "a "]
INTS = [0, 1, -1, 2, 2**53 + 1, -(2**63), 2**63 - 1]
LOOSE = st.one_of(st.sampled_from(TEXTS), st.sampled_from(INTS), st.booleans(),
                  st.sampled_from([0.5, -1.5, 1.0, 2.0]))
KEYS = ["k", "s"]

texts = st.sampled_from(TEXTS)
ints = st.sampled_from(INTS)


def opt(s: Any) -> Any:
    return st.one_of(st.none(), s)


def items() -> Any:
    geo = st.builds(NGeo, lat=st.integers(-2, 2), tag=opt(texts))
    addr = st.builds(NAddr, city=texts, zip=opt(texts), geo=opt(geo))
    loose = st.recursive(LOOSE, lambda inner: st.one_of(
        st.lists(inner, max_size=2), st.dictionaries(st.sampled_from(KEYS), inner, max_size=2)),
        max_leaves=3)
    meta = st.dictionaries(st.sampled_from(KEYS), opt(loose), max_size=2)
    return st.lists(st.builds(NItem, id=st.integers(0, 30),
                              tags=st.lists(texts, max_size=3),
                              nums=st.lists(st.integers(-2, 2), max_size=3),
                              address=opt(addr), meta=meta),
                    max_size=7, unique_by=lambda i: i.id)


TEXT_OPS = ["eq", "ne", "lt", "gte", "in", "not_in", "contains", "icontains", "startswith",
            "iendswith", "iexact", "range"]
NUM_OPS = ["eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "range"]


def operand(op: str, values: Any) -> Any:
    if op in ("in", "not_in"):
        return st.lists(opt(values), min_size=1, max_size=3)
    if op == "range":
        return st.tuples(values, values)
    return values


@st.composite
def cond(draw: Any) -> Q:
    where = draw(st.sampled_from(["tags", "nums", "city", "zip", "lat", "tag", "loose",
                                  "isnull"]))
    if where == "tags":
        return Q(tags__contains=draw(texts))
    if where == "nums":
        return Q(nums__contains=draw(st.integers(-3, 3)))
    if where == "isnull":
        path = draw(st.sampled_from(["address", "address__geo", "address__zip",
                                     "address__geo__tag", "meta__k", "meta__k__s"]))
        return Q(**{f"{path}__isnull": draw(st.booleans())})
    if where == "lat":
        op = draw(st.sampled_from(NUM_OPS))
        return Q(**{f"address__geo__lat__{op}": draw(operand(op, st.integers(-3, 3)))})
    if where == "loose":
        path = draw(st.sampled_from(["meta__k", "meta__s", "meta__k__s"]))
        kind = draw(st.sampled_from(["text", "num", "bool"]))
        if kind == "text":
            op = draw(st.sampled_from(TEXT_OPS))
            values: Any = texts
        else:
            op = draw(st.sampled_from(["eq", "ne", "in", "not_in"] if kind == "bool"
                                      else NUM_OPS))
            values = st.booleans() if kind == "bool" else st.one_of(
                ints, st.sampled_from([0.5, 1.0, -1.5]))
        return Q(**{f"{path}__{op}": draw(operand(op, values))})
    op = draw(st.sampled_from(TEXT_OPS))
    path = {"city": "address__city", "zip": "address__zip", "tag": "address__geo__tag"}[where]
    return Q(**{f"{path}__{op}": draw(operand(op, texts))})


@st.composite
def filters(draw: Any) -> Q:
    parts = draw(st.lists(cond(), min_size=1, max_size=3))
    join = operator.and_ if draw(st.booleans()) else operator.or_
    where = functools.reduce(join, parts)
    return ~where if draw(st.booleans()) else where


@settings(max_examples=6, deadline=None)
@given(data=st.data())
async def test_nested_lookups_agree_with_local_evaluation(store_factory, data):
    s = store_factory(NItem)
    rows = data.draw(items(), label="items")
    if store_factory.refuses("\x00"):  # PostgreSQL's jsonb holds no NUL either
        rows = [r for r in rows if "\\x00" not in repr(r)]
    await s.delete_where()
    for item in rows:
        await s.create(item)
    ordered = sorted(rows, key=lambda i: i.id)
    for _ in range(4):
        where = data.draw(filters(), label="filter")
        keep = compile_local(build_filter(META, where))
        want = [i.id for i in ordered if keep(i)]
        assert [i.id for i in await s.search_all(where, order_by="id")] == want, where
        assert await s.count(where) == len(want), where
    where = data.draw(filters(), label="delete")
    keep = compile_local(build_filter(META, where))
    gone = sum(1 for i in rows if keep(i))
    assert await s.delete_where(where) == gone, where
    assert await s.count() == len(rows) - gone

"""Differential test: every backend's searches agree with local evaluation.

Local evaluation (``storeroom.query.compile_local`` + ``sort_items``) is the reference
semantics. Random items, random filters over every operator combined with And/Or/Not,
and random orderings must give exactly the same results natively.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storeroom import Q, stored
from storeroom.model import meta_of
from storeroom.query import build_filter, compile_local, parse_order, sort_items


class Shade(enum.Enum):
    LIGHT = "light"
    DARK = "Dark"
    ODD = "o_d%d"


@stored
class DItem:
    id: int
    s: str = ""
    o: str | None = None
    n: int | None = None
    x: float = 0.0
    b: bool | None = None
    t: datetime | None = None
    c: Shade | None = None
    mark: int = 0  # never filtered on: update_where sets it


META = meta_of(DItem)

TEXTS = ["", "a", "A", "ab", "Ab", "aB", "a%b", "a_b", "axb", "%", "_", "'", '"', "it's",
         "É", "é", "ÉCOLE", "école", "ß", "SS", "ss", "straße", "STRASSE", "İ", "i̇", "i", "I",
         "ı", "x\\y", "\\", "a b", "a ", " a", "[a]", "a*", "😀", "Ω", "ω"]
text = st.one_of(st.sampled_from(TEXTS), st.text(alphabet="aAbB%_'\\ ÉéßİıΩ", max_size=4))
ints = st.one_of(st.integers(-4, 4), st.sampled_from([-(2**63), 2**63 - 1, 2**31, -(2**31)]))
floats = st.one_of(st.sampled_from([0.0, -0.0, 0.5, -1.5, 1e300, -1e-300, 2.5, 3.0]),
                   st.floats(-10, 10, allow_nan=False))
BASE = datetime(2024, 3, 1, 12, 0, 0, 500000, tzinfo=UTC)
DATES = [BASE + timedelta(microseconds=k) for k in (-1, 0, 1)] + [
    BASE - timedelta(days=400), BASE + timedelta(hours=7, seconds=1)]
dates = st.sampled_from(DATES)
# a filter value may be the same instant in another zone
filter_dates = st.one_of(dates, dates.map(lambda d: d.astimezone(timezone(timedelta(hours=-3)))))
shades = st.sampled_from(list(Shade))


def opt(strategy):
    return st.one_of(st.none(), strategy)


items = st.lists(
    st.builds(DItem, id=st.integers(0, 60), s=text, o=opt(text), n=opt(ints), x=floats,
              b=opt(st.booleans()), t=opt(dates), c=opt(shades)),
    max_size=12, unique_by=lambda i: i.id)

COMPARE = ["eq", "ne", "lt", "lte", "gt", "gte"]
TEXT_OPS = ["contains", "icontains", "startswith", "istartswith", "endswith", "iendswith",
            "iexact"]
ATTR_VALUES = {
    "id": st.integers(-1, 61),
    "s": text, "o": text,
    "n": st.one_of(ints, st.integers(-4, 4).map(str)),  # "3" is coerced to 3
    "x": st.one_of(floats, st.integers(-3, 3)),
    "b": st.booleans(),
    "t": filter_dates,
    "c": st.one_of(shades, st.sampled_from([s.value for s in Shade])),
}
OPTIONAL = {"o", "n", "b", "t", "c"}
TEXTUAL = {"s", "o", "c"}


@st.composite
def conds(draw):
    name = draw(st.sampled_from(sorted(ATTR_VALUES)))
    ops = [*COMPARE, "in", "not_in", "range", "isnull"] + (TEXT_OPS if name in TEXTUAL else [])
    op = draw(st.sampled_from(ops))
    values = ATTR_VALUES[name]
    if op == "isnull":
        value = draw(st.booleans())
    elif op in ("in", "not_in"):
        value = draw(st.lists(opt(values) if name in OPTIONAL else values, max_size=4))
    elif op == "range":
        value = (draw(values), draw(values))
    elif op in TEXT_OPS:
        value = draw(text)
    elif op in ("eq", "ne") and name in OPTIONAL:
        value = draw(opt(values))
    else:
        value = draw(values)
    return Q(**{f"{name}__{op}": value})


leaves = st.one_of(conds(), st.just(Q()), st.just(~Q()))
filters = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.tuples(children, leaves).map(lambda p: p[0] & p[1]),
        st.tuples(children, children).map(lambda p: p[0] & p[1]),
        st.tuples(children, children).map(lambda p: p[0] | p[1]),
        children.map(lambda q: ~q),
    ),
    max_leaves=6,
)

SORTABLE = ["id", "s", "o", "n", "x", "b", "t", "c"]
orders = st.lists(st.sampled_from(SORTABLE), max_size=3, unique=True).flatmap(
    lambda names: st.tuples(*[st.sampled_from([n, "-" + n]) for n in names]).map(list))


def local(items_, where, order_by):
    keep = compile_local(build_filter(META, where))
    return sort_items([i for i in items_ if keep(i)], parse_order(META, order_by))


@pytest.fixture
def dstore(store_factory):
    return store_factory(DItem)


@settings(max_examples=60, deadline=None)
@given(data=items, where=filters, order_by=orders, limit=opt(st.integers(1, 5)))
async def test_search_and_count_agree_with_local_evaluation(dstore, data, where, order_by,
                                                            limit):
    s = dstore
    await s.delete_where()
    for item in data:
        await s.create(item)
    want = local(data, where, order_by)
    got = await s.search_all(where, order_by=order_by, limit=limit)
    assert got == want, (where, order_by)
    assert await s.count(where) == len(want), where


@settings(max_examples=40, deadline=None)
@given(data=items, where=filters)
async def test_update_and_delete_where_agree_with_local_evaluation(dstore, data, where):
    s = dstore
    await s.delete_where()
    for item in data:
        await s.create(item)
    hit = {i.id for i in local(data, where, ())}
    assert await s.update_where(where, changes={"mark": 1}) == len(hit)
    after = await s.search_all(order_by="id")
    assert [i.id for i in after] == sorted(i.id for i in data)
    assert {i.id for i in after if i.mark == 1} == hit
    assert [i for i in after if i.id not in hit] == sorted(
        (i for i in data if i.id not in hit), key=lambda i: i.id)
    assert await s.delete_where(where) == len(hit)
    assert [i.id for i in await s.search_all()] == sorted(i.id for i in data if i.id not in hit)

"""Differential test of lookups across one relation: random filters through a ``Ref``
(forward: ``cat__name``, a None reference seen as a LEFT JOIN sees it) and through its
reverse ``Many`` (exists semantics: ``items__title``, ``items__isnull``), combined with
&, | and ~ and with the model's own attributes, agree on every backend with local
evaluation over the loaded graph (``p.cat`` and ``c.items`` filled in); so does an
ordering across the Ref.

Small on purpose (a few examples, a few items each): the rest of the differential
suite already takes minutes.
"""

from __future__ import annotations

import functools
import operator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storeroom import Many, Q, Ref, field, stored
from storeroom.model import meta_of
from storeroom.query import build_filter, compile_local, parse_order
from storeroom.query.order import order_values

# the store front plans these on every backend: one server per backend's code
pytestmark = pytest.mark.one_server_per_backend


@stored(key="id")
class RCat:
    id: int
    name: str = ""
    rank: int | None = None
    items: Many[RItem] = field(reverse="cat")


@stored(key="id")
class RItem:
    id: int
    title: str = ""
    n: int = 0
    cat: Ref[RCat] | None = field(default=None, on_delete="nullify")


TEXTS = ["", "a", "A", "ab", "b%", "é", "ß"]
texts = st.sampled_from(TEXTS)
ints = st.integers(-2, 2)
TEXT_OPS = ["eq", "ne", "lt", "gte", "in", "not_in", "icontains", "startswith", "isnull"]
NUM_OPS = ["eq", "ne", "lt", "gte", "in", "not_in", "range", "isnull"]


def opt(s: Any) -> Any:
    return st.one_of(st.none(), s)


def operand(op: str, values: Any) -> Any:
    if op == "isnull":
        return st.booleans()
    if op in ("in", "not_in"):
        return st.lists(opt(values), min_size=1, max_size=3)
    if op == "range":
        return st.tuples(values, values)
    return values


@st.composite
def leaf(draw: Any, prefix: str) -> Q:
    """One condition on the related model's text or number, through ``prefix``."""
    if draw(st.booleans()):
        name, op = "name" if prefix == "cat" else "title", draw(st.sampled_from(TEXT_OPS))
        return Q(**{f"{prefix}__{name}__{op}": draw(operand(op, texts))})
    name, op = "rank" if prefix == "cat" else "n", draw(st.sampled_from(NUM_OPS))
    return Q(**{f"{prefix}__{name}__{op}": draw(operand(op, ints))})


@st.composite
def item_filter(draw: Any) -> Q:
    """A filter on RItem: across ``cat`` (forward), the Ref itself, or its own title."""
    def one() -> Any:
        kind = draw(st.sampled_from(["rel", "rel", "ref", "own"]))
        if kind == "rel":
            return draw(leaf("cat"))
        if kind == "ref":
            if draw(st.booleans()):
                return Q(cat__isnull=draw(st.booleans()))
            return Q(cat__in=draw(st.lists(st.integers(0, 3), min_size=1, max_size=2)))
        return Q(title=draw(texts))
    return _combine(draw, [one() for _ in range(draw(st.integers(1, 3)))])


@st.composite
def cat_filter(draw: Any) -> Q:
    """A filter on RCat: across ``items`` (reverse, exists), or its own name."""
    def one() -> Any:
        kind = draw(st.sampled_from(["rel", "rel", "none", "own"]))
        if kind == "rel":
            return draw(leaf("items"))
        if kind == "none":
            return Q(items__isnull=draw(st.booleans()))
        return Q(name=draw(texts))
    return _combine(draw, [one() for _ in range(draw(st.integers(1, 3)))])


def _combine(draw: Any, parts: list[Any]) -> Any:
    join = operator.and_ if draw(st.booleans()) else operator.or_
    where = functools.reduce(join, parts)
    return ~where if draw(st.booleans()) else where


@st.composite
def graphs(draw: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    cats = draw(st.lists(st.fixed_dictionaries({"id": st.integers(0, 3), "name": texts,
                                                "rank": opt(ints)}),
                         max_size=3, unique_by=lambda c: c["id"]))
    ids = [c["id"] for c in cats]
    ref = st.one_of(st.none(), st.sampled_from(ids)) if ids else st.none()
    items = draw(st.lists(st.fixed_dictionaries({"id": st.integers(0, 20), "title": texts,
                                                 "n": ints, "cat": ref}),
                          max_size=5, unique_by=lambda i: i["id"]))
    return cats, items


def _loaded(cats: list[dict[str, Any]], items: list[dict[str, Any]]
            ) -> tuple[list[RCat], list[RItem]]:
    """The graph as local objects, every relation loaded."""
    by_id = {c["id"]: RCat(**c) for c in cats}
    loaded = [RItem(id=i["id"], title=i["title"], n=i["n"],
                    cat=by_id[i["cat"]] if i["cat"] is not None else None) for i in items]
    for c in by_id.values():
        c.items = [i for i in loaded if i.cat_id == c.id]
    return sorted(by_id.values(), key=lambda c: c.id), sorted(loaded, key=lambda i: i.id)


@settings(max_examples=5, deadline=None)
@given(data=st.data())
async def test_relation_lookups_agree_with_local_evaluation(store_factory, data):
    # one pair of stores per test, not per example (each holds its connections, and so
    # do the related stores each opens)
    if not hasattr(store_factory, "rel_pair"):
        store_factory.rel_pair = (store_factory(RCat), store_factory(RItem))
    cats_s, items_s = store_factory.rel_pair
    cats, items = data.draw(graphs(), label="graph")
    await items_s.delete_where()
    await cats_s.delete_where()
    for c in cats:
        await cats_s.create(RCat(**c))
    for i in items:
        await items_s.create(RItem(**i))
    local_cats, local_items = _loaded(cats, items)
    for _ in range(2):
        where = data.draw(item_filter(), label="item filter")
        keep = compile_local(build_filter(meta_of(RItem), where))
        want = [i.id for i in local_items if keep(i)]
        assert [i.id for i in await items_s.search_all(where, order_by="id")] == want, where
        where = data.draw(cat_filter(), label="cat filter")
        keep = compile_local(build_filter(meta_of(RCat), where))
        want = [c.id for c in local_cats if keep(c)]
        assert [c.id for c in await cats_s.search_all(where, order_by="id")] == want, where
    # an ordering across the Ref, None last in both directions (stable on the key)
    desc = data.draw(st.booleans(), label="descending")
    order = parse_order(meta_of(RItem), [("-" if desc else "") + "cat__name", "id"])
    present = [i for i in local_items if i.cat is not None]
    present.sort(key=lambda i: i.id)
    present.sort(key=lambda i: order_values(i, order)[0], reverse=desc)
    want = [i.id for i in present] + [i.id for i in local_items if i.cat is None]
    got = await items_s.search_all(order_by=[("-" if desc else "") + "cat__name", "id"],
                                   limit=2)
    assert [i.id for i in got] == want

"""Keyset pages: every page size reproduces the unpaged result; concurrent writes between
pages never repeat or skip untouched items; None sorts last in both directions."""

from __future__ import annotations

import random

import pytest
from contract_models import Row

from storeroom import Q
from storeroom.model import meta_of
from storeroom.query import build_filter, compile_local, parse_order, sort_items

NAMES = ["b", "B", "a", "é", "Z", "", "a ", "a", None, "ab", "É", None, "zz", "A"]
ROWS = [Row(id=i, group="ab"[i % 2], n=None if i % 4 == 0 else (i * 7) % 5, name=NAMES[i - 1])
        for i in range(1, 15)]


def expected(rows, where, order_by, **lookups):
    meta = meta_of(Row)
    keep = compile_local(build_filter(meta, where, None, lookups))
    return sort_items([r for r in rows if keep(r)], parse_order(meta, order_by))


async def fill(s, rows=ROWS):
    for r in rows:
        await s.create(r)


async def pages(s, limit, *args, **kw):
    out, after, sizes = [], None, []
    for _ in range(1000):
        page = await s.search(*args, limit=limit, after=after, **kw)
        sizes.append(len(page.items))
        out.extend(page.items)
        if page.next is None:
            break
        after = page.next
    else:
        raise AssertionError("pages never ended")
    return out, sizes


ORDERS = [(), ("n",), ("-n",), ("name", "-id"), ("-name",), ("-group", "n", "name"),
          ("group", "-n")]
FILTERS = [None, Q(group="a") | Q(n__gte=3), ~Q(n=2), Q(name__isnull=False)]


# every page size x every order is a test of the backend's keyset code: once per backend's
# code (the other tests of this file still page on every server)
@pytest.mark.one_server_per_backend
@pytest.mark.parametrize("order_by", ORDERS, ids=lambda o: ",".join(o) or "key")
async def test_every_page_size_reproduces_the_unpaged_result(store_factory, order_by):
    s = store_factory(Row)
    await fill(s)
    for where in FILTERS:
        want = expected(ROWS, where, order_by)
        unpaged = await s.search(where, order_by=order_by)
        assert unpaged.items == want
        assert unpaged.next is None
        assert await s.search_all(where, order_by=order_by) == want
        for limit in range(1, len(want) + 2):
            got, sizes = await pages(s, limit, where, order_by=order_by)
            assert got == want, (where, limit)
            assert all(n == limit for n in sizes[:-1])
            assert sizes[-1] <= limit
            # only an exactly full last page may be followed by one empty page
            assert len(sizes) <= len(want) // limit + 1
            assert await s.search_all(where, order_by=order_by, limit=limit) == want


async def test_pages_with_lookups(store_factory):
    s = store_factory(Row)
    await fill(s)
    want = expected(ROWS, None, ["-name"], group="b", n__lt=4)
    assert want
    got, _ = await pages(s, 2, order_by=["-name"], group="b", n__lt=4)
    assert got == want
    assert await s.search_all(order_by=["-name"], limit=1, group="b", n__lt=4) == want


async def test_none_sorts_last_in_both_directions(store_factory):
    s = store_factory(Row)
    rows = [Row(id=1, n=3), Row(id=2), Row(id=3, n=1), Row(id=4), Row(id=5, n=2),
            Row(id=6, n=-1)]
    await fill(s, rows)
    asc = await s.search_all(order_by="n")
    assert [r.id for r in asc] == [6, 3, 5, 1, 2, 4]
    desc = await s.search_all(order_by="-n")
    assert [r.id for r in desc] == [1, 5, 3, 6, 2, 4]
    desc_ids = await s.search_all(order_by=["-n", "-id"])
    assert [r.id for r in desc_ids] == [1, 5, 3, 6, 4, 2]
    for limit in (1, 2, 3):
        assert [r.id for r in await s.search_all(order_by="-n", limit=limit)] == \
            [1, 5, 3, 6, 2, 4]
        assert [r.id for r in await s.search_all(order_by="n", limit=limit)] == \
            [6, 3, 5, 1, 2, 4]


async def test_strings_sort_by_code_point(store_factory):
    s = store_factory(Row)
    names = ["b", "B", "a", "é", "Z", "", "a ", "ab", "É", "zz", "A", "ä", "İ", "\x00", "~",
             "\x00a", "a\x00"]
    names = [n for n in names if not store_factory.refuses(n)]
    await fill(s, [Row(id=i, name=n) for i, n in enumerate(names)])
    got = [r.name for r in await s.search_all(order_by="name")]
    assert got == sorted(names)
    got = [r.name for r in await s.search_all(order_by="-name", limit=4)]
    assert got == sorted(names, reverse=True)


@pytest.mark.parametrize("seed", range(4))
async def test_writes_between_pages_never_repeat_or_skip(store_factory, seed):
    rnd = random.Random(seed)
    s = store_factory(Row)
    start = [Row(id=i, n=rnd.choice([None, *range(6)]), name=rnd.choice(["x", "y", None]))
             for i in range(1, 31)]
    await fill(s, start)
    order_by = rnd.choice([["n"], ["-n", "name"], ["name", "-id"], []])
    touched: set[int] = set()
    next_id = 100
    seen: list[Row] = []
    after = None
    while True:
        page = await s.search(order_by=order_by, limit=rnd.randint(1, 4), after=after)
        seen.extend(page.items)
        if page.next is None:
            break
        after = page.next
        # between pages: insert one item anywhere and delete one (seen or not)
        new = Row(id=next_id, n=rnd.choice([None, *range(6)]), name=rnd.choice(["x", None]))
        await s.create(new)
        touched.add(next_id)
        next_id += 1
        victims = [r.id for r in await s.all() if r.id not in touched]
        if victims:
            v = rnd.choice(victims)
            assert await s.delete(v) is True
            touched.add(v)
    ids = [r.id for r in seen]
    assert len(ids) == len(set(ids)), "an item was repeated"
    untouched = {r.id for r in start} - touched
    assert untouched <= set(ids), f"skipped: {sorted(untouched - set(ids))}"
    # what was seen is in order
    order = parse_order(meta_of(Row), order_by)
    assert sort_items(seen, order) == seen

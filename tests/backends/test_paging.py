"""Keyset pages: every page size reproduces the unpaged result; concurrent writes between
pages never repeat or skip untouched items; None sorts last in both directions."""

from __future__ import annotations

import random

import pytest
from contract_models import Row

from storeroom import Create, Q, QueryLog, ValidationError
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


SQL_BACKENDS = ("sqlite", "postgres", "mysql")


@pytest.mark.parametrize("scan_page", [None, 1000], ids=["default", "scan_page=1000"])
async def test_search_all_without_a_limit_reads_scan_pages(store_factory, monkeypatch,
                                                           scan_page):
    """On SQL, ``search_all`` without a ``limit`` reads pages of the backend's
    ``scan_page`` rows (10,000), not ``max_page``: iterating 2,500 rows is one statement
    (pages of 1,000 if ``scan_page`` says so), with a ``limit`` it is one per page; the
    items are the same, in key order, whatever the page size."""
    if store_factory.spec.id not in SQL_BACKENDS:
        pytest.skip("scan_page is the SQL backend's")
    from storeroom.backends.sql._async.backend import AsyncSqlBackend
    from storeroom.backends.sql._sync.backend import SqlBackend
    assert AsyncSqlBackend.scan_page == SqlBackend.scan_page == 10_000
    if scan_page is not None:  # the store reads it when it opens
        monkeypatch.setattr(AsyncSqlBackend, "scan_page", scan_page)
        monkeypatch.setattr(SqlBackend, "scan_page", scan_page)
    n = 2_500
    s = store_factory(Row)
    rows = [Row(id=i, group="ab"[i % 2], n=i % 7) for i in range(n)]
    for i in range(0, n, 1000):
        await s.edit_batch([Create(r) for r in rows[i:i + 1000]])
    expect_pages = 1 if scan_page is None else 3
    for kw, statements, want in [
            ({}, expect_pages, rows),
            ({"limit": 1000}, 3, rows),
            ({"limit": 600}, 5, rows),
            ({"group": "b"}, 1 if scan_page is None else 2, rows[1::2]),
            ({"order_by": "-id"}, expect_pages, rows[::-1])]:
        with QueryLog() as log:
            got = await s.search_all(**kw)
        assert got == want, kw
        assert len(log.records) == statements, (kw, [r.statement for r in log.records])
    # a limit still has to be a valid page size
    with pytest.raises(ValidationError):
        await s.search_all(limit=s.meta.max_page + 1)

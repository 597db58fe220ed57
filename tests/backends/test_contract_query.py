"""The ``Query`` handed to a backend's ``find``: every backend builds the keyset condition
of a cursor position itself (SQL row values or the expanded comparison, DynamoDB's
``ExclusiveStartKey``, Redis sorted-set ranges, MongoDB's ``$or``, memory), and
returns exactly the items after that position, also for positions of items deleted
since (a cursor outlives its item). Pages over the table's own order (DynamoDB's
ExclusiveStartKey path) neither skip nor repeat under writes between pages."""

from __future__ import annotations

import pytest
from contract_models import Note, Row

from storeroom import Q
from storeroom.model import meta_of
from storeroom.query import EVERYTHING, build_filter, compile_local, parse_order, sort_items
from storeroom.query.order import order_values
from storeroom.query.plan import Query

NAMES = ["b", None, "a", "é", "", "a", None, "ab", "Z", "a "]
ROWS = [Row(id=i, group="ab"[i % 2], n=None if i % 3 == 0 else (i * 7) % 4,
            name=NAMES[i - 1]) for i in range(1, 11)]
GONE = {2, 6, 9}  # deleted after the positions were taken
# uniform ascending / descending (row values where nothing is nullable), mixed, nullable
ORDERS = [(), ("-group",), ("group", "-id"), ("n",), ("-n", "name")]


async def _find(s, query):
    found = s.store._b.find(query)
    return await found if s.is_async else found


@pytest.mark.parametrize("order_by", ORDERS, ids=lambda o: ",".join(o) or "key")
async def test_find_returns_exactly_what_follows_a_position(store_factory, order_by):
    s = store_factory(Row)
    for r in ROWS:
        await s.create(r)
    for k in GONE:
        await s.delete(k)
    meta = meta_of(Row)
    order = parse_order(meta, order_by)
    b = s.store._b
    for where in (None, Q(group="a") | Q(n__gte=2)):
        split = b.split(build_filter(meta, where, None, {}))
        node = split.native
        keep = compile_local(node)
        everything = sort_items(ROWS, order)  # positions of deleted items too
        for i, pos in enumerate(everything):
            if i % 2 and i != len(everything) - 1:  # every other position (and the last)
                continue
            after = order_values(pos, order)
            want = [r for r in everything[i + 1:] if r.id not in GONE and keep(r)]
            for limit in ((None, 2) if where is None else (2,)):
                got = await _find(s, Query(node, order, limit, after))
                assert got == want[:limit], (order, after, limit)
        got = await _find(s, Query(node, order, 2))
        assert got == [r for r in everything if r.id not in GONE and keep(r)][:2]


def test_query_checks_its_position_and_builds_the_keyset_node():
    order = parse_order(meta_of(Row), ("n",))
    with pytest.raises(ValueError):
        Query(EVERYTHING, order, 1, (1,))  # one value per ordered attribute: (n, id)
    q = Query(EVERYTHING, order, 1, (None, 3))
    keep = compile_local(q.where())
    # after (None, 3): only later ids of the None group follow
    assert [r.id for r in ROWS if keep(r)] == [6, 9]
    assert Query(EVERYTHING, order).where() == EVERYTHING
    assert q.uniform() is False and Query(EVERYTHING, ()).uniform() is None


@pytest.mark.parametrize("order_by", [("num",), ("-num",)])
async def test_pages_in_the_table_order_neither_skip_nor_repeat_under_writes(
        store_factory, order_by):
    s = store_factory(Note)
    for i in range(1, 9):
        await s.create(Note(owner="ann", num=i * 10))
        await s.create(Note(owner="bob", num=i * 10))
    seen: list[int] = []
    page = await s.search(owner="ann", order_by=order_by, limit=3)
    seen.extend(n.num for n in page.items)
    last = seen[-1]
    # between pages: the last item of the page is deleted, one item before the
    # position and one after it are added
    await s.delete(("ann", last))
    before, beyond = (last - 5, last + 5) if order_by == ("num",) else (last + 5, last - 5)
    await s.create(Note(owner="ann", num=before))
    await s.create(Note(owner="ann", num=beyond))
    while page.next is not None:
        page = await s.search(owner="ann", order_by=order_by, limit=3, after=page.next)
        seen.extend(n.num for n in page.items)
    untouched = [i * 10 for i in range(1, 9)]
    assert len(seen) == len(set(seen))  # nothing repeats
    assert sorted(set(untouched) - set(seen)) == []  # no untouched item is skipped
    assert before not in seen  # it sorts before the position
    assert beyond in seen
    assert seen == sorted(seen, reverse=order_by == ("-num",))

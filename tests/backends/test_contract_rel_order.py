"""Contract: ordering across forward relations page by page on every backend, sync and
async — pages of 2 through None references, None values and ties, at depth 1 and 2, in
both directions; on SQL a page is ONE statement (LEFT OUTER JOINs), the first and a
continued one."""

from __future__ import annotations

import pytest

from storeroom import Q, QueryLog, Ref, field, is_loaded, stored
from tests.backends.conftest import BACKENDS
from tests.backends.test_contract_loading import data_statements

# the store front plans it everywhere but SQL: one server per backend's code
pytestmark = pytest.mark.one_server_per_backend


@stored(key="id")
class RoShelf:
    id: int
    name: str | None = None


@stored(key="id")
class RoKind:
    id: int
    name: str = ""
    shelf: Ref[RoShelf] | None = None


@stored(key="id")
class RoPart:
    id: int
    kind: Ref[RoKind] | None = field(default=None, on_delete="nullify")


async def _graph(store_factory):  # noqa: ANN001, ANN202
    shelves, kinds, parts = (store_factory(RoShelf), store_factory(RoKind),
                             store_factory(RoPart))
    for s in (RoShelf(id=1, name="x"), RoShelf(id=2, name="y"), RoShelf(id=3)):
        await shelves.create(s)
    for k in (RoKind(id=1, name="b", shelf=2), RoKind(id=2, name="a"),
              RoKind(id=3, name="b", shelf=1), RoKind(id=4, name="c", shelf=3)):
        await kinds.create(k)
    for pid, kind in ((1, 1), (2, None), (3, 2), (4, 3), (5, 1), (6, None), (7, 2), (8, 4)):
        await parts.create(RoPart(id=pid, kind=kind))
    return parts


async def _pages(parts, order_by, where=None):  # noqa: ANN001, ANN202
    """Every id through pages of 2, each continued from the previous page's cursor."""
    out: list[int] = []
    page = await parts.search(where, order_by=order_by, limit=2)
    while True:
        assert len(page.items) <= 2
        out.extend(p.id for p in page)
        if page.next is None:
            return out
        page = await parts.search(where, order_by=order_by, limit=2, after=page.next)


async def test_pages_of_two_across_refs(store_factory) -> None:  # noqa: ANN001
    """None sorts last in both directions (a None reference, a None value at depth 2),
    ties go by the key; cursors carry the related values, None included."""
    parts = await _graph(store_factory)
    # kinds: 1 b/y, 2 a/None-shelf, 3 b/x, 4 c/shelf-without-name; parts 2 and 6: no kind
    assert await _pages(parts, "kind__name") == [3, 7, 1, 4, 5, 8, 2, 6]
    assert await _pages(parts, ["-kind__name", "-id"]) == [8, 5, 4, 1, 7, 3, 6, 2]
    assert await _pages(parts, "kind__shelf__name") == [4, 1, 5, 2, 3, 6, 7, 8]
    assert await _pages(parts, ["-kind__shelf__name", "-id"]) == [5, 1, 4, 8, 7, 6, 3, 2]
    assert await _pages(parts, ["kind__name", "-kind__shelf__name"]) == [
        3, 7, 1, 5, 4, 8, 2, 6]
    # with a filter across the Ref too (on SQL: EXISTS next to the JOINs), its values
    # bound before the cursor's
    where = Q(kind__name__in=["a", "b"]) | Q(id__gte=6)
    assert await _pages(parts, ["-kind__shelf__name", "-id"], where) == [
        5, 1, 4, 8, 7, 6, 3]
    got = [p.id for p in await parts.search_all(order_by="-kind__shelf__name", limit=2)]
    assert got == [1, 5, 4, 2, 3, 6, 7, 8]
    page = await parts.search(order_by="kind__name", limit=3)
    assert [p.kind.name if p.kind else None for p in page] == ["a", "a", "b"]


SQL = [b for b in BACKENDS if b.id in ("sqlite", "postgres", "mysql")]


@pytest.mark.parametrize("backend", SQL, indirect=True, ids=[b.id for b in SQL])
async def test_sql_orders_across_refs_in_one_statement(store_factory, backend) -> None:  # noqa: ANN001
    """A page ordered across Refs, and its continuation, is one SELECT with a LEFT OUTER
    JOIN per Ref of the order's paths (not a read of every item and their related ones)."""
    parts = await _graph(store_factory)
    first = await parts.search(order_by=["kind__name", "kind__shelf__name"], limit=2)
    await parts.search(order_by="kind__name", limit=2, after=(
        await parts.search(order_by="kind__name", limit=2)).next)  # warm: cursor secret
    with QueryLog() as log:
        page = await parts.search(order_by="kind__name", limit=2)
    assert [p.id for p in page] == [3, 7]
    statements = data_statements(log)
    assert len(statements) == 1 and "LEFT OUTER JOIN" in statements[0], statements
    with QueryLog() as log:
        page = await parts.search(order_by="kind__name", limit=2, after=page.next)
    assert [p.id for p in page] == [1, 4]
    assert len(data_statements(log)) == 1
    with QueryLog() as log:
        page = await parts.search(order_by=["kind__name", "kind__shelf__name"], limit=2,
                                  after=first.next)
    assert [p.id for p in page] == [4, 1]
    statements = data_statements(log)
    assert len(statements) == 1 and statements[0].count("LEFT OUTER JOIN") == 2, statements


async def test_select_related_of_the_ordered_refs_reads_nothing_more(store_factory) -> None:  # noqa: ANN001
    """``select_related`` of the Refs an order across relations goes through costs no
    round trip over the order alone (the order loaded them: a JOIN on SQL, one batched
    read per Ref elsewhere); a selected path beyond the order's costs its own read."""
    parts = await _graph(store_factory)
    for order in ("kind__name", "kind__shelf__name"):  # warm: cursor secret, related stores
        await parts.search(order_by=order, limit=3, select_related="kind__shelf")
    cases = [("kind__name", ("kind",), [3, 7, 1], 0),
             ("kind__shelf__name", ("kind__shelf",), [4, 1, 5], 0),
             ("kind__shelf__name", ("kind",), [4, 1, 5], 0),
             ("kind__name", ("kind__shelf",), [3, 7, 1], 1)]  # the shelves: one read
    for order, select, ids, more in cases:
        with QueryLog() as alone:
            plain = await parts.search(order_by=order, limit=3)
        with QueryLog() as log:
            page = await parts.search(order_by=order, limit=3, select_related=select)
        assert [p.id for p in plain] == [p.id for p in page] == ids
        n, base = len(data_statements(log)), len(data_statements(alone))
        assert n == base + more, (order, select, log.statements(), alone.statements())
        # what was selected is loaded, with the values stored
        assert all(is_loaded(p, "kind") for p in page)
        assert [p.kind.name for p in page] == [
            {1: "b", 2: "a", 3: "b", 4: "c"}[p.kind_id] for p in page]
        if "kind__shelf" in select:
            assert all(is_loaded(p.kind, "shelf") for p in page)
            assert [p.kind.shelf.name if p.kind.shelf else None for p in page] == [
                {1: "y", 2: None, 3: "x", 4: None}[p.kind_id] for p in page]
        if store_factory.spec.id in ("sqlite", "postgres", "mysql"):
            assert n == 1 + more  # the ordered page is one SELECT with its JOINs

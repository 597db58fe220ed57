"""Contract: a model that changes over stored data (DESIGN.md "Schema, raw SQL and
migrations", last sentence). A store of V1 writes items; a store of a later version of
the model on the same table (``@stored(table=...)``) and URL calls ``create_tables()``
(twice: idempotent) and then reads old items with the defaults of added attributes,
finds them through an added index and enforces an added unique attribute against them.

SQL adds a column only by a migration (a literal default becomes a server default:
tests/migrate/), so the added-attribute tests skip SQL; its ``create_tables()`` adds the
missing indexes, as checked here."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from racing import together

from storeroom import Conflict, F, QueryLog, field, stored
from storeroom.errors import BackendError

SQL = {"sqlite", "postgres", "mysql"}


@stored(table="evo")
class V1:
    id: str
    owner: str = ""
    code: str | None = None


@stored(table="evo")
class V2:
    """V1 with an added defaulted attribute and an index on an existing one."""

    id: str
    owner: str = field(default="", index=True)
    code: str | None = None
    n: int = 7
    tags: list[str] = field(default_factory=list)


@stored(table="evo")
class V3:
    """V1 with an added unique attribute (an existing one made unique)."""

    id: str
    owner: str = ""
    code: str | None = field(default=None, unique=True)


@stored(table="evo")
class V4:
    """V1 with an added attribute that has no default."""

    id: str
    owner: str = ""
    code: str | None = None
    size: int


async def _old_items(store_factory: Any, codes: tuple[str | None, ...] = ("a", "b", None)
                     ) -> None:
    s1 = store_factory(V1)
    await s1._call("create_tables")
    for i, code in enumerate(codes):
        await s1.create(V1(id=f"k{i}", owner="ann" if i % 2 == 0 else "bob", code=code))


async def _create_tables_twice(s: Any) -> None:
    await s._call("create_tables")
    before = await s.all()
    await s._call("create_tables")  # idempotent: nothing changes
    assert await s.all() == before


@pytest.mark.one_server_per_backend
async def test_added_attribute_reads_default_and_index_finds_old_items(
        store_factory: Any) -> None:
    if store_factory.spec.id in SQL:
        pytest.skip("SQL adds a column by a migration (tests/migrate/)")
    await _old_items(store_factory)
    s = store_factory(V2)
    await _create_tables_twice(s)
    got = await s.read("k0")
    assert (got.n, got.tags, got.owner, got.code) == (7, [], "ann", "a")
    assert [x.n for x in await s.all()] == [7, 7, 7]
    # the added index serves the search (natively on Redis / DynamoDB / MongoDB)
    assert [x.id for x in await s.search_all(owner="ann")] == ["k0", "k2"]
    assert await s.count(owner="bob") == 1
    # old items are written back with the new attribute; new ones are indexed too
    assert (await s.update("k1", n=1)).n == 1
    await s.create(V2(id="k9", owner="bob"))
    assert [x.id for x in await s.search_all(owner="bob")] == ["k1", "k9"]
    assert (await s.read("k1")).tags == []


async def test_added_index_on_every_backend(store_factory: Any) -> None:
    """SQL too: ``create_tables()`` adds the missing index over the existing rows."""

    @stored(table="evo")
    class V2i:
        id: str
        owner: str = field(default="", index=True)
        code: str | None = None

    await _old_items(store_factory)
    s = store_factory(V2i)
    await _create_tables_twice(s)
    assert [x.id for x in await s.search_all(owner="ann")] == ["k0", "k2"]


async def test_added_unique_is_enforced_against_old_items(store_factory: Any) -> None:
    if "no_transactions" in store_factory.spec.limits:
        pytest.skip("dynalite has no transactions: unique attributes are refused there")
    await _old_items(store_factory)
    s = store_factory(V3)
    await _create_tables_twice(s)
    with pytest.raises(Conflict):
        await s.create(V3(id="new", code="a"))  # taken by an item V1 wrote
    with pytest.raises(Conflict):
        await s.update("k1", code="a")
    await s.create(V3(id="new", code="c"))
    await s.create(V3(id="new2"))  # None is never constrained
    assert await s.count() == 5


async def test_added_unique_over_duplicates_is_refused(store_factory: Any) -> None:
    if "no_transactions" in store_factory.spec.limits:
        pytest.skip("dynalite has no transactions: unique attributes are refused there")
    await _old_items(store_factory, ("a", "b", "a"))
    s = store_factory(V3)
    with pytest.raises(Conflict, match="code='a'"):
        await s._call("create_tables")
    # nothing changed (read by V1: V3's store keeps refusing until the values differ)
    assert [x.code for x in await store_factory(V1).all()] == ["a", "b", "a"]
    with pytest.raises(Conflict, match="code='a'"):
        await store_factory(V3)._call("create_tables")  # no index half-built: still refused
    await store_factory(V1).update("k2", code="c")
    await store_factory(V3)._call("create_tables")
    with pytest.raises(Conflict):
        await store_factory(V3).create(V3(id="new", code="a"))


@stored(table="evo", unique_together=[("owner", "code")])
class V7u:
    """V1 with an added index and an added unique_together (over stored duplicates)."""

    id: str
    owner: str = field(default="", index=True)
    code: str | None = None


async def test_added_unique_together_over_duplicates_builds_nothing(
        store_factory: Any) -> None:
    """Several indexes added at once, one of them a unique_together that stored items
    break: ``Conflict``, and none of them is built (the plain index neither)."""
    if "no_transactions" in store_factory.spec.limits:
        pytest.skip("dynalite has no transactions: unique attributes are refused there")
    await _old_items(store_factory, ("a", "b", "a"))  # k0 and k2: ("ann", "a")
    with pytest.raises(Conflict, match="owner='ann', code='a'"):
        await store_factory(V7u)._call("create_tables")
    if store_factory.spec.id in SQL:  # (MySQL commits each CREATE INDEX by itself)
        import sqlalchemy as sa

        from storeroom.backends.sql.engines import create_sql_engine
        engine = create_sql_engine(store_factory.url, is_async=False)
        try:
            with engine.connect() as conn:
                names = {ix["name"] for ix in sa.inspect(conn).get_indexes("evo")}
        finally:
            engine.dispose()
        assert not names & {"ix_evo_owner", "uq_evo_owner_code"}, names
    assert [x.code for x in await store_factory(V1).all()] == ["a", "b", "a"]
    await store_factory(V1).update("k2", code="c")
    await store_factory(V7u)._call("create_tables")
    with pytest.raises(Conflict):
        await store_factory(V7u).create(V7u(id="new", owner="ann", code="a"))


@pytest.mark.one_server_per_backend
async def test_added_required_attribute_is_a_clear_error(store_factory: Any) -> None:
    if store_factory.spec.id in SQL:
        pytest.skip("SQL adds a column by a migration (tests/migrate/)")
    await _old_items(store_factory, ("a",))
    with pytest.raises(BackendError, match="'size'"):
        s = store_factory(V4)
        await s._call("create_tables")
        await s.read("k0")


@pytest.mark.one_server_per_backend
async def test_index_dropped_then_added_again(store_factory: Any) -> None:
    """While a model version without the index writes, the index is not maintained by
    storeroom (Redis deletes its structures then); adding it back rebuilds it."""

    @stored(table="evo")
    class V2i:
        id: str
        owner: str = field(default="", index=True)
        code: str | None = None

    await _old_items(store_factory)
    s2 = store_factory(V2i)
    await s2._call("create_tables")
    s1 = store_factory(V1)
    await s1._call("create_tables")
    await s1.update("k0", owner="cy")  # k0 leaves "ann" while nothing indexes owner
    await s1.delete("k2")
    again = store_factory(V2i)
    await again._call("create_tables")
    assert [x.id for x in await again.search_all(owner="ann")] == []
    assert [x.id for x in await again.search_all(owner="cy")] == ["k0"]


@stored(table="evo")
class V5:
    """V1 with added defaulted attributes of several kinds, filtered and ordered on."""

    id: str
    owner: str = ""
    code: str | None = None
    n: int = field(default=7, index=True)
    label: str = "new"
    flag: bool = False
    score: float = 1.5
    m: int = 3
    tags: list[str] = field(default_factory=list)


async def test_added_default_matches_native_filters(store_factory: Any) -> None:
    """An item written before an attribute with a default was added matches server-side
    filters, counts and orderings on it as it reads (create_tables writes the default
    into the stored items that lack it), the same as local evaluation."""
    if store_factory.spec.id in SQL:
        pytest.skip("SQL adds a column by a migration (tests/migrate/)")
    await _old_items(store_factory)
    s = store_factory(V5)
    await _create_tables_twice(s)
    await s.create(V5(id="k3", n=1, label="b", flag=True, score=0.5, tags=["x"]))
    items = await s.all()
    assert [(x.n, x.label, x.flag, x.score, x.tags) for x in items[:3]] == [
        (7, "new", False, 1.5, [])] * 3

    def local(pred: Any) -> list[str]:
        return [x.id for x in items if pred(x)]

    assert await s.count(n=7) == 3
    assert await s.count(n__gte=7) == 3
    assert [x.id for x in await s.search_all(n=7)] == local(lambda x: x.n == 7)
    assert [x.id for x in await s.search_all(n__lt=7)] == ["k3"]
    assert [x.id for x in await s.search_all(n__in=[1, 7])] == local(lambda x: True)
    assert await s.count(label="new") == 3
    assert await s.count(label__startswith="ne") == 3
    assert await s.count(label__iexact="NEW") == 3
    assert await s.count(flag=False) == 3
    assert await s.count(score__gt=1.0) == 3
    assert await s.count(tags__contains="x") == 1
    assert await s.count(owner="ann", n=7) == 2
    got = [x.id for x in await s.search_all(order_by="n")]
    assert got == [x.id for x in sorted(items, key=lambda x: (x.n, x.id))]
    got = [x.id for x in await s.search_all(order_by=["-label", "id"])]
    assert got == [x.id for x in sorted(items, key=lambda x: x.id)
                   if x.label == "new"] + ["k3"]
    assert await s.update_where(n=7, changes={"n": 8}) == 3
    assert await s.count(n=8) == 3
    # F expressions computed by the server start from the default
    assert (await s.update("k0", m=F("m") + 1)).m == 4
    assert await s.update_where(label="new", changes={"m": F("m") * 2}) == 3
    assert [x.m for x in await s.all()] == [8, 6, 6, 3]


# the backends that backfill (they store None as an absent attribute), and the
# statements that write (or scan) there: a second create_tables sends none of them
BACKFILLED = {"mongodb", "dynamodb", "dynamodb-moto"}
BACKFILL_IO = {"update", "insert", "delete", "findAndModify", "Scan", "UpdateItem",
               "PutItem", "BatchWriteItem"}


def _uid() -> str:
    return uuid.uuid4().hex


@stored(table="evo")
class V6:
    """V1 with an added attribute whose default comes from a factory."""

    id: str
    owner: str = ""
    code: str | None = None
    uid: str = field(default_factory=_uid)
    n: int = 7


async def test_backfill_runs_once_and_forgets_dropped_attributes(
        store_factory: Any) -> None:
    """The marker: a later create_tables (another process: a new store) writes and
    scans nothing; a model version without the attribute drops it from the marker, so
    that adding it back fills the items written meanwhile."""
    if store_factory.spec.id in SQL:
        pytest.skip("SQL adds a column by a migration (tests/migrate/)")
    await _old_items(store_factory)
    await store_factory(V5)._call("create_tables")
    again = store_factory(V5)
    with QueryLog() as log:
        await again._call("create_tables")
    # (dynalite accepts a GSI it never builds: each create_tables scans to add it again,
    # an unfiltered Scan; the backfill's Scan has a FilterExpression)
    io = [r.statement for r in log.records if r.statement in BACKFILL_IO
          and not (r.statement == "Scan" and "FilterExpression" not in (r.params or {}))]
    assert io == []
    assert await again.count(n=7) == 3
    if store_factory.spec.id in BACKFILLED:
        assert len([r for r in log.records if r.statement in ("find", "GetItem")]) >= 1
    # V1 (no ``n``) opens the table and writes an item lacking it ...
    old = store_factory(V1)
    await old._call("create_tables")
    await old.create(V1(id="k8", owner="cy"))
    # ... and V5 coming back fills it in
    back = store_factory(V5)
    await back._call("create_tables")
    assert await back.count(n=7) == 4
    assert [x.id for x in await back.search_all(n=7, owner="cy")] == ["k8"]


async def test_backfill_of_a_factory_default_gives_each_item_its_value(
        store_factory: Any) -> None:
    if store_factory.spec.id in SQL:
        pytest.skip("SQL adds a column by a migration (tests/migrate/)")
    await _old_items(store_factory)
    s = store_factory(V6)
    await s._call("create_tables")
    if store_factory.spec.id not in BACKFILLED:
        return  # memory and Redis compute the default at each read (nothing stored)
    uids = [x.uid for x in await s.all()]
    assert len(set(uids)) == 3
    assert [x.uid for x in await store_factory(V6).all()] == uids  # stored: stable
    assert [x.id for x in await s.search_all(uid=uids[1])] == ["k1"]



N_RACE = 40


async def _race_round(store_factory: Any, rnd: int) -> None:
    @stored(table=f"evo_race{rnd}")
    class R1:
        id: str
        owner: str = ""

    @stored(table=f"evo_race{rnd}")
    class R2:
        id: str
        owner: str = ""
        n: int = field(default=7, index=True)

    s1 = store_factory(R1)
    await s1._call("create_tables")
    for i in range(N_RACE):
        await s1.create(R1(id=f"k{i:02}"))
    # three processes of the new version start at once; the writer's first write runs
    # its create_tables (the same backfill) and then writes values that the other two,
    # still filling, must not overwrite
    a, b, w = store_factory(R2), store_factory(R2), store_factory(R2)

    async def write() -> None:
        for i in range(0, N_RACE, 2):
            await w.update(f"k{i:02}", n=i)

    results = await together(store_factory, lambda: a._call("create_tables"),
                              lambda: b._call("create_tables"), write)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    got = {x.id: x.n for x in await store_factory(R2).all()}
    assert got == {f"k{i:02}": (i if i % 2 == 0 else 7) for i in range(N_RACE)}
    checker = store_factory(R2)
    assert await checker.count(n=7) == N_RACE // 2
    assert sorted(x.id for x in await checker.search_all(n__in=[0, 2, 4, 6])) == [
        "k00", "k02", "k04", "k06"]


@pytest.mark.one_server_per_backend
async def test_concurrent_create_tables_backfill_once_and_lose_no_write(
        store_factory: Any) -> None:
    """Processes (stores) run create_tables at once while another writes values of
    the added attribute: all succeed, every item reads and filters the same, and the
    values written are never overwritten by a default (bounded: 2 rounds of 40 items, 20
    of them written during the backfill; Redis' re-index lost this race before)."""
    if store_factory.spec.id in SQL:
        pytest.skip("SQL adds a column by a migration (tests/migrate/)")
    for rnd in range(2):
        await _race_round(store_factory, rnd)

"""The Store contract: the eight actions and their return conventions, on every backend."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from contract_models import Counter, Note, Row, Task, User

from storeroom import (
    AsyncStore,
    BatchError,
    Conflict,
    Create,
    Delete,
    EditResult,
    InvalidFilter,
    Page,
    Q,
    Store,
    StoreMeta,
    UnsupportedOperation,
    Update,
    ValidationError,
    attr,
    open_async_store,
    open_store,
)
from storeroom.query import OPERATORS


def now() -> datetime:
    return datetime.now(UTC)


async def snapshot(s) -> list:
    return await s.all()


# create / read -------------------------------------------------------------------------
async def test_create_returns_item_with_generated_values(store_factory):
    s = store_factory(Task)
    before = now()
    t = await s.create(Task(owner="ann", title="milk"))
    after = now()
    assert isinstance(t, Task)
    assert uuid.UUID(t.id).version == 4
    assert (t.owner, t.title, t.done, t.priority, t.tags) == ("ann", "milk", False, 0, [])
    for stamp in (t.created_at, t.updated_at):
        assert stamp.utcoffset() == timedelta(0)
        assert before - timedelta(seconds=1) <= stamp <= after + timedelta(seconds=1)
    assert await s.read(t.id) == t


async def test_create_keeps_given_key(store_factory):
    s = store_factory(Task)
    t = await s.create(Task(id="my-id", owner="ann", title="x", tags=["a", "b"]))
    assert t.id == "my-id"
    assert (await s.read("my-id")).tags == ["a", "b"]


async def test_read_missing_is_none(store_factory):
    s = store_factory(Task)
    assert await s.read("nope") is None
    await s.create(Task(id="a", owner="ann", title="x"))
    assert await s.read("b") is None


async def test_items_are_not_shared_with_the_store(store_factory):
    s = store_factory(Task)
    t = await s.create(Task(id="a", owner="ann", title="x", tags=["a"]))
    t.tags.append("mutated")
    got = await s.read("a")
    assert got.tags == ["a"]
    got.tags.append("again")
    assert (await s.read("a")).tags == ["a"]


# update --------------------------------------------------------------------------------
async def test_full_update(store_factory):
    s = store_factory(Task)
    t = await s.create(Task(owner="ann", title="milk"))
    changed = dataclasses.replace(t, title="eggs", done=True, priority=3, tags=["x"],
                                  created_at=t.created_at - timedelta(days=1))
    u = await s.update(changed)
    assert (u.id, u.owner, u.title, u.done, u.priority, u.tags) == (
        t.id, "ann", "eggs", True, 3, ["x"])
    assert u.created_at == t.created_at  # not updatable: left out of a full update
    assert u.updated_at >= t.updated_at
    assert await s.read(t.id) == u


async def test_partial_update(store_factory):
    s = store_factory(Task)
    t = await s.create(Task(owner="ann", title="milk", priority=1))
    u = await s.update(t.id, title="eggs", done=True)
    assert (u.title, u.done, u.priority, u.owner) == ("eggs", True, 1, "ann")
    assert u.created_at == t.created_at
    assert u.updated_at >= t.updated_at
    assert await s.read(t.id) == u


async def test_update_missing_is_none_and_changes_nothing(store_factory):
    s = store_factory(Task)
    t = await s.create(Task(owner="ann", title="milk"))
    before = await snapshot(s)
    assert await s.update("nope", title="x") is None
    assert await s.update(dataclasses.replace(t, id="other", title="x")) is None
    assert await snapshot(s) == before
    assert await s.count() == 1


async def test_update_precondition(store_factory):
    s = store_factory(Task)
    t = await s.create(Task(owner="ann", title="milk"))
    assert await s.update(t.id, precondition=Q(done=True), title="x") is None
    assert await s.update(dataclasses.replace(t, title="y"), precondition=Q(owner="bob")) is None
    assert await s.update(t.id, precondition=~Q(), title="x") is None
    assert await s.read(t.id) == t
    u = await s.update(t.id, precondition=Q(done=False) & attr("title").startswith("mi"),
                       title="x")
    assert u is not None and u.title == "x"
    assert (await s.read(t.id)).title == "x"


async def test_update_rejects_key_unknown_and_readonly_attributes(store_factory):
    s = store_factory(Task)
    t = await s.create(Task(owner="ann", title="milk"))
    for changes in ({"id": "other"}, {"nope": 1}, {"created_at": now()}, {"priority": 9},
                    {"title": 5}):
        with pytest.raises(ValidationError):
            await s.update(t.id, **changes)
    assert await s.read(t.id) == t


# delete --------------------------------------------------------------------------------
async def test_delete(store_factory):
    s = store_factory(Task)
    t = await s.create(Task(owner="ann", title="milk"))
    other = await s.create(Task(owner="bob", title="eggs"))
    assert await s.delete(t.id) is True
    assert await s.read(t.id) is None
    assert await s.delete(t.id) is False
    assert await s.delete("never") is False
    assert await s.all() == [other]


# conflicts -----------------------------------------------------------------------------
async def test_duplicate_key_conflict_changes_nothing(store_factory):
    s = store_factory(Task)
    t = await s.create(Task(id="k", owner="ann", title="milk"))
    with pytest.raises(Conflict):
        await s.create(Task(id="k", owner="bob", title="other"))
    assert await s.all() == [t]


def _unique_needs_transactions(store_factory: Any) -> bool:
    """On a server without transactions (dynalite) unique attributes are refused."""
    return "no_transactions" in store_factory.spec.limits


async def test_unique_attribute_refused_without_transactions(store_factory):
    if not _unique_needs_transactions(store_factory):
        return  # the two tests below cover every other backend
    s = store_factory(User)
    with pytest.raises(UnsupportedOperation, match="transactions"):
        await s.create(User(id="u1", email="a@x.org"))
    assert await s.count() == 0


async def test_unique_attribute_on_create(store_factory):
    if _unique_needs_transactions(store_factory):
        return  # refused: test_unique_attribute_refused_without_transactions
    s = store_factory(User)
    u1 = await s.create(User(id="u1", email="a@x.org"))
    with pytest.raises(Conflict):
        await s.create(User(id="u2", email="a@x.org"))
    assert await s.all() == [u1]
    await s.create(User(id="u2", email="A@x.org"))  # unique is case-sensitive, like eq
    assert await s.count() == 2


async def test_unique_attribute_on_update(store_factory):
    if _unique_needs_transactions(store_factory):
        return  # refused: test_unique_attribute_refused_without_transactions
    s = store_factory(User)
    u1 = await s.create(User(id="u1", email="a@x.org", name="one"))
    u2 = await s.create(User(id="u2", email="b@x.org", name="two"))
    with pytest.raises(Conflict):
        await s.update("u2", email="a@x.org")
    with pytest.raises(Conflict):
        await s.update(dataclasses.replace(u2, email="a@x.org"))
    with pytest.raises(Conflict):
        await s.update_where(id="u2", changes={"email": "a@x.org"})
    with pytest.raises(Conflict):
        await s.update_where(changes={"email": "c@x.org"})  # two items, one value
    assert await s.all() == [u1, u2]
    # keeping one's own value is no conflict
    assert (await s.update("u1", email="a@x.org", name="uno")).name == "uno"
    assert (await s.update("u2", email="c@x.org")).email == "c@x.org"
    assert await s.count(email="b@x.org") == 0


# read_batch ----------------------------------------------------------------------------
async def test_read_batch_aligned_with_keys(store_factory):
    s = store_factory(Row)
    r1 = await s.create(Row(id=1))
    r2 = await s.create(Row(id=2, n=5))
    assert await s.read_batch([2, 99, 1, 2, -1]) == [r2, None, r1, r2, None]
    assert await s.read_batch([]) == []
    assert await s.read_batch(iter([1])) == [r1]


# edit_batch ----------------------------------------------------------------------------
async def test_edit_batch_codes_in_input_order(store_factory):
    s = store_factory(Row)
    await s.create(Row(id=1, name="one"))
    await s.create(Row(id=2, name="two"))
    edits = [
        Create(Row(id=3, name="three")),
        Create(Row(id=1, name="dup")),
        Update(2, name="deux"),
        Update(99, name="x"),
        Create(Row(id="not an int")),  # type: ignore[arg-type]
        Update(2, n="not an int"),
        Delete(98),
        Delete(1),
        Update(3, precondition=Q(name="nope"), n=1),
    ]
    results = await s.edit_batch(edits)
    assert all(isinstance(r, EditResult) for r in results)
    assert [r.edit for r in results] == edits
    assert [(r.ok, r.code) for r in results] == [
        (True, None), (False, "duplicate_key"), (True, None), (False, "missing_key"),
        (False, "invalid"), (False, "invalid"), (False, "missing_key"), (True, None),
        (False, results[8].code),
    ]
    assert results[8].code is not None
    assert results[0].item == Row(id=3, name="three")
    assert results[2].item == Row(id=2, name="deux")
    assert all(r.detail for r in results if not r.ok)
    assert await s.all() == [Row(id=2, name="deux"), Row(id=3, name="three")]


async def test_edit_batch_full_update_edit(store_factory):
    s = store_factory(Row)
    await s.create(Row(id=1, name="one"))
    results = await s.edit_batch([Update(Row(id=1, name="uno", n=4))])
    assert results[0].ok and results[0].item == Row(id=1, name="uno", n=4)
    assert await s.read(1) == Row(id=1, name="uno", n=4)


async def test_edit_batch_atomic_success(store_factory):
    s = store_factory(Row)
    await s.create(Row(id=1))
    edits = [Create(Row(id=2)), Update(1, n=7), Delete(2)]
    if not s.meta.atomic_batch:
        with pytest.raises(UnsupportedOperation):
            await s.edit_batch(edits, atomic=True)
        return
    results = await s.edit_batch(edits, atomic=True)
    assert [r.ok for r in results] == [True, True, True]
    assert await s.all() == [Row(id=1, n=7)]


@pytest.mark.parametrize("bad", [
    Create(Row(id=2, name="dup")),          # fails in the backend
    Update(42, name="missing"),             # fails in the backend
    Delete(42),                             # fails in the backend
    Create(Row(id=5, n="x")),               # type: ignore[arg-type]  # fails validation
], ids=["duplicate", "update-missing", "delete-missing", "invalid"])
async def test_edit_batch_atomic_rolls_back(store_factory, bad):
    s = store_factory(Row)
    await s.create(Row(id=1, name="one"))
    await s.create(Row(id=2, name="two"))
    before = await snapshot(s)
    edits = [Create(Row(id=3)), Update(2, name="changed"), Delete(1), bad, Create(Row(id=4))]
    if not s.meta.atomic_batch:
        with pytest.raises(UnsupportedOperation):
            await s.edit_batch(edits, atomic=True)
        assert await snapshot(s) == before
        return
    with pytest.raises(BatchError) as info:
        await s.edit_batch(edits, atomic=True)
    results = info.value.results
    assert len(results) == len(edits)
    assert [r.edit for r in results] == edits
    assert not any(r.ok for r in results)
    expected = {"duplicate": "duplicate_key", "update-missing": "missing_key",
                "delete-missing": "missing_key", "invalid": "invalid"}
    assert results[3].code in expected.values()
    assert sum(r.code is not None for r in results) == 1
    assert await snapshot(s) == before
    # the store still works after the rollback
    assert (await s.create(Row(id=3))) == Row(id=3)


async def test_edit_batch_atomic_rollback_codes(store_factory):
    s = store_factory(Row)
    await s.create(Row(id=1))
    for bad, code in [(Create(Row(id=1)), "duplicate_key"), (Update(9, n=1), "missing_key"),
                      (Delete(9), "missing_key"), (Update(1, n="x"), "invalid")]:
        if not s.meta.atomic_batch:
            with pytest.raises(UnsupportedOperation):
                await s.edit_batch([Update(1, n=5), bad], atomic=True)
            continue
        with pytest.raises(BatchError) as info:
            await s.edit_batch([Update(1, n=5), bad], atomic=True)
        assert info.value.results[1].code == code
        assert info.value.results[0].ok is False
    assert await s.all() == [Row(id=1)]


async def test_edit_batch_sequence_rolls_back(store_factory):
    s = store_factory(Counter)
    c1 = await s.create(Counter(label="a"))
    with pytest.raises(BatchError if s.meta.atomic_batch else UnsupportedOperation):
        await s.edit_batch([Create(Counter(label="b")), Delete(c1.id + 1000)], atomic=True)
    assert await s.all() == [c1]
    c2 = await s.create(Counter(label="c"))
    assert c2.id > c1.id


# count / update_where / delete_where ---------------------------------------------------
ROWS = [Row(id=i, group="a" if i % 2 else "b", n=None if i % 3 == 0 else i,
            name=None if i % 4 == 0 else f"name{i}") for i in range(1, 11)]


async def fill(s, rows=ROWS):
    for r in rows:
        await s.create(r)


async def test_count(store_factory):
    s = store_factory(Row)
    assert await s.count() == 0
    await fill(s)
    assert await s.count() == 10
    assert await s.count(group="a") == 5
    assert await s.count(Q(group="a"), n__gt=4) == 2  # 5, 7 (9 is None)
    assert await s.count(Q(n__isnull=True) | Q(name=None)) == 5  # 3, 6, 9, 4, 8
    assert await s.count(n__ne=5) == 9  # None counts as "not equal"
    assert await s.count(~Q()) == 0
    assert await s.count(Q()) == 10
    assert await s.count({"group": "b", "name__isnull": False}) == 3  # 2, 6, 10


async def test_count_matches_search(store_factory):
    s = store_factory(Row)
    await fill(s)
    for where in [Q(group="a"), Q(n__gt=4), ~Q(n__in=[1, 2, None]), Q(name__endswith="0")]:
        assert await s.count(where) == len(await s.search_all(where))


async def test_update_where(store_factory):
    s = store_factory(Row)
    await fill(s)
    assert await s.update_where(group="a", changes={"name": "odd"}) == 5
    assert await s.update_where(Q(n__isnull=True), changes={"n": 0}) == 3
    assert await s.update_where(id=99, changes={"n": 1}) == 0
    assert await s.update_where(~Q(), changes={"n": 1}) == 0
    rows = await s.all()
    assert [r.name for r in rows if r.group == "a"] == ["odd"] * 5
    assert [r.name for r in rows if r.group == "b"] == ["name2", None, "name6", None, "name10"]
    assert [r.n for r in rows] == [1, 2, 0, 4, 5, 0, 7, 8, 0, 10]
    with pytest.raises(ValidationError):
        await s.update_where(changes={"id": 5})
    with pytest.raises(ValidationError):
        await s.update_where(changes={"n": "many"})
    assert await s.all() == rows


async def test_update_where_sets_updated_at(store_factory):
    s = store_factory(Task)
    t = await s.create(Task(owner="ann", title="milk"))
    assert await s.update_where(owner="ann", changes={"done": True}) == 1
    u = await s.read(t.id)
    assert u.done is True and u.updated_at >= t.updated_at and u.created_at == t.created_at


async def test_delete_where(store_factory):
    s = store_factory(Row)
    await fill(s)
    assert await s.delete_where(n__isnull=True) == 3
    assert await s.delete_where(n__isnull=True) == 0
    assert await s.delete_where(Q(group="a") & Q(n__gte=5)) == 2  # 5, 7
    assert [r.id for r in await s.all()] == [1, 2, 4, 8, 10]
    assert await s.delete_where() == 5
    assert await s.count() == 0


# search --------------------------------------------------------------------------------
async def test_search_returns_page(store_factory):
    s = store_factory(Row)
    await fill(s)
    page = await s.search(group="b", order_by="-id")
    assert isinstance(page, Page)
    assert page.next is None
    assert [r.id for r in page] == [10, 8, 6, 4, 2]
    assert [r.id for r in page.items] == [10, 8, 6, 4, 2]


async def test_where_and_lookups_are_anded(store_factory):
    s = store_factory(Row)
    await fill(s)
    got = await s.search_all(Q(group="a") | Q(n=2), name__isnull=False, order_by="id")
    assert [r.id for r in got] == [1, 2, 3, 5, 7, 9]
    got = await s.search_all(attr("n") > 3, group="b")
    assert [r.id for r in got] == [4, 8, 10]


async def test_free_text_query(store_factory):
    s = store_factory(Task)
    a = await s.create(Task(id="1", owner="Ann", title="Buy MILK"))
    b = await s.create(Task(id="2", owner="bob", title="eggs"))
    await s.create(Task(id="3", owner="carl", title="bread"))
    assert await s.search_all(query="milk") == [a]
    assert await s.search_all(query="ANN") == [a]
    assert await s.search_all(query="b", order_by="id") == [a, b, await s.read("3")]
    assert await s.search_all(query="o", owner="bob") == [b]


# composite keys ------------------------------------------------------------------------
async def test_composite_keys(store_factory):
    s = store_factory(Note)
    n1 = await s.create(Note(owner="ann", num=1, text="a"))
    n2 = await s.create(Note(owner="ann", num=2, text="b"))
    n3 = await s.create(Note(owner="a/b %c", num=1, text="c"))
    assert await s.read(("ann", 1)) == n1
    assert await s.read(["ann", 2]) == n2
    assert await s.read(("ann", 3)) is None
    assert await s.read(("bob", 1)) is None
    assert s.key_str(n1) == "ann,1"
    assert s.key_str(("ann", 2)) == "ann,2"
    assert await s.read(s.parse_key(s.key_str(n3))) == n3
    assert await s.read(s.parse_key("ann,2")) == n2
    with pytest.raises(Conflict):
        await s.create(Note(owner="ann", num=1, text="dup"))
    assert (await s.update(("ann", 1), text="A")).text == "A"
    assert (await s.update(s.parse_key("ann,2"), text="B")).text == "B"
    assert await s.read_batch([("ann", 2), ("x", 1), s.parse_key("a%2Fb%20%25c,1")]) == [
        Note(owner="ann", num=2, text="B"), None, n3]
    assert [s.key_str(n) for n in await s.all()] == ["a%2Fb%20%25c,1", "ann,1", "ann,2"]
    assert await s.delete(("ann", 1)) is True
    assert await s.delete(("ann", 1)) is False
    assert await s.delete(s.parse_key("ann,2")) is True
    assert await s.all() == [n3]
    for bad in [("ann",), ("ann", 1, 2), "ann", "ann,1", "ann/1/2", ("ann", "one")]:
        with pytest.raises(ValidationError):
            await s.read(bad)


async def test_single_key_string_form(store_factory):
    s = store_factory(Row)
    r = await s.create(Row(id=7))
    assert s.key_str(r) == "7"
    assert await s.read("7") == r
    assert await s.update("7", n=1) == Row(id=7, n=1)
    assert await s.delete("7") is True


# generated values, store=False, meta ----------------------------------------------------
async def test_store_false_attribute_is_never_persisted(store_factory):
    s = store_factory(Task)
    t = await s.create(Task(id="a", owner="ann", title="x", note="secret"))
    assert (await s.read("a")).note is None
    assert t.note in (None, "secret")
    await s.update(dataclasses.replace(await s.read("a"), note="again", title="y"))
    got = await s.read("a")
    assert got.note is None and got.title == "y"
    assert [i.note for i in await s.all()] == [None]
    with pytest.raises(InvalidFilter, match="note"):
        await s.count(note="secret")


async def test_sequence_keys(store_factory):
    s = store_factory(Counter)
    made = [await s.create(Counter(label=str(i))) for i in range(5)]
    ids = [c.id for c in made]
    assert all(type(i) is int for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == 5
    for c in made:
        assert await s.read(c.id) == c
    assert await s.delete(ids[-1]) is True
    later = await s.create(Counter(label="later"))
    assert later.id > ids[-2]
    assert await s.count() == 5


async def test_store_meta(store_factory):
    s = store_factory(Task)
    m = s.meta
    assert isinstance(m, StoreMeta)
    assert m.name == "tasks"
    assert m.model is Task
    assert m.key_attrs == ("id",)
    assert isinstance(m.native_ops, frozenset) and m.native_ops <= OPERATORS
    assert isinstance(m.atomic_batch, bool)
    assert isinstance(m.transactions, bool)
    assert isinstance(m.max_batch, int) and m.max_batch >= 1
    assert isinstance(m.max_page, int) and m.max_page >= 1
    n = store_factory(Note).meta
    assert (n.name, n.model, n.key_attrs) == ("note", Note, ("owner", "num"))


@pytest.mark.parametrize("limit", [0, -1, "max+1", 10**9, 2.0, "5", True])
async def test_bad_limit(store_factory, limit):
    s = store_factory(Row)
    await s.create(Row(id=1))
    if limit == "max+1":
        limit = s.meta.max_page + 1
    with pytest.raises(ValidationError):
        await s.search(limit=limit)
    with pytest.raises(ValidationError):
        await s.search_all(limit=limit)


async def test_limit_bounds_accepted(store_factory):
    s = store_factory(Row)
    await fill(s)
    assert len(await s.search(limit=1)) == 1
    assert len(await s.search(limit=s.meta.max_page)) == 10
    assert len(await s.search()) == 10


# opening -------------------------------------------------------------------------------
async def test_open_returns_store_without_awaiting(store_factory):
    import inspect
    store = store_factory.raw(Row)
    assert not inspect.isawaitable(store)
    assert isinstance(store, AsyncStore if store_factory.is_async else Store)
    s = store_factory(Row)  # a second store on the same URL sees the same data
    await s.create(Row(id=1))
    result = store.read(1)
    if store_factory.is_async:
        assert inspect.isawaitable(result)
        result = await result
    assert result == Row(id=1)


def test_async_store_opened_outside_a_loop(backend, tmp_path):
    import asyncio
    url = backend.url_factory(tmp_path, f"t{uuid.uuid4().hex}")
    store = open_async_store(Row, url)  # no event loop is running here
    assert isinstance(store, AsyncStore)

    async def use() -> Row | None:
        async with store as st:
            await st.create(Row(id=1, name="x"))
            return await st.read(1)

    assert asyncio.run(use()) == Row(id=1, name="x")


def test_sync_store_context_manager(backend, tmp_path):
    url = backend.url_factory(tmp_path, f"t{uuid.uuid4().hex}")
    with open_store(Row, url) as st:
        st.create(Row(id=1))
        assert st.read(1) == Row(id=1)
        assert [r.id for r in st.search_all()] == [1]

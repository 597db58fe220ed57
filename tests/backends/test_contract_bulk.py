"""Batches of creates on every backend, sync and async: sequence keys filled in on every
item returned, runs of creates inside mixed batches, and a failing create in a run
reported exactly where it is (the other edits applied, or in an atomic batch none).
On SQL a run of creates with a sequence key is one statement per run, not one per item."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from storeroom import Create, Delete, QueryLog, Update, field, generated, stored
from storeroom.errors import BatchError


@stored
class Job:
    id: int = generated.sequence()
    name: str = ""
    n: int = 0
    at: datetime = generated.created_at()


@stored
class Tag:
    id: int = generated.sequence()
    name: str = field(unique=True, default="")
    n: int = 0


def _unique_ok(store_factory) -> None:
    if "no_transactions" in store_factory.spec.limits:
        pytest.skip("unique attributes need transactions on DynamoDB")


def _names(results):
    return [r.item.name if r.ok else r.code for r in results]


async def test_batch_of_creates_fills_sequence_keys(store_factory):
    s = store_factory(Job)
    first = await s.create(Job(name="first"))
    out = await s.edit_batch([Create(Job(name=f"j{i}", n=i)) for i in range(6)])
    assert all(r.ok for r in out)
    ids = [r.item.id for r in out]
    assert all(type(i) is int for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == 6 and ids[0] > first.id
    for r in out:
        assert isinstance(r.item.at, datetime) and r.item.at.tzinfo is not None
        assert await s.read(r.item.id) == r.item
    later = await s.create(Job(name="later"))
    assert later.id > ids[-1]
    assert await s.count() == 8


async def test_mixed_batch_runs_of_creates(store_factory):
    _unique_ok(store_factory)
    s = store_factory(Tag)
    a = await s.create(Tag(name="a"))
    out = await s.edit_batch([Create(Tag(name="b")), Create(Tag(name="c")), Update(a.id, n=5),
                              Create(Tag(name="d")), Create(Tag(name="a")),  # duplicate
                              Create(Tag(name="e")), Delete(a.id + 10_000)])
    assert _names(out) == ["b", "c", "a", "d", "duplicate_key", "e", "missing_key"]
    assert out[2].item.n == 5
    names = sorted(j.name for j in await s.all())
    assert names == ["a", "b", "c", "d", "e"]
    ids = [r.item.id for r in out if r.ok]
    assert len(set(ids)) == len(ids)
    for r in out:
        if r.ok:
            assert await s.read(r.item.id) == r.item


async def test_atomic_batch_of_creates_with_a_duplicate_applies_none(store_factory):
    _unique_ok(store_factory)
    s = store_factory(Tag)
    await s.create(Tag(name="x"))
    edits = [Create(Tag(name="p")), Create(Tag(name="x")), Create(Tag(name="q"))]
    if not s.meta.atomic_batch:
        pytest.skip("no atomic batches")
    with pytest.raises(BatchError) as info:
        await s.edit_batch(edits, atomic=True)
    assert info.value.results[1].code == "duplicate_key"
    assert [j.name for j in await s.all()] == ["x"]
    out = await s.edit_batch([Create(Tag(name="p")), Create(Tag(name="q"))], atomic=True)
    assert [r.item.name for r in out] == ["p", "q"]
    assert out[0].item.id < out[1].item.id


async def test_create_with_given_sequence_value_and_generated_time(store_factory):
    s = store_factory(Job)
    given = await s.create(Job(id=500, name="given"))
    assert given.id == 500
    when = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    made = await s.create(Job(name="made", at=when))
    assert made.id > 500 and made.at == when
    assert await s.read(made.id) == made


async def test_sql_run_of_creates_is_one_statement(store_factory):
    if not store_factory.spec.id.startswith(("sqlite", "postgres", "mysql")):
        pytest.skip("SQL backends write a run of creates in one statement")
    s = store_factory(Job)
    await s.create(Job(name="warm"))
    async with QueryLog() as log:
        out = await s.edit_batch([Create(Job(name=f"k{i}")) for i in range(20)])
    assert all(r.ok for r in out)
    # BEGIN, SAVEPOINT, the keys (MySQL: the auto-increment settings), one executemany
    # / COPY / multi-row INSERT, RELEASE, COMMIT: not one per item
    assert len(log.records) <= 8, [r.statement for r in log.records]
    ids = [r.item.id for r in out]
    assert ids == list(range(ids[0], ids[0] + 20))
    assert [(j.id, j.name) for j in await s.all() if j.name != "warm"] == \
        [(i, f"k{n}") for n, i in enumerate(ids)]


async def test_batch_of_creates_only_falls_back_where_needed(store_factory):
    """A batch of nothing but creates (SQL: the run-of-creates fast path) whose items
    need the general path: a duplicate of a unique value (the write fails), an item
    that is invalid, one whose key is given and one whose value is coerced. Each is
    reported where it is, the others created, the given items left as they were."""
    _unique_ok(store_factory)
    s = store_factory(Tag)
    await s.create(Tag(name="taken"))
    given = [Tag(name="u"), Tag(name="taken"), Tag(name="v")]
    out = await s.edit_batch([Create(t) for t in given])
    assert _names(out) == ["u", "duplicate_key", "v"]
    assert all(str(t.id) == "UNDEFINED" for t in given)  # the items given: unchanged
    assert all(r.item is not t for r, t in zip(out, given, strict=True) if r.ok)
    bad = Tag(name="w")
    bad.n = "many"  # type: ignore[assignment]
    out = await s.edit_batch([Create(Tag(name="w0")), Create(bad), Create(Tag(name="w2"))])
    assert _names(out) == ["w0", "invalid", "w2"]
    out = await s.edit_batch([Create(Tag(name="k0")), Create(Tag(id=9000, name="k1"))])
    assert _names(out) == ["k0", "k1"] and out[1].item.id == 9000
    out = await s.edit_batch([Create(Tag(name="c0")), Create(Tag(name="c1", n=True))])
    assert all(r.ok for r in out)
    for r in out:
        assert await s.read(r.item.id) == r.item
    assert sorted(t.name for t in await s.all()) == \
        ["c0", "c1", "k0", "k1", "taken", "u", "v", "w0", "w2"]

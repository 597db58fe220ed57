"""``F`` expressions in ``edit_batch`` (atomic and not) and in ``update_where``, on every
backend, sync and async: the results, bounds (``invalid`` in a batch, ``ValidationError``
and nothing written in ``update_where``), preconditions and missing keys as local
evaluation says; a race of batch increments that loses nothing; and ``QueryLog`` counts
that show each backend's native path (no read before the write where the backend
evaluates the expression itself)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from storeroom import (
    BatchError,
    Create,
    Delete,
    F,
    Q,
    QueryLog,
    Update,
    ValidationError,
    field,
    stored,
)
from storeroom.store.protocol import AsyncBackend, Backend
from tests.backends.test_contract_precond import _persist, _race, _racy_server

RACE_N = int(os.environ.get("STOREROOM_RACE_N", "50"))
WRITERS = 4


@stored
class Tally:
    id: str
    n: int = field(default=0, ge=0, le=1000)
    hits: int = 0
    price: float = 1.0
    tag: str = ""


async def _seed(s: Any) -> None:
    await s.create(Tally(id="a", n=5, hits=1, tag="x"))
    await s.create(Tally(id="b", n=0, hits=2, tag="x"))
    await s.create(Tally(id="c", n=7, hits=3, tag="y"))


async def test_backend_declares_native_fexpr(store_factory):
    """``native_fexpr`` is a member of the backend protocols, on every backend."""
    s = store_factory(Tally)
    backend = s.store._base
    assert isinstance(backend, AsyncBackend if s.is_async else Backend)
    values = {"n": F("n") + 1}
    for use in ("update", "batch", "where"):
        assert type(backend.native_fexpr(values, None, use)) is bool


async def test_batch_with_f_not_atomic(store_factory):
    s = store_factory(Tally)
    await _seed(s)
    res = await s.edit_batch([
        Update("a", n=F("n") - 1, hits=F("n") * 2 + F("hits")),  # every F: the old values
        Update("b", n=F("n") - 1),                                # below ge=0
        Update("zz", n=F("n") + 1),                               # missing
        Update("c", n=F("n") + 1, precondition=Q(tag="x")),       # precondition fails
        Create(Tally(id="d", n=1)),
        Update("c", n=10 - F("n"), precondition=Q(tag="y")),
        Delete("b"),
    ])
    assert [(r.ok, r.code) for r in res] == [
        (True, None), (False, "invalid"), (False, "missing_key"),
        (False, "precondition_failed"), (True, None), (True, None), (True, None)]
    assert (res[0].item.n, res[0].item.hits) == (4, 11)
    assert res[5].item.n == 3
    assert [(i.id, i.n, i.hits) for i in await s.all()] == [
        ("a", 4, 11), ("c", 3, 3), ("d", 1, 0)]


async def test_batch_with_f_atomic(store_factory):
    s = store_factory(Tally)
    await _seed(s)  # (DynamoDB finds out whether it has transactions on first use)
    if not s.meta.atomic_batch:
        pytest.skip("no atomic batches on this backend")
    res = await s.edit_batch([Update("a", n=F("n") + 2, price=F("price") * 2 + 0.5),
                              Update("b", hits=F("hits") - F("n") + 1),
                              Create(Tally(id="d"))], atomic=True)
    assert all(r.ok for r in res)
    assert (res[0].item.n, res[0].item.price, res[1].item.hits) == (7, 2.5, 3)
    # one result out of bounds: nothing of the batch is written
    with pytest.raises(BatchError) as e:
        await s.edit_batch([Update("a", n=F("n") + 1), Create(Tally(id="e")),
                            Update("b", n=F("n") - 1)], atomic=True)
    assert [r.code for r in e.value.results] == [None, None, "invalid"]
    with pytest.raises(BatchError) as e:
        await s.edit_batch([Update("a", n=F("n") + 1),
                            Update("c", n=F("n") + 1, precondition=Q(tag="x"))],
                           atomic=True)
    assert [r.code for r in e.value.results] == [None, "precondition_failed"]
    with pytest.raises(BatchError) as e:
        await s.edit_batch([Update("zz", n=F("n") + 1), Update("a", n=F("n") + 1)],
                           atomic=True)
    assert e.value.results[0].code == "missing_key"
    assert [(i.id, i.n, i.hits, i.price) for i in await s.all()] == [
        ("a", 7, 1, 2.5), ("b", 0, 3, 1.0), ("c", 7, 3, 1.0), ("d", 0, 0, 1.0)]


async def test_update_where_with_f(store_factory):
    s = store_factory(Tally)
    await _seed(s)
    assert await s.update_where(changes={"n": F("n") + 1, "hits": F("hits") * 3}, tag="x") == 2
    assert [(i.n, i.hits) for i in await s.all()] == [(6, 3), (1, 6), (7, 3)]
    # filtered on the attribute it changes
    assert await s.update_where(changes={"n": F("n") - 1}, n__gte=6) == 2
    assert [i.n for i in await s.all()] == [5, 1, 6]
    assert await s.update_where(changes={"hits": F("n") + F("hits"), "tag": "z"},
                                tag="y") == 1
    assert (await s.read("c")).hits == 9 and (await s.read("c")).tag == "z"
    # one match out of bounds: ValidationError, nothing written anywhere
    with pytest.raises(ValidationError) as e:
        await s.update_where(changes={"n": F("n") - 2, "hits": F("hits") + 1})
    assert e.value.errors[0]["rule"] == "ge"
    with pytest.raises(ValidationError):
        await s.update_where(changes={"n": F("n") * 300}, tag="x")
    assert [(i.n, i.hits) for i in await s.all()] == [(5, 3), (1, 6), (6, 9)]
    assert await s.update_where(changes={"n": F("n") + 1}, tag="nobody") == 0


def _race_n(store_factory: Any) -> int:
    """Batches per writer: ``STOREROOM_RACE_N`` (50), a fifth of it on MongoDB and
    DynamoDB when unset (their writes are slow): the race stays a few seconds."""
    if store_factory.spec.id in ("mongodb", "dynamodb") and \
            "STOREROOM_RACE_N" not in os.environ:
        return max(1, RACE_N // 5)
    return RACE_N


async def test_race_batch_increments_lose_nothing(store_factory):
    """4 writers, each a run of batches incrementing two items (atomic batches where the
    backend has them, else not), then ``update_where`` increments: nothing is lost."""
    if _racy_server(store_factory):
        pytest.skip("moto_server's conditional writes are not atomic")
    s = store_factory(Tally)
    await s.create(Tally(id="a"))
    await s.create(Tally(id="b"))
    atomic = s.meta.atomic_batch
    n = _race_n(store_factory)

    async def worker(store: Any, i: int, step: Any) -> None:
        await step()
        for _ in range(n):
            res = await _persist(store_factory, store.edit_batch,
                                 [Update("a", hits=F("hits") + 1),
                                  Update("b", hits=F("hits") + 2)], atomic=atomic)
            assert all(r.ok for r in res)
        await _persist(store_factory, store.update_where, changes={"n": F("n") + 1})

    await _race(store_factory, Tally, worker, workers=WRITERS)
    assert [(i.hits, i.n) for i in await s.all()] == [(WRITERS * n, WRITERS),
                                                      (2 * WRITERS * n, WRITERS)]


def _data(statements: list[str]) -> list[str]:
    """The data statements (not transaction control) of a SQL log."""
    return [st for st in statements
            if not st.startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"))]


async def test_native_round_trips(store_factory):
    """The native paths, by their round trips: the expression goes to the server with
    the write, with no read of the item before it (a read after it only where the
    dialect has no RETURNING); what is left guarded reads once, then writes once."""
    s = store_factory(Tally)
    await _seed(s)
    await s.update("a", hits=F("hits") + 0)  # scripts / tables ready before counting
    spec = store_factory.spec.id
    batch = [Update("a", hits=F("hits") + 1), Update("c", n=F("n") - 1)]
    async with QueryLog() as log:
        await s.edit_batch(batch)
    plain = log.statements()
    atomic: list[str] | None = None
    if s.meta.atomic_batch:
        async with QueryLog() as log:
            await s.edit_batch(batch, atomic=True)
        atomic = log.statements()
    async with QueryLog() as log:
        assert await s.update_where(changes={"n": F("n") + 1}, tag="x") == 2
    where = log.statements()
    async with QueryLog() as log:
        assert await s.update_where(changes={"hits": F("hits") + 1}, tag="x") == 2
    where_unbounded = log.statements()
    rounds = 2 if atomic is not None else 1
    before = await s.read("c")
    assert before.n == 7 - rounds
    async with QueryLog() as log:
        got = await s.update("c", n=F("n") * 2 + F("hits"))
    by_key = log.statements()
    assert got.n == before.n * 2 + 3
    assert [(i.n, i.hits) for i in await s.all()] == [(6, 2 + rounds), (1, 3),
                                                      (got.n, 3)]
    if spec == "memory":
        assert plain == atomic == ["apply"] and where == ["update_where"]
    elif spec in ("sqlite", "postgres", "mysql"):
        for st in (plain, atomic):
            data = _data(st)
            assert [d.split()[0] for d in data][:1] == ["UPDATE"], st
            assert sum(d.startswith("UPDATE") for d in data) == 2, st
            if spec != "mysql":  # RETURNING: nothing but the two UPDATEs
                assert len(data) == 2, st
        # the matches locked, then one guarded UPDATE each (MySQL: each read back)
        words = [d.split()[0] for d in _data(where)]
        assert words[:2] == ["SELECT", "UPDATE"] and words.count("UPDATE") == 2, where
        assert len(words) == (5 if spec == "mysql" else 3), where
    elif spec == "mongodb":
        assert plain == ["findAndModify", "findAndModify"]
        assert atomic == ["findAndModify", "findAndModify", "commitTransaction"]
        # bounds: the matches out of them looked for, then one update_many, in a
        # transaction; no bounds: one update_many
        assert where == ["find", "update", "commitTransaction"]
        assert where_unbounded == ["update"]
        assert by_key == ["findAndModify"]  # an update pipeline
    elif spec == "redis":
        assert plain == ["EVALSHA", "EVALSHA"]
        assert atomic == ["MGET", "EVALSHA"]  # read, one guarded script
        assert where[-2:] == ["MGET", "EVALSHA"] and where.count("MGET") == 1
    elif spec.startswith("dynamodb"):
        assert plain == ["UpdateItem", "UpdateItem"]
        if atomic is not None:
            assert atomic == ["BatchGetItem", "TransactWriteItems"]
        assert where == where_unbounded == ["Scan", "UpdateItem", "UpdateItem"]


def test_store_engine_in_a_context_evaluates_f_natively():
    """A context's store on a store engine (its unit backend) asks the engine's backend
    whether it evaluates ``F``: a memory engine applies the batch under its lock."""
    import uuid

    from storeroom.context import DataManager

    dm = DataManager()
    try:
        dm.add_engine("m", f"memory://{uuid.uuid4().hex}")
        dm.register_models(Tally)
        with dm.context() as ctx:
            s = ctx.store(Tally)
            s.create(Tally(id="a", n=1))
            with QueryLog() as log:
                res = s.edit_batch([Update("a", n=F("n") + 2, hits=F("n") * 3)], atomic=True)
                assert (res[0].item.n, res[0].item.hits) == (3, 3)
                assert s.update_where(changes={"n": F("n") - 1}) == 1
            # the context's identity map then reads its mapped "a" again, in place
            assert (res[0].item.n, res[0].item.hits) == (2, 3)
            assert log.statements() == ["apply", "update_where", "get_many"]
        assert dm.get_engine("m").store(Tally).read("a").n == 2
    finally:
        dm.close()


@pytest.mark.parametrize("atomic", [False, True], ids=["each", "atomic"])
async def test_f_sees_the_earlier_edits_of_its_batch(store_factory, atomic):
    """One behaviour on every path (native, backend-simulated, the store's guarded one):
    an ``F`` of a batch sees the item as the batch's earlier edits left it. ``*`` and a
    float keep DynamoDB and Redis on their guarded paths."""
    s = store_factory(Tally)
    await _seed(s)
    if atomic and not s.meta.atomic_batch:
        pytest.skip("no atomic batches on this backend")
    res = await s.edit_batch([
        Update("a", n=F("n") + 1),                    # 6
        Update("a", n=F("n") * 2, price=F("price") * 1.5),  # 12, 1.5
        Update("a", hits=F("n") + F("hits")),         # 12 + 1
        Create(Tally(id="d", n=2)),
        Update("d", n=F("n") * 3),                    # 6
        Update("c", tag="z"),
        Update("c", n=F("n") - 7, precondition=Q(tag="z")),  # 0
    ], atomic=atomic)
    assert all(r.ok for r in res), [(r.code, r.message) for r in res]
    assert (res[2].item.n, res[2].item.hits, res[2].item.price) == (12, 13, 1.5)
    assert [(i.id, i.n, i.hits, i.tag) for i in await s.all()] == [
        ("a", 12, 13, "x"), ("b", 0, 2, "x"), ("c", 0, 3, "z"), ("d", 6, 0, "")]

"""Conditional writes on every backend: atomic whatever part of the condition is local,
``precondition_failed`` told apart from ``missing_key``, and a caught ``Conflict`` that
leaves a context usable.

The race tests run two writers at once, each on a store (and connection) of its own:
real threads in sync mode, tasks in async mode. Their preconditions hold a part that
some backend cannot evaluate natively (a Decimal comparison: SQLite, MySQL, MongoDB; a
NUL string: PostgreSQL; ``iendswith``: DynamoDB; unindexed attributes: Redis), so
storeroom checks that part itself and must still write atomically.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest

from storeroom import (
    BatchError,
    Conflict,
    Create,
    Delete,
    Q,
    UnsupportedOperation,
    Update,
    field,
    generated,
    stored,
)
from storeroom.context import AsyncDataManager, DataManager
from storeroom.errors import BackendError


@stored
class Acct:
    id: str
    n: int = 0
    dec: Decimal = Decimal("0")
    state: str = "free"
    tag: str = "t"


@stored
class Member:
    id: str
    email: str | None = field(default=None, unique=True)
    dec: Decimal = Decimal("0")
    group: str = "g"


def always_local(text: str) -> Q:
    """A condition true of every item that is local somewhere: Decimal (SQLite, MySQL,
    MongoDB), a NUL needle (PostgreSQL), iendswith (DynamoDB); Redis indexes none of
    these attributes."""
    return Q(dec__gte=Decimal("0")) & Q(**{f"{text}__ne": "\x00"}) \
        & Q(**{f"{text}__iendswith": ""})


ALWAYS_LOCAL = always_local("tag")


def _unique_unsupported(store_factory: Any) -> bool:
    return "no_transactions" in store_factory.spec.limits


# precondition_failed vs missing_key ------------------------------------------------------
FAILING = {
    "native": Q(state="taken"),
    "local": Q(dec__gt=Decimal("5")) & Q(tag__ne="\x00") & Q(tag__iendswith="x"),
    "mixed": Q(state="free") & Q(dec__gt=Decimal("5")),
    "nothing": ~Q(),
}


async def test_batch_reports_precondition_failed(store_factory):
    s = store_factory(Acct)
    await s.create(Acct(id="a"))
    await s.create(Acct(id="b"))
    edits: list[Any] = []
    for bad in FAILING.values():
        edits += [Update("a", precondition=bad, n=1),     # exists, fails
                  Update("zz", precondition=bad, n=1)]    # missing
    edits += [
        Update("zz", precondition=ALWAYS_LOCAL, n=1),                   # missing
        Update("b", precondition=Q(state="free") & ALWAYS_LOCAL, n=2),  # holds
        Update("b", precondition=Q(n=0) & ALWAYS_LOCAL, n=3),           # fails: n is 2 now
        Delete("b"),
        Update("b", precondition=ALWAYS_LOCAL, n=4),                    # missing: deleted
    ]
    results = await s.edit_batch(edits)
    assert [(r.ok, r.code) for r in results] == [
        (False, "precondition_failed"), (False, "missing_key")] * len(FAILING) + [
        (False, "missing_key"), (True, None), (False, "precondition_failed"), (True, None),
        (False, "missing_key")]
    assert all(r.detail for r in results if not r.ok)
    assert results[2 * len(FAILING) + 1].item == Acct(id="b", n=2)
    assert await s.all() == [Acct(id="a")]


async def test_atomic_batch_reports_precondition_failed(store_factory):
    s = store_factory(Acct)
    await s.create(Acct(id="a"))
    await s.create(Acct(id="b"))
    cases: list[tuple[list[Any], str]] = []
    for bad in FAILING.values():
        cases += [([Update("b", n=1), Update("a", precondition=bad, n=1)], "precondition_failed"),
                  ([Update("b", n=1), Update("zz", precondition=bad, n=1)], "missing_key")]
    cases += [
        ([Update("a", n=1), Update("a", precondition=Q(n=0) & ALWAYS_LOCAL, n=2)],
         "precondition_failed"),
        ([Delete("a"), Update("a", precondition=ALWAYS_LOCAL, n=2)], "missing_key"),
        ([Create(Acct(id="c")), Update("c", precondition=FAILING["mixed"], n=2)],
         "precondition_failed"),
    ]
    if not s.meta.atomic_batch:
        with pytest.raises(UnsupportedOperation):
            await s.edit_batch(cases[0][0], atomic=True)
        return
    for edits, code in cases:
        with pytest.raises(BatchError) as info:
            await s.edit_batch(edits, atomic=True)
        got = [(r.ok, r.code) for r in info.value.results]
        assert got == [(False, None), (False, code)], (edits, got)
        assert code in str(info.value)
    assert await s.all() == [Acct(id="a"), Acct(id="b")]
    ok = await s.edit_batch([Update("a", precondition=Q(state="free") & ALWAYS_LOCAL, n=9)],
                            atomic=True)
    assert ok[0].ok and ok[0].item == Acct(id="a", n=9)


# races: no acknowledged conditional write is lost ----------------------------------------
Step = Callable[[], Awaitable[None]]


async def _race(store_factory: Any, model: type,
                worker: Callable[[Any, int, Step], Awaitable[Any]], workers: int = 2
                ) -> list[Any]:
    """``worker(store, i, step)`` on ``workers`` stores of their own, all at once;
    ``await step()`` waits until every worker reached it (to collide on purpose)."""
    stores = [store_factory(model) for _ in range(workers)]
    if store_factory.is_async:
        ab = asyncio.Barrier(workers)

        async def astep() -> None:
            await asyncio.wait_for(ab.wait(), 30)

        async def arun(i: int) -> Any:
            try:
                return await worker(stores[i], i, astep)
            except BaseException:
                await ab.abort()  # the others stop waiting for this one
                raise

        return list(await asyncio.wait_for(
            asyncio.gather(*(arun(i) for i in range(workers))), 120))
    barrier = threading.Barrier(workers)

    async def tstep() -> None:
        barrier.wait(timeout=30)

    results: list[Any] = [None] * workers
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = asyncio.run(worker(stores[i], i, tstep))
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)
            barrier.abort()  # the others stop waiting for this one

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a racing writer did not finish"
    if errors:
        raise errors[0]
    return results


def _locked_out(store_factory: Any, exc: BaseException) -> bool:
    """SQLite refuses (never loses) a write whose deferred transaction read a snapshot
    another connection committed over ("database is locked"): not acknowledged, retried.
    (Gone once SQLite write transactions begin IMMEDIATE.)"""
    return (store_factory.spec.id == "sqlite" and isinstance(exc, BackendError)
            and "locked" in str(exc))


async def _persist(store_factory: Any, op: Callable[..., Awaitable[Any]], *args: Any,
                   **kw: Any) -> Any:
    """``await op(*args, **kw)``, again while SQLite locks it out (see ``_locked_out``)."""
    for _ in range(1000):
        try:
            return await op(*args, **kw)
        except BackendError as exc:
            if not _locked_out(store_factory, exc):
                raise
        await asyncio.sleep(0.001)
    pytest.fail("locked out for good")


def _racy_server(store_factory: Any) -> bool:
    """moto_server checks a condition and writes without a lock: two raw boto3
    ``UpdateItem`` calls with ``ConditionExpression="n = :old"`` both succeed there now
    and then (real DynamoDB and dynalite run them atomically), so a race cannot be
    judged on it; the DynamoDB write paths race on dynalite."""
    return store_factory.spec.id == "dynamodb-moto"


INCREMENTS = 10  # per writer


async def test_racing_conditional_increments_lose_nothing(store_factory):
    """Two writers increment one item, each write conditioned on the values it read,
    by ``update``, atomic ``edit_batch`` and ``update_where`` in turn."""
    if _racy_server(store_factory):
        return
    s0 = store_factory(Acct)
    await s0.create(Acct(id="c"))
    hows = ["update", "update_where"] + (["batch"] if s0.meta.atomic_batch else [])

    async def attempt(s: Any, how: str) -> bool:
        cur = await s.read("c")
        pre = Q(n=cur.n) & Q(dec=cur.dec) & ALWAYS_LOCAL
        changes = {"n": cur.n + 1, "dec": cur.dec + 1}
        if how == "update":
            return await s.update("c", precondition=pre, **changes) is not None
        if how == "update_where":
            return await s.update_where(Q(id="c") & pre, changes=changes) == 1
        try:
            await s.edit_batch([Update("c", precondition=pre, **changes)], atomic=True)
        except BatchError as exc:
            assert exc.results[0].code == "precondition_failed"
            return False
        return True

    async def worker(s: Any, i: int, step: Step) -> int:
        for j in range(INCREMENTS):
            for _ in range(1000):
                # a refused write (precondition failed, SQLite locked out) is not
                # acknowledged: read again and retry
                if await _persist(store_factory, attempt, s, hows[j % len(hows)]):
                    break
                await asyncio.sleep(0)
            else:
                pytest.fail("an increment never went through")
        return INCREMENTS

    acked = sum(await _race(store_factory, Acct, worker))
    final = await s0.read("c")
    assert (final.n, final.dec) == (acked, Decimal(acked))


CLAIMS = 10


async def test_racing_conditional_update_and_delete_exclude_each_other(store_factory):
    """Per item, an update and a delete (``delete``, ``delete_where`` in turn) both
    conditioned on state="free": exactly one of them succeeds."""
    if _racy_server(store_factory):
        return
    s0 = store_factory(Acct)
    for k in range(CLAIMS):
        await s0.create(Acct(id=f"k{k:02d}"))
    pre = Q(state="free") & ALWAYS_LOCAL

    async def claim(s: Any, i: int, key: str, k: int) -> bool:
        if i == 0:
            return await s.update(key, precondition=pre, state="taken") is not None
        if k % 2:
            return bool(await s.delete(key, precondition=pre))
        return await s.delete_where(Q(id=key) & pre) == 1

    async def worker(s: Any, i: int, step: Step) -> list[bool]:
        won = []
        for k in range(CLAIMS):
            key = f"k{k:02d}"
            await step()  # both start on each item together
            won.append(await _persist(store_factory, claim, s, i, key, k))
        return won

    updated, deleted = await _race(store_factory, Acct, worker)
    for k in range(CLAIMS):
        assert updated[k] != deleted[k], f"k{k:02d}: updated {updated[k]}, deleted {deleted[k]}"
    left = {a.id: a.state for a in await s0.all()}
    assert left == {f"k{k:02d}": "taken" for k in range(CLAIMS) if updated[k]}


# update_where and unique attributes: all or nothing --------------------------------------
async def test_update_where_unique_value_is_all_or_nothing(store_factory):
    s = store_factory(Member)
    if _unique_unsupported(store_factory):
        with pytest.raises(UnsupportedOperation):
            await s.create(Member(id="a", email="a@x"))
        return
    for local in (False, True):
        await s.delete_where()
        for k in "abc":
            await s.create(Member(id=k, email=f"{k}@x", group="g" if k != "c" else "h"))
        extra = always_local("group") if local else Q()
        before = await s.all()
        with pytest.raises(Conflict):
            await s.update_where(Q(group="g") & extra, changes={"email": "new@x"})
        with pytest.raises(Conflict):  # the one match would take c's value
            await s.update_where(Q(id="a") & extra, changes={"email": "c@x"})
        assert await s.all() == before
        assert await s.update_where(Q(id="a") & extra, changes={"email": "new@x"}) == 1
        assert await s.update_where(Q(id="zz") & extra, changes={"email": "c@x"}) == 0
        # None is no value: any number of items may hold it
        assert await s.update_where(Q(group="g") & extra, changes={"email": None}) == 2
        assert [m.email for m in await s.all()] == [None, None, "c@x"]


ROUNDS = 12


async def test_racing_unique_update_where_is_all_or_nothing(store_factory):
    """``update_where`` gives a unique value to its matches while another writer moves a
    second item in and out of the filter: either one item takes the value, or Conflict
    and nothing changed."""
    if _unique_unsupported(store_factory) or _racy_server(store_factory):
        return
    s0 = store_factory(Member)
    await s0.create(Member(id="a", email="a@x", group="g"))
    await s0.create(Member(id="b", email="b@x", group="h"))

    async def worker(s: Any, i: int, step: Step) -> int:
        conflicts = 0
        for r in range(ROUNDS):
            await step()
            if i == 1:  # b in and out of group g; a always there
                await _persist(store_factory, s.update, "b", group="g" if r % 2 == 0 else "h")
                continue
            where = Q(group="g") & (always_local("group") if r % 4 >= 2 else Q())
            try:
                n = await _persist(store_factory, s.update_where, where,
                                   changes={"email": "new@x"})
            except Conflict:
                conflicts += 1
                assert (await s.read("a")).email == "a@x", "a Conflict left a change behind"
                continue
            assert n == 1
            assert (await s.read("a")).email == "new@x"
            await _persist(store_factory, s.update, "a", email="a@x")
        return conflicts

    await _race(store_factory, Member, worker)
    assert [(m.id, m.email) for m in await s0.all()] == [("a", "a@x"), ("b", "b@x")]


# a caught Conflict leaves the context usable ----------------------------------------------
async def test_context_survives_a_caught_conflict(store_factory):
    """On PostgreSQL a failed statement aborts the whole transaction: a write that can
    fail must not take the context down with it (on every backend the same holds)."""
    if _unique_unsupported(store_factory):
        return  # unique values are refused there (test_contract)
    url = store_factory.url
    attempts: list[Callable[[Any], Any]] = [
        lambda st: st.create(Member(id="m1", email="other@x")),       # duplicate key
        lambda st: st.create(Member(id="m9", email="m1@x")),          # duplicate unique
        lambda st: st.update("m2", email="m1@x"),                     # update to a taken one
        lambda st: st.update_where(Q(id="m2"), changes={"email": "m1@x"}),
        lambda st: st.update_where(Q(id="m2") & Q(dec__gte=Decimal("0")),
                                   changes={"email": "m1@x"}),
        lambda st: st.edit_batch([Create(Member(id="m1"))], atomic=True),
    ]
    if store_factory.is_async:
        adm = AsyncDataManager()
        adm.add_engine("main", url, default=True)
        adm.register_models(Member)
        try:
            async with adm.context() as ctx:
                st = ctx.store(Member)
                await st.create(Member(id="m1", email="m1@x"))
                await st.create(Member(id="m2", email="m2@x"))
                for i, attempt in enumerate(attempts):
                    with pytest.raises(_expected(st, i)):
                        await attempt(st)
                    await st.create(Member(id=f"after{i}", email=f"after{i}@x"))
                    assert (await st.read(f"after{i}")).email == f"after{i}@x"
                    assert (await st.update("m2", group=f"g{i}")).group == f"g{i}"
            async with adm.context() as ctx:
                got = [m async for m in ctx.store(Member).search_all()]
        finally:
            await adm.close()
    else:
        dm = DataManager()
        dm.add_engine("main", url, default=True)
        dm.register_models(Member)
        try:
            with dm.context() as ctx:
                st = ctx.store(Member)
                st.create(Member(id="m1", email="m1@x"))
                st.create(Member(id="m2", email="m2@x"))
                for i, attempt in enumerate(attempts):
                    with pytest.raises(_expected(st, i)):
                        attempt(st)
                    st.create(Member(id=f"after{i}", email=f"after{i}@x"))
                    assert st.read(f"after{i}").email == f"after{i}@x"
                    assert st.update("m2", group=f"g{i}").group == f"g{i}"
            with dm.context() as ctx:
                got = list(ctx.store(Member).search_all())
        finally:
            dm.close()
    n = len(attempts)
    assert sorted(m.id for m in got) == sorted(["m1", "m2"] + [f"after{i}" for i in range(n)])
    assert {m.id: m.email for m in got}["m2"] == "m2@x"
    assert {m.id: m.group for m in got}["m2"] == f"g{n - 1}"


@stored
class Badge:
    id: int = generated.sequence()
    code: str = field(default="", unique=True)
    n: int = 0


async def test_creates_in_a_transaction_tell_duplicates_and_fill_sequence_keys(store_factory):
    """Creates inside a store's transaction (PostgreSQL: ``INSERT ... ON CONFLICT DO
    NOTHING``, the rowcount or the RETURNING key telling a duplicate): a duplicate key
    or unique value is a Conflict that leaves the transaction usable and writes nothing;
    every other create is written, with its sequence key filled in."""
    if _unique_unsupported(store_factory):
        return  # unique values are refused there (test_contract)
    if not store_factory.raw(Member).meta.transactions:
        return
    members, badges = store_factory.raw(Member), store_factory.raw(Badge)

    async def run(x: Any) -> Any:
        return await x if store_factory.is_async else x

    async def on_members() -> None:
        await run(members.create(Member(id="m1", email="m1@x")))
        with pytest.raises(Conflict):
            await run(members.create(Member(id="m1", email="other@x")))
        with pytest.raises(Conflict):
            await run(members.create(Member(id="m2", email="m1@x")))
        await run(members.create(Member(id="m3", email="m3@x")))

    async def on_badges() -> list[int]:
        keys = [(await run(badges.create(Badge(code=c)))).id for c in ("a", "b")]
        with pytest.raises(Conflict):
            await run(badges.create(Badge(code="a", n=1)))
        keys.append((await run(badges.create(Badge(code="c")))).id)
        return keys

    if store_factory.is_async:
        async with members.transaction():
            await on_members()
        async with badges.transaction():
            keys = await on_badges()
    else:
        with members.transaction():
            await on_members()
        with badges.transaction():
            keys = await on_badges()
    assert len(set(keys)) == 3
    got = [m async for m in members.search_all()] if store_factory.is_async else \
        list(members.search_all())
    assert {m.id: m.email for m in got} == {"m1": "m1@x", "m3": "m3@x"}
    got_b = [b async for b in badges.search_all()] if store_factory.is_async else \
        list(badges.search_all())
    assert sorted((b.id, b.code, b.n) for b in got_b) == sorted(
        zip(keys, "abc", [0, 0, 0], strict=True))


def _expected(st: Any, i: int) -> type[Exception]:
    if i < 5:
        return Conflict
    return BatchError if st.meta.atomic_batch else UnsupportedOperation

"""Conditional writes on PostgreSQL and MariaDB stay atomic when storeroom checks the
condition itself (issue 8, defect 4).

A precondition the server cannot evaluate (PostgreSQL: a NUL string; MariaDB: a Decimal
comparison) is checked by storeroom on the row it read: the row must stay locked from
that read to the write. Under READ COMMITTED (PostgreSQL) or with InnoDB's snapshot
reads (MariaDB) a concurrent write in between went unnoticed: two threads racing
conditional increments lost about half of the increments they were told had succeeded.
Each test races real threads, each on its own store (its own connection) or its own
context, and asserts that no acknowledged write is lost.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from storeroom import BatchError, Create, Q, Update, open_store, stored
from storeroom.backends.sql import testing
from storeroom.context import DataManager
from tests.servers import skip_or_fail

SERVERS = ["postgres", "mysql"]
THREADS = 2
INCREMENTS = 120  # per thread: before the fix, about half of them were lost


@stored
class Tally:
    id: str
    n: int = 0
    dec: Decimal = Decimal("0")
    tag: str = "t"
    state: str = "free"


@pytest.fixture(params=SERVERS)
def url(request: pytest.FixtureRequest) -> str:
    server = str(request.param)
    reason = testing.unavailable_reason(server)
    if reason is not None:
        skip_or_fail(f"{server}: {reason}")
    return testing.fresh_url(server, f"t{uuid.uuid4().hex}")


def local_part(url: str) -> Q:
    """A condition true of every Tally that the server cannot evaluate."""
    if url.startswith("postgres"):
        return Q(tag__ne="\x00")  # text cannot hold NUL: evaluated by storeroom
    return Q(dec__gte=Decimal("0"))  # MariaDB stores decimals as text: local


def precondition(url: str, cur: Tally) -> Q:
    if url.startswith("postgres"):
        return Q(n=cur.n) & local_part(url)
    return Q(dec=cur.dec)  # wholly local on MariaDB


def race(work: Callable[[int], Any]) -> list[Any]:
    """``work(i)`` in ``THREADS`` threads started together; their results."""
    barrier = threading.Barrier(THREADS)
    results: list[Any] = [None] * THREADS
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except BaseException as exc:  # re-raised in the test thread
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a racing thread did not finish"
    if errors:
        raise errors[0]
    return results


def increment(url: str, st: Any, how: str) -> bool:
    """One conditional increment of Tally "c"; True when the store acknowledged it."""
    cur = st.read("c")
    pre = precondition(url, cur)
    changes = {"n": cur.n + 1, "dec": cur.dec + 1}
    if how == "update":
        return st.update("c", precondition=pre, **changes) is not None
    if how == "batch":
        try:
            st.edit_batch([Update("c", precondition=pre, **changes)], atomic=True)
        except BatchError as exc:
            assert exc.results[0].code == "precondition_failed"
            return False
        return True
    return bool(st.update_where(Q(id="c") & pre, changes=changes) == 1)


def until_acknowledged(fn: Callable[[], bool]) -> None:
    for _ in range(10_000):
        if fn():
            return
    pytest.fail("a conditional write never went through")


@pytest.mark.parametrize("how", ["update", "batch", "update_where"])
def test_racing_increments_with_a_local_precondition(url: str, how: str) -> None:
    with open_store(Tally, url) as st:
        st.create(Tally(id="c"))

    def work(i: int) -> int:
        with open_store(Tally, url) as st:
            for _ in range(INCREMENTS):
                until_acknowledged(lambda: increment(url, st, how))
        return INCREMENTS

    acked = sum(race(work))
    with open_store(Tally, url) as st:
        final = st.read("c")
    assert (final.n, final.dec) == (acked, Decimal(acked))


def test_racing_increments_in_contexts(url: str) -> None:
    """The same in contexts (their transactions open): each increment in one context."""
    with open_store(Tally, url) as st:
        st.create(Tally(id="c"))
    dm = DataManager()
    dm.add_engine("main", url, default=True)
    dm.register_models(Tally)

    def once() -> bool:
        with dm.context() as ctx:
            return increment(url, ctx.store(Tally), "update")

    def work(i: int) -> int:
        for _ in range(INCREMENTS // 2):
            until_acknowledged(once)
        return INCREMENTS // 2

    try:
        acked = sum(race(work))
    finally:
        dm.close()
    with open_store(Tally, url) as st:
        final = st.read("c")
    assert (final.n, final.dec) == (acked, Decimal(acked))


@pytest.mark.parametrize("how", ["delete", "delete_where"])
def test_conditional_update_and_delete_exclude_each_other(url: str, how: str) -> None:
    """Per item, an update and a delete both on condition state="free" (partly local):
    exactly one of them wins."""
    items = 60
    with open_store(Tally, url) as st:
        st.edit_batch([Create(Tally(id=f"k{k:03d}")) for k in range(items)])
    pre = Q(state="free") & local_part(url)
    step = threading.Barrier(THREADS)  # both start on each item together

    def work(i: int) -> list[bool]:
        with open_store(Tally, url) as st:
            won = []
            try:
                for k in range(items):
                    key = f"k{k:03d}"
                    step.wait(timeout=30)
                    if i == 0:
                        won.append(st.update(key, precondition=pre, state="taken") is not None)
                    elif how == "delete":
                        won.append(st.delete(key, precondition=pre))
                    else:
                        won.append(st.delete_where(Q(id=key) & pre) == 1)
            except BaseException:
                step.abort()  # the other thread stops waiting for this one
                raise
            return won

    updated, deleted = race(work)
    both = [k for k in range(items) if updated[k] and deleted[k]]
    assert not both, f"updated and deleted: {both}"
    assert all(updated[k] or deleted[k] for k in range(items))
    with open_store(Tally, url) as st:
        assert {t.id for t in st.search_all()} == {f"k{k:03d}" for k in range(items)
                                                   if updated[k]}


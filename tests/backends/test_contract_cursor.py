"""Cursors and store lifecycle on every backend (issue 8: items 5, 6 and 15).

* Cursor secrets: ``open_store(..., secret=...)`` (a list rotates: the first signs, all
  verify), else ``STOREROOM_SECRET``, else one secret generated once and kept in the
  database, so every process on one database accepts the same cursors.
* A cursor never carries the value of a ``readable=False`` attribute.
* A closed store refuses I/O; an unclosed store that holds connections warns.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import os
import subprocess
import sys
import threading
import uuid
import warnings
from pathlib import Path

import pytest
from conftest import S, StoreFactory
from contract_models import Row

from storeroom import (
    InvalidCursor,
    InvalidFilter,
    StoreroomError,
    field,
    open_async_store,
    open_store,
    stored,
)
from storeroom.context import AsyncDataManager, DataManager
from storeroom.errors import StoreClosed

ROOT = Path(__file__).resolve().parents[2]


@stored
class Account:
    """A model with a secret attribute."""

    id: str
    name: str = ""
    password_hash: str = field(default="", readable=False)


async def six_rows(s) -> None:
    for i in range(6):
        await s.create(Row(id=i, n=i % 3, name=f"r{i}"))


def cursor_body(cursor: str) -> bytes:
    """The signed JSON inside a cursor (a cursor is base64url(body + 16-byte MAC))."""
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))[:-16]


@pytest.fixture
def no_env_secret(monkeypatch):
    monkeypatch.delenv("STOREROOM_SECRET", raising=False)


# secrets kept in the database ---------------------------------------------------------
# The other process opens the store by URL, continues a page from the cursor this
# process gave it, and hands back a cursor of its own.
OTHER_PROCESS = """
import sys
sys.path.insert(0, "tests/backends")
from conftest import S, StoreFactory
from contract_models import Row
from storeroom import open_store
url, cursor = sys.argv[1], sys.argv[2]
with open_store(Row, url) as s:
    page = s.search(order_by="n", limit=2, after=cursor)
    print(",".join(str(r.id) for r in page))
    print(s.search(order_by="n", limit=2).next)
"""


async def test_processes_on_one_database_accept_each_others_cursors(store_factory,
                                                                    no_env_secret):
    s = store_factory(Row)
    await six_rows(s)
    first = await s.search(order_by="n", limit=2)
    assert [r.id for r in first] == [0, 3]
    if store_factory.spec.id == "memory":
        # a memory database lives in one process: every store on its name shares it
        other = store_factory(Row)
        assert [r.id for r in await other.search(order_by="n", limit=2, after=first.next)
                ] == [1, 4]
        return
    env = {k: v for k, v in os.environ.items() if k != "STOREROOM_SECRET"}
    out = subprocess.run([sys.executable, "-c", OTHER_PROCESS, store_factory.url, first.next],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    theirs, their_cursor = out.stdout.split()
    assert theirs == "1,4"
    page = await s.search(order_by="n", limit=2, after=their_cursor)
    assert [r.id for r in page] == [1, 4]
    # a store opened later (a restart) accepts both, without any set-up
    later = store_factory(Row)
    assert [r.id for r in await later.search(order_by="n", limit=2, after=first.next)
            ] == [1, 4]
    assert [r.id for r in await later.search(order_by="n", limit=2, after=page.next)
            ] == [2, 5]


async def test_stores_opened_independently_share_the_database_secret(store_factory,
                                                                     no_env_secret):
    a, b = store_factory(Row), store_factory(Row)
    await six_rows(a)
    from_a = (await a.search(order_by="-n", limit=3)).next
    from_b = (await b.search(order_by="-n", limit=3)).next
    assert from_a == from_b  # same values, same secret: the same cursor
    assert [r.id for r in await b.search(order_by="-n", limit=3, after=from_a)] == [4, 0, 3]
    # every later page too (the secret is cached after the first cursor)
    pages = [r.id async for r in _pages(b, "-n")]
    assert pages == [2, 5, 1, 4, 0, 3]


async def _pages(s, order_by):
    after = None
    while True:
        page = await s.search(order_by=order_by, limit=2, after=after)
        for r in page:
            yield r
        if page.next is None:
            return
        after = page.next


async def test_stores_racing_to_create_the_secret_end_with_one(store_factory, tmp_path,
                                                               no_env_secret):
    # several stores of one fresh database (each with its own connections and cache) ask
    # for the database's secret at the same moment: all of them end with the same one
    n, rounds = 8, 3
    for r in range(rounds):
        url = store_factory.spec.url_factory(tmp_path, f"race{r}{uuid.uuid4().hex[:8]}")
        factory = StoreFactory(store_factory.spec, store_factory.mode, url)
        try:
            stores = [factory.raw(Row) for _ in range(n)]
            if store_factory.is_async:
                secrets = await asyncio.gather(*[s._b.cursor_secret() for s in stores])
            else:
                secrets = _race_in_threads([s._b.cursor_secret for s in stores])
            assert len(set(secrets)) == 1 and secrets[0], secrets
            # and a store opened afterwards reads that one
            later = S(factory.raw(Row))
            await later.create(Row(id=1))
            await later.create(Row(id=2))
            cursor = (await later.search(limit=1)).next
            assert (await S(stores[0]).search(limit=1, after=cursor)).items == [Row(id=2)]
        finally:
            await factory.close_all()


def _race_in_threads(calls: list) -> list:
    """Run each call in its own thread, all released at the same moment; their results."""
    barrier = threading.Barrier(len(calls), timeout=60)
    results: list = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return results


async def test_explicit_secrets_rotate(store_factory, monkeypatch):
    monkeypatch.setenv("STOREROOM_SECRET", "from-the-environment")
    old = store_factory(Row, secret="old secret")
    await six_rows(old)
    c_old = (await old.search(order_by="n", limit=2)).next
    rotated = store_factory(Row, secret=["new secret", b"old secret"])
    page = await rotated.search(order_by="n", limit=2, after=c_old)  # old ones still verify
    assert [r.id for r in page] == [1, 4]
    c_new = page.next
    # the first secret signs: a store that knows only the new one accepts it, one that
    # knows only the old one does not
    new = store_factory(Row, secret="new secret")
    assert [r.id for r in await new.search(order_by="n", limit=2, after=c_new)] == [2, 5]
    with pytest.raises(InvalidCursor):
        await old.search(order_by="n", limit=2, after=c_new)
    with pytest.raises(InvalidCursor):
        await new.search(order_by="n", limit=2, after=c_old)
    # an unknown secret, the environment's or the database's: refused
    for other in (store_factory(Row, secret="unknown"), store_factory(Row)):
        for cursor in (c_old, c_new):
            with pytest.raises(InvalidCursor):
                await other.search(order_by="n", limit=2, after=cursor)


async def test_environment_secret_comes_before_the_database(store_factory, monkeypatch):
    monkeypatch.setenv("STOREROOM_SECRET", "shared by the fleet")
    s = store_factory(Row)
    await six_rows(s)
    cursor = (await s.search(order_by="n", limit=2)).next
    same = store_factory(Row, secret="shared by the fleet")
    assert [r.id for r in await same.search(order_by="n", limit=2, after=cursor)] == [1, 4]


@pytest.mark.parametrize("secret", ["", b"", [], ["ok", ""], 5, [5], None.__class__, {"a": 1}])
def test_bad_secrets_are_refused(secret):
    with pytest.raises(StoreroomError):
        open_store(Row, "memory://", secret=secret)
    with pytest.raises(StoreroomError):
        DataManager(secret=secret)


async def test_data_manager_secret_signs_context_stores(tmp_path, no_env_secret):
    url = f"sqlite:///{tmp_path}/dm.db"
    dm = DataManager(secret=["dm secret", "older"])
    dm.add_engine("main", url)
    dm.add_engine("mem", "memory://dm-secret-test")
    dm.register_models(Row)
    dm.register_models(Account, engine="mem")
    try:
        with dm.context() as ctx:
            for i in range(4):
                ctx.store(Row).create(Row(id=i, n=i))
                ctx.store(Account).create(Account(id=str(i)))
        with dm.context() as ctx:
            cursor = ctx.store(Row).search(order_by="n", limit=2).next
            acc_cursor = ctx.store(Account).search(limit=2).next
        with open_store(Row, url, secret="dm secret") as s:
            assert [r.id for r in s.search(order_by="n", limit=2, after=cursor)] == [2, 3]
        with open_store(Account, "memory://dm-secret-test", secret="dm secret") as s:
            assert [a.id for a in s.search(limit=2, after=acc_cursor)] == ["2", "3"]
        with open_store(Row, url, secret="older") as s:  # signed with the first secret
            with pytest.raises(InvalidCursor):
                s.search(order_by="n", limit=2, after=cursor)
    finally:
        dm.close()
    adm = AsyncDataManager(secret="dm secret")
    adm.add_engine("main", url)
    adm.register_models(Row)
    try:
        async with adm.context() as ctx:
            assert [r.id for r in await ctx.store(Row).search(order_by="n", limit=2,
                                                              after=cursor)] == [2, 3]
    finally:
        await adm.close()


async def test_context_stores_share_the_database_secret(tmp_path, no_env_secret):
    url = f"sqlite:///{tmp_path}/ctx.db"
    dm = DataManager()
    dm.add_engine("main", url)
    dm.register_models(Row)
    try:
        with dm.context() as ctx:
            for i in range(4):
                ctx.store(Row).create(Row(id=i, n=i))
            # first cursor of the database, in a context that already wrote (SQLite: the
            # context holds the write lock)
            in_tx = ctx.store(Row).search(order_by="n", limit=2).next
        with dm.context() as ctx:
            assert [r.id for r in ctx.store(Row).search(order_by="n", limit=2, after=in_tx)
                    ] == [2, 3]
            cursor = ctx.store(Row).search(order_by="n", limit=2).next
        assert cursor == in_tx
        with open_store(Row, url) as s:
            assert [r.id for r in s.search(order_by="n", limit=2, after=cursor)] == [2, 3]
    finally:
        dm.close()


# readable=False -------------------------------------------------------------------------
@pytest.mark.parametrize("order_by", ["password_hash", "-password_hash", "+password_hash",
                                      ["name", "password_hash"]])
async def test_ordering_by_a_non_readable_attribute_is_refused(store_factory, order_by):
    s = store_factory(Account)
    await s.create(Account(id="a", name="ann", password_hash="s3cret-a"))
    with pytest.raises(InvalidFilter) as info:
        await s.search(order_by=order_by, limit=1)
    assert "password_hash" in str(info.value)
    with pytest.raises(InvalidFilter):
        await s.search_all(order_by=order_by)


async def test_cursors_never_hold_non_readable_values(store_factory):
    s = store_factory(Account)
    for i in range(4):
        await s.create(Account(id=f"a{i}", name=f"n{i % 2}", password_hash=f"s3cret-{i}"))
    for order_by in ([], "name", ["-name", "id"], "-id"):
        after = None
        for _ in range(4):
            page = await s.search(order_by=order_by, limit=1, after=after)
            if page.next is None:
                break
            body = cursor_body(page.next)
            assert b"s3cret" not in body
            _fp, values = json.loads(body)
            assert "s3cret" not in json.dumps(values)
            after = page.next


def test_a_non_readable_key_is_a_model_error():
    with pytest.raises(TypeError, match="readable"):
        @stored
        class Hidden:
            id: str = field(readable=False)


# lifecycle: closed and unclosed stores --------------------------------------------------
async def test_a_closed_store_refuses_every_operation(store_factory):
    from storeroom import Create

    s = store_factory(Row)
    await s.create(Row(id=1))
    await s.close()
    await s.close()  # closing twice is fine
    calls = {
        "create": lambda: s.create(Row(id=2)), "read": lambda: s.read(1),
        "update": lambda: s.update(1, n=1), "delete": lambda: s.delete(1),
        "search": lambda: s.search(), "search_all": lambda: s.search_all(),
        "count": lambda: s.count(), "read_batch": lambda: s.read_batch([1]),
        "edit_batch": lambda: s.edit_batch([Create(Row(id=3))]),
        "update_where": lambda: s.update_where(changes={"n": 2}),
        "delete_where": lambda: s.delete_where(),
        "create_tables": lambda: s._call("create_tables"),
    }
    for name, call in calls.items():
        with pytest.raises(StoreClosed) as info:
            await call()
        assert "row" in str(info.value) and "closed" in str(info.value), name
    reopened = store_factory(Row)  # the data is still there for a new store
    assert await reopened.read(1) == Row(id=1)


def _unclosed_warnings(caught) -> list:
    return [w for w in caught if issubclass(w.category, ResourceWarning)
            and "unclosed store" in str(w.message)]


async def test_an_unclosed_store_warns(store_factory):
    opener = open_async_store if store_factory.is_async else open_store
    store = opener(Row, store_factory.url)
    first = store.create(Row(id=1))
    if store_factory.is_async:
        await first
    backend = store._b  # kept, to release its connections after the check
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del store, first
        gc.collect()
    found = _unclosed_warnings(caught)
    if store_factory.spec.id == "memory":
        assert found == []  # a memory store holds nothing
    else:
        assert len(found) == 1, [str(w.message) for w in caught]
        assert "row" in str(found[0].message)
    closing = backend.close()
    if store_factory.is_async:
        await closing
    # a closed store does not warn
    store = opener(Row, store_factory.url)
    closing = store.close()
    if store_factory.is_async:
        await closing
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del store
        gc.collect()
    assert _unclosed_warnings(caught) == []


async def test_context_stores_do_not_warn(tmp_path):
    dm = DataManager()
    dm.add_engine("main", f"sqlite:///{tmp_path}/w.db")
    dm.register_models(Row)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with dm.context() as ctx:
                ctx.store(Row).create(Row(id=1))
                assert ctx.store(Row).read(1) == Row(id=1)
            del ctx
            gc.collect()
        assert _unclosed_warnings(caught) == []
    finally:
        dm.close()

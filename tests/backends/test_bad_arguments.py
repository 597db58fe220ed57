"""Wrongly typed arguments of every public store method raise storeroom's typed errors
(issue 8, items 15 and 21): never a TypeError, AttributeError, RecursionError or another
internal exception; and a URL whose driver is missing names the extra to install."""

from __future__ import annotations

import base64
import hmac
import json
import math
import sys
from decimal import Decimal

import pytest
from contract_models import Everything, Note, Row, Task
from hypothesis import given, settings
from hypothesis import strategies as st

from storeroom import (
    Create,
    Delete,
    InvalidCursor,
    InvalidFilter,
    Q,
    StoreroomError,
    Update,
    ValidationError,
    open_async_store,
    open_store,
)
from storeroom.errors import MissingDriver

SECRET = "test secret"


def signed(body: object, secret: str = SECRET) -> str:
    """A cursor whose body is ``body`` (as JSON), correctly signed with ``secret``."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    mac = hmac.digest(secret.encode(), raw, "sha256")[:16]
    return base64.urlsafe_b64encode(raw + mac).decode().rstrip("=")


async def seeded(store_factory):
    s = store_factory(Task, secret=SECRET)
    await s.create(Task(id="keep", owner="ann", title="keep me"))
    return s


# the cases named in the issue ------------------------------------------------------------
@pytest.mark.parametrize("order_by", [5, 1.5, b"title", {"title": 1}, {"title"}, object(),
                                      "+-title", "--title", "-+title", "++title", "+", "- title",
                                      [["title"]], [None]])
async def test_bad_order_by(store_factory, order_by):
    s = await seeded(store_factory)
    with pytest.raises(InvalidFilter):
        await s.search(order_by=order_by)
    with pytest.raises(InvalidFilter):
        await s.search_all(order_by=order_by)


async def test_plus_and_minus_still_work(store_factory):
    s = await seeded(store_factory)
    await s.create(Task(id="b", owner="bob", title="b"))
    assert [t.id for t in await s.search(order_by="+owner")] == ["keep", "b"]
    assert [t.id for t in await s.search(order_by=("-owner",))] == ["b", "keep"]


@pytest.mark.parametrize("changes", [[("title", "x")], "title", 5, None, ("title",),
                                     {5: "x"}, {None: "x"}])
async def test_bad_changes(store_factory, changes):
    s = await seeded(store_factory)
    with pytest.raises(ValidationError) as info:
        await s.update_where(changes=changes)
    if not isinstance(changes, dict):
        assert info.value.errors[0]["field"] == "changes"
    assert (await s.read("keep")).title == "keep me"


async def test_resigned_cursors_with_bad_content(store_factory):
    s = store_factory(Everything, secret=SECRET)
    for i in range(3):
        await s.create(Everything(id=f"e{i}", dec=Decimal(i)))
    good = (await s.search(order_by="dec", limit=1)).next
    fp, values = json.loads(base64.urlsafe_b64decode(good + "=" * (-len(good) % 4))[:-16])
    assert (await s.search(order_by="dec", limit=1, after=signed([fp, values]))).items
    deep = "[" * 2500 + '"x"' + "]" * 2500  # JSON nested 2,500 deep
    bad_values = [
        [{"dec": "abc"}, "e0"], [{"dec": "NaN"}, "e0"], [{"dec": "sNaN"}, "e0"],
        [{"dec": 5}, "e0"], [{"dec": None}, "e0"],
        [{"f": "nan"}, "e0"], [{"dec": "1", "f": "2"}, "e0"], [{}, "e0"], [{"zz": "1"}, "e0"],
        [{"dt": "yesterday"}, "e0"], [{"b": "!!"}, "e0"], [{"u": "nope"}, "e0"],
        [[1], "e0"], [{"dec": "1"}, {"dec": "1"}], [{"dec": "1"}, 5],
        [{"dec": "1" * 5000 + "x"}, "e0"], [[], "e0"], [{"dec": ["1"]}, "e0"],
    ]
    bodies = [[fp, v] for v in bad_values] + [
        [fp], [fp, "x"], [fp, 5], [fp, None], {"fp": fp}, [5, values], fp, 5, None,
        [fp, values, 1], b"[" * 5000, b'"\\ud800"', b"\xff\xfe", deep.encode(),
        f'["{fp}",[{deep},"e0"]]'.encode(), f'["{fp}",{deep}]'.encode()]
    for body in bodies:
        with pytest.raises(InvalidCursor):
            await s.search(order_by="dec", limit=1, after=signed(body))
    assert await s.count() == 3


# every method, every argument ------------------------------------------------------------
JUNK = [5, -1, 1.5, math.nan, "x", "", b"x", None, True, False, [], [1], ["x", 1], {},
        {"a": 1}, {1: 2}, (1,), ("a", "b", "c"), object(), set(), {"x"}, Decimal("nan"),
        print, type, [[]], [None], {"title": object()}, [("title", "x")], 10**100, "-",
        [5], Q(nope=1), Create("x"), Update(object()), Delete([])]


def calls(s, j):
    """Each public store method with ``j`` in one argument (the others valid)."""
    return {
        "create": lambda: s.create(j),
        "read": lambda: s.read(j),
        "update key": lambda: s.update(j, title="x"),
        "update value": lambda: s.update("keep", title=j),
        "update precondition": lambda: s.update("keep", precondition=j, title="x"),
        "update attr": lambda: s.update("keep", **{"nope": j}),
        "delete": lambda: s.delete(j),
        "delete precondition": lambda: s.delete("nokey", precondition=j),
        "search where": lambda: s.search(j),
        "search order_by": lambda: s.search(order_by=j),
        "search limit": lambda: s.search(limit=j),
        "search after": lambda: s.search(after=j),
        "search query": lambda: s.search(query=j),
        "search lookup": lambda: s.search(title=j),
        "search in": lambda: s.search(title__in=j),
        "search range": lambda: s.search(priority__range=j),
        "search isnull": lambda: s.search(title__isnull=j),
        "search_all": lambda: s.search_all(order_by=j),
        "search_all limit": lambda: s.search_all(limit=j),
        "search_all query": lambda: s.search_all(query=j),
        "count": lambda: s.count(j),
        "count lookup": lambda: s.count(priority=j),
        "read_batch": lambda: s.read_batch(j),
        "read_batch key": lambda: s.read_batch([j]),
        "edit_batch": lambda: s.edit_batch(j),
        "edit_batch edit": lambda: s.edit_batch([j]),
        "edit_batch atomic": lambda: s.edit_batch([], atomic=j),
        "edit update key": lambda: s.edit_batch([Update(j, title="x")]),
        "edit update precondition": lambda: s.edit_batch([Update("keep", precondition=j,
                                                                 title="x")]),
        "edit update value": lambda: s.edit_batch([Update("keep", title=j)]),
        "edit delete": lambda: s.edit_batch([Delete(j)]),
        "edit create": lambda: s.edit_batch([Create(j)]),
        "update_where changes": lambda: s.update_where(changes=j),
        "update_where where": lambda: s.update_where(j, changes={"title": "x"}),
        "update_where value": lambda: s.update_where(changes={"title": j}),
        "delete_where": lambda: s.delete_where(j),
    }


async def check_only_typed_errors(s, j) -> None:
    for name, call in calls(s, j).items():
        try:
            await call()
        except StoreroomError:
            pass
        except Exception as exc:  # noqa: BLE001 - the point of the test
            raise AssertionError(f"{name} with {j!r}: {type(exc).__name__}: {exc}") from exc


@pytest.mark.parametrize("junk", JUNK, ids=[f"{type(j).__name__}{i}" for i, j in
                                           enumerate(JUNK)])
async def test_junk_in_every_argument(store_factory, junk):
    s = await seeded(store_factory)
    await check_only_typed_errors(s, junk)


@pytest.mark.parametrize("junk", [5, "x", [1], {"a": 1}, object()])
async def test_key_str_of_junk(store_factory, junk):
    s = store_factory(Note)
    with pytest.raises(ValidationError):
        s.key_str(junk)
    assert s.key_str(("ann", 1)) == "ann,1"
    assert s.key_str(Note(owner="ann", num=1)) == "ann,1"


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5),
                    st.binary(max_size=3), st.decimals(), st.datetimes(), st.just(object()))
junk = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.tuples(inner, inner), st.frozensets(st.integers()),
    st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), inner, max_size=3)),
    max_leaves=6)


@pytest.mark.parametrize("url", ["memory://", "sqlite:///:memory:"])
@settings(max_examples=40)
@given(j=junk)
async def test_random_junk_in_every_argument(url, j):
    with open_store(Task, url, secret=SECRET) as sync_store:
        sync_store.create(Task(id="keep", owner="ann", title="keep me"))
        await check_only_typed_errors(_Awaitable(sync_store), j)
    async with open_async_store(Task, url, secret=SECRET) as async_store:
        await async_store.create(Task(id="keep", owner="ann", title="keep me"))
        await check_only_typed_errors(_Awaitable(async_store), j)


class _Awaitable:
    """Calls a store's method; awaits the result when it is awaitable."""

    def __init__(self, store) -> None:
        self._store = store

    def __getattr__(self, name):
        method = getattr(self._store, name)

        async def call(*args, **kwargs):
            result = method(*args, **kwargs)
            if hasattr(result, "__await__"):
                result = await result
            elif hasattr(result, "__aiter__"):
                result = [x async for x in result]
            elif name == "search_all":
                result = list(result)
            return result
        return call


# missing drivers --------------------------------------------------------------------------
DRIVER_URLS = [
    ("postgresql://u@127.0.0.1:1/db", "psycopg", "postgres", False),
    ("postgres://u@127.0.0.1:1/db", "psycopg", "postgres", True),
    ("mysql://u@127.0.0.1:1/db", "pymysql", "mysql", False),
    ("mariadb://u@127.0.0.1:1/db", "aiomysql", "mysql", True),
    ("dynamodb://?endpoint_url=http://127.0.0.1:1&region=us-east-1", "boto3", "dynamodb",
     False),
    ("dynamodb://?endpoint_url=http://127.0.0.1:1&region=us-east-1", "aioboto3", "dynamodb",
     True),
    ("mongodb://127.0.0.1:1/db", "pymongo", "mongodb", False),
    ("mongodb://127.0.0.1:1/db", "pymongo", "mongodb", True),
    ("redis://127.0.0.1:1/0", "redis", "redis", False),
    ("redis://127.0.0.1:1/0", "redis", "redis", True),
]


@pytest.mark.parametrize(("url", "module", "extra", "is_async"), DRIVER_URLS,
                         ids=[f"{m}-{'async' if a else 'sync'}" for _, m, _, a in DRIVER_URLS])
def test_a_missing_driver_names_the_extra(monkeypatch, url, module, extra, is_async):
    # None in sys.modules makes ``import module`` fail as if it were not installed
    monkeypatch.setitem(sys.modules, module, None)
    opener = open_async_store if is_async else open_store
    with pytest.raises(MissingDriver) as info:
        opener(Row, url)
    assert f"pip install 'storeroom[{extra}]'" in str(info.value)
    assert module in str(info.value)
    assert isinstance(info.value, ImportError)
    if url.startswith(("postgres", "mysql", "mariadb")):
        from storeroom.context import AsyncDataManager, DataManager
        dm = AsyncDataManager() if is_async else DataManager()
        with pytest.raises(MissingDriver) as info:
            dm.add_engine("main", url)
        assert f"pip install 'storeroom[{extra}]'" in str(info.value)

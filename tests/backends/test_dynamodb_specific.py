"""DynamoDB backend specifics, against dynalite (and moto_server for transactions).

What the shared contract suite cannot see: the requests that are sent (Query vs Scan,
batch sizes), that every operator declared native really runs on the server, the
encoding of awkward values, and the transactional paths on an endpoint that has them.
"""

from __future__ import annotations

import asyncio
import enum
import uuid
from collections import Counter as Tally
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from contract_models import Counter, Note, Row, Task, User

from storeroom import Index, Q, field, open_async_store, open_store, stored
from storeroom.errors import BackendError, BatchError, Conflict, UnsupportedOperation
from storeroom.store.types import Create, Delete, Update
from tests.servers import skip_or_fail

pytest.importorskip("boto3")
testing = pytest.importorskip("storeroom.backends.dynamodb.testing")


def _url(server: str) -> str:
    reason = testing.unavailable_reason(server)
    if reason is not None:
        skip_or_fail(reason)
    return testing.fresh_url(server, "d" + uuid.uuid4().hex[:12])


@pytest.fixture
def url() -> str:
    return _url("dynamodb")


@pytest.fixture
def tx_url() -> str:
    return _url("dynamodb_tx")


class Calls:
    """Counts the requests a store's client sends, and keeps the parsed responses."""

    def __init__(self, store: Any) -> None:
        self.ops: Tally[str] = Tally()
        self.responses: list[tuple[str, dict[str, Any]]] = []
        client = store._b.conn.get()
        client.meta.events.register("before-call.dynamodb", self._before)
        client.meta.events.register("after-call.dynamodb", self._after)

    def _before(self, model: Any, **kw: Any) -> None:
        self.ops[model.name] += 1

    def _after(self, model: Any, parsed: Any = None, **kw: Any) -> None:
        self.responses.append((model.name, parsed or {}))

    def reset(self) -> None:
        self.ops.clear()
        self.responses.clear()


class Mood(enum.Enum):
    UP = "up"
    DOWN = ""


@dataclass
class Inner:
    a: int
    b: list[str]


@stored(key="k", indexes=[Index("grp", "num")])
class Odd:
    k: str
    grp: str = ""
    num: int = 0
    f: float = 0.0
    dec: Decimal = Decimal("0")
    raw: bytes = b""
    keyb: bytes | None = None
    when: datetime | None = None
    day: date | None = None
    u: uuid.UUID | None = None
    mood: Mood = Mood.UP
    flag: bool = False
    inner: Inner | None = None
    doc: dict[str, Any] = field(default_factory=dict)


@stored(key=("a", "b", "c"))
class Three:
    a: str
    b: int
    c: str
    v: str = ""


# values --------------------------------------------------------------------------------
ODD_VALUES = [
    Odd(k="", grp="", num=-(2**63), f=5e-324, dec=Decimal("12345678901234567890.123456789"),
        raw=b"", when=datetime(1, 1, 1, tzinfo=UTC), day=date(1, 1, 1), mood=Mood.DOWN,
        doc={"x": [1, {"y": None}], "": ""}),
    Odd(k="\x00", grp="\x00a", num=2**63 - 1, f=1e300, dec=Decimal("-1E-100"), raw=b"\x00",
        keyb=b"", when=datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        u=uuid.UUID(int=0), flag=True, inner=Inner(1, ["", "é"])),
    Odd(k="a", grp="é😀", num=0, f=-0.1, dec=Decimal("0.10"), raw=b"\xff\x00", keyb=b"\x00\x01"),
    Odd(k="b", grp="", num=7, f=1e16, dec=Decimal("-0"), raw=b"x" * 10, keyb=b"\x01",
        when=datetime(2024, 5, 6, 7, 8, 9, 10, tzinfo=UTC)),
]


def test_awkward_values_round_trip_and_filter(url):
    with open_store(Odd, url) as s:
        for o in ODD_VALUES:
            assert s.create(o) == o
        for o in ODD_VALUES:
            got = s.read(o.k)
            assert got == o
            assert type(got.f) is float and type(got.num) is int
        assert [o.k for o in s.search(order_by="k")] == ["", "\x00", "a", "b"]
        assert [o.k for o in s.search(order_by="f")] == [
            o.k for o in sorted(ODD_VALUES, key=lambda o: o.f)]
        assert [o.k for o in s.search(k__startswith="\x00")] == ["\x00"]
        assert [o.k for o in s.search(k__startswith="")] == ["", "\x00", "a", "b"]
        assert s.count(grp="") == 2 and s.count(grp__startswith="\x00") == 1
        assert [o.k for o in s.search(f__gt=1e17)] == ["\x00"]
        assert [o.k for o in s.search(f__lt=0)] == ["a"]
        assert s.count(raw=b"") == 1 and s.count(keyb=b"") == 1
        assert s.count(mood=Mood.DOWN) == 1 and s.count(flag=True) == 1
        assert s.count(when__lt=datetime(2000, 1, 1, tzinfo=UTC)) == 1
        assert s.count(num__in=[2**63 - 1, -(2**63)]) == 2


def test_three_part_key(url):
    with open_store(Three, url) as s:
        s.create(Three(a="x", b=1, c="p", v="1"))
        s.create(Three(a="x", b=1, c="q", v="2"))
        s.create(Three(a="x", b=2, c="p", v="3"))
        with pytest.raises(Conflict):
            s.create(Three(a="x", b=1, c="p"))
        assert s.read(("x", 1, "q")).v == "2"
        calls = Calls(s)
        assert [t.v for t in s.search(a="x", b=1, c="p")] == ["1"]
        assert calls.ops == {"Query": 1}
        assert [t.v for t in s.search(a="x", order_by="-c")] in (["2", "1", "3"],
                                                                  ["2", "3", "1"])
        assert sorted(t.v for t in s.search(a="x", c="p")) == ["1", "3"]
        assert s.read_batch([("x", 2, "p"), ("y", 0, "")]) == [Three(a="x", b=2, c="p", v="3"),
                                                              None]


# requests ------------------------------------------------------------------------------
def test_read_batch_of_100_is_one_request(url):
    with open_store(Row, url) as s:
        s.edit_batch([Create(Row(id=i)) for i in range(120)])
        calls = Calls(s)
        got = s.read_batch(list(range(100)))
        assert [r.id for r in got] == list(range(100))
        assert calls.ops == {"BatchGetItem": 1}
        calls.reset()
        got = s.read_batch(list(range(110, 130)) + list(range(200)))
        assert calls.ops == {"BatchGetItem": 2}  # 200 distinct keys: each is asked once
        assert [r and r.id for r in got[:20]] == list(range(110, 120)) + [None] * 10


def test_query_when_the_partition_key_is_pinned(url):
    # (a given cursor secret: the database's would be read on the first page, once)
    with open_store(Note, url, secret="requests") as s:
        for owner in "abc":
            for num in range(30):
                s.create(Note(owner=owner, num=num, text="hit" if num % 7 == 0 else "miss"))
        calls = Calls(s)
        page = s.search(owner="b", order_by="-num", limit=3)
        assert [n.num for n in page] == [29, 28, 27]
        assert set(calls.ops) == {"Query"}
        calls.reset()
        # the cursor's keyset condition becomes a key condition: no re-reading from the start
        page2 = s.search(owner="b", order_by="-num", limit=3, after=page.next)
        assert [n.num for n in page2] == [26, 25, 24]
        assert calls.ops == {"Query": 1}
        scanned = sum(r.get("ScannedCount", 0) for _, r in calls.responses)
        assert scanned <= 4
        # a filter applied after DynamoDB's Limit: the backend keeps reading pages
        calls.reset()
        assert [n.num for n in s.search(owner="c", text="hit", order_by="num", limit=3)] == \
            [0, 7, 14]
        assert set(calls.ops) == {"Query"} and calls.ops["Query"] >= 2
        calls.reset()
        assert s.count(owner="a", num__range=(5, 9)) == 5
        assert calls.ops == {"Query": 1}
        calls.reset()
        assert s.count(num__range=(5, 9)) == 15
        assert calls.ops == {"Scan": 1}


def test_index_query_and_sparse_sort_key(url):
    @stored(key="id", indexes=[Index("owner", "due")])
    class Job:
        id: int
        owner: str
        due: int | None = None

    with open_store(Job, url, secret="requests") as s:
        for i in range(12):
            s.create(Job(id=i, owner="ab"[i % 2], due=None if i % 3 == 0 else 100 - i))
        calls = Calls(s)
        # items whose due is None are not in the index: a filter that allows None scans
        assert sorted(j.id for j in s.search(owner="a")) == [0, 2, 4, 6, 8, 10]
        assert calls.ops == {"Scan": 1}
        calls.reset()
        assert [j.id for j in s.search(owner="a", due__gte=90, order_by="due")] == [10, 8, 4, 2]
        assert calls.ops == {"Query": 1}
    with open_store(Task, url, secret="requests") as t:
        made = [t.create(Task(owner="bob", title=str(i))) for i in range(5)]
        t.create(Task(owner="ann", title="x"))
        calls = Calls(t)
        assert [x.title for x in t.search(owner="bob", order_by="-created_at", limit=2)] == \
            ["4", "3"]
        assert calls.ops == {"Query": 1}
        assert [x.id for x in t.search_all(owner="bob", order_by="created_at", limit=2)] == \
            [m.id for m in made]


NATIVE_CASES = {
    "eq": Q(n=3), "ne": Q(n__ne=3), "lt": Q(n__lt=3), "lte": Q(n__lte=3), "gt": Q(n__gt=3),
    "gte": Q(n__gte=3), "in": Q(n__in=[1, 2]), "not_in": Q(n__not_in=[1, 2, 3, 4, 5]),
    "contains": Q(name__contains="7"), "startswith": Q(name__startswith="name1"),
    "isnull": Q(name__isnull=True), "range": Q(n__range=(2, 4)),
}


def test_declared_native_ops_run_on_the_server(url):
    with open_store(Row, url) as s:
        assert set(NATIVE_CASES) == set(s.meta.native_ops)
        rows = [Row(id=i, n=None if i % 5 == 0 else i % 7, name=None if i % 4 == 0 else
                    f"name{i}") for i in range(1, 40)]
        s.edit_batch([Create(r) for r in rows])
        calls = Calls(s)
        for op, where in NATIVE_CASES.items():
            calls.reset()
            got = s.count(where)
            (name, resp), = calls.responses
            assert name == "Scan", op
            assert resp["ScannedCount"] == len(rows), op
            assert resp["Count"] == got < len(rows), op  # the server did the filtering
            calls.reset()
            items = s.search(where, order_by="id").items
            returned = sum(len(r.get("Items", ())) for _, r in calls.responses)
            assert returned == len(items) == got, op
        # operators left out of native_ops are evaluated locally, correctly
        calls.reset()
        assert s.count(name__iendswith="E7") == sum(
            1 for r in rows if r.name and r.name.lower().endswith("e7"))
        (_, resp), = calls.responses
        assert resp["Count"] == resp["ScannedCount"]


def test_local_sort_is_bounded(url):
    with open_store(Row, url, max_local_sort=5) as s:
        s.edit_batch([Create(Row(id=i, n=i)) for i in range(6)])
        assert len(s.search(n__lt=5, order_by="n")) == 5
        with pytest.raises(UnsupportedOperation, match="locally"):
            s.search(order_by="n")


def test_errors_are_wrapped_with_their_cause():
    from botocore.config import Config
    url = "dynamodb://?endpoint_url=http://127.0.0.1:9&region=us-east-1"
    cfg = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=0.5)
    with open_store(Row, url, config=cfg) as s:
        with pytest.raises(BackendError) as info:
            s.read(1)
    assert info.value.__cause__ is not None


def test_bad_option_is_rejected(url):
    with pytest.raises(ValueError, match="nonsense"):
        open_store(Row, url + "&nonsense=1")


# transactions --------------------------------------------------------------------------
def test_dynalite_reports_no_atomic_batches(url):
    with open_store(User, url) as s:
        s.create_tables()
        assert s.meta.atomic_batch is False
        with pytest.raises(UnsupportedOperation, match="TransactWriteItems"):
            s.create(User(id="u1", email="a@x.org"))
        with pytest.raises(UnsupportedOperation):
            s.edit_batch([Delete("u1")], atomic=True)


def test_unique_and_atomic_batches_on_moto(tx_url):
    with open_store(User, tx_url) as s:
        s.create_tables()
        assert s.meta.atomic_batch is True
        s.create(User(id="u1", email="a@x.org"))
        s.create(User(id="u2", email="b@x.org"))
        with pytest.raises(Conflict, match="email"):
            s.create(User(id="u3", email="a@x.org"))
        with pytest.raises(Conflict):
            s.update("u2", email="a@x.org")
        assert s.update("u2", email="c@x.org").email == "c@x.org"
        s.create(User(id="u3", email="b@x.org"))  # the old value was released
        assert s.delete("u1") is True
        s.create(User(id="u4", email="a@x.org"))  # released by the delete
        # a value moving between two items of one atomic batch
        res = s.edit_batch([Update("u3", email="z@x.org"), Update("u4", email="b@x.org")],
                           atomic=True)
        assert [r.item.email for r in res] == ["z@x.org", "b@x.org"]
        with pytest.raises(BatchError) as info:
            s.edit_batch([Create(User(id="u5", email="q@x.org")),
                          Create(User(id="u6", email="q@x.org"))], atomic=True)
        assert [r.code for r in info.value.results] == [None, "duplicate_key"]
        with pytest.raises(BatchError):
            s.edit_batch([Create(User(id="u5", email="q@x.org")),
                          Update("u2", email="z@x.org")], atomic=True)
        assert s.read("u5") is None
        assert sorted(u.email for u in s.search_all()) == ["b@x.org", "c@x.org", "z@x.org"]
        # the same key twice in one atomic batch
        res = s.edit_batch([Create(User(id="u7", email="t@x.org")),
                            Update("u7", name="seven"), Delete("u2"),
                            Create(User(id="u2", email="c@x.org", name="again"))], atomic=True)
        assert all(r.ok for r in res)
        assert s.read("u7").name == "seven" and s.read("u2").name == "again"
        with pytest.raises(Conflict):
            s.create(User(id="u8", email="t@x.org"))


def test_atomic_batch_is_one_transaction(tx_url):
    with open_store(Row, tx_url) as s:
        s.create(Row(id=1))
        calls = Calls(s)
        s.edit_batch([Create(Row(id=i)) for i in range(2, 60)] + [Update(1, n=3)], atomic=True)
        assert calls.ops == {"BatchGetItem": 1, "TransactWriteItems": 1}
        assert s.count() == 59
        with pytest.raises(UnsupportedOperation, match="at most 100"):
            s.edit_batch([Create(Row(id=i)) for i in range(100, 201)], atomic=True)


def test_sequence_on_dynalite(url):
    with open_store(Counter, url) as s:
        ids = [s.create(Counter(label=str(i))).id for i in range(3)]
        assert ids == [1, 2, 3]
        s.create(Counter(id=10, label="given"))
        assert s.create(Counter(label="next")).id == 11


async def test_async_store(url, tx_url):
    async with open_async_store(Note, url) as s:
        for i in range(5):
            await s.create(Note(owner="a", num=i))
        assert [n.num async for n in s.search_all(owner="a", order_by="-num", limit=2)] == \
            [4, 3, 2, 1, 0]
        assert await s.update(("a", 1), precondition=Q(text__iexact=""), text="X") is not None
        assert await s.delete(("a", 2), precondition=Q(text__icontains="nope")) is False
        assert await s.count(text="X") == 1
        assert await s.delete_where() == 5
    async with open_async_store(User, tx_url) as u:
        await u.create(User(id="u1", email="a@x.org"))
        with pytest.raises(Conflict):
            await u.create(User(id="u2", email="a@x.org"))
        results = await asyncio.gather(*[u.update("u1", name=str(i)) for i in range(5)])
        assert all(r is not None for r in results)


@dataclass
class Place:
    city: str


@stored
class Resident:
    id: int
    place: Place | None = None
    n: int = 0


def test_a_checked_write_watches_the_root_of_a_nested_precondition(url: str) -> None:
    # ``city__iexact`` on a nested path is checked locally: the item is read, checked, and
    # written on condition that the attributes the check read are unchanged. Those are
    # the path's ROOT (``place``): a condition on a literal "place.city" attribute holds
    # whatever happens to ``place``, so a change between the read and the write went
    # unseen. Here another writer moves the resident right after the read.
    with open_store(Resident, url) as s, open_store(Resident, url) as other:
        s.create(Resident(id=1, place=Place("Paris")))
        backend = s._b
        real_get = backend._get_raw
        moved: list[bool] = []

        def get_then_move(key: Any) -> Any:
            raw = real_get(key)
            if not moved:
                moved.append(True)
                other.update(1, place=Place("Lyon"))
            return raw

        backend._get_raw = get_then_move
        try:
            assert s.update(1, n=7, precondition=Q(place__city__iexact="PARIS")) is None
        finally:
            backend._get_raw = real_get
        assert moved
        back = s.read(1)
        assert (back.place, back.n) == (Place("Lyon"), 0)


@stored(table="evo")
class _Evo1:
    id: str
    owner: str = ""


@stored(table="evo")
class _Evo2:
    id: str
    owner: str = ""
    n: int = 7
    amount: Decimal = Decimal("1.10")


def test_backfill_never_overwrites_a_concurrent_write_nor_resurrects(url: str) -> None:
    """The interleaving the race test can only hit sometimes, staged: the backfill's
    Scan read items lacking ``n``; then a writer sets ``n`` on one and deletes another;
    then the backfill's conditional writes run: the value written stays, the deleted
    item stays deleted, the others get the default (with the Decimal's exact text)."""
    old = open_store(_Evo1, url)
    for k in ("a", "b", "c"):
        old.create(_Evo1(id=k))
    s = open_store(_Evo2, url)  # the same table; its create_tables has not run
    b = s._b
    todo = [a for a in b.core.meta.stored_attrs if a.name in ("n", "amount")]
    scanned = [raw for page in b._scan_all(["n", "amount"], lacking=["n", "amount"])
               for raw in page]
    assert sorted(r["id"]["S"] for r in scanned) == ["a", "b", "c"]
    writer = open_store(_Evo2, url)
    writer.update("a", n=1)  # its create_tables backfilled too: undo that for "b"/"c"
    b._call("update_item", {"TableName": b.core.table, "Key": {"id": {"S": "c"}},
                            "UpdateExpression": "REMOVE #n, #a, #d",
                            "ExpressionAttributeNames": {"#n": "n", "#a": "amount",
                                                         "#d": "amount~d"}})
    writer.delete("b")
    for raw in scanned:
        b._fill(raw, [a for a in todo if a.name not in raw])
    got = {x.id: (x.n, x.amount) for x in open_store(_Evo2, url).search_all()}
    assert got == {"a": (1, Decimal("1.10")), "c": (7, Decimal("1.10"))}
    assert str(got["c"][1]) == "1.10"
    assert s.count(n=7) == 1
    assert s.count(amount=Decimal("1.1")) == 2

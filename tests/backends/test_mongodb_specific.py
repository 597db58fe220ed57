"""MongoDB backend: what the contract suite cannot see.

Runs against the MongoDB-compatible test server (SecantusDB, an emulator: passing here
is not proof against a real mongod). Checks that what ``StoreMeta`` declares native
really runs on the server (command monitoring), the document layout, exact round trips,
case folding, None-last ordering, transactions, sequences and error wrapping.
"""

from __future__ import annotations

import enum
import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from storeroom import (
    BatchError,
    Conflict,
    Create,
    Delete,
    Index,
    Q,
    UnsupportedOperation,
    Update,
    ValidationError,
    field,
    generated,
    open_async_store,
    open_store,
    stored,
)
from storeroom.errors import BackendError
from storeroom.query import OPERATORS, build_filter, compile_local, parse_order, sort_items
from tests.servers import skip_or_fail

pymongo = pytest.importorskip("pymongo")
from pymongo import monitoring  # noqa: E402

from storeroom.backends.mongodb import core as mcore  # noqa: E402
from storeroom.backends.mongodb.testing import fresh_url, unavailable_reason  # noqa: E402


class Kind(enum.Enum):
    A = "Alpha"
    B = "beta"


@stored(key="id", indexes=[Index("owner", "n")])
class Doc:
    id: str
    owner: str = ""
    s: str = ""
    o: str | None = None
    n: int = 0
    m: int | None = None
    f: float = 0.0
    dec: Decimal | None = None
    by: bytes | None = None
    k: Kind | None = None
    when: datetime | None = None
    day: date | None = None
    u: uuid.UUID | None = None
    data: dict[str, Any] = field(default_factory=dict)
    email: str | None = field(default=None, unique=True)


@stored(key=("a", "b"))
class Pair:
    a: str
    b: int
    v: str = ""


@stored
class Seq:
    id: int = generated.sequence()
    label: str = ""


class Recorder(monitoring.CommandListener):
    """Every command sent (name, body) and every reply's first batch size."""

    def __init__(self) -> None:
        self.started_list: list[tuple[str, dict[str, Any]]] = []
        self.batches: list[int] = []
        self.lock = threading.Lock()

    def started(self, event: Any) -> None:
        with self.lock:
            self.started_list.append((event.command_name, dict(event.command)))

    def succeeded(self, event: Any) -> None:
        cursor = event.reply.get("cursor") if isinstance(event.reply, dict) else None
        if cursor is not None:
            with self.lock:
                self.batches.append(len(cursor.get("firstBatch", cursor.get("nextBatch", []))))

    def failed(self, event: Any) -> None:
        pass

    def reset(self) -> None:
        self.started_list: list[tuple[str, dict[str, Any]]] = []
        self.batches = []

    def named(self, *names: str) -> list[dict[str, Any]]:
        return [c for n, c in self.started_list if n in names]


@pytest.fixture
def url():
    reason = unavailable_reason()
    if reason is not None:
        skip_or_fail(reason)
    name = f"t{uuid.uuid4().hex}"
    yield fresh_url(name)
    client = pymongo.MongoClient(fresh_url(name), serverSelectionTimeoutMS=2000)
    client.drop_database(name)
    client.close()


@pytest.fixture
def rec():
    r = Recorder()
    r.reset()
    return r


def raw_collection(url: str, name: str):
    client = pymongo.MongoClient(url)
    return client, client.get_default_database()[name]


# documents and values ------------------------------------------------------------------
def test_document_layout_indexes_and_exact_round_trip(url):
    when = datetime(2024, 5, 6, 7, 8, 9, 123457, tzinfo=UTC)
    item = Doc(id="k1", owner="ann", s="Straße", o=None, n=2**63 - 1, m=-(2**63), f=-0.0,
               dec=Decimal("1.10"), by=b"", k=Kind.A, when=when, day=date(999, 1, 2),
               u=uuid.UUID(int=7), data={"x": [1, {"y": None}], "big": 2**70},
               email="a@x")
    with open_store(Doc, url) as st:
        assert st.create(item) == item
        got = st.read("k1")
        assert got == item
        assert type(got.n) is int and type(got.f) is float and str(got.dec) == "1.10"
        assert got.when.microsecond == 123457 and got.when.tzinfo is not None
    client, coll = raw_collection(url, "doc")
    try:
        doc = coll.find_one({"_id": "k1"})
        assert "id" not in doc  # a one-attribute key is the _id
        assert "o" not in doc and "m" in doc  # None is left out
        assert doc["when"] == "2024-05-06T07:08:09.123457+00:00"
        assert doc["day"] == "0999-01-02"
        assert doc["dec"] == "1.10" and doc["k"] == "Alpha"
        assert doc["__lc"] == {"id": "k1", "owner": "ann", "s": "straße", "k": "alpha",
                               "email": "a@x"}
        indexes = coll.index_information()
        assert indexes["ix_doc_owner_n"]["key"] == [("owner", 1), ("n", 1)]
        assert indexes["uq_doc_email"]["unique"] is True
        assert indexes["uq_doc_email"]["partialFilterExpression"] == {
            "email": {"$exists": True}}
    finally:
        client.close()


def test_composite_key_document(url):
    with open_store(Pair, url) as st:
        st.create(Pair(a="x", b=1, v="one"))
        st.create(Pair(a="x", b=2))
        with pytest.raises(Conflict):
            st.create(Pair(a="x", b=1))
        assert st.read_batch([("x", 2), ("y", 1), ("x", 1)]) == [
            Pair(a="x", b=2), None, Pair(a="x", b=1, v="one")]
        assert [p.b for p in st.search_all(order_by="-b")] == [2, 1]
    client, coll = raw_collection(url, "pair")
    try:
        doc = coll.find_one({"_id": {"a": "x", "b": 1}})
        assert (doc["a"], doc["b"], doc["v"]) == ("x", 1, "one")
        assert coll.index_information()["key_pair"]["key"] == [("a", 1), ("b", 1)]
    finally:
        client.close()


def test_int_beyond_64_bits_is_a_validation_error(url):
    with open_store(Doc, url) as st:
        with pytest.raises(ValidationError) as info:
            st.create(Doc(id="big", n=2**63))
        assert info.value.errors[0]["field"] == "n"
        assert st.count() == 0


def test_unique_optional_attribute_allows_many_none(url):
    with open_store(Doc, url) as st:
        st.create(Doc(id="a"))
        st.create(Doc(id="b"))
        st.create(Doc(id="c", email="c@x"))
        with pytest.raises(Conflict) as info:
            st.update("a", email="c@x")
        assert isinstance(info.value.__cause__, pymongo.errors.DuplicateKeyError)
        assert st.update("c", email=None).email is None
        assert st.update("a", email="c@x").email == "c@x"
        assert st.count(email__isnull=True) == 2


# filters ---------------------------------------------------------------------------------
def test_native_ops_really_run_on_the_server(url, rec):
    """Each operator in native_ops is sent in the query and nothing is filtered locally."""
    rows = [Doc(id=f"r{i}", s=t, o=None if i % 3 == 0 else t.upper(), n=i, m=None if i % 2
                else i) for i, t in enumerate(["ab", "Ab", "aB", "x_y", "a.b", "", "ſ", "K",
                                                "a\nb", "b\n"])]
    with open_store(Doc, url, event_listeners=[rec]) as st:
        for r in rows:
            st.create(r)
        meta = st.meta
        assert meta.native_ops == OPERATORS
        cases = {
            "eq": Q(s="ab"), "ne": Q(m__ne=4), "lt": Q(n__lt=3), "lte": Q(n__lte=3),
            "gt": Q(n__gt=3), "gte": Q(n__gte=3), "in": Q(n__in=[1, 2, 30]),
            "not_in": Q(m__not_in=[0, 2]), "isnull": Q(o__isnull=True),
            "range": Q(n__range=(2, 5)), "contains": Q(s__contains="."),
            "icontains": Q(s__icontains="B"), "startswith": Q(s__startswith="a"),
            "istartswith": Q(o__istartswith="a"), "endswith": Q(s__endswith="b"),
            "iendswith": Q(s__iendswith="B"), "iexact": Q(s__iexact="AB"),
        }
        assert set(cases) == OPERATORS
        backend = st._b
        for op, where in cases.items():
            node = build_filter(backend.core.meta, where)
            assert backend.split(node).all_native, op
            want = [r for r in rows if compile_local(node)(r)]
            rec.reset()
            got = list(st.search_all(where, order_by="id"))
            assert got == sorted(want, key=lambda r: r.id), op
            finds = rec.named("find", "aggregate")
            assert len(finds) == 1, op
            sent = finds[0].get("filter", finds[0].get("pipeline", [{}])[0].get("$match"))
            assert sent == backend.core.compile(node), op
            assert rec.batches == [len(want)], op  # the server returned exactly the matches
            # and the operator is in the query document
            text = repr(sent)
            expected = {"eq": "$eq", "ne": "$ne", "lt": "$lt", "lte": "$lte", "gt": "$gt",
                        "gte": "$gte", "in": "$in", "not_in": "$nin", "isnull": "None",
                        "range": "$gte", "iexact": "__lc"}.get(op, "$regex")
            assert expected in text, (op, text)
            if op.startswith("i") and op not in ("in", "isnull"):
                assert "__lc" in text, op
            rec.reset()
            assert st.count(where) == len(want)
            assert [c for c in rec.named("aggregate", "count") if c], op
            assert not rec.named("find"), op  # counted on the server


def test_two_valued_logic_and_negation_match_local(url):
    rows = [Doc(id=str(i), m=None if i % 3 == 0 else i, o=None if i % 2 else f"v{i}")
            for i in range(9)]
    with open_store(Doc, url) as st:
        for r in rows:
            st.create(r)
        meta = st._b.core.meta
        for where in [Q(m__ne=1), ~Q(m__gt=4), ~Q(m=4), Q(m__not_in=[1, 2]),
                      ~(Q(o__startswith="v") | Q(m__lt=3)), ~Q(o__iexact="V2"),
                      Q(m__in=[None, 4]), Q(o__isnull=False) & ~Q(m__range=(1, 5))]:
            want = [r.id for r in rows if compile_local(build_filter(meta, where))(r)]
            assert sorted(r.id for r in st.search_all(where)) == sorted(want), where
            assert st.count(where) == len(want)


def test_case_folding_follows_str_lower_not_the_server(url):
    # a server regex with the i option folds "ſ" to "s", "K" (Kelvin) to "k" and "İ" to
    # "i"; Python's str.lower() maps "K" to "k", "İ" to "i̇" and keeps "ſ"
    texts = ["ſ", "s", "S", "\u212a", "k", "İ", "i", "ß", "SS", "Σ", "ς", "σ", "x*y", "a+b",
             "(a)", "[a]", "a$", "^a", "a\\b", "a\x00b", "ab\n", "😀", ""]
    rows = [Doc(id=f"t{i}", s=t) for i, t in enumerate(texts)]
    with open_store(Doc, url) as st:
        for r in rows:
            st.create(r)
        meta = st._b.core.meta
        probes = ["s", "S", "k", "K", "i", "i̇", "ß", "ss", "σ", "ς", "*", "+", "(", "[a]",
                  "$", "^", "\\", "\x00", "b", "\n", "😀", "", "a"]
        for op in ["contains", "icontains", "startswith", "istartswith", "endswith",
                   "iendswith", "iexact", "eq"]:
            for p in probes:
                where = Q(**{f"s__{op}": p})
                want = sorted(r.id for r in rows
                              if compile_local(build_filter(meta, where))(r))
                got = sorted(r.id for r in st.search_all(where))
                assert got == want, (op, p)


def test_decimal_and_bytes_comparisons_are_declined_and_evaluated_locally(url, rec):
    rows = [Doc(id=str(i), dec=d, by=b) for i, (d, b) in enumerate([
        (Decimal("1.0"), b"\x02"), (Decimal("1.00"), b"\x01\x00"), (Decimal("-0"), b""),
        (Decimal("10"), b"\xff"), (Decimal("9.99"), b"\x01"), (None, None)])]
    with open_store(Doc, url, event_listeners=[rec]) as st:
        for r in rows:
            st.create(r)
        backend = st._b
        meta = backend.core.meta
        for where in [Q(dec=Decimal("1")), Q(dec__gt=Decimal("1")), Q(by__lt=b"\x01\x01"),
                      Q(dec__in=[Decimal("0")]), Q(by__range=(b"\x01", b"\x02"))]:
            node = build_filter(meta, where)
            assert not backend.split(node).all_native
            want = [r for r in rows if compile_local(node)(r)]
            assert sorted(r.id for r in st.search_all(where)) == sorted(r.id for r in want)
            assert st.count(where) == len(want)
        # eq / in on bytes and isnull on decimals stay native
        for where in [Q(by=b"\x01"), Q(by__in=[b"", b"\xff"]), Q(dec__isnull=True)]:
            assert backend.split(build_filter(meta, where)).all_native
        # ordering: bytes and decimals sort locally, exactly as sort_items
        for order in (["by"], ["-dec"], ["dec", "-id"]):
            assert not backend.can_order(parse_order(meta, order))
            want = sort_items(rows, parse_order(meta, order))
            assert [r.id for r in st.search_all(order_by=order)] == [r.id for r in want]
        # a precondition the server cannot evaluate: read, check, compare-and-set
        assert st.update("0", precondition=Q(dec__gt=Decimal("5")), n=1) is None
        assert st.update("0", precondition=Q(dec__lt=Decimal("5")), n=1).n == 1
        assert st.delete("3", precondition=Q(dec__lt=Decimal("5"))) is False
        assert st.delete("3", precondition=Q(dec__gt=Decimal("5"))) is True


def test_none_sorts_last_in_both_directions(url, rec):
    rows = [Doc(id=str(i), m=None if i % 3 == 0 else i % 4, o=None if i % 2 else chr(97 + i))
            for i in range(12)]
    # (a given cursor secret: the database's would be read on the first page, once)
    with open_store(Doc, url, event_listeners=[rec], secret="round trips") as st:
        for r in rows:
            st.create(r)
        meta = st._b.core.meta
        for order in (["m"], ["-m"], ["o", "-m"], ["-o", "m"], ["-m", "-o"]):
            assert st._b.can_order(parse_order(meta, order))
            want = [r.id for r in sort_items(rows, parse_order(meta, order))]
            rec.reset()
            page = st.search(order_by=order, limit=5)
            assert [r.id for r in page] == want[:5], order
            # one server round trip; the server returned limit + 1 documents
            assert len(rec.named("find", "aggregate")) == 1 and rec.batches == [6], order
            assert [r.id for r in st.search_all(order_by=order, limit=4)] == want, order


# writes ----------------------------------------------------------------------------------
def test_precondition_runs_in_find_one_and_update(url, rec):
    with open_store(Doc, url, event_listeners=[rec]) as st:
        st.create(Doc(id="a", n=1))
        rec.reset()
        assert st.update("a", precondition=Q(n__gt=5), s="x") is None
        assert st.update("a", precondition=Q(n=1), s="x").s == "x"
        cmds = rec.named("findAndModify")
        assert len(cmds) == 2 and not rec.named("find")
        assert cmds[0]["query"] == {"$and": [{"_id": "a"}, {"n": {"$gt": 5}}]}
        assert st.update("missing", s="y") is None
        assert st.delete("a", precondition=Q(s="nope")) is False
        assert st.delete("a", precondition=Q(s="x")) is True


def test_read_batch_is_one_find(url, rec):
    with open_store(Doc, url, event_listeners=[rec]) as st:
        for i in range(5):
            st.create(Doc(id=str(i)))
        rec.reset()
        got = st.read_batch(["3", "x", "1", "3"])
        assert [g and g.id for g in got] == ["3", None, "1", "3"]
        finds = rec.named("find")
        assert len(finds) == 1 and finds[0]["filter"] == {"_id": {"$in": ["3", "x", "1"]}}


def test_update_and_delete_where_are_single_commands(url, rec):
    with open_store(Doc, url, event_listeners=[rec]) as st:
        for i in range(6):
            st.create(Doc(id=str(i), n=i, s="ABC" if i % 2 else "abc"))
        rec.reset()
        assert st.update_where(s__iexact="abc", n__gte=2, changes={"s": "Zed", "o": "q"}) == 4
        upd = rec.named("update")
        assert len(upd) == 1 and upd[0]["updates"][0]["multi"] is True
        assert st.count(s__icontains="ZE") == 4  # the shadow field was updated too
        assert st.update_where(n__gte=4, changes={"o": None}) == 2
        assert st.count(o__isnull=True) == 4
        rec.reset()
        assert st.delete_where(o__isnull=True) == 4
        assert len(rec.named("delete")) == 1
        assert sorted(d.id for d in st.search_all()) == ["2", "3"]


def test_non_atomic_batch_of_creates_is_one_insert(url, rec):
    with open_store(Doc, url, event_listeners=[rec]) as st:
        st.create(Doc(id="b", email="b@x"))
        rec.reset()
        res = st.edit_batch([Create(Doc(id="a")), Create(Doc(id="b")), Create(Doc(id="c")),
                             Create(Doc(id="d", email="b@x"))])
        assert [(r.ok, r.code) for r in res] == [(True, None), (False, "duplicate_key"),
                                                  (True, None), (False, "duplicate_key")]
        assert len(rec.named("insert")) == 1
        assert sorted(d.id for d in st.search_all()) == ["a", "b", "c"]


def test_transactions_commit_and_abort(url):
    with open_store(Seq, url) as st:
        assert st.meta.atomic_batch and st.meta.transactions
        first = st.create(Seq(label="a"))
        res = st.edit_batch([Create(Seq(label="b")), Update(first.id, label="A")], atomic=True)
        assert [r.ok for r in res] == [True, True]
        with pytest.raises(BatchError) as info:
            st.edit_batch([Create(Seq(label="c")), Update(first.id, label="AA"),
                           Create(Seq(id=first.id, label="dup")), Delete(first.id)],
                          atomic=True)
        assert [r.code for r in info.value.results] == [None, None, "duplicate_key", None]
        assert [(s.id, s.label) for s in st.search_all()] == [(first.id, "A"),
                                                               (res[0].item.id, "b")]
        later = st.create(Seq(label="later"))
        assert later.id > res[0].item.id


def test_transactions_declared_off(url):
    with open_store(Doc, url, transactions=False) as st:
        assert not st.meta.atomic_batch and not st.meta.transactions
        with pytest.raises(UnsupportedOperation):
            st.edit_batch([Create(Doc(id="a"))], atomic=True)
        assert st.edit_batch([Create(Doc(id="a"))])[0].ok
        assert st.count() == 1


def test_errors_are_wrapped_with_the_driver_error_as_cause(url):
    # nothing listens on this loopback port
    dead = "mongodb://127.0.0.1:9/?directConnection=true&serverSelectionTimeoutMS=200"
    with open_store(Doc, dead) as st:
        with pytest.raises(BackendError) as info:
            st.read("a")
        assert isinstance(info.value.__cause__, pymongo.errors.PyMongoError)
    with open_store(Doc, url) as st:
        st.create(Doc(id="a"))
        with pytest.raises(Conflict) as cinfo:
            st.create(Doc(id="a"))
        assert isinstance(cinfo.value.__cause__, pymongo.errors.DuplicateKeyError)


def test_datetimes_keep_microseconds_and_compare_as_instants(url):
    base = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [Doc(id=str(k), when=base + timedelta(microseconds=k)) for k in (-1, 0, 1, 999)]
    with open_store(Doc, url) as st:
        for r in rows:
            st.create(r)
        from datetime import timezone
        other_zone = base.astimezone(timezone(timedelta(hours=5)))
        assert [r.id for r in st.search_all(when__gte=other_zone, order_by="when")] == [
            "0", "1", "999"]
        assert [r.when for r in st.search_all(order_by="-when")] == sorted(
            (r.when for r in rows), reverse=True)


async def test_async_store_uses_the_async_driver(url, rec):
    st = open_async_store(Doc, url, event_listeners=[rec])
    assert type(st._b.client).__name__ == "AsyncMongoClient"
    async with st:
        await st.create(Doc(id="a", s="Hello"))
        await st.create(Doc(id="b", s="world"))
        assert [d.id async for d in st.search_all(s__icontains="L", order_by="-id")] == [
            "b", "a"]
        with pytest.raises(BatchError):
            await st.edit_batch([Update("a", s="x"), Delete("zz")], atomic=True)
        assert (await st.read("a")).s == "Hello"
        res = await st.edit_batch([Update("a", s="x"), Delete("b")], atomic=True)
        assert all(r.ok for r in res)
        assert [d.s async for d in st.search_all()] == ["x"]


def test_sync_store_uses_the_sync_driver(url):
    with open_store(Doc, url) as st:
        assert type(st._b.client).__name__ == "MongoClient"


def test_core_regex_literal_is_exact():
    import re
    for text in ["a.b", "x*y+z?", "(a|b)", "[^]", "{1,2}", "\\d", "$^", "a\nb", "\x00\x7f",
                 "# x", "-", "ſK"]:
        rx = re.compile(mcore.regex_literal(text))
        assert rx.fullmatch(text), text
        assert re.compile(mcore.text_regex("endswith", text)).search(text + "\n") is None

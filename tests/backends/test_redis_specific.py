"""Redis backend specifics: layout, sort encodings, native work really done on the server,
retries, errors, and a differential test on a model whose every attribute is indexed."""

from __future__ import annotations

import enum
import json
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storeroom import Index, Q, field, stored
from storeroom.backends.redis.codec import (
    enc_bytes,
    enc_date,
    enc_datetime,
    enc_decimal,
    enc_float,
    enc_int,
    enc_text,
    sort_codec,
)
from storeroom.errors import BackendError, BatchError, Conflict
from storeroom.model import meta_of
from storeroom.query import build_filter, compile_local, parse_order, sort_items
from storeroom.store.open import open_async_store, open_store
from storeroom.store.types import Create, Delete, Update
from tests.servers import require

# --- models -------------------------------------------------------------------------------


class Shade(enum.Enum):
    LIGHT = "light"
    DARK = "Dark"
    ODD = "o_d%d"


class Level(enum.Enum):
    LOW = 1
    HIGH = 2


@stored(indexes=[Index("s"), Index("o"), Index("n"), Index("x"), Index("b"), Index("t"),
                 Index("c"), Index("dec"), Index("by"), Index("lv")])
class IItem:
    id: int
    s: str = ""
    o: str | None = None
    n: int | None = None
    x: float = 0.0
    b: bool | None = None
    t: datetime | None = None
    c: Shade | None = None
    dec: Decimal = Decimal("0")
    by: bytes = b""
    lv: Level = Level.LOW
    free: str = ""  # not indexed: filters on it run locally


@stored(indexes=[Index("owner")])
class Doc:
    id: str
    owner: str
    n: int = 0
    email: str | None = field(default=None, unique=True)
    when: datetime | None = None
    day: date | None = None
    u: uuid.UUID | None = None
    raw: bytes = b""
    tags: list[str] = field(default_factory=list)


@stored(key=("owner", "num"), indexes=[Index("label")])
class Pair:
    owner: str
    num: int
    label: str = ""


IMETA = meta_of(IItem)

# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def url() -> str:
    base = require("redis")
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}prefix=rs-{uuid.uuid4().hex}"


class A:
    """A store whose calls are awaitable in both modes."""

    def __init__(self, store: Any, is_async: bool) -> None:
        self.store = store
        self.is_async = is_async

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self.store, name)

        async def call(*args: Any, **kw: Any) -> Any:
            if name == "search_all":
                it = fn(*args, **kw)
                return [x async for x in it] if self.is_async else list(it)
            out = fn(*args, **kw)
            return await out if self.is_async else out
        return call


@pytest.fixture
async def opened(mode: str, url: str):
    stores: list[Any] = []

    def make(model: type, u: str | None = None) -> A:
        opener = open_async_store if mode == "async" else open_store
        s = opener(model, u or url)
        stores.append(s)
        return A(s, mode == "async")
    yield make
    for s in stores:
        if mode == "async":
            await s.close()
        else:
            s.close()
    import redis  # drop this test's keys
    r = redis.from_url(url.split("?")[0])
    try:
        keys = list(r.scan_iter(match=url.split("prefix=")[1] + ":*", count=1000))
        if keys:
            r.delete(*keys)
    finally:
        r.close()


class Counting:
    """Wraps a redis client and counts what it is asked for."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.fetched = 0  # item keys read with GET / MGET
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def wrapped(*args: Any, **kw: Any) -> Any:
            self.calls.append(name)
            if name == "mget":
                self.fetched += len(args[0])
            elif name == "get":
                self.fetched += 1
            return attr(*args, **kw)
        return wrapped


def counting(s: A) -> Counting:
    b = s.store._b
    c = Counting(b.r)
    b.r = c
    return c


# --- sort encodings -------------------------------------------------------------------------

@settings(max_examples=300)
@given(st.lists(st.integers(-(2**200), 2**200), min_size=2, max_size=2))
def test_int_encoding_keeps_order(xs: list[int]) -> None:
    a, b = xs
    assert (enc_int(a) < enc_int(b)) == (a < b)
    assert (enc_int(a) == enc_int(b)) == (a == b)


@settings(max_examples=300)
@given(st.lists(st.floats(allow_nan=False), min_size=2, max_size=2))
def test_float_encoding_keeps_order(xs: list[float]) -> None:
    a, b = xs
    assert (enc_float(a) < enc_float(b)) == (a < b)
    assert (enc_float(a) == enc_float(b)) == (a == b)


@settings(max_examples=300)
@given(st.lists(st.decimals(allow_nan=False), min_size=2, max_size=2))
def test_decimal_encoding_keeps_order(xs: list[Decimal]) -> None:
    a, b = xs
    assert (enc_decimal(a) < enc_decimal(b)) == (a < b)
    assert (enc_decimal(a) == enc_decimal(b)) == (a == b)


@settings(max_examples=300)
@given(st.lists(st.text(), min_size=2, max_size=2), st.binary(max_size=3),
       st.binary(max_size=3))
def test_text_encoding_keeps_order_and_delimits(xs: list[str], t1: bytes, t2: bytes) -> None:
    a, b = xs
    # code point order, and a following key never changes the comparison
    assert (enc_text(a) + t1 < enc_text(b) + t2) == (a < b) or a == b
    assert (enc_bytes(a.encode()) < enc_bytes(b.encode())) == (a.encode() < b.encode())


def test_datetime_and_date_encodings_keep_order() -> None:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    ds = [base + timedelta(microseconds=k) for k in (-(10**12), -1, 0, 1, 10**12)]
    assert sorted(ds, key=enc_datetime) == ds
    other = base.astimezone(timezone(timedelta(hours=5)))
    assert enc_datetime(other) == enc_datetime(base)
    days = [date(1, 1, 1), date(1999, 12, 31), date(2024, 2, 29)]
    assert sorted(days, key=enc_date) == days


@pytest.mark.parametrize("name, value", [
    ("s", "a\x00b"), ("s", ""), ("n", -(2**63)), ("x", -0.0), ("dec", Decimal("-12.3400")),
    ("dec", Decimal("1E+5")), ("t", datetime(1, 1, 1, tzinfo=UTC)), ("by", b"\x00\xff"),
    ("c", Shade.DARK), ("lv", Level.HIGH)])
def test_sort_encodings_decode(name: str, value: Any) -> None:
    enc, skip, dec = sort_codec(IMETA.attrs[name])  # type: ignore[misc]
    b = enc(value) + b"tail"
    assert skip(b, 0) == len(b) - 4
    assert dec(b, 0) == (value, len(b) - 4)


# --- layout, round trips, errors ------------------------------------------------------------

async def test_layout_is_one_json_string_per_item(opened, url: str) -> None:
    import redis
    s = opened(Doc)
    await s.create(Doc(id="a/b c", owner="x", email="e@x"))
    prefix = url.split("prefix=")[1]
    r = redis.from_url(url.split("?")[0])
    try:
        raw = r.get(f"{prefix}:doc:a%2Fb%20c")
        assert json.loads(raw)["owner"] == "x"
        assert r.type(f"{prefix}:doc:#ix:owner") == b"zset"
        assert r.zcard(f"{prefix}:doc:#keys") == 1
        assert r.hgetall(f"{prefix}:doc:#uq:email")
    finally:
        r.close()


async def test_values_round_trip_exactly(opened) -> None:
    s = opened(Doc)
    when = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    d = Doc(id="", owner="", n=-(2**63), when=when, day=date(2024, 2, 29), u=uuid.uuid4(),
            raw=b"", tags=["", "é", "😀"])
    await s.create(d)
    got = await s.read("")
    assert got == d and got.raw == b"" and got.owner == "" and got.when == when
    assert await s.read("missing") is None
    assert await s.update("missing", n=1) is None
    assert await s.delete("missing") is False
    assert (await s.read_batch(["", "missing", ""])) == [d, None, d]


async def test_unique_and_key_conflicts(opened) -> None:
    s = opened(Doc)
    await s.create(Doc(id="a", owner="o", email="x@y"))
    await s.create(Doc(id="b", owner="o"))
    with pytest.raises(Conflict):
        await s.create(Doc(id="a", owner="o"))
    with pytest.raises(Conflict):
        await s.create(Doc(id="c", owner="o", email="x@y"))
    with pytest.raises(Conflict):
        await s.update("b", email="x@y")
    assert (await s.update("a", email="z@y")).email == "z@y"
    assert (await s.update("b", email="x@y")).email == "x@y"  # freed by the update
    await s.delete("b")
    await s.create(Doc(id="c", owner="o", email="x@y"))  # freed by the delete
    assert await s.count() == 2


async def test_atomic_batch_is_all_or_nothing(opened) -> None:
    s = opened(Doc)
    await s.create(Doc(id="a", owner="o", email="a@x"))
    with pytest.raises(BatchError) as err:
        await s.edit_batch([Create(Doc(id="n1", owner="o")), Update("a", n=5),
                            Create(Doc(id="n2", owner="o", email="a@x"))], atomic=True)
    assert [r.code for r in err.value.results][2] == "duplicate_key"
    assert await s.count() == 1 and (await s.read("a")).n == 0
    # dependencies inside one batch: delete frees the unique value a create then takes
    res = await s.edit_batch([Delete("a"), Create(Doc(id="b", owner="o", email="a@x")),
                              Update("b", n=2)], atomic=True)
    assert all(r.ok for r in res)
    assert [(i.id, i.n, i.email) for i in await s.search_all()] == [("b", 2, "a@x")]
    assert await s.count(owner="o") == 1


async def test_update_retries_when_the_item_changes_underneath(opened, mode: str) -> None:
    s = opened(Doc)
    await s.create(Doc(id="a", owner="o", n=1))
    b = s.store._b
    other = opened(Doc)
    real = b._run
    done: list[int] = []

    if mode == "async":
        async def racing(p: Any) -> int:
            if not done:
                done.append(1)
                await other.update("a", n=100, owner="p")
            return await real(p)
    else:
        def racing(p: Any) -> int:  # type: ignore[misc]
            if not done:
                done.append(1)
                other.store.update("a", n=100, owner="p")
            return real(p)
    b._run = racing
    got = await s.update("a", n=2)
    assert got.n == 2 and got.owner == "p"  # re-read after the concurrent change
    assert await s.count(owner="o") == 0 and await s.count(owner="p") == 1
    assert await s.update("a", precondition=Q(owner="o"), n=3) is None


async def test_errors_are_wrapped(mode: str) -> None:
    opener = open_async_store if mode == "async" else open_store
    s = opener(Doc, "redis://127.0.0.1:1/0?prefix=x&socket_connect_timeout=0.5")
    try:
        with pytest.raises(BackendError) as err:
            r = s.read("a")
            if mode == "async":
                await r
        import redis
        assert isinstance(err.value.__cause__, redis.RedisError)
    finally:
        r2 = s.close()
        if mode == "async":
            await r2


# --- native work really happens on the server ----------------------------------------------

async def test_native_filters_fetch_only_matching_items(opened) -> None:
    s = opened(Doc)
    await s.edit_batch([Create(Doc(id=f"{i:03}", owner=f"o{i % 20}", n=i)) for i in range(200)])
    assert s.store.meta.native_ops >= {"eq", "in", "lt", "gte", "range", "isnull", "startswith"}
    await s.search(limit=1)  # its cursor reads the database's cursor secret (once), uncounted
    c = counting(s)
    got = await s.search(owner="o3")
    assert len(got) == 10 and c.fetched == 10  # an equality on an index: only the matches
    c.fetched, c.calls = 0, []
    assert await s.count(owner__in=["o1", "o2"]) == 20
    assert c.fetched == 0 and "mget" not in c.calls  # counted on the sorted set
    c.fetched = 0
    page = await s.search(order_by="-owner", limit=5)
    assert len(page) == 5 and c.fetched == 6  # ordered scan stops early (limit + 1)
    assert [i.owner for i in page] == ["o9"] * 5
    c.fetched = 0
    nxt = await s.search(order_by="-owner", limit=5, after=page.next)
    assert c.fetched == 6 and [i.id for i in nxt][:1] == ["109"]
    c.fetched = 0
    got = await s.search(owner="o3", n__gte=100)  # n is not indexed: checked locally
    assert len(got) == 5 and c.fetched == 10  # on the 10 items the index selected
    # a filter on an attribute that is not indexed runs locally
    split = s.store._b.split(build_filter(meta_of(Doc), None, None, {"n": 3}))
    assert not split.all_native


async def test_composite_keys(opened) -> None:
    s = opened(Pair)
    for o in ("a", "b"):
        for n in (3, -1, 10):
            await s.create(Pair(owner=o, num=n, label=f"{o}{n}"))
    assert [(p.owner, p.num) for p in await s.search_all(order_by=["-owner"], limit=2)] == [
        ("b", -1), ("b", 3), ("b", 10), ("a", -1), ("a", 3), ("a", 10)]
    assert await s.count(num__gt=0) == 4
    assert [p.label for p in await s.search_all(owner="a", num__lt=5)] == ["a-1", "a3"]
    assert (await s.read(("b", 10))).label == "b10"


# --- differential on a model whose attributes are all indexed -------------------------------

TEXTS = ["", "a", "A", "ab", "a\x00", "a\x00b", "É", "é", "ß", "😀", "a%b", "Ω"]
text = st.one_of(st.sampled_from(TEXTS), st.text(alphabet="aAb\x00É😀", max_size=3))
ints = st.one_of(st.integers(-4, 4), st.sampled_from([-(2**63), 2**63 - 1, 2**40]))
floats = st.sampled_from([0.0, -0.0, 0.5, -1.5, 1e300, -1e-300, 2.5, 3.0, float("inf")])
BASE = datetime(2024, 3, 1, 12, 0, 0, 500000, tzinfo=UTC)
dates = st.sampled_from([BASE + timedelta(microseconds=k) for k in (-1, 0, 1)] +
                        [BASE - timedelta(days=400)])
decs = st.sampled_from([Decimal("0"), Decimal("-0.5"), Decimal("1.50"), Decimal("1.5"),
                        Decimal("-100"), Decimal("1E+3"), Decimal("0.001")])
bys = st.sampled_from([b"", b"\x00", b"\x00\x01", b"a", b"\xff"])


def opt(strategy: Any) -> Any:
    return st.one_of(st.none(), strategy)


iitems = st.lists(
    st.builds(IItem, id=st.integers(-5, 40), s=text, o=opt(text), n=opt(ints), x=floats,
              b=opt(st.booleans()), t=opt(dates), c=opt(st.sampled_from(list(Shade))),
              dec=decs, by=bys, lv=st.sampled_from(list(Level)), free=text),
    max_size=14, unique_by=lambda i: i.id)

VALUES: dict[str, Any] = {
    "id": st.integers(-6, 41), "s": text, "o": text, "n": ints, "x": floats,
    "b": st.booleans(), "t": dates, "c": st.sampled_from(list(Shade)), "dec": decs,
    "by": bys, "lv": st.sampled_from(list(Level)), "free": text,
}
NATIVE = ["eq", "in", "lt", "lte", "gt", "gte", "range", "isnull"]
OTHER = ["ne", "not_in"]
TEXTUAL = {"s", "o", "c", "free"}


@st.composite
def iconds(draw: Any) -> Any:
    name = draw(st.sampled_from(sorted(VALUES)))
    ops = NATIVE + OTHER + (["startswith", "contains"] if name in TEXTUAL else [])
    op = draw(st.sampled_from(ops))
    values = VALUES[name]
    if op == "isnull":
        value = draw(st.booleans())
    elif op in ("in", "not_in"):
        value = draw(st.lists(values, max_size=3))
    elif op == "range":
        value = (draw(values), draw(values))
    elif op in ("startswith", "contains"):
        value = draw(text)
        if name == "c":
            value = draw(st.sampled_from(["", "l", "D", "o_"]))
    else:
        value = draw(values)
    return Q(**{f"{name}__{op}": value})


ifilters = st.recursive(st.one_of(iconds(), st.just(Q())), lambda ch: st.one_of(
    st.tuples(ch, ch).map(lambda p: p[0] & p[1]), st.tuples(ch, ch).map(lambda p: p[0] | p[1]),
    ch.map(lambda q: ~q)), max_leaves=4)
SORT = ["id", "s", "o", "n", "x", "b", "t", "c", "dec", "by", "lv"]
iorders = st.one_of(
    st.sampled_from(SORT).flatmap(lambda n: st.sampled_from([[n], ["-" + n], [n, "-id"],
                                                             ["-" + n, "-id"]])),
    st.lists(st.sampled_from(SORT), max_size=2, unique=True))


@pytest.fixture
def istore(opened) -> A:
    return opened(IItem)


@settings(max_examples=50, deadline=None)
@given(data=iitems, where=ifilters, order_by=iorders, limit=opt(st.integers(1, 4)))
async def test_indexed_searches_agree_with_local_evaluation(istore: A, data: list[IItem],
                                                            where: Any, order_by: list[str],
                                                            limit: int | None) -> None:
    s = istore
    await s.delete_where()
    if data:
        await s.edit_batch([Create(i) for i in data])
    keep = compile_local(build_filter(IMETA, where))
    want = sort_items([i for i in data if keep(i)], parse_order(IMETA, order_by))
    got = await s.search_all(where, order_by=order_by, limit=limit)
    assert got == want, (where, order_by)
    assert await s.count(where) == len(want)
    if want and limit:
        assert await s.update_where(where, changes={"lv": Level.HIGH}) == len(want)
        hit = {i.id for i in want}
        now = {i.id: i.lv for i in await s.search_all()}
        assert all(now[i.id] == Level.HIGH for i in want)
        assert all(now[i.id] == i.lv for i in data if i.id not in hit)
    elif want:
        assert await s.delete_where(where) == len(want)
        assert await s.count() == len(data) - len(want)


@stored(key="id", indexes=[Index("g")])
class ChunkRow:
    id: int
    g: int = 0
    u: int = 0  # not indexed: ordering by it reads every matching item (iterate)


async def test_reading_every_item_pipelines_its_chunks(opened: Any) -> None:
    """An order the sorted sets cannot serve reads every matching item in chunks of 500:
    without a filter, the first key range, then one pipeline per chunk (its MGET and the
    next chunk's range), then the last MGET; with an index filter, the key set, then one
    pipeline of the MGETs of up to 8 chunks. Items count: 1,201 (two full chunks and a
    part), none lost or repeated at the chunk edges."""
    from storeroom import QueryLog
    rows = opened(ChunkRow)
    n = 1201
    for lo, hi in ((0, 600), (600, n)):  # (a batch holds at most 1,000 edits)
        await rows.edit_batch([Create(ChunkRow(id=i, g=i % 7, u=(i * 37) % n))
                               for i in range(lo, hi)])
    assert await rows.count() == n
    await rows.search(limit=1)  # warm: the cursor secret
    with QueryLog() as log:
        page = await rows.search(order_by="u", limit=1000)  # every item read, 1,000 kept
    assert [r.u for r in page] == list(range(1000))
    assert [s.statement for s in log.records] == [
        "ZRANGEBYLEX", "PIPELINE MGET ZRANGEBYLEX", "PIPELINE MGET ZRANGEBYLEX", "MGET"]
    with QueryLog() as log:
        page = await rows.search(Q(g__gte=1), order_by="u", limit=1000)
    want = sorted((i * 37) % n for i in range(n) if i % 7 >= 1)[:1000]
    assert [r.u for r in page] == want
    assert len(log.records) == 2 and log.records[1].statement == "PIPELINE MGET"

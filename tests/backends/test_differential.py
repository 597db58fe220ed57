"""Differential test: every backend's searches agree with local evaluation.

Local evaluation (``storeroom.query.compile_local`` + ``sort_items``) is the reference
semantics. Random items, random filters over every operator combined with And/Or/Not,
and random orderings must give exactly the same results natively.

There is one small model per attribute kind (``KINDS``), each with the same four
attributes, so that every example stays small and each kind meets its edge values
often: ``v`` (required, indexed alone and as the first attribute of a pair: a DynamoDB
index partition key, a Redis sorted set), ``o`` (optional, the second attribute of that
pair: a DynamoDB index sort key), ``p`` (optional, not indexed) and the int key ``id``.
Values are drawn mostly from lists of edge values (0, -0.0, "", b"", the extremes of each
type, NUL, case-folding specials, numbers at the edges of a backend's encoding) and
``in`` / ``not_in`` lists mix them with None. A value that a backend documents it
refuses (``store_factory.refuses``) is left out of the items for that backend only; as
a filter value it stays (such filters are evaluated locally).

Each example loads one small set of items and checks ``SEARCHES`` searches and one
``update_where`` / ``delete_where`` on it; a few examples per kind keep the run short on
every backend configuration, sync and async (raise ``max_examples`` locally to hunt).
Under ``CI=true`` the examples are derandomized (tests/conftest.py), so a CI failure
recurs, and it prints a ``@reproduce_failure`` blob.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storeroom import Index, Q, stored
from storeroom.model import meta_of
from storeroom.query import build_filter, compile_local, parse_order, sort_items


def opt(strategy: Any) -> Any:
    return st.one_of(st.none(), strategy)


class Tone(enum.Enum):
    """A str-valued Enum (one value is the empty string)."""

    EMPTY = ""
    LIGHT = "light"
    DARK = "Dark"
    ODD = "o_d%"
    SHARP = "ß"
    FACE = "😀"
    LIGATURE = "ﬀ"  # U+FB00: after every non-BMP character in UTF-16 order


class Rank(enum.Enum):
    """An int-valued Enum reaching the 64-bit bounds."""

    LOWEST = -(2**63)
    MINUS = -1
    ZERO = 0
    ONE = 1
    HIGHEST = 2**63 - 1


IX = [Index("v"), Index("v", "o")]


@stored(indexes=IX)
class KStr:
    id: int
    v: str
    o: str | None = None
    p: str | None = None
    mark: int = 0


@stored(indexes=IX)
class KInt:
    id: int
    v: int
    o: int | None = None
    p: int | None = None
    mark: int = 0


@stored(indexes=IX)
class KFloat:
    id: int
    v: float
    o: float | None = None
    p: float | None = None
    mark: int = 0


@stored(indexes=IX)
class KBool:
    id: int
    v: bool
    o: bool | None = None
    p: bool | None = None
    mark: int = 0


@stored(indexes=IX)
class KDecimal:
    id: int
    v: Decimal
    o: Decimal | None = None
    p: Decimal | None = None
    mark: int = 0


@stored(indexes=IX)
class KDatetime:
    id: int
    v: datetime
    o: datetime | None = None
    p: datetime | None = None
    mark: int = 0


@stored(indexes=IX)
class KDate:
    id: int
    v: date
    o: date | None = None
    p: date | None = None
    mark: int = 0


@stored(indexes=IX)
class KUuid:
    id: int
    v: uuid.UUID
    o: uuid.UUID | None = None
    p: uuid.UUID | None = None
    mark: int = 0


@stored(indexes=IX)
class KBytes:
    id: int
    v: bytes
    o: bytes | None = None
    p: bytes | None = None
    mark: int = 0


@stored(indexes=IX)
class KTone:
    id: int
    v: Tone
    o: Tone | None = None
    p: Tone | None = None
    mark: int = 0


@stored(indexes=IX)
class KRank:
    id: int
    v: Rank
    o: Rank | None = None
    p: Rank | None = None
    mark: int = 0


# values -----------------------------------------------------------------------------------
# Each kind has a few core edge values (drawn most often), more edge values, and random
# ones. An example first draws a small palette of values; items and filter operands are
# drawn mostly from it (and from other spellings of its values that coerce to them), so
# that filters and items meet on the same edge values.
TEXT_CORE = ["", " ", "\x00", "a", "A", "😀", "\uffff"]
TEXTS = ["  ", "\x00a", "a\x00", "a\x00b", "\x00\x00", "ab", "Ab", "aB", "a%b", "a_b", "axb",
         "%", "_", "'", '"', "it's", "\\", "x\\y", "a b", "a ", " a", "[a]", "a*", "É", "é",
         "ÉCOLE", "école", "ß", "SS", "ss", "ẞ", "straße", "STRASSE", "İ", "i̇", "i", "I", "ı",
         "ſ", "K", "k", "Σ", "σ", "ς", "ΣΑΣ", "ǅ", "ﬀ", "Ω", "ω", "😀", "𐐀", "𐐨", "\uffff",
         "\U0010ffff", "a\n", "\n", "\t", "\x7f", "中文"]
text = st.one_of(st.sampled_from(TEXT_CORE), st.sampled_from(TEXTS),
                 st.text(alphabet="aAbB%_'\\ \x00ÉéßİıΣς😀𐐀\n", max_size=4))

INT_CORE = [0, -1, 1, 2**63 - 1, -(2**63)]
INT_EDGES = [2, -2, 2**31 - 1, -(2**31), 2**31, 2**53, 2**53 + 1, -(2**53) - 1, 2**63 - 2,
             -(2**63) + 1]
ints = st.one_of(st.sampled_from(INT_CORE), st.sampled_from(INT_EDGES), st.integers(-3, 3),
                 st.integers(-(2**63), 2**63 - 1))

FLOAT_CORE = [0.0, -0.0, float("inf"), float("-inf"), 5e-324, -1.7976931348623157e308, 1.5]
FLOAT_EDGES = [0.5, -1.5, 2.5, 3.0, 1 / 3, 0.1, 2.0**53, 2.0**53 + 2, -5e-324,
               2.2250738585072014e-308, 1e-300, -1e-300, 1.7976931348623157e308, 1e300,
               9.223372036854776e18,
               # the edges of DynamoDB's plain number range and of its mapped bands
               1e-120, 9.999999999999999e-121, -1e-120, 1e-130, 1e120, 9.999999999999999e120,
               1e121, -1e121, 1e126, 1e-126]
floats = st.one_of(st.sampled_from(FLOAT_CORE), st.sampled_from(FLOAT_EDGES),
                   st.floats(-4, 4, allow_nan=False), st.floats(allow_nan=False))

DECIMAL_CORE = [Decimal(s) for s in ["0", "-0", "1E+3", "1000", "1.10", "1.1"]]
DECIMAL_EDGES = [Decimal(s) for s in [
    "0.0", "0E+5", "1", "-1", "1.0", "-1E+3", "0.001", "-0.000001", "0.5", "-0.5", "2.5",
    "12345678901234567890.123456789", "1234567890123456789012345678901234567.8",  # 38 digits
    "-9.9999999999999999999999999999999999999E+125",
    "9.9999999999999999999999999999999999999E+125", "1E-130", "-1E-130", "1E+125"]]
# numbers beyond DynamoDB's (38 digits, 1E-130 .. 1E+126; it refuses them)
DECIMAL_FAR = [Decimal(s) for s in [
    "1E+200", "-1E+200", "1E-200", "1.00000000000000000000000000000000000001",
    "12345678901234567890123456789012345678901"]]
decimals = st.one_of(st.sampled_from(DECIMAL_CORE), st.sampled_from(DECIMAL_EDGES),
                     st.sampled_from(DECIMAL_FAR),
                     st.decimals(-1000, 1000, places=2, allow_nan=False))

BASE = datetime(2024, 3, 1, 12, 0, 0, 500000, tzinfo=UTC)
DATETIME_CORE = [BASE, BASE + timedelta(microseconds=1), datetime(1, 1, 1, tzinfo=UTC),
                 datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)]
DATETIMES = [BASE - timedelta(microseconds=1), BASE - timedelta(days=400),
             BASE + timedelta(hours=7, seconds=1), datetime(1970, 1, 1, tzinfo=UTC),
             datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
             datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
             datetime(2000, 2, 29, 23, 59, 59, tzinfo=UTC)]
ZONES = [timezone(timedelta(hours=-3)), timezone(timedelta(hours=5, minutes=30)),
         timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))]


def in_zone(d: datetime, zone: timezone) -> datetime:
    """The same instant in another zone (kept in UTC when that zone cannot show it)."""
    try:
        return d.astimezone(zone)
    except OverflowError:
        return d


utc_datetimes = st.one_of(st.sampled_from(DATETIME_CORE), st.sampled_from(DATETIMES),
                          st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30),
                                       timezones=st.just(UTC)))
# a value may be given in another zone (it is the same instant)
datetimes = st.one_of(utc_datetimes, st.tuples(utc_datetimes, st.sampled_from(ZONES)).map(
    lambda p: in_zone(*p)))

DATE_CORE = [date(1, 1, 1), date(9999, 12, 31), date(2024, 2, 29)]
DATES = [date(1, 1, 2), date(1970, 1, 1), date(2024, 3, 1), date(1999, 12, 31)]
dates = st.one_of(st.sampled_from(DATE_CORE), st.sampled_from(DATES), st.dates())

UUID_CORE = [uuid.UUID(int=0), uuid.UUID(int=2**128 - 1), uuid.UUID(int=2**127),
             uuid.UUID(int=2**127 - 1)]
UUIDS = [uuid.UUID(int=1), uuid.UUID(int=2**64), uuid.UUID(int=2**64 - 1),
         uuid.UUID("12345678-1234-5678-1234-567812345678")]
uuids = st.one_of(st.sampled_from(UUID_CORE), st.sampled_from(UUIDS), st.uuids())

BYTES_CORE = [b"", b"\x00", b"a", b"\xff", b"\x80"]
BYTES = [b"\x00\x00", b"\x00a", b"a\x00", b"\x00\x01", b"ab", b"b", b"\x7f", b"\xff\x00",
         b"\xff\xff", b"\xfe", b"A", "😀".encode(), b"\xc3", b"\xc3\xa9"]
bytes_ = st.one_of(st.sampled_from(BYTES_CORE), st.sampled_from(BYTES), st.binary(max_size=3))


def _no_spelling(v: Any) -> list[Any]:
    return []


def _int_spellings(v: int) -> list[Any]:
    return [str(v), float(v)] if abs(v) < 2**53 else [str(v)]


def _float_spellings(v: float) -> list[Any]:
    return [int(v)] if v == v and abs(v) < 2**53 and v == int(v) else []


def _datetime_spellings(v: datetime) -> list[Any]:
    # ISO text, other zones, and naive (taken as UTC)
    return [v.isoformat(), *(in_zone(v, z) for z in ZONES[:2]),
            v.astimezone(UTC).replace(tzinfo=None)]


@dataclass(frozen=True)
class Kind:
    """One attribute kind of the test: its model and how to draw its values."""

    model: type
    core: list[Any]  # the edge values every example starts its palette with one of
    values: Any  # a strategy of stored values
    spell: Any = _no_spelling  # other filter values that coerce to a value
    text: bool = False  # text operators apply

    @property
    def id(self) -> str:
        return self.model.__name__


KINDS = [
    Kind(KStr, TEXT_CORE, text, text=True),
    Kind(KInt, INT_CORE, ints, _int_spellings),
    Kind(KFloat, FLOAT_CORE, floats, _float_spellings),
    Kind(KBool, [False, True], st.booleans(), lambda v: [int(v)]),
    Kind(KDecimal, DECIMAL_CORE, decimals,
         lambda v: [str(v)] + ([int(v)] if v == int(v) else [])),
    Kind(KDatetime, DATETIME_CORE, datetimes, _datetime_spellings),
    Kind(KDate, DATE_CORE, dates, lambda v: [v.isoformat()]),
    Kind(KUuid, UUID_CORE, uuids, lambda v: [str(v), str(v).upper()]),
    Kind(KBytes, BYTES_CORE, bytes_),
    Kind(KTone, [Tone.EMPTY, Tone.DARK, Tone.FACE, Tone.LIGATURE], st.sampled_from(list(Tone)),
         lambda v: [v.value], text=True),
    Kind(KRank, [Rank.ZERO, Rank.LOWEST, Rank.HIGHEST], st.sampled_from(list(Rank)),
         lambda v: [v.value]),
]

COMPARE = ["eq", "ne", "lt", "lte", "gt", "gte"]
TEXT_OPS = ["contains", "icontains", "startswith", "istartswith", "endswith", "iendswith",
            "iexact"]
NAMES = ["id", "v", "o", "p"]
ids = st.integers(0, 40)


class Draws:
    """The strategies of one example: values come mostly from its palette."""

    def __init__(self, kind: Kind, palette: list[Any]) -> None:
        self.kind = kind
        mine = st.sampled_from(palette)
        self.values = st.one_of(mine, mine, kind.values)
        spelled = mine.flatmap(lambda v: st.sampled_from([v, *kind.spell(v)]))
        self.operands = st.one_of(mine, spelled, kind.values)
        if kind.text:
            words = sorted({w for v in palette for w in _pieces(getattr(v, "value", v))})
            self.needles: Any = st.one_of(st.sampled_from(words), text)

    def items(self) -> Any:
        v = self.values
        return st.lists(st.builds(self.kind.model, id=ids, v=v, o=opt(v), p=opt(v)),
                        max_size=8, unique_by=lambda i: i.id)

    def cond(self) -> Any:
        @st.composite
        def cond(draw: Any) -> Q:
            name = draw(st.sampled_from(NAMES))
            ops = [*COMPARE, "in", "not_in", "in", "not_in", "range", "isnull"]
            if name != "id" and self.kind.text:
                ops += TEXT_OPS
            op = draw(st.sampled_from(ops))
            values = st.integers(-1, 41) if name == "id" else self.operands
            if op == "isnull":
                value: Any = draw(st.booleans())
            elif op in ("in", "not_in"):
                value = draw(st.lists(opt(values), max_size=4))  # None: isnull
            elif op == "range":
                value = (draw(values), draw(values))
            elif op in TEXT_OPS:
                value = draw(self.needles)
            elif op in ("eq", "ne"):
                value = draw(opt(values))  # None: isnull
            else:
                value = draw(values)
            return Q(**{f"{name}__{op}": value})
        return cond()

    def filters(self) -> Any:
        leaves = st.one_of(self.cond(), st.just(Q()), st.just(~Q()))
        tree = st.recursive(
            leaves,
            lambda children: st.one_of(
                st.tuples(children, leaves).map(lambda p: p[0] & p[1]),
                st.tuples(children, children).map(lambda p: p[0] & p[1]),
                st.tuples(children, children).map(lambda p: p[0] | p[1]),
                children.map(lambda q: ~q),
            ),
            max_leaves=5,
        )
        # ``v`` pinned with eq: a Query on an index (DynamoDB), the rest its conditions
        pinned = st.tuples(self.operands, tree).map(lambda p: Q(v=p[0]) & p[1])
        return st.one_of(tree, pinned)


def _pieces(v: str) -> set[str]:
    """Prefixes, suffixes and a middle of a text, in several cases (needles)."""
    out = {v[:i] for i in range(len(v) + 1)} | {v[i:] for i in range(len(v) + 1)}
    out.add(v[1:-1])
    return out | {w.upper() for w in out} | {w.lower() for w in out} | {w.swapcase() for w in out}


orders = st.lists(st.sampled_from(NAMES), max_size=3, unique=True).flatmap(
    lambda names: st.tuples(*[st.sampled_from([n, "-" + n]) for n in names]).map(list))


def storable(store_factory: Any, data: list[Any]) -> list[Any]:
    """The items whose values this backend stores (it documents that it refuses others)."""
    return [i for i in data if not any(store_factory.refuses(getattr(i, n)) for n in NAMES)]


def local(model: type, items_: list[Any], where: Any, order_by: Any) -> list[Any]:
    meta = meta_of(model)
    keep = compile_local(build_filter(meta, where))
    return sort_items([i for i in items_ if keep(i)], parse_order(meta, order_by))


@pytest.fixture(params=KINDS, ids=[k.id for k in KINDS])
def kind(request: pytest.FixtureRequest) -> Kind:
    return request.param


@pytest.fixture
def kstore(store_factory, kind):
    return store_factory(kind.model)


async def _load(s: Any, data: list[Any]) -> None:
    await s.delete_where()
    for item in data:
        await s.create(item)


SEARCHES = 3  # filters checked per loaded set of items (loading is the slow part)


@settings(max_examples=8, deadline=None)
@given(data=st.data())
async def test_backend_agrees_with_local_evaluation(store_factory, kind, kstore, data):
    s = kstore
    palette = [data.draw(st.sampled_from(kind.core), label="edge value"),
               *data.draw(st.lists(kind.values, max_size=3), label="palette")]
    draws = Draws(kind, palette)
    rows = storable(store_factory, data.draw(draws.items(), label="items"))
    await _load(s, rows)
    for _ in range(SEARCHES):
        where = data.draw(draws.filters(), label="filter")
        order_by = data.draw(orders, label="order_by")
        limit = data.draw(opt(st.integers(1, 5)), label="limit")
        want = local(kind.model, rows, where, order_by)
        got = await s.search_all(where, order_by=order_by, limit=limit)
        assert got == want, (where, order_by)
        assert await s.count(where) == len(want), where
    # update_where and delete_where select the same items
    where = data.draw(draws.filters(), label="filter of update_where / delete_where")
    hit = {i.id for i in local(kind.model, rows, where, ())}
    assert await s.update_where(where, changes={"mark": 1}) == len(hit)
    after = await s.search_all(order_by="id")
    assert [i.id for i in after] == sorted(i.id for i in rows)
    assert {i.id for i in after if i.mark == 1} == hit
    assert [i for i in after if i.id not in hit] == sorted(
        (i for i in rows if i.id not in hit), key=lambda i: i.id)
    assert await s.delete_where(where) == len(hit)
    assert [i.id for i in await s.search_all()] == sorted(i.id for i in rows if i.id not in hit)

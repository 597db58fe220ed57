"""Differential test of value lists: ``in`` / ``not_in`` and ORs of equalities agree with
local evaluation on every backend, for every attribute kind.

A list binds as one parameter (SQLite JSON, hex text for bytes and text holding NUL,
PostgreSQL arrays, MySQL expanding parameters), runs as one ``$in`` or a range plus a
local check (MongoDB), reads a Redis index whole, or is chunked or local (DynamoDB); an
OR of equalities on one attribute is simplified into such a list. Whatever the route,
the values must keep their exact meaning: local evaluation is the reference.
"""

from __future__ import annotations

import enum
import functools
import operator
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from storeroom import Index, Q, stored
from storeroom.model import meta_of
from storeroom.query import build_filter, compile_local


class Shade(enum.Enum):
    LIGHT = "light"
    DARK = "Dark"
    ODD = "o_d%d"


@stored(indexes=[Index("s"), Index("u")])
class KItem:
    id: int
    s: str | None = None
    by: bytes | None = None
    u: uuid.UUID | None = None
    dec: Decimal | None = None
    d: date | None = None
    t: datetime | None = None
    x: float | None = None
    n: int | None = None
    c: Shade | None = None


META = meta_of(KItem)
BASE = datetime(2024, 3, 1, 12, 0, 0, 500000, tzinfo=UTC)
TEXTS = ["", "a", "A", "a\x00", "\x00", "a\x00b", "é", "😀", "a'b", '"', "\\", "\x01\x7f",
         "ß", "%", "_", "a ", "İ"]
FINITE = [0.0, -0.0, 0.5, -1.5, 1e300, -1e-300, 5e-324, 2.5, 0.1, 1 / 3]


def opt(strategy: Any) -> Any:
    return st.one_of(st.none(), strategy)


def dates() -> Any:
    return st.sampled_from([BASE + timedelta(microseconds=k) for k in (-1, 0, 1)]
                           + [BASE - timedelta(days=400)])


# each attribute: the values items hold, and the values filters use
VALUES: dict[str, tuple[Any, Any]] = {
    "s": (st.one_of(st.sampled_from(TEXTS), st.text(alphabet="aA\x00é😀'\\", max_size=3)),) * 2,
    "by": (st.binary(max_size=3),) * 2,
    "u": (st.integers(0, 6).map(lambda i: uuid.UUID(int=i * 2**100 + i)),) * 2,
    "dec": (st.sampled_from([Decimal("1.10"), Decimal("1.1"), Decimal("-0"), Decimal("2E+3"),
                             Decimal("0.000001"), Decimal("123456789.123456789")]),) * 2,
    "d": (st.sampled_from([date(2024, 1, 1), date(1999, 12, 31), date(2024, 2, 29)]),) * 2,
    # a filter value may be the same instant in another zone
    "t": (dates(), dates().map(lambda d: d.astimezone(timezone(timedelta(hours=-3))))),
    # MySQL refuses to store inf; as a filter value it is evaluated locally
    "x": (st.sampled_from(FINITE),
          st.one_of(st.sampled_from(FINITE), st.sampled_from([float("inf"), float("-inf")]),
                    st.integers(-2, 2))),
    "n": (st.sampled_from([0, 1, -1, 2**63 - 1, -(2**63), 2**31]),
          st.one_of(st.sampled_from([0, 1, -1, 2**63 - 1, -(2**63), 2**31]),
                    st.integers(-3, 3).map(str))),
    "c": (st.sampled_from(list(Shade)),
          st.one_of(st.sampled_from(list(Shade)), st.sampled_from([s.value for s in Shade]))),
}


def falsy(v: Any) -> bool:
    return isinstance(v, str | bytes) and not v


@st.composite
def list_filters(draw, dynalite: bool) -> Q:
    """``in``, ``not_in`` or an OR of equalities over a short or long list."""
    name = draw(st.sampled_from(sorted(VALUES)))
    values = VALUES[name][1]
    if dynalite:  # dynalite's IN never matches "" or b"" (fixed in the value encoding)
        values = values.filter(lambda v: not falsy(v))
    vs = draw(st.one_of(st.lists(opt(values), min_size=1, max_size=5),
                        st.lists(values, min_size=20, max_size=300)))
    op = draw(st.sampled_from(["in", "not_in", "ors"]))
    if op == "ors":
        return functools.reduce(operator.or_, [Q(**{name: v}) for v in vs])
    return Q(**{f"{name}__{op}": vs})


def items(refuses: Any) -> Any:
    """Items holding the kinds' values (text with NUL only where the backend stores it)."""
    attrs = {name: opt(stored_values) for name, (stored_values, _) in VALUES.items()}
    attrs["s"] = attrs["s"].filter(lambda s: s is None or not refuses(s))
    return st.lists(st.builds(KItem, id=st.integers(0, 40), **attrs), max_size=10,
                    unique_by=lambda i: i.id)


@settings(max_examples=25, deadline=None)
@given(data=st.data())
async def test_lists_agree_with_local_evaluation(store_factory, data):
    s = store_factory(KItem)
    dynalite = store_factory.spec.id == "dynamodb"
    parts = data.draw(st.lists(list_filters(dynalite), min_size=1, max_size=3), label="parts")
    where = functools.reduce(operator.and_, parts)
    if data.draw(st.booleans(), label="negated"):
        where = ~where
    rows = data.draw(items(store_factory.refuses), label="items")
    await s.delete_where()
    for item in rows:
        await s.create(item)
    keep = compile_local(build_filter(META, where))
    want = [i for i in sorted(rows, key=lambda i: i.id) if keep(i)]
    assert await s.search_all(where, order_by="id") == want, where
    assert await s.count(where) == len(want), where
    assert await s.delete_where(where) == len(want), where
    assert await s.count() == len(rows) - len(want)

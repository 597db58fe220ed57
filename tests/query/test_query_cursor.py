"""Cursors: exact round trip of order values, tamper detection, keyset semantics."""

from __future__ import annotations

import base64
import enum
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storeroom import InvalidCursor, Q, stored
from storeroom.model import meta_of
from storeroom.query import (
    EVERYTHING,
    after_filter,
    build_filter,
    compile_local,
    cursor_keys,
    decode_cursor,
    encode_cursor,
    fingerprint,
    order_values,
    parse_order,
    sort_items,
)


class Color(enum.Enum):
    RED = "red"
    BLUE = "Blue"


class Level(enum.Enum):
    LOW = 1
    HIGH = 2


@stored
class Item:
    id: int
    s: str | None = None
    f: float | None = None
    b: bool | None = None
    dec: Decimal | None = None
    dt: datetime | None = None
    d: date | None = None
    u: uuid.UUID | None = None
    by: bytes | None = None
    c: Color | None = None
    lv: Level | None = None


M = meta_of(Item)
ALL = parse_order(M, ["s", "f", "b", "dec", "dt", "d", "u", "by", "c", "lv"])
FP = fingerprint(M.name, EVERYTHING, ALL)
KEYS = cursor_keys("unit test secret")


@pytest.mark.parametrize("item", [
    Item(id=1),
    Item(id=-(2**63), s="ünï\x00'\"", f=0.1, b=True, dec=Decimal("1.10"),
         dt=datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC), d=date(2024, 2, 29),
         u=uuid.UUID(int=5), by=b"\x00\xff", c=Color.BLUE, lv=Level.HIGH),
    Item(id=2**63 - 1, s="", f=1e308, b=False, dec=Decimal("-1E+3"), by=b""),
])
def test_round_trip_is_exact(item):
    values = order_values(item, ALL)
    cursor = encode_cursor(FP, values, KEYS)
    assert isinstance(cursor, str) and "=" not in cursor
    assert base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))  # url-safe
    back = decode_cursor(cursor, FP, M, ALL, KEYS)
    assert back == values
    for a, b in zip(back, values, strict=True):
        assert type(a) is type(b)
        if isinstance(a, Decimal):
            assert str(a) == str(b)


def test_other_store_filter_or_order():
    values = order_values(Item(id=1, s="x"), ALL)
    cursor = encode_cursor(FP, values, KEYS)
    others = [
        fingerprint("other", EVERYTHING, ALL),
        fingerprint(M.name, build_filter(M, Q(s="x")), ALL),
        fingerprint(M.name, EVERYTHING, parse_order(M, ["-s", "f", "b", "dec", "dt", "d", "u",
                                                         "by", "c", "lv"])),
    ]
    assert len({FP, *others}) == 4
    for fp in others:
        with pytest.raises(InvalidCursor):
            decode_cursor(cursor, fp, M, ALL, KEYS)


def test_forged_cursors():
    good = encode_cursor(FP, order_values(Item(id=1), ALL), KEYS)
    raw = base64.urlsafe_b64decode(good + "=" * (-len(good) % 4))
    body, mac = raw[:-16], raw[-16:]
    bad_mac = base64.urlsafe_b64encode(body + bytes(16)).decode()
    other_body = json.dumps([FP, [None] * 10 + [2]]).encode()
    forged = base64.urlsafe_b64encode(other_body + mac).decode()
    for cursor in ["", "x", "%%%", good[:-2], good + "x", bad_mac, forged, None, 5, b"x",
                   "a" * 9000, base64.urlsafe_b64encode(b"short").decode()]:
        with pytest.raises(InvalidCursor):
            decode_cursor(cursor, FP, M, ALL, KEYS)


def test_rotated_keys_sign_with_the_first_and_verify_with_all():
    values = order_values(Item(id=1, s="x"), ALL)
    old, new = cursor_keys("old"), cursor_keys("new")
    both = cursor_keys(["new", b"old"])
    assert encode_cursor(FP, values, both) == encode_cursor(FP, values, new)
    assert decode_cursor(encode_cursor(FP, values, old), FP, M, ALL, both) == values
    with pytest.raises(InvalidCursor):
        decode_cursor(encode_cursor(FP, values, both), FP, M, ALL, old)
    with pytest.raises(InvalidCursor):
        decode_cursor(encode_cursor(FP, values, old), FP, M, ALL, KEYS)
    assert "new" not in repr(both) and "old" not in repr(both)


@pytest.mark.parametrize("values", [
    ("not an int",), (None,), (2**64,), (1.5,), ("1", "2"), (), ("",)
])
def test_signed_cursor_with_bad_values(values):
    order = parse_order(M, [])
    fp = fingerprint(M.name, EVERYTHING, order)
    cursor = encode_cursor(fp, values, KEYS)
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, fp, M, order, KEYS)


def test_signed_cursor_with_bad_typed_value():
    order = parse_order(M, ["c"])
    fp = fingerprint(M.name, EVERYTHING, order)
    with pytest.raises(InvalidCursor):
        decode_cursor(encode_cursor(fp, ("green", 1), KEYS), fp, M, order, KEYS)
    back = decode_cursor(encode_cursor(fp, (Color.BLUE, 1), KEYS), fp, M, order, KEYS)
    assert back == (Color.BLUE, 1) and type(back[0]) is Color


# keyset semantics ------------------------------------------------------------------------
small = st.one_of(st.none(), st.sampled_from(["", "a", "B", "b", "é"]))
items = st.lists(st.builds(Item, id=st.integers(0, 30), s=small,
                           f=st.one_of(st.none(), st.sampled_from([0.0, -1.5, 2.0])),
                           b=st.one_of(st.none(), st.booleans()),
                           c=st.one_of(st.none(), st.sampled_from(list(Color)))),
                 max_size=12, unique_by=lambda i: i.id)
orders = st.lists(st.sampled_from(["s", "f", "b", "c", "id"]), max_size=3, unique=True).flatmap(
    lambda names: st.tuples(*[st.sampled_from([n, "-" + n]) for n in names]).map(list))


@settings(max_examples=80)
@given(data=items, order_by=orders)
def test_after_filter_is_exactly_what_follows(data, order_by):
    order = parse_order(M, order_by)
    ordered = sort_items(data, order)
    for i, item in enumerate(ordered):
        cursor = encode_cursor(FP, order_values(item, order), KEYS)
        values = decode_cursor(cursor, FP, M, order, KEYS)
        node = build_filter(M, after_filter(order, values))
        after = compile_local(node)
        assert [x for x in ordered if after(x)] == ordered[i + 1:]


def test_after_filter_none_group():
    order = parse_order(M, ["-s"])
    data = [Item(id=1, s="b"), Item(id=2), Item(id=3, s="a"), Item(id=4)]
    ordered = sort_items(data, order)
    assert [i.id for i in ordered] == [1, 3, 2, 4]
    after = compile_local(after_filter(order, (None, 2)))
    assert [i.id for i in ordered if after(i)] == [4]
    after = compile_local(after_filter(order, ("a", 3)))
    assert [i.id for i in ordered if after(i)] == [2, 4]


def test_cursor_values_in_utc():
    order = parse_order(M, ["dt"])
    fp = fingerprint(M.name, EVERYTHING, order)
    dt = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(microseconds=1)
    assert decode_cursor(encode_cursor(fp, (dt, 1), KEYS), fp, M, order, KEYS) == (dt, 1)

"""Contract: list, dict and dataclass values as documents, on every backend, sync and async.

MongoDB keeps them as arrays and sub-documents and DynamoDB as lists (L) and maps (M), so
that nested lookups (``address__city``, ``tags__contains``) run natively as document
paths there. Here: the filters that must be native on those two (the backend's split
leaves nothing local, and the query sent names the path), the ones that must stay local
(loose values, i-operators, dict keys that are not ``str``), odd keys and edge values
round-tripping on every backend, and documents written in the old JSON-text form still
reading back.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

import pytest

from storeroom import Q, QueryLog, ValidationError, attr, field, stored
from storeroom.backends.mongodb.core import esc_key
from storeroom.model import meta_of
from storeroom.query import build_filter, compile_local
from storeroom.query.ast import conds


@dataclass
class DGeo:
    lat: int
    label: str | None = None


@dataclass
class DAddr:
    city: str
    zip: str | None = None
    geo: DGeo | None = None
    lines: list[str] = dc_field(default_factory=list)


@stored
class DPerson:
    id: int
    tags: list[str] = field(default_factory=list)
    nums: list[int] = field(default_factory=list)
    flags: list[bool] = field(default_factory=list)
    address: DAddr | None = None
    scores: dict[str, int] = field(default_factory=dict)
    by_int: dict[int, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


PEOPLE = [
    DPerson(id=1, tags=["x", "y"], nums=[1, 2], flags=[True],
            address=DAddr("Paris", "75001", DGeo(48, "centre"), ["1 rue A"]),
            scores={"a": 3, "%": 1, "$x": 2}, by_int={1: "one"}, meta={"k": 1, "s": "abc"}),
    DPerson(id=2, tags=["y", ""], nums=[3, 2**63 - 1], flags=[False],
            address=DAddr("Lyon", "69001", DGeo(45)), scores={"a": 1},
            meta={"k": True}),
    DPerson(id=3),
    DPerson(id=4, tags=["X", "xy"], nums=[-(2**63)], address=DAddr("Paris", None, None),
            by_int={2: "two"}, meta={"k": "1"}),
]

# native on MongoDB and DynamoDB (every conjunct), local elsewhere or not: same results
NATIVE = [
    Q(tags__contains="x"), Q(nums__contains=2**63 - 1),
    Q(address__city="Paris"), Q(address__zip__startswith="75"), Q(address__zip__isnull=True),
    Q(address__geo__lat__gte=46), Q(address__geo__label__contains="ent"),
    Q(address__geo__isnull=True), Q(address__city__in=["Lyon", "Nice"]),
    Q(address__city__ne="Paris"), ~Q(address__geo__lat__range=(40, 46)),
    Q(address__lines__contains="1 rue A"), Q(scores__a__lt=3), Q(scores__a__isnull=True),
    attr("scores")["%"] == 1, attr("scores")["$x"] == 2,
    Q(address__isnull=True), Q(tags__isnull=False),
    (Q(address__city="Paris") | Q(tags__contains="y")) & ~Q(nums__contains=1),
]
# stay local there: whatever their result, it must be local evaluation's
LOCAL = [
    Q(meta__k=1),                       # loose: the stored JSON type decides
    Q(meta__s__startswith="a"),
    Q(address__city__iexact="paris"),   # i-operators: no lower-case shadow of a path
    Q(address__city__icontains="AR"),
    Q(by_int__1="one"),                 # dict[int, str] holds 1, not "1"
    Q(address__lines__isnull=True),     # both servers see [null] as null
]
# native on MongoDB, local on DynamoDB: dynalite's contains() never finds "" nor a bool
NOT_ON_DYNAMO = [Q(tags__contains=""), Q(flags__contains=False), Q(flags__contains=True)]
DOC_BACKENDS = ("mongodb", "dynamodb")


def _is_doc(store_factory: Any) -> bool:
    return store_factory.spec.id.startswith(DOC_BACKENDS)


async def _fill(s: Any) -> None:
    for p in PEOPLE:
        await s.create(p)


async def test_nested_filters_are_native_on_document_stores(store_factory):
    s = store_factory(DPerson)
    await _fill(s)
    meta = meta_of(DPerson)
    core = s.store._b.core if _is_doc(store_factory) else None
    sid = store_factory.spec.id
    on_mongo = sid == "mongodb"
    cases = [(w, True) for w in NATIVE] + [(w, False) for w in LOCAL] + [
        (w, on_mongo) for w in NOT_ON_DYNAMO]
    for where, expect_native in cases:
        node = build_filter(meta, where)
        keep = compile_local(node)
        want = [p.id for p in PEOPLE if keep(p)]
        async with QueryLog() as log:
            got = [p.id for p in await s.search_all(where, order_by="id")]
        assert got == want, where
        assert await s.count(where) == len(want), where
        if core is None:
            continue
        assert core.split(node).all_native is expect_native, where
        if not expect_native:
            continue
        # the query sent holds the path: MongoDB a dotted path of escaped keys, DynamoDB a
        # FilterExpression naming every key
        sent = " ".join(repr(r.params) for r in log.records)
        if not conds(node):
            continue  # folded to a constant (tags is never None)
        first = next(iter(conds(node))).attr
        root, *keys = first.split(".")
        if on_mongo:
            assert repr(".".join([root, *map(esc_key, keys)])) in sent, (where, sent)
        else:
            assert "FilterExpression" in sent, (where, sent)
            assert all(repr(k) in sent for k in [root, *keys]), (where, sent)


async def test_writes_with_native_nested_filters(store_factory):
    s = store_factory(DPerson)
    await _fill(s)
    assert await s.update_where(Q(address__city="Paris"), changes={"tags": ["p"]}) == 2
    assert sorted(p.id for p in await s.search_all(tags__contains="p")) == [1, 4]
    assert await s.delete_where(Q(address__geo__lat__lt=46)) == 1
    assert sorted(p.id for p in await s.search_all()) == [1, 3, 4]


@dataclass
class Odd:
    text: str
    raw: bytes
    ratio: float
    big: int


@stored
class OddBag:
    id: str
    anything: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    floats: list[float] = field(default_factory=list)
    odd: Odd | None = None
    nested: list[list[dict[str, Any]]] = field(default_factory=list)


ODD_KEYS = ["", ".", "a.b", "$x", "$", "%", "%2E", "%25", "k$", " ", "é", "\x00k", "k\x00"]


async def test_odd_keys_and_edge_values_round_trip(store_factory):
    s = store_factory(OddBag)
    keys = [k for k in ODD_KEYS if not store_factory.refuses(k)]
    floats = [0.1, 2.0, -0.0, 1e300, -5e-324, 1e-130, 123456789.0, 2.5e121]
    if not store_factory.refuses(math.inf):
        floats += [math.inf, -math.inf]
    item = OddBag(
        id="a", anything={**{k: i for i, k in enumerate(keys)}, "n": None, "t": True,
                          "f": False, "e": "", "l": [], "d": {}, "fl": 2.0, "neg": -0.0,
                          "deep": {"%": [{"$": [None, 1.5, "x"]}]}},
        counts={k: i for i, k in enumerate(keys)}, floats=floats,
        odd=Odd(text="", raw=b"\x00\xff", ratio=-0.0, big=-(2**63)),
        nested=[[{"a": 1}], [], [{}]])
    created = await s.create(item)
    signed = _is_doc(store_factory) or store_factory.spec.id == "memory"  # jsonb: no -0
    for got in (await s.read("a"), (await s.search_all())[0]):
        assert got == created, got
        if not signed:
            continue
        assert [math.copysign(1, f) for f in got.floats] == \
            [math.copysign(1, f) for f in floats]  # -0.0 keeps its sign
        assert type(got.anything["fl"]) is float and type(got.anything["t"]) is bool
        assert math.copysign(1, got.anything["neg"]) == -1
        assert math.copysign(1, got.odd.ratio) == -1
    # lookups through odd keys agree with local evaluation
    for k in keys:
        if not k or "." in k:
            continue  # a path holds no empty key, and "." separates its keys
        for where in (Q(attr("counts")[k] == keys.index(k)), Q(attr("counts")[k] == -1)):
            keep = compile_local(build_filter(meta_of(OddBag), where))
            assert len(await s.search_all(where)) == int(keep(created)), (k, where)


async def test_ints_beyond_the_backends_numbers_are_refused_not_altered(store_factory):
    s = store_factory(OddBag)
    sid = store_factory.spec.id
    # MongoDB: beyond 64 bits a Decimal128 (34 significant digits); DynamoDB: N (38)
    for n, refused_on in ((2**63, ()), (2**70, ()), (-(10**40), ()),
                          (10**40 + 1, ("mongodb", "dynamodb"))):
        item = OddBag(id="b", counts={"n": n})
        if sid.startswith(refused_on):
            with pytest.raises(ValidationError):
                await s.create(item)
            continue
        assert (await s.create(item)).counts == {"n": n}
        got = await s.read("b")
        assert got.counts == {"n": n} and type(got.counts["n"]) is int
        # compared by value, natively where the backend can (a filter operand is 64-bit)
        assert len(await s.search_all(counts__n__gt=5)) == int(n > 5), n
        assert len(await s.search_all(counts__n__lt=-5)) == int(n < -5), n
        await s.delete("b")


async def test_documents_in_the_old_json_text_form_still_read(store_factory):
    if not _is_doc(store_factory) or store_factory.is_async:
        pytest.skip("writes the old form with the sync driver of MongoDB / DynamoDB")
    s = store_factory(DPerson)
    old = {"tags": ["x", "é"], "nums": [], "flags": [True], "scores": {}, "address": {"city": "Paris", "zip": None, "geo": None,
                                           "lines": []}, "by_int": {"1": "one"},
           "meta": {"k": 1.5, "": ""}}
    await s.count()  # the table exists
    b = s.store._b
    texts = {k: json.dumps(v, ensure_ascii=False) for k, v in old.items()}
    if store_factory.spec.id == "mongodb":
        b.coll.insert_one({"_id": 7, **texts})
    else:
        b.conn.get().put_item(TableName=b.core.table, Item={
            "id": {"N": "7"}, **{k: {"S": v} for k, v in texts.items()}})
    got = await s.read(7)
    assert got == DPerson(id=7, tags=["x", "é"], flags=[True], address=DAddr("Paris"),
                          by_int={1: "one"}, meta={"k": 1.5, "": ""})
    # a write stores the document form, which native filters then see
    await s.update(7, tags=["x", "é"])
    assert [p.id for p in await s.search_all(tags__contains="é")] == [7]


async def test_writes_guarded_by_a_local_nested_precondition(store_factory):
    # a precondition the server cannot evaluate (an i-operator on a nested path) is read,
    # checked locally and written on condition that what was read is unchanged: the
    # condition must watch the ROOT attribute the path starts from (``address``), not a
    # literal attribute named "address.city" that no item has (which never matched and
    # turned every such write into a retried, failed one)
    s = store_factory(DPerson)
    await _fill(s)
    paris = Q(address__city__iexact="PARIS")
    assert (await s.update(1, nums=[7], precondition=paris)).nums == [7]
    assert await s.update(2, nums=[7], precondition=paris) is None
    assert (await s.read(2)).nums == [3, 2**63 - 1]
    assert await s.delete(4, precondition=Q(address__city__icontains="AR")) is True
    assert await s.delete(2, precondition=Q(address__city__icontains="AR")) is False
    assert sorted(p.id for p in await s.search_all()) == [1, 2, 3]

"""Bad input: each gets its typed error naming what is wrong, and nothing is written."""

from __future__ import annotations

import base64
import math
from datetime import datetime

import pytest
from contract_models import Everything, Note, Row, Task

from storeroom import (
    Conflict,
    Create,
    InvalidCursor,
    InvalidFilter,
    Q,
    Update,
    ValidationError,
    attr,
)

# value encoding is the backend's own code: moto_server runs the same DynamoDB code as
# dynalite, so these run once per backend's code (the 15-minute budget)
pytestmark = pytest.mark.one_server_per_backend

HOSTILE = ["'; DROP TABLE tasks; --", "' OR '1'='1", '"; DROP TABLE "tasks"; --', "%", "_",
           "%%", "a%", "_a", "\\", "\\%", "a\x00b", "\x00", "'", '"', "`", "$1", "?", ":name",
           "{}", "{'$ne': 1}", "\r\n", "ﬀ", "İ"]


async def seeded(store_factory):
    s = store_factory(Task)
    await s.create(Task(id="keep", owner="ann", title="keep me"))
    return s


async def assert_unchanged(s, before):
    assert await s.all() == before


def check_error(exc: ValidationError, field: str, rule: str, value=None) -> None:
    assert isinstance(exc, ValueError)
    entries = [e for e in exc.errors if e["field"] == field]
    assert entries, exc.errors
    e = entries[0]
    assert set(e) >= {"field", "value", "rule", "message"}
    assert e["rule"] == rule, e
    text = str(exc)
    assert field in text and rule in text, text
    if value is not None:
        assert e["value"] == value
        assert repr(value)[:20] in text, text


BAD_CREATES = [
    (dict(owner=5, title="x"), "owner", "type", 5),
    (dict(owner="ann", title=None), "title", "type", None),
    (dict(owner="ann", title="x" * 201), "title", "max_length", None),
    (dict(owner="ann", title="x", priority=6), "priority", "le", 6),
    (dict(owner="ann", title="x", priority=-1), "priority", "ge", -1),
    (dict(owner="ann", title="x", priority="high"), "priority", "type", "high"),
    (dict(owner="ann", title="x", done="maybe"), "done", "type", "maybe"),
    (dict(owner="ann", title="x", tags="not a list"), "tags", "type", "not a list"),
    (dict(owner="ann", title="x", tags=[1, object()]), "tags", "type", None),
]


@pytest.mark.parametrize(("kw", "field", "rule", "value"), BAD_CREATES,
                         ids=[f"{f}-{r}" for _, f, r, _ in BAD_CREATES])
async def test_bad_create(store_factory, kw, field, rule, value):
    s = await seeded(store_factory)
    before = await s.all()
    with pytest.raises(ValidationError) as info:
        await s.create(Task(**kw))
    check_error(info.value, field, rule, value)
    await assert_unchanged(s, before)


@pytest.mark.parametrize(("kw", "field", "rule", "value"), BAD_CREATES,
                         ids=[f"{f}-{r}" for _, f, r, _ in BAD_CREATES])
async def test_bad_update(store_factory, kw, field, rule, value):
    s = await seeded(store_factory)
    before = await s.all()
    with pytest.raises(ValidationError) as info:
        await s.update("keep", **{field: kw[field]})
    check_error(info.value, field, rule, value)
    results = await s.edit_batch([Update("keep", **{field: kw[field]})])
    assert results[0].code == "invalid" and field in results[0].detail
    with pytest.raises(ValidationError):
        await s.update_where(changes={field: kw[field]})
    await assert_unchanged(s, before)


BAD_EVERYTHING = [
    ("i", 2**63, "range"), ("i", -(2**63) - 1, "range"), ("i", 10**30, "range"),
    ("i", 1.5, "type"), ("i", "1x", "type"), ("f", math.nan, "type"), ("f", "x", "type"),
    ("dec", "abc", "type"), ("dt", "not a date", "type"), ("d", "2024-13-01", "type"),
    ("u", "not-a-uuid", "type"), ("by", 12, "type"), ("color", "purple", "type"),
    ("level", 3, "type"), ("s", None, "type"), ("opt_i", 2**64, "range"),
    ("lst", ["x"], "type"), ("point", {"x": "no"}, "type"),
]


@pytest.mark.parametrize(("name", "value", "rule"), BAD_EVERYTHING,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(BAD_EVERYTHING)])
async def test_bad_typed_values(store_factory, name, value, rule):
    s = store_factory(Everything)
    await s.create(Everything(id="k"))
    before = await s.all()
    with pytest.raises(ValidationError) as info:
        await s.create(Everything(id="new", **{name: value}))
    check_error(info.value, name, rule)
    with pytest.raises(ValidationError) as info:
        await s.update("k", **{name: value})
    check_error(info.value, name, rule)
    await assert_unchanged(s, before)


async def test_every_problem_is_reported(store_factory):
    s = await seeded(store_factory)
    with pytest.raises(ValidationError) as info:
        await s.create(Task(owner=1, title="x" * 300, priority=9))
    assert {(e["field"], e["rule"]) for e in info.value.errors} == {
        ("owner", "type"), ("title", "max_length"), ("priority", "le")}
    assert await s.count() == 1


async def test_wrong_item_class_and_bad_keys(store_factory):
    s = await seeded(store_factory)
    before = await s.all()
    for bad in [Row(id=1), {"owner": "ann", "title": "x"}, None, "keep"]:
        with pytest.raises(ValidationError):
            await s.create(bad)
    rows = store_factory(Row)
    await rows.create(Row(id=1))
    for key in ["abc", 1.5, None, 2**64, "1/2", [1]]:
        with pytest.raises(ValidationError):
            await rows.read(key)
        with pytest.raises(ValidationError):
            await rows.update(key, n=1)
        with pytest.raises(ValidationError):
            await rows.delete(key)
        with pytest.raises(ValidationError):
            await rows.read_batch([1, key])
    assert await rows.all() == [Row(id=1)]
    await assert_unchanged(s, before)


async def test_too_many_keys_or_edits(store_factory):
    s = store_factory(Row)
    n = s.meta.max_batch + 1
    with pytest.raises(ValidationError):
        await s.read_batch(list(range(n)))
    with pytest.raises(ValidationError):
        await s.edit_batch([Create(Row(id=i)) for i in range(n)])
    assert await s.count() == 0


async def test_bad_edits_in_a_batch(store_factory):
    s = store_factory(Row)
    results = await s.edit_batch([Create(Row(id=1)), "not an edit", Create("not a row"),
                                  Update(1, id=2), Update(1, nope=1)])
    assert [(r.ok, r.code) for r in results] == [
        (True, None), (False, "invalid"), (False, "invalid"), (False, "invalid"),
        (False, "invalid")]
    assert await s.all() == [Row(id=1)]


# filters -------------------------------------------------------------------------------
BAD_FILTERS = [
    (dict(nope=1), "nope"),
    (dict(title__like="x"), "like"),
    (dict(title__icontains__x="x"), "icontains__x"),
    (dict(priority="high"), "priority"),
    (dict(priority__gt="1.5"), "priority"),
    (dict(priority__in=5), "priority"),
    (dict(priority__in=["a"]), "priority"),
    (dict(priority__range=(1,)), "priority"),
    (dict(priority__lt=None), "priority"),
    (dict(created_at="yesterday"), "created_at"),
    (dict(done__contains="x"), "contains"),
    (dict(title__contains=5), "title"),
    (dict(title__isnull="yes"), "title"),
    (dict(tags="x"), "tags"),
    (dict(priority=2**64), "priority"),
    (dict(priority__lt=-(2**63) - 1), "priority"),
    (dict(priority__in=[1, 2**70]), "priority"),
    (dict(priority__range=(0, "1" + "0" * 30)), "priority"),
    (dict(note="x"), "note"),  # not stored
]


@pytest.mark.parametrize(("lookups", "named"), BAD_FILTERS, ids=[n for _, n in BAD_FILTERS])
async def test_bad_filters(store_factory, lookups, named):
    s = await seeded(store_factory)
    before = await s.all()
    where = Q(**lookups)
    calls = [
        lambda: s.search(**lookups), lambda: s.search(where), lambda: s.search_all(where),
        lambda: s.count(where), lambda: s.count(Q(owner="ann") | where),
        lambda: s.delete_where(where), lambda: s.delete_where(~where),
        lambda: s.update_where(where, changes={"title": "hacked"}),
        lambda: s.update("keep", precondition=where, title="hacked"),
    ]
    for call in calls:
        with pytest.raises(InvalidFilter) as info:
            await call()
        assert named in str(info.value)
    await assert_unchanged(s, before)


@pytest.mark.parametrize("order_by", ["nope", "-nope", "tags", "note", ["id", "x"], [5], "-",
                                      ""])
async def test_bad_ordering(store_factory, order_by):
    s = await seeded(store_factory)
    with pytest.raises(InvalidFilter) as info:
        await s.search(order_by=order_by)
    if isinstance(order_by, str) and order_by.strip("-"):
        assert order_by.strip("-") in str(info.value)
    with pytest.raises(InvalidFilter):
        await s.search_all(order_by=order_by)


@pytest.mark.parametrize("limit", [10**100, -(10**100), 0, None.__class__])
async def test_huge_and_odd_limits(store_factory, limit):
    s = await seeded(store_factory)
    with pytest.raises(ValidationError) as info:
        await s.search(limit=limit)
    assert info.value.errors[0]["field"] == "limit"


# hostile strings -----------------------------------------------------------------------
async def test_hostile_strings_round_trip_and_filter(store_factory):
    s = store_factory(Task)
    await s.create(Task(id="plain", owner="plain", title="plain"))
    hostile = [t for t in HOSTILE if not store_factory.refuses(t)]
    for text in HOSTILE:
        if store_factory.refuses(text):  # a documented limit: a typed error, nothing written
            with pytest.raises(ValidationError):
                await s.create(Task(id=text, owner=text, title=text))
            with pytest.raises(ValidationError):
                await s.update("plain", title=text)
    for i, text in enumerate(hostile):
        await s.create(Task(id=text, owner=text, title=f"t{i}{text}"))
    assert await s.count() == len(hostile) + 1
    for i, text in enumerate(hostile):
        got = await s.read(text)
        assert (got.id, got.owner, got.title) == (text, text, f"t{i}{text}")
        assert [t.id for t in await s.search_all(owner=text)] == [text]
        assert [t.id for t in await s.search_all(title=f"t{i}{text}")] == [text]
        want = sorted(t for t in [*hostile, "plain"] if text in t)
        assert sorted(t.id for t in await s.search_all(owner__contains=text)) == want
        want = sorted(t for t in [*hostile, "plain"] if t.startswith(text))
        assert sorted(t.id for t in await s.search_all(owner__startswith=text)) == want
        want = sorted(t for t in [*hostile, "plain"] if t.endswith(text))
        assert sorted(t.id for t in await s.search_all(attr("owner").endswith(text))) == want
        want = sorted(t for t in [*hostile, "plain"] if t.lower() == text.lower())
        assert sorted(t.id for t in await s.search_all(owner__iexact=text)) == want
    assert await s.count(owner__in=hostile) == len(hostile)
    assert await s.count(owner__not_in=hostile) == 1
    # updates and deletes with hostile keys touch exactly one item
    assert (await s.update("'; DROP TABLE tasks; --", title="%")).title == "%"
    assert await s.count(title="%") == 1
    assert await s.delete("' OR '1'='1") is True
    assert await s.count() == len(hostile)
    assert await s.delete_where(owner="%") == 1
    assert await s.count() == len(hostile) - 1


async def test_hostile_composite_keys(store_factory):
    s = store_factory(Note)
    hostile = [t for t in HOSTILE if not store_factory.refuses(t)]
    for i, text in enumerate(hostile):
        n = await s.create(Note(owner=text, num=i, text=text))
        assert await s.read(s.parse_key(s.key_str(n))) == n
        assert await s.read((text, i)) == n
    assert await s.count() == len(hostile)


# cursors -------------------------------------------------------------------------------
async def rows_store(store_factory):
    s = store_factory(Row)
    for i in range(6):
        await s.create(Row(id=i, n=i % 3, name=str(i)))
    return s


async def test_forged_and_garbage_cursors(store_factory):
    s = await rows_store(store_factory)
    good = (await s.search(order_by="n", limit=2)).next
    assert good is not None
    raw = base64.urlsafe_b64decode(good + "=" * (-len(good) % 4))
    flipped = bytearray(raw)
    flipped[5] ^= 1
    body = raw[:-16]
    forged_body = body.replace(b'"n"', b'"x"') if b'"n"' in body else body + b" "
    bad = [
        "", "x", "!!!!", "====", "a" * 10000, good[:-1], good[:-4], good + "A", good[1:],
        base64.urlsafe_b64encode(bytes(flipped)).decode().rstrip("="),
        base64.urlsafe_b64encode(forged_body + raw[-16:]).decode().rstrip("="),
        base64.urlsafe_b64encode(b'["abc",[1,2]]' + b"\x00" * 16).decode(),
        base64.urlsafe_b64encode(b"\x00" * 16).decode(), 12, 1.5, b"bytes", ["x"], {"a": 1},
        "é", "\x00",
    ]
    for cursor in bad:
        with pytest.raises(InvalidCursor):
            await s.search(order_by="n", limit=2, after=cursor)
    # the good one still works
    assert len((await s.search(order_by="n", limit=2, after=good)).items) == 2


async def test_cursor_from_another_filter_ordering_or_store(store_factory):
    s = await rows_store(store_factory)
    cursor = (await s.search(Q(n__gte=0), order_by="n", limit=2)).next
    assert cursor is not None
    with pytest.raises(InvalidCursor):
        await s.search(Q(n__gte=1), order_by="n", limit=2, after=cursor)
    with pytest.raises(InvalidCursor):
        await s.search(order_by="n", limit=2, after=cursor)
    with pytest.raises(InvalidCursor):
        await s.search(Q(n__gte=0), order_by="-n", limit=2, after=cursor)
    with pytest.raises(InvalidCursor):
        await s.search(Q(n__gte=0), order_by=["n", "name"], limit=2, after=cursor)
    with pytest.raises(InvalidCursor):
        await s.search(Q(n__gte=0), order_by="n", limit=2, after=cursor, query="1")
    # same filter, another page size: fine
    assert (await s.search(Q(n__gte=0), order_by="n", limit=3, after=cursor)).items
    other = store_factory(Everything)
    await other.create(Everything(id="a"))
    await other.create(Everything(id="b"))
    e_cursor = (await other.search(limit=1)).next
    assert e_cursor is not None
    with pytest.raises(InvalidCursor):
        await s.search(limit=1, after=e_cursor)
    row_cursor = (await s.search(limit=1)).next
    assert row_cursor is not None
    with pytest.raises(InvalidCursor):
        await other.search(limit=1, after=row_cursor)
    assert await s.count() == 6


async def test_nothing_written_by_failures(store_factory):
    s = await seeded(store_factory)
    before = await s.all()
    attempts = [
        lambda: s.create(Task(id="keep", owner="x", title="dup")),
        lambda: s.update("keep", id="other"),
        lambda: s.update("keep", created_at=datetime(2000, 1, 1)),
        lambda: s.update("keep", nope=1),
        lambda: s.update_where(nope=1, changes={"title": "x"}),
        lambda: s.delete_where(nope=1),
        lambda: s.delete_where(Q(title__like="%")),
    ]
    for attempt in attempts:
        with pytest.raises((ValidationError, InvalidFilter, Conflict)):
            await attempt()
    await assert_unchanged(s, before)


@pytest.mark.parametrize("lookups", [
    dict(f=math.nan), dict(f__ne=math.nan), dict(f__lt=math.nan), dict(f__in=[1.0, math.nan]),
    dict(f__not_in=[math.nan]), dict(f__range=(0, math.nan)), dict(i=2**63),
    dict(i__gt=-(2**63) - 1), dict(i__in=[2**64]), dict(opt_i__ne=2**70),
])
async def test_uncomparable_filter_values(store_factory, lookups):
    s = store_factory(Everything)
    await s.create(Everything(id="k", f=1.0))
    name = next(iter(lookups)).split("__")[0]
    for call in (lambda: s.count(**lookups), lambda: s.search(**lookups),
                 lambda: s.delete_where(**lookups)):
        with pytest.raises(InvalidFilter) as info:
            await call()
        assert name in str(info.value)
    assert await s.count() == 1

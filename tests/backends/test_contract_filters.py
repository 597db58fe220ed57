"""Contract: filters of any size and depth work on every backend, sync and async.

Long OR chains, ORs of thousands of distinct conditions, ``&``/``|`` nested 1,000 deep,
``~`` nested 1,000 deep and ``in`` lists of 100,000 values all give exactly what local
evaluation gives: natively where the backend can, otherwise evaluated another way, and
never an error (issue 8, defects 17 and 18).
"""

from __future__ import annotations

import enum
import functools
import operator
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from storeroom import Create, Index, Q, Update, stored
from storeroom.model import meta_of
from storeroom.query import build_filter, compile_local

# sizes and depths of the compilers: once per backend's code (see conftest SAME_CODE_AS)
pytestmark = pytest.mark.one_server_per_backend


class Tone(enum.Enum):
    LOW = "low"
    MID = "mid"
    HIGH = "High"


BASE = datetime(2024, 5, 1, 8, 30, 0, 250000, tzinfo=UTC)


@stored(indexes=[Index("group"), Index("n")])
class FRow:
    id: int
    group: str = "g0"
    title: str = ""
    n: int | None = None
    x: float = 0.0
    when: datetime | None = None
    u: uuid.UUID | None = None
    blob: bytes = b""
    tone: Tone | None = None


META = meta_of(FRow)
TONES = list(Tone)
N_ITEMS = 200


def make_items() -> list[FRow]:
    return [FRow(id=i, group=f"g{i % 5}", title=f"t{i}", n=None if i % 7 == 0 else i % 17,
                 x=i / 4, when=None if i % 6 == 0 else BASE + timedelta(seconds=i),
                 u=None if i % 9 == 0 else uuid.UUID(int=i * 7919),
                 blob=bytes([i % 256, (i * 3) % 256]), tone=None if i % 4 == 0 else
                 TONES[i % 3]) for i in range(N_ITEMS)]


ITEMS = make_items()


@pytest.fixture
async def rows(store_factory):
    s = store_factory(FRow)
    for start in range(0, N_ITEMS, 100):
        await s.edit_batch([Create(i) for i in ITEMS[start:start + 100]])
    return s


def local(where: Any, items: list[FRow] = ITEMS) -> list[FRow]:
    """What local evaluation (the reference semantics) selects, in key order."""
    keep = compile_local(build_filter(META, where))
    return [i for i in items if keep(i)]


async def agrees(s, where: Any, *, nontrivial: bool = True, pages: bool = False
                 ) -> list[FRow]:
    """Search and count (and, with ``pages``, a paged search) agree with local
    evaluation; the expected items."""
    want = local(where)
    if nontrivial:
        assert 0 < len(want) < N_ITEMS, "the filter should select some items, not all"
    assert await s.count(where) == len(want)
    assert await s.search_all(where, order_by="id") == want
    if pages:  # pages of 37: each page's cursor is bound to this filter (its fingerprint)
        assert await s.search_all(where, order_by=["-id"], limit=37) == want[::-1]
    return want


def alternating(depth: int) -> Q:
    """``&`` and ``|`` alternating, ``depth`` levels deep (a tree n-ary Q cannot flatten)."""
    q = Q(id__lt=3)
    for i in range(depth):
        if i % 2:
            q = q | Q(title=f"t{(i * 7) % 250}")
        else:
            q = q & ~Q(group=f"g{i % 5}", n__gte=i % 17)
    return q


def negated(q: Q, times: int) -> Q:
    for _ in range(times):
        q = ~q
    return q


# long and wide ORs ---------------------------------------------------------------------
@pytest.mark.parametrize("n", [500, 999, 5000])
async def test_long_or_chain_of_equalities(rows, n):
    where = functools.reduce(operator.or_, [Q(title=f"t{i * 3}") for i in range(n)])
    assert len(where.node.items) == n  # built flat
    await agrees(rows, where, pages=True)
    await agrees(rows, where & Q(group="g2"))
    await agrees(rows, ~where)


async def test_or_of_equalities_on_several_attributes(rows):
    parts = []
    for i in range(3000):
        parts.append(Q(title=f"t{i * 5}") if i % 3 else Q(n=i % 23) & Q(group=f"g{i % 5}"))
    await agrees(rows, functools.reduce(operator.or_, parts))


async def test_wide_or_of_distinct_conditions(rows):
    """Thousands of conditions that no list can replace."""
    parts = []
    for i in range(2000):
        k = i % 5
        if k == 0:
            parts.append(Q(x__range=(i / 3, i / 3 + 0.1)))
        elif k == 1:
            parts.append(Q(title__endswith=f"{i % 300}9"))
        elif k == 2:
            parts.append(Q(when__gt=BASE + timedelta(seconds=i % 400 + 150)))
        elif k == 3:
            parts.append(Q(n__lt=i % 3) & Q(group=f"g{i % 5}"))
        else:
            parts.append(Q(title__startswith=f"t1{i % 1000}"))
    where = functools.reduce(operator.or_, parts)
    await agrees(rows, where, pages=True)
    await agrees(rows, where & Q(id__gte=50))


# deep trees ------------------------------------------------------------------------------
async def test_and_or_nested_1000_deep(rows):
    where = alternating(1000)
    await agrees(rows, where, pages=True)
    await agrees(rows, where | Q(group="g4"))
    await agrees(rows, Q(n__gte=3) & where)


async def test_not_nested_1000_deep(rows):
    inner = Q(group="g1") & Q(n__gte=5)
    await agrees(rows, negated(inner, 1000), pages=True)
    await agrees(rows, negated(inner, 1001))
    await agrees(rows, negated(inner, 999) | Q(id=3))
    deep = Q(id__lt=40)
    for i in range(1000):  # ~ at every level of an alternating tree
        deep = ~(deep | Q(title=f"t{i % 250}")) if i % 2 else ~(deep & Q(n__isnull=False))
    await agrees(rows, deep, pages=True)


async def test_deep_filters_in_writes_and_preconditions(rows):
    s = rows
    where = alternating(1000)
    hit = {i.id for i in local(where)}
    assert await s.update_where(where, changes={"x": -1.0}) == len(hit)
    after = await s.search_all(order_by="id")
    assert {i.id for i in after if i.x == -1.0} == hit
    key = min(hit)
    deep_true = negated(Q(id=key), 1000)  # even: holds for the item at key
    deep_false = negated(Q(id=key), 1001)
    assert await s.update(key, precondition=deep_false, x=1.5) is None
    assert (await s.update(key, precondition=deep_true, x=1.5)).x == 1.5
    results = await s.edit_batch([Update(key, x=2.5, precondition=deep_false),
                                  Update(key, x=3.5, precondition=deep_true)])
    assert [r.ok for r in results] == [False, True]
    assert (await s.read(key)).x == 3.5
    assert await s.delete(key, precondition=deep_false) is False
    assert await s.delete(key, precondition=deep_true) is True
    rest = await s.search_all(order_by="id")
    gone = {i.id for i in local(where, rest)}
    assert gone
    assert await s.delete_where(where) == len(gone)
    assert {i.id for i in await s.search_all(order_by="id")} == {i.id for i in rest} - gone


# big lists -------------------------------------------------------------------------------
# every list below is past SQLite's 32,766 host parameters; the first (and the writes')
# also past PostgreSQL's 65,535 — the limits a compiler must work around
BEYOND_EVERY_LIMIT = 70_000
BEYOND_SQLITE = 40_000


async def test_in_with_lists_beyond_every_parameter_limit(rows):
    s = rows
    ids = [i * 2 for i in range(BEYOND_EVERY_LIMIT)]
    want = await agrees(s, Q(id__in=ids), pages=True)
    assert [i.id for i in want] == list(range(0, N_ITEMS, 2))
    await agrees(s, Q(id__not_in=ids) & Q(group="g3"))
    titles = [f"t{i * 3}" for i in range(BEYOND_SQLITE)]
    await agrees(s, Q(title__in=titles) | Q(id=1))
    await agrees(s, Q(title__not_in=titles))
    uuids = [uuid.UUID(int=i * 7919 * 2) for i in range(BEYOND_SQLITE)]
    await agrees(s, Q(u__in=uuids))
    await agrees(s, Q(n__in=list(range(-BEYOND_SQLITE // 2, BEYOND_SQLITE // 2)))
                 & Q(id__lt=100))


async def test_in_with_many_values_of_every_kind(rows):
    s = rows
    other = timezone(timedelta(hours=5))
    whens = [(BASE + timedelta(seconds=i * 2)).astimezone(other) for i in range(30_000)]
    await agrees(s, Q(when__in=whens))
    await agrees(s, Q(when__not_in=whens))
    await agrees(s, Q(blob__in=[bytes([i % 256, (i * 5) % 256]) for i in range(30_000)]))
    xs = [i / 8 for i in range(0, 90_000, 3)]
    await agrees(s, Q(x__in=xs) & ~Q(x__in=[*xs[:100], float("inf")]))
    await agrees(s, Q(tone__in=["low", Tone.HIGH]))
    groups = [f"g{i}" for i in range(1, 30_000, 2)] + [None]
    await agrees(s, Q(group__in=groups) & Q(n__in=[*range(3, 10_000), None]))


async def test_big_lists_in_writes(rows):
    s = rows
    ids = [i * 20 for i in range(BEYOND_EVERY_LIMIT)]  # 10 of the stored items
    hit = [i.id for i in local(Q(id__in=ids))]
    assert await s.update_where(Q(id__in=ids), changes={"title": "big"}) == len(hit) == 10
    assert [i.id for i in await s.search_all(title="big", order_by="id")] == hit
    assert await s.count(title__in=["big"] * 10 + [f"t{i}" for i in range(BEYOND_SQLITE)]
                         ) == N_ITEMS
    assert await s.delete_where(Q(id__in=[i * 20 + 1 for i in range(BEYOND_SQLITE)])) == 10
    rest = await s.search_all(order_by="id")
    keep = list(range(7, BEYOND_EVERY_LIMIT))
    gone = [i.id for i in local(Q(id__not_in=keep), rest)]
    assert await s.delete_where(Q(id__not_in=keep)) == len(gone) > 0
    assert [i.id for i in await s.search_all(order_by="id")] == [
        i.id for i in rest if i.id not in gone]

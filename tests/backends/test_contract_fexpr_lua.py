"""``F`` expressions evaluated where the write happens, for atomic batches of updates and
``update_where`` with preconditions and filters of every shape (``&``, ``|``, ``~``,
``in``, ranges, ``isnull``): the results as local evaluation says on every backend, sync
and async; on Redis, by ``QueryLog``, one script run (``MULTI_FEXPR_LUA``) with no read
of the items before it, and the guarded path (MGET, then the guarded script) for what
Lua does not evaluate (a float target, a filter with ``startswith``, an indexed target)."""

from __future__ import annotations

from typing import Any

import pytest

from storeroom import BatchError, F, Q, QueryLog, Update, ValidationError, field, stored


@stored
class Meter:
    id: str
    n: int = field(default=0, ge=0, le=100)
    hits: int = 0
    price: float = 1.0
    tag: str = ""
    note: str | None = None
    rank: int = field(default=0, index=True)


async def _seed(s: Any) -> None:
    await s.create(Meter(id="a", n=5, hits=1, tag="x"))
    await s.create(Meter(id="b", n=0, hits=2, tag="x", note="hi"))
    await s.create(Meter(id="c", n=7, hits=3, tag="y"))
    await s.update("a", hits=F("hits") + 0)  # scripts loaded before counting


def _redis(store_factory: Any) -> bool:
    return bool(store_factory.spec.id == "redis")


async def _rows(s: Any) -> list[tuple[Any, ...]]:
    return [(i.id, i.n, i.hits, i.tag) for i in await s.all()]


async def test_atomic_f_batch_in_one_script(store_factory):
    s = store_factory(Meter)
    await _seed(s)
    if not s.meta.atomic_batch:
        pytest.skip("no atomic batches on this backend")
    async with QueryLog() as log:
        res = await s.edit_batch([
            Update("a", n=F("n") + 1, tag="z", precondition=Q(tag="x") & Q(n__lt=6)),
            Update("a", hits=F("n") * 10 + F("hits")),  # sees the edit before it
            Update("c", n=F("n") - 7, precondition=~Q(tag="x") | Q(note__isnull=False)),
        ], atomic=True)
    assert [(r.item.n, r.item.hits, r.item.tag) for r in res] == [
        (6, 1, "z"), (6, 61, "z"), (0, 3, "y")]
    assert await _rows(s) == [("a", 6, 61, "z"), ("b", 0, 2, "x"), ("c", 0, 3, "y")]
    if _redis(store_factory):
        assert log.statements() == ["EVALSHA"]


@pytest.mark.parametrize("case", ["missing", "precondition", "bounds"])
async def test_atomic_f_batch_refused_writes_nothing(store_factory, case):
    s = store_factory(Meter)
    await _seed(s)
    if not s.meta.atomic_batch:
        pytest.skip("no atomic batches on this backend")
    bad = {"missing": Update("zz", n=F("n") + 1),
           "precondition": Update("c", n=F("n") + 1, precondition=Q(tag__in=["x", "w"])),
           "bounds": Update("b", n=F("n") - 1)}[case]
    code = {"missing": "missing_key", "precondition": "precondition_failed",
            "bounds": "invalid"}[case]
    async with QueryLog() as log:
        with pytest.raises(BatchError) as e:
            await s.edit_batch([Update("a", n=F("n") + 1), bad, Update("c", hits=F("hits") + 1)],
                               atomic=True)
    assert [r.code for r in e.value.results][1] == code
    assert not any(r.ok for r in e.value.results[1:])
    assert await _rows(s) == [("a", 5, 1, "x"), ("b", 0, 2, "x"), ("c", 7, 3, "y")]
    if _redis(store_factory):
        assert log.statements() == ["EVALSHA"]


async def test_update_where_f_filters_in_one_script(store_factory):
    s = store_factory(Meter)
    await _seed(s)
    cases = [
        (Q(tag="x") | Q(n__gte=7), ["a", "b", "c"]),
        (~Q(tag="x"), ["c"]),
        (Q(n__range=(1, 6)) & Q(note__isnull=True), ["a"]),
        (Q(tag__in=["y", "q"]) | Q(note="hi"), ["b", "c"]),
        (Q(tag__not_in=["x", "y"]), []),
        (Q(hits__ne=-1) & Q(tag="y"), ["c"]),
        (Q(id__in=["a", "c"]) & ~Q(id="c"), ["a"]),
    ]
    for where, ids in cases:
        before = {i.id: i.hits for i in await s.all()}
        async with QueryLog() as log:
            assert await s.update_where(where, changes={"hits": F("hits") + F("n") + 1}) \
                == len(ids)
        after = await s.all()
        assert [i.id for i in after if i.hits != before[i.id]] == ids, where
        if _redis(store_factory) and ids:
            st = log.statements()
            assert st[-1] == "EVALSHA" and st.count("EVALSHA") == 1, st
            assert "MGET" not in st and "GET" not in st, st
    # a result out of bounds: ValidationError, nothing written
    rows = await _rows(s)
    with pytest.raises(ValidationError):
        await s.update_where(Q(tag="x") | Q(tag="y"), changes={"n": F("n") * 20})
    assert await _rows(s) == rows


async def test_f_guarded_where_lua_cannot(store_factory):
    """A float target, a ``startswith`` filter, an indexed target: the same results, by
    the guarded path on Redis (the items read first)."""
    s = store_factory(Meter)
    await _seed(s)
    calls = [
        (Q(tag="x"), {"price": F("price") * 2}),
        (Q(tag__startswith="x"), {"hits": F("hits") + 1}),
        (Q(tag="y"), {"rank": F("rank") + 4}),
    ]
    for where, changes in calls:
        async with QueryLog() as log:
            assert await s.update_where(where, changes=changes) >= 1
        if _redis(store_factory):
            assert "MGET" in log.statements()
    assert [(i.id, i.price, i.hits, i.rank) for i in await s.all()] == [
        ("a", 2.0, 2, 0), ("b", 2.0, 3, 0), ("c", 1.0, 3, 4)]
    assert [i.id for i in await s.search_all(rank=4)] == ["c"]  # the index kept
    if s.meta.atomic_batch:
        async with QueryLog() as log:
            res = await s.edit_batch([Update("a", rank=F("rank") + 1),
                                      Update("b", hits=F("hits") + 1)], atomic=True)
        assert [r.item.rank for r in res] == [1, 0]
        assert [i.id for i in await s.search_all(rank=1)] == ["a"]
        if _redis(store_factory):
            assert log.statements() == ["MGET", "EVALSHA"]


async def test_f_beyond_2_53_falls_back_exactly(store_factory):
    """A value Lua's doubles do not hold exactly: the script writes nothing and the
    guarded path gives the exact result."""
    s = store_factory(Meter)
    await _seed(s)
    big = 2 ** 60
    await s.update("c", hits=big)
    async with QueryLog() as log:
        assert await s.update_where(Q(tag="y"), changes={"hits": F("hits") + 1}) == 1
    assert (await s.read("c")).hits == big + 1
    if _redis(store_factory):  # the script gave up, then the items read, the guarded write
        assert log.statements()[-3:] == ["EVALSHA", "MGET", "EVALSHA"], log.statements()
    if s.meta.atomic_batch:
        async with QueryLog() as log:
            res = await s.edit_batch([Update("a", n=F("n") + 1),
                                      Update("c", hits=F("hits") * 2)], atomic=True)
        if _redis(store_factory):
            assert log.statements() == ["EVALSHA", "MGET", "EVALSHA"], log.statements()
        assert (res[0].item.n, res[1].item.hits) == (6, 2 * big + 2)
        assert [(i.id, i.n, i.hits) for i in await s.all()] == [
            ("a", 6, 1), ("b", 0, 2), ("c", 7, 2 * big + 2)]


async def test_update_where_f_filter_on_escaped_text(store_factory):
    """A filter value whose JSON has escapes and non-ASCII text matches as locally."""
    s = store_factory(Meter)
    odd = 'q"{,}\\é\n'
    await s.create(Meter(id="a", tag=odd, note="[1, {\"x\": 2}]"))
    await s.create(Meter(id="b", tag=odd[:-1]))
    async with QueryLog() as log:
        assert await s.update_where(Q(tag=odd), changes={"hits": F("hits") + 1}) == 1
    assert [(i.id, i.hits) for i in await s.all()] == [("a", 1), ("b", 0)]
    if _redis(store_factory):
        assert "MGET" not in log.statements()

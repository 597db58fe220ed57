"""The interval algebra (``storeroom.query.intervals``) against local evaluation."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from storeroom.query.ast import Cond
from storeroom.query.evaluate import compile_local
from storeroom.query.intervals import (
    EVERY,
    Interval,
    hull,
    meet,
    meet_all_lex,
    meet_lex,
    of_cond,
)

values = st.integers(-5, 5)
conds = st.one_of(
    st.builds(lambda op, v: Cond("x", op, v), st.sampled_from(["eq", "gt", "gte", "lt", "lte"]),
              values),
    st.builds(lambda a, b: Cond("x", "range", (a, b)), values, values))


def _holds(c: Cond, v: int) -> bool:
    return bool(compile_local(c)(SimpleNamespace(x=v)))


@settings(max_examples=150, deadline=None)
@given(conds, conds, values)
def test_meet_is_and_and_hull_holds_or(a: Cond, b: Cond, v: int) -> None:
    ia, ib = of_cond(a), of_cond(b)
    assert ia is not None and ib is not None
    assert (v in ia) is _holds(a, v)
    both = meet(ia, ib)
    assert (v in both) is (_holds(a, v) and _holds(b, v))
    if _holds(a, v) or _holds(b, v):
        assert v in hull(ia, ib)


@settings(max_examples=100, deadline=None)
@given(conds, conds)
def test_empty_and_point_agree_with_membership(a: Cond, b: Cond) -> None:
    iv = meet(of_cond(a), of_cond(b))  # type: ignore[arg-type]
    # (over values between the integers too: (0, 1) is not empty)
    members = [v / 2 for v in range(-14, 16) if v / 2 in iv]
    assert iv.empty is (not members)
    assert iv.point is (len(members) == 1 and iv.has_lo and iv.has_hi)
    assert meet(iv, EVERY) == iv


lex = st.tuples(st.one_of(st.none(), st.binary(max_size=2)),
                st.one_of(st.none(), st.binary(max_size=2)))


def _in_lex(iv: tuple[bytes | None, bytes | None], m: bytes) -> bool:
    return (iv[0] is None or iv[0] <= m) and (iv[1] is None or m < iv[1])


@settings(max_examples=150, deadline=None)
@given(st.lists(lex, max_size=3), st.lists(lex, max_size=3), st.binary(max_size=2))
def test_lex_ranges_meet_as_sets(xs: list, ys: list, m: bytes) -> None:  # type: ignore[type-arg]
    want = any(_in_lex(x, m) for x in xs) and any(_in_lex(y, m) for y in ys)
    got = meet_all_lex(xs, ys)
    assert any(_in_lex(iv, m) for iv in got) is want
    for x in xs:
        for y in ys:
            one = meet_lex(x, y)
            assert (one is not None and _in_lex(one, m)) is (_in_lex(x, m) and _in_lex(y, m))


def test_unbounded_and_open_ends() -> None:
    assert 3 in EVERY and not EVERY.bounded
    gt = Interval(lo=1, lo_in=False, has_lo=True)
    assert 1 not in gt and 2 in gt and not gt.empty
    assert meet(gt, Interval(hi=1, has_hi=True)).empty

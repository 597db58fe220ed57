"""One interval algebra for planning key ranges (DynamoDB key conditions, Redis lex
ranges of sorted sets): intervals of attribute values from conditions, their meet
(intersection), hull (the least interval holding both) and emptiness.

Two forms, one algebra:

- :class:`Interval`: over attribute values compared by ``plain`` (an Enum by its value),
  each end open or closed, or absent (unbounded; ``has_lo`` / ``has_hi``, since None is
  a value like any other here).
- half-open byte ranges ``(lo, hi)`` meaning ``lo <= m < hi`` (None: unbounded), the
  form of encoded sorted-set members: :func:`meet_lex`, :func:`meet_all_lex`. It is the
  same algebra with every low end closed and every high end open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .ast import Cond
from .evaluate import plain

RANGE_OPS = frozenset({"eq", "gt", "gte", "lt", "lte", "range"})
"""Operators whose matching values form one interval."""


@dataclass(frozen=True, slots=True)
class Interval:
    """Values between ``lo`` and ``hi``: ``lo_in`` / ``hi_in`` say whether an end is
    included, ``has_lo`` / ``has_hi`` whether there is one at all."""

    lo: Any = None
    lo_in: bool = True
    hi: Any = None
    hi_in: bool = True
    has_lo: bool = False
    has_hi: bool = False

    @property
    def bounded(self) -> bool:
        """True when the interval has an end (it is not every value)."""
        return self.has_lo or self.has_hi

    @property
    def empty(self) -> bool:
        """True when no value lies in the interval."""
        if not (self.has_lo and self.has_hi):
            return False
        lo, hi = plain(self.lo), plain(self.hi)
        return bool(lo > hi or (lo == hi and not (self.lo_in and self.hi_in)))

    @property
    def point(self) -> bool:
        """True when exactly one value lies in the interval (``lo``)."""
        return (self.has_lo and self.has_hi and self.lo_in and self.hi_in
                and plain(self.lo) == plain(self.hi))

    def __contains__(self, value: Any) -> bool:
        v = plain(value)
        if self.has_lo:
            lo = plain(self.lo)
            if v < lo or (v == lo and not self.lo_in):
                return False
        if self.has_hi:
            hi = plain(self.hi)
            if v > hi or (v == hi and not self.hi_in):
                return False
        return True


EVERY = Interval()
"""Every value."""


def of_cond(c: Cond) -> Interval | None:
    """The values a condition matches, when they form one interval (None otherwise)."""
    op, v = c.op, c.value
    if op == "eq":
        return Interval(v, True, v, True, True, True)
    if op in ("gt", "gte"):
        return Interval(lo=v, lo_in=op == "gte", has_lo=True)
    if op in ("lt", "lte"):
        return Interval(hi=v, hi_in=op == "lte", has_hi=True)
    if op == "range":
        return Interval(v[0], True, v[1], True, True, True)
    return None


def meet(a: Interval, b: Interval) -> Interval:
    """The values in both (may be ``empty``)."""
    lo, lo_in, has_lo = a.lo, a.lo_in, a.has_lo
    if b.has_lo and (not has_lo or plain(b.lo) > plain(lo)
                     or (plain(b.lo) == plain(lo) and not b.lo_in)):
        lo, lo_in, has_lo = b.lo, b.lo_in, True
    hi, hi_in, has_hi = a.hi, a.hi_in, a.has_hi
    if b.has_hi and (not has_hi or plain(b.hi) < plain(hi)
                     or (plain(b.hi) == plain(hi) and not b.hi_in)):
        hi, hi_in, has_hi = b.hi, b.hi_in, True
    return Interval(lo, lo_in, hi, hi_in, has_lo, has_hi)


def hull(a: Interval, b: Interval) -> Interval:
    """The least interval holding every value of both (of an ``Or`` of the two)."""
    lo: Any = None
    lo_in, has_lo = True, False
    if a.has_lo and b.has_lo:
        if plain(a.lo) < plain(b.lo) or (plain(a.lo) == plain(b.lo) and a.lo_in):
            lo, lo_in = a.lo, a.lo_in
        else:
            lo, lo_in = b.lo, b.lo_in
        has_lo = True
    hi: Any = None
    hi_in, has_hi = True, False
    if a.has_hi and b.has_hi:
        if plain(a.hi) > plain(b.hi) or (plain(a.hi) == plain(b.hi) and a.hi_in):
            hi, hi_in = a.hi, a.hi_in
        else:
            hi, hi_in = b.hi, b.hi_in
        has_hi = True
    return Interval(lo, lo_in, hi, hi_in, has_lo, has_hi)


LexInterval = tuple[bytes | None, bytes | None]
"""``(lo, hi)``: members ``m`` with ``lo <= m < hi``; None is unbounded."""


def meet_lex(a: LexInterval, b: LexInterval) -> LexInterval | None:
    """The members in both half-open ranges; None when there are none."""
    lo = a[0] if b[0] is None else b[0] if a[0] is None else max(a[0], b[0])
    hi = a[1] if b[1] is None else b[1] if a[1] is None else min(a[1], b[1])
    if lo is not None and hi is not None and lo >= hi:
        return None
    return (lo, hi)


def meet_all_lex(xs: list[LexInterval], ys: list[LexInterval]) -> list[LexInterval]:
    """The intersection of two unions of ranges, as a union sorted by low end."""
    out = [m for x in xs for y in ys if (m := meet_lex(x, y)) is not None]
    return sorted(out, key=lambda iv: b"" if iv[0] is None else iv[0])


__all__ = ["Interval", "EVERY", "RANGE_OPS", "of_cond", "meet", "hull", "LexInterval",
           "meet_lex", "meet_all_lex"]

"""Contract: Min / Max of an Enum attribute give back the Enum member (as reading the
attribute does), compared by value; Sum / Avg of an int-valued Enum are numbers — on every
backend, sync and async, native or local alike."""

from __future__ import annotations

import enum

from storeroom import Avg, Count, Max, Min, Sum, stored


class Level(enum.Enum):
    LOW = "b-low"
    HIGH = "a-high"  # by value HIGH < LOW


class Rank(enum.IntEnum):
    ONE = 1
    TWO = 2
    THREE = 3


@stored
class Graded:
    id: int
    level: Level | None = None
    rank: Rank = Rank.ONE


async def test_min_and_max_of_an_enum_are_members(store_factory) -> None:  # noqa: ANN001
    s = store_factory(Graded)
    empty = await s._call("aggregate", aggregates={"lo": Min("level"), "hi": Max("rank"),
                                                  "n": Count("level")})
    assert empty == {"lo": None, "hi": None, "n": 0}
    for i, (level, rank) in enumerate([(Level.LOW, Rank.TWO), (None, Rank.THREE),
                                       (Level.HIGH, Rank.ONE), (Level.LOW, Rank.TWO)]):
        await s.create(Graded(id=i, level=level, rank=rank))
    got = await s._call("aggregate", aggregates={
        "lo": Min("level"), "hi": Max("level"), "rlo": Min("rank"), "rhi": Max("rank"),
        "total": Sum("rank"), "mean": Avg("rank")})
    assert got["lo"] is Level.HIGH and got["hi"] is Level.LOW
    assert got["rlo"] is Rank.ONE and got["rhi"] is Rank.THREE
    assert got["total"] == 8 and type(got["total"]) is int
    assert got["mean"] == 2.0 and type(got["mean"]) is float

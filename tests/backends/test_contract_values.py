"""Values, keys and types, on every backend (sync and async).

* every action returns items whose values carry the annotated types (compared with
  ``type()``, recursively into JSON values), whatever the backend's driver hands back;
* ``generated.sequence()`` values are ``int`` on every backend, on a key or not;
* ``store.parse_key`` inverts ``store.key_str`` for every key kind, and key strings are
  URL-safe;
* a lone surrogate in a string is a ``ValidationError`` (rule ``unicode``) as a value,
  and matches nothing as a key or a filter value.
"""

from __future__ import annotations

import dataclasses
import enum
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from storeroom import Create, Q, Update, stored


class Shade(enum.Enum):
    LIGHT = "light"
    DARK = "Dark"


class Rank(enum.Enum):
    ONE = 1
    TWO = 2


@dataclasses.dataclass
class Inner:
    n: int
    f: float
    s: str
    tags: list[str] = dataclasses.field(default_factory=list)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
U0 = uuid.UUID(int=0)


@stored
class Typed:
    id: str
    i: int = 0
    f: float = 0.0
    b: bool = False
    dec: Decimal = Decimal("0")
    dt: datetime = EPOCH
    d: date = date(2000, 1, 1)
    u: uuid.UUID = U0
    by: bytes = b""
    es: Shade = Shade.LIGHT
    ei: Rank = Rank.ONE
    s: str = ""
    oi: int | None = None
    of: float | None = None
    ob: bool | None = None
    odec: Decimal | None = None
    odt: datetime | None = None
    od: date | None = None
    ou: uuid.UUID | None = None
    oby: bytes | None = None
    oes: Shade | None = None
    oei: Rank | None = None
    os: str | None = None
    lf: list[float] = dataclasses.field(default_factory=list)
    dct: dict[str, Any] = dataclasses.field(default_factory=dict)
    df: dict[str, float] = dataclasses.field(default_factory=dict)
    inner: Inner | None = None


# every attribute set, with values whose type a driver could lose (3.0 as 3, -0.0, True
# as 1, Decimal("1.10") as 1.1, an aware datetime as naive, ...)
FULL: dict[str, Any] = dict(
    i=3, f=3.0, b=True, dec=Decimal("1.10"), dt=datetime(2024, 2, 29, 12, 0, tzinfo=UTC),
    d=date(2024, 2, 29), u=uuid.UUID(int=7), by=b"\x00\x01", es=Shade.DARK, ei=Rank.TWO,
    s="x", oi=0, of=-0.0, ob=False, odec=Decimal("-3"), odt=datetime(2001, 1, 1, tzinfo=UTC),
    od=date(2001, 1, 1), ou=uuid.UUID(int=1), oby=b"", oes=Shade.LIGHT, oei=Rank.ONE, os="",
    lf=[3.0, -0.0, 0.5], dct={"f": 3.0, "i": 3, "b": True, "l": [1.0, 2], "n": None},
    df={"x": 3.0, "y": 1e300}, inner=Inner(n=1, f=2.0, s="ü", tags=["a"]),
)
# the same values given as other types that validation coerces (the stored item must carry
# the annotated types all the same)
COERCED: dict[str, Any] = dict(f=3, of=0, dec=Decimal("1.10"), lf=[3, 0, 0.5], df={"x": 3},
                               inner={"n": 1, "f": 2, "s": "ü", "tags": ["a"]})
CHANGES: dict[str, Any] = dict(
    i=-4, f=-0.0, b=False, dec=Decimal("2.50"), dt=datetime(1999, 12, 31, 23, 59, tzinfo=UTC),
    d=date(1999, 12, 31), u=uuid.UUID(int=9), by=b"\xff", es=Shade.LIGHT, ei=Rank.ONE, s="y",
    oi=None, of=7.0, ob=True, odec=None, odt=None, od=None, ou=None, oby=b"\x00", oes=None,
    oei=Rank.TWO, os=None, lf=[1.0], dct={"z": 1.0}, df={}, inner=None,
)


def shape(v: Any) -> Any:
    """The types of a value, recursively (dataclass fields, list items, dict values)."""
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return (type(v), {f.name: shape(getattr(v, f.name)) for f in dataclasses.fields(v)})
    if isinstance(v, list):
        return [shape(x) for x in v]
    if isinstance(v, dict):
        return {k: shape(x) for k, x in v.items()}
    if isinstance(v, datetime):
        return (datetime, v.utcoffset())  # tz-aware UTC
    return type(v)


def assert_typed(got: Any, want: Any, where: str) -> None:
    assert got == want, where
    g, w = shape(got), shape(want)
    wrong = {k: (g[1][k], w[1][k]) for k in w[1] if g[1][k] != w[1][k]}
    assert not wrong, f"{where}: types (got, annotated) {wrong}"


async def test_every_action_returns_the_annotated_types(store_factory):
    s = store_factory(Typed)
    plain = Typed(id="a", **FULL)
    changed = dataclasses.replace(plain, **CHANGES)
    # create / read / read_batch / search
    assert_typed(await s.create(plain), plain, "create")
    assert_typed(await s.read("a"), plain, "read")
    assert_typed((await s.read_batch(["a", "zz"]))[0], plain, "read_batch")
    assert_typed((await s.search(id="a")).items[0], plain, "search")
    assert_typed((await s.search_all(order_by="-f"))[0], plain, "search_all")
    # partial update, every attribute, then one; an update without changes
    assert_typed(await s.update("a", **CHANGES), changed, "partial update")
    assert_typed(await s.read("a"), changed, "read after partial update")
    assert_typed(await s.update("a", f=3.0), dataclasses.replace(changed, f=3.0), "update f")
    assert_typed(await s.update("a", f=3), dataclasses.replace(changed, f=3.0), "update f=3")
    assert_typed(await s.update("a"), dataclasses.replace(changed, f=3.0), "empty update")
    # full update, and updates with a precondition
    assert_typed(await s.update(plain), plain, "full update")
    assert_typed(await s.update("a", precondition=Q(s="x"), f=5.0, i=3),
                 dataclasses.replace(plain, f=5.0), "update with precondition")
    assert_typed(await s.update(plain, precondition=Q(s__icontains="X")), plain,
                 "full update with precondition")
    assert_typed(await s.read("a"), plain, "read after full update")
    # update_where
    assert await s.update_where(id="a", changes={"f": 3, "of": 1}) == 1
    assert_typed(await s.read("a"), dataclasses.replace(plain, f=3.0, of=1.0), "update_where")
    # values given as coercible types come back as the annotated types
    coerced = Typed(id="c", **{**FULL, **COERCED})
    want = Typed(id="c", **{**FULL, "of": 0.0, "df": {"x": 3.0}})
    assert_typed(await s.create(coerced), want, "create coerced")
    assert_typed(await s.read("c"), want, "read coerced")
    # edit_batch, atomic and not
    for atomic in (False, True):
        if atomic and not s.meta.atomic_batch:
            continue
        k = f"b{int(atomic)}"
        results = await s.edit_batch([Create(Typed(id=k, **FULL)), Create(Typed(id=k + "x"))],
                                     atomic=atomic)
        assert_typed(results[0].item, Typed(id=k, **FULL), f"edit_batch create {atomic}")
        assert_typed(results[1].item, Typed(id=k + "x"), f"edit_batch create {atomic}")
        results = await s.edit_batch([Update(k, **CHANGES)], atomic=atomic)
        assert_typed(results[0].item, Typed(id=k, **{**FULL, **CHANGES}),
                     f"edit_batch update {atomic}")
        results = await s.edit_batch([Update(Typed(id=k, **FULL))], atomic=atomic)
        assert_typed(results[0].item, Typed(id=k, **FULL), f"edit_batch full update {atomic}")
        results = await s.edit_batch([Update(k, precondition=Q(i=3), f=3)], atomic=atomic)
        assert_typed(results[0].item, Typed(id=k, **FULL), f"edit_batch update pre {atomic}")
    # defaults only
    assert_typed(await s.create(Typed(id="e")), Typed(id="e"), "create defaults")
    for got in await s.search_all():
        want = await s.read(got.id)
        assert_typed(got, want, "search_all")

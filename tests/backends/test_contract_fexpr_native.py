"""``F`` updates by key are one native atomic write where the backend can evaluate the
expression itself: a DynamoDB ``UpdateItem`` (``SET #a = #a + :c``, bounds in its
condition), one Redis script run. ``QueryLog`` counts the round trips; a refused write
(bound or precondition) costs one read to tell why. Runs on every backend, sync and
async (results are the same everywhere; the counts are checked where they are known)."""

from __future__ import annotations

import pytest

from storeroom import F, Q, QueryLog, ValidationError, field, stored

# statement of the one native write, per backend (spec id prefix)
NATIVE = {"dynamodb": "UpdateItem", "redis": "EVALSHA"}


@stored
class Counter:
    id: str
    n: int = field(default=0, ge=0, le=100)
    hits: int = 0
    price: float = 1.0
    note: str = ""


def _native(spec_id: str) -> str | None:
    return next((v for k, v in NATIVE.items() if spec_id.startswith(k)), None)


async def _log(coro: object) -> tuple[object, list[str]]:
    async with QueryLog() as log:
        try:
            out = await coro  # type: ignore[misc]
        except ValidationError as exc:
            out = exc
    return out, log.statements()


async def test_update_by_key_is_one_native_write(store_factory):
    s = store_factory(Counter)
    await s.create(Counter(id="a", n=5, hits=1))
    await s.update("a", hits=F("hits") + 0)  # scripts / tables ready before counting
    stmt = _native(store_factory.spec.id)
    got, st = await _log(s.update("a", n=F("n") + 3, hits=F("n") - 1, note="x"))
    assert (got.n, got.hits, got.note) == (8, 4, "x")
    if stmt:
        assert st == [stmt], st
    got, st = await _log(s.update("a", hits=10 - F("hits"), precondition=Q(note="x")))
    assert got.hits == 6
    if stmt:  # Redis: the precondition checked inside the one script run
        assert st == [stmt], st
    # out of bounds: ValidationError, nothing written (one more read tells why)
    err, st = await _log(s.update("a", n=F("n") + 93, note="no"))
    assert isinstance(err, ValidationError) and err.errors[0]["rule"] == "le"
    err, st = await _log(s.update("a", n=F("hits") - 7))
    assert isinstance(err, ValidationError) and err.errors[0]["rule"] == "ge"
    # precondition failed / missing key: None
    assert await s.update("a", n=F("n") + 1, precondition=Q(note="shut")) is None
    assert await s.update("zz", n=F("n") + 1) is None
    assert (await s.read("a")) == Counter(id="a", n=8, hits=6, note="x")


@pytest.mark.parametrize(("changes", "attr", "want"), [
    ({"n": F("n") * 2}, "n", 10), ({"n": F("n") + F("hits")}, "n", 7),
    ({"price": F("price") + 0.5}, "price", 1.75)])
async def test_other_expressions_still_exact(store_factory, changes, attr, want):
    """Expressions a backend does not write natively (``*``, two references, floats on
    DynamoDB) still give the exact result through the guarded path."""
    s = store_factory(Counter)
    await s.create(Counter(id="a", n=5, hits=2, price=1.25))
    got = await s.update("a", **changes)
    assert getattr(got, attr) == want and getattr(await s.read("a"), attr) == want


@stored
class Doc:
    id: str
    n: int = 0
    big: int = 0
    note: str = ""
    tags: list[str] = field(default_factory=list)
    price: float = 0.1


async def test_other_values_kept_exactly(store_factory):
    """The item's other values come back exactly (Redis splices the results into the
    stored JSON: strings holding quotes, backslashes and look-alike keys, nested lists,
    floats); ints beyond 2^53 are exact too (computed outside Lua's doubles)."""
    s = store_factory(Doc)
    tricky = 'a\\\\"n":9,{"big":[1]}\\u00e9 "é'
    await s.create(Doc(id="a", n=1, big=2**60, note=tricky, tags=["x,", "]", ""],
                       price=0.1))
    got = await s.update("a", n=F("n") + 1, big=F("big") + 1, tags=["y\"", "[z]"])
    assert got == Doc(id="a", n=2, big=2**60 + 1, note=tricky, tags=["y\"", "[z]"],
                      price=0.1)
    got = await s.update("a", n=F("n") * 3 - 1, note='"q"')
    assert (got.n, got.big, got.note, got.price) == (5, 2**60 + 1, '"q"', 0.1)
    assert await s.read("a") == got


@stored
class Seat:
    id: str
    left: int = field(default=0, ge=0)
    code: str | None = field(default=None, unique=True)


async def test_bounds_hold_with_a_unique_change(store_factory):
    """An ``F`` update that also changes a unique attribute still checks its bounds and
    writes nothing when out of them."""
    if "no_transactions" in store_factory.spec.limits:
        pytest.skip("unique attributes need TransactWriteItems (not on dynalite)")
    s = store_factory(Seat)
    await s.create(Seat(id="a", left=1, code="x"))
    with pytest.raises(ValidationError):
        await s.update("a", left=F("left") - 2, code="y")
    assert await s.read("a") == Seat(id="a", left=1, code="x")
    got = await s.update("a", left=F("left") - 1, code="y")
    assert (got.left, got.code) == (0, "y")

"""SQL: a ``Ref`` is a real FOREIGN KEY with its ON DELETE action, so what storeroom's
checks before a write cannot see (a concurrent writer in between) the database refuses.
The backend is called directly here, past the store front's checks, as a concurrent
writer's statement would arrive."""

from __future__ import annotations

import pytest

from storeroom import Conflict, ValidationError
from tests.backends.test_contract_relations import Bin, Gadget, Maker, Placement, Sticker

SQL = ("sqlite", "postgres", "mysql")


@pytest.fixture
def sql_factory(store_factory):  # noqa: ANN001, ANN201
    if store_factory.spec.id not in SQL:
        pytest.skip("SQL backends only")
    return store_factory


async def _backend(s, method, *args):  # noqa: ANN001, ANN002, ANN202
    out = getattr(s.store._b, method)(*args)
    return await out if s.is_async else out


async def test_the_foreign_key_refuses_a_missing_reference(sql_factory) -> None:  # noqa: ANN001
    gadgets = sql_factory(Gadget)
    await gadgets.create(Gadget(id="g0"))  # creates the tables (maker's first)
    with pytest.raises(ValidationError) as info:
        await _backend(gadgets, "insert", {"id": "g1", "title": "", "maker_id": 404})
    assert info.value.errors[0]["rule"] == "reference"
    assert await gadgets.read("g1") is None
    stickers = sql_factory(Sticker)  # on_delete="ignore": no FOREIGN KEY
    await stickers.create(Sticker(id=1))
    await _backend(stickers, "insert", {"id": 2, "gadget_id": "nope"})
    assert (await stickers.read(2)).gadget_id == "nope"


async def test_on_delete_actions_are_native(sql_factory) -> None:  # noqa: ANN001
    makers, gadgets = sql_factory(Maker), sql_factory(Gadget)
    bins, places = sql_factory(Bin), sql_factory(Placement)
    m = await makers.create(Maker(name="m"))
    await gadgets.create(Gadget(id="g1", maker=m))
    await bins.create(Bin(shelf="s", slot=1))
    await places.create(Placement(gadget="g1", bin=("s", 1)))
    with pytest.raises(Conflict):  # RESTRICT
        await _backend(bins, "delete", ("s", 1), None)
    assert await bins.read(("s", 1)) is not None
    assert await _backend(makers, "delete", (m.id,), None) is True  # SET NULL
    assert (await gadgets.read("g1")).maker_id is None
    assert await _backend(gadgets, "delete", ("g1",), None) is True  # CASCADE
    assert await places.all() == []


ROUNDS = 4


async def test_racing_delete_and_reference_never_leave_a_dangling_block(sql_factory) -> None:  # noqa: ANN001
    """A delete of a gadget races a create of a Holder referencing it (on_delete="block"):
    one of them fails; never both succeed (the FOREIGN KEY decides what the store
    front's checks cannot see)."""
    from tests.backends.test_contract_precond import _race
    from tests.backends.test_contract_relations import Holder

    gadgets = sql_factory(Gadget)
    for n in range(ROUNDS):
        await gadgets.create(Gadget(id=f"g{n}"))

    async def worker(s, i, step):  # noqa: ANN001, ANN202
        out = []
        for n in range(ROUNDS):
            await step()
            try:
                if i == 0:
                    out.append(await s.delete(f"g{n}"))
                else:
                    out.append(await s.create(Holder(id=n, gadget=f"g{n}")) is not None)
            except (Conflict, ValidationError):
                out.append(False)
            except Exception as exc:  # SQLite's lock: refused, not acknowledged
                if "locked" not in str(exc):
                    raise
                out.append(False)
        return out

    stores = iter([Gadget, Holder])
    deleted, held = await _race(_Pick(sql_factory, stores), None, worker)
    holders = sql_factory(Holder)
    for n in range(ROUNDS):
        assert not (deleted[n] and held[n]), n
        if await holders.read(n) is not None:
            assert await gadgets.read(f"g{n}") is not None


class _Pick:
    """A store factory for ``_race`` that opens each worker's own model."""

    def __init__(self, factory, models) -> None:  # noqa: ANN001
        self.factory, self.models = factory, models
        self.is_async = factory.is_async

    def __call__(self, _model):  # noqa: ANN001, ANN204
        return self.factory(next(self.models))

"""Contract: an ``F`` expression computing a Ref column inside ``edit_batch`` is
reference-checked over the item as it is, as ``update`` / ``update_where`` check it —
atomic and not, on every backend, sync and async."""

from __future__ import annotations

import pytest

from storeroom import BatchError, Create, F, Ref, Update, field, stored

# the store front checks it (or a FOREIGN KEY): one server per backend's code
pytestmark = pytest.mark.one_server_per_backend


@stored(key="id")
class FbRack:
    id: int


@stored(key="id")
class FbCrate:
    id: str
    rack: Ref[FbRack] = field(on_delete="cascade")


async def test_an_f_on_a_ref_column_in_a_batch_is_checked(store_factory) -> None:  # noqa: ANN001
    racks, crates = store_factory(FbRack), store_factory(FbCrate)
    await racks.edit_batch([Create(FbRack(id=i)) for i in (1, 2, 3)])
    await crates.edit_batch([Create(FbCrate(id=c, rack=1)) for c in ("a", "b")])
    got = await crates.edit_batch([Update(key="a", rack_id=F("rack_id") + 1),
                                   Update(key="b", rack_id=F("rack_id") + 5)])
    assert [r.ok for r in got] == [True, False], got
    assert got[1].code == "invalid" and "no FbRack has the key 6" in got[1].detail, got[1]
    assert got[0].item.rack_id == 2
    assert [(c.id, c.rack_id) for c in await crates.all()] == [("a", 2), ("b", 1)]
    if crates.meta.atomic_batch:
        with pytest.raises(BatchError) as info:
            await crates.edit_batch([Update(key="a", rack_id=F("rack_id") + 1),
                                     Update(key="b", rack_id=F("rack_id") + 9)],
                                    atomic=True)
        assert [r.code for r in info.value.results] == [None, "invalid"]
        assert "no FbRack has the key 10" in info.value.results[1].detail
        assert [(c.id, c.rack_id) for c in await crates.all()] == [("a", 2), ("b", 1)]
        # an F sees the batch's earlier edits: b's rack 1 → 3 → 2, both exist
        got = await crates.edit_batch([Update(key="b", rack_id=3),
                                       Update(key="b", rack_id=F("rack_id") - 1)],
                                      atomic=True)
        assert [r.ok for r in got] == [True, True]
        assert (await crates.read("b")).rack_id == 2


async def test_an_f_on_a_ref_column_racing_a_delete_leaves_no_dangling_reference(
        store_factory) -> None:  # noqa: ANN001
    """The target the F computes deleted while the batch writes (bounded: 3 rounds):
    the batch is refused or taken back, or the delete's cascade removes the crate."""
    from racing import together

    from storeroom import BatchError as _BatchError
    from storeroom import ValidationError
    from tests.backends.test_contract_rel_races import _expected
    racks, crates = store_factory(FbRack), store_factory(FbCrate)
    killers = store_factory(FbRack)
    for s, key in ((racks, 0), (crates, "-"), (killers, 0)):  # tables created first
        await s.read(key)
    await killers.delete(0)  # its plan reaches the referencing store
    for r in range(3):
        await racks.edit_batch([Create(FbRack(id=10 * r + 1)), Create(FbRack(id=10 * r + 2))])
        await crates.create(FbCrate(id=f"c{r}", rack=10 * r + 1))
        atomic = bool(r % 2) and crates.meta.atomic_batch
        results = await together(
            store_factory, lambda r=r: killers.delete(10 * r + 2),
            lambda r=r, atomic=atomic: crates.edit_batch(
                [Update(f"c{r}", rack_id=F("rack_id") + 1)], atomic=atomic))
        _expected(results[1], ValidationError, _BatchError)
    have = {k.id for k in await racks.all()}
    assert [c.id for c in await crates.all() if c.rack_id not in have] == []

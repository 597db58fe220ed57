"""Contract: relations on every backend, sync and async — ``Ref[M]`` stored as its key
columns, stubs, references to missing keys, ``on_delete``."""

from __future__ import annotations

import pytest

from storeroom import LazyLoadBlocked, Many, Ref, field, generated, is_loaded, stored


@stored(key="id")
class Maker:
    id: int = generated.sequence()
    name: str = ""
    products: Many[Gadget] = field(reverse="maker")


@stored(key="id")
class Gadget:
    id: str
    title: str = ""
    maker: Ref[Maker] | None = field(default=None, on_delete="nullify")


@stored(key=("shelf", "slot"))
class Bin:
    shelf: str
    slot: int
    label: str = ""


@stored(key=("gadget", "bin"))
class Placement:
    gadget: Ref[Gadget] = field(on_delete="cascade")
    bin: Ref[Bin]  # on_delete="block", the default
    count: int = 0


async def test_a_ref_stores_the_key_and_reads_back_a_stub(store_factory) -> None:  # noqa: ANN001
    makers, gadgets = store_factory(Maker), store_factory(Gadget)
    acme = await makers.create(Maker(name="acme"))
    g = await gadgets.create(Gadget(id="g1", title="t", maker=acme))  # an instance
    assert g.maker_id == acme.id
    h = await gadgets.create(Gadget(id="g2", maker=acme.id))  # or its key
    await gadgets.create(Gadget(id="g3"))
    back = await gadgets.read("g1")
    assert back.maker_id == acme.id and back == g
    stub = back.maker
    assert isinstance(stub, Maker) and not is_loaded(stub) and stub.id == acme.id
    with pytest.raises(LazyLoadBlocked):
        _ = stub.name  # a stub's other attributes are never defaults
    assert (await gadgets.read("g3")).maker is None
    assert [x.id for x in await gadgets.search(maker_id=acme.id, order_by=["id"])] == [
        "g1", "g2"]
    assert h.maker.id == acme.id
    # the column is an ordinary attribute: partial updates and full ones
    other = await makers.create(Maker(name="other"))
    assert (await gadgets.update("g3", maker_id=other.id)).maker_id == other.id
    back.maker = other
    await gadgets.update(back)
    assert (await gadgets.read("g1")).maker_id == other.id
    # a partial update may name the Ref itself: an object, a key or None
    assert (await gadgets.update("g2", maker=other)).maker_id == other.id
    assert (await gadgets.update("g2", maker=acme.id)).maker_id == acme.id
    assert (await gadgets.update("g2", maker=None)).maker is None
    assert (await gadgets.read("g2")).maker_id is None
    # a Many is never stored: the item reads back with it not loaded
    m = await makers.read(acme.id)
    assert not is_loaded(m, "products")


async def test_composite_keys_through_refs(store_factory) -> None:  # noqa: ANN001
    gadgets, bins, places = store_factory(Gadget), store_factory(Bin), store_factory(Placement)
    await gadgets.create(Gadget(id="g1"))
    b = await bins.create(Bin(shelf="s", slot=2))
    made = await places.create(Placement(gadget="g1", bin=b, count=3))
    assert (made.gadget_id, made.bin_shelf, made.bin_slot) == ("g1", "s", 2)
    back = await places.read(("g1", "s", 2))
    assert back == made and back.bin.slot == 2 and back.gadget.id == "g1"
    assert not is_loaded(back.bin) and not is_loaded(back.gadget)
    assert places.key_str(back) == places.key_str(("g1", "s", 2))
    assert [p.count for p in await places.search(bin_shelf="s")] == [3]

"""Contract: relations on every backend, sync and async — ``Ref[M]`` stored as its key
columns, stubs, references to missing keys, ``on_delete``."""

from __future__ import annotations

import pytest

from storeroom import (
    BatchError,
    Conflict,
    Create,
    Delete,
    LazyLoadBlocked,
    Many,
    Ref,
    Update,
    ValidationError,
    field,
    generated,
    is_loaded,
    stored,
)


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


async def test_a_reference_to_a_missing_key_is_refused(store_factory) -> None:  # noqa: ANN001
    makers, gadgets = store_factory(Maker), store_factory(Gadget)
    acme = await makers.create(Maker(name="acme"))
    with pytest.raises(ValidationError) as info:
        await gadgets.create(Gadget(id="g1", maker=acme.id + 100))
    assert info.value.errors[0]["rule"] == "reference"
    assert info.value.errors[0]["field"] == "maker"
    assert await gadgets.read("g1") is None
    await gadgets.create(Gadget(id="g1", maker=acme))
    for write in (lambda: gadgets.update("g1", maker_id=999),
                  lambda: gadgets.update(Gadget(id="g1", maker=999)),
                  lambda: gadgets.update_where(changes={"maker": 999}),
                  lambda: gadgets._call("upsert", Gadget(id="g9", maker=999))):
        with pytest.raises(ValidationError, match="no Maker has the key 999"):
            await write()
    assert (await gadgets.read("g1")).maker_id == acme.id and await gadgets.count() == 1
    out = await gadgets.edit_batch([Create(Gadget(id="g2", maker=acme)),
                                    Create(Gadget(id="g3", maker=999)),
                                    Update(key="g1", changes={"maker_id": 998})])
    assert [r.ok for r in out] == [True, False, False]
    assert [r.code for r in out[1:]] == ["invalid", "invalid"]
    if gadgets.meta.atomic_batch:
        with pytest.raises(BatchError):
            await gadgets.edit_batch([Create(Gadget(id="g4", maker=acme)),
                                      Create(Gadget(id="g5", maker=999))], atomic=True)
        assert await gadgets.read("g4") is None
    # composite keys: every part must match one item
    bins, places = store_factory(Bin), store_factory(Placement)
    await bins.create(Bin(shelf="s", slot=1))
    with pytest.raises(ValidationError, match="reference|no Bin"):
        await places.create(Placement(gadget="g1", bin=("s", 2)))
    await places.create(Placement(gadget="g1", bin=("s", 1)))


async def test_on_delete_block_cascade_nullify(store_factory) -> None:  # noqa: ANN001
    makers, gadgets = store_factory(Maker), store_factory(Gadget)
    bins, places = store_factory(Bin), store_factory(Placement)
    acme = await makers.create(Maker(name="acme"))
    await gadgets.create(Gadget(id="g1", maker=acme))
    await gadgets.create(Gadget(id="g2", maker=acme))
    await bins.create(Bin(shelf="s", slot=1))
    await bins.create(Bin(shelf="s", slot=2))
    await places.create(Placement(gadget="g1", bin=("s", 1), count=1))
    await places.create(Placement(gadget="g2", bin=("s", 1), count=2))
    # block (the default): Conflict, nothing deleted
    with pytest.raises(Conflict, match="referenced by the Placement"):
        await bins.delete(("s", 1))
    assert await bins.read(("s", 1)) is not None
    assert await bins.delete(("s", 2)) is True  # referenced by nothing
    # nullify: the gadgets stay, their maker is None
    assert await makers.delete(acme.id) is True
    assert [(g.id, g.maker) for g in await gadgets.all()] == [("g1", None), ("g2", None)]
    # cascade: deleting a gadget deletes its placements
    assert await gadgets.delete("g1") is True
    assert [p.gadget_id for p in await places.all()] == ["g2"]
    # a cascade that reaches a blocked item is blocked as a whole: here none is, so
    # delete_where deletes the gadgets and their placements
    assert await gadgets.delete_where(id__in=["g2"]) == 1
    assert await places.all() == [] and await gadgets.all() == []


async def test_a_blocked_cascade_and_delete_where_delete_nothing(store_factory) -> None:  # noqa: ANN001
    gadgets, bins, holders = store_factory(Gadget), store_factory(Bin), store_factory(Holder)
    await gadgets.create(Gadget(id="g1"))
    await gadgets.create(Gadget(id="g2"))
    await bins.create(Bin(shelf="s", slot=1))
    await holders.create(Holder(id=1, gadget="g1"))  # blocks deleting g1
    with pytest.raises(Conflict):
        await gadgets.delete_where(id__in=["g1", "g2"])  # all or nothing
    assert len(await gadgets.all()) == 2
    out = await gadgets.edit_batch([Delete("g2"), Delete("g1")])
    assert [(r.ok, r.code) for r in out] == [(True, None), (False, "referenced")]
    assert [g.id for g in await gadgets.all()] == ["g1"]
    if gadgets.meta.atomic_batch:
        await gadgets.create(Gadget(id="g3"))
        with pytest.raises(BatchError) as info:
            await gadgets.edit_batch([Delete("g3"), Delete("g1")], atomic=True)
        assert [r.code for r in info.value.results][1] == "referenced"
        assert len(await gadgets.all()) == 2


async def test_on_delete_ignore_leaves_a_dangling_reference(store_factory) -> None:  # noqa: ANN001
    gadgets, notes = store_factory(Gadget), store_factory(Sticker)
    await gadgets.create(Gadget(id="g1"))
    await notes.create(Sticker(id=1, gadget="g1"))
    assert await gadgets.delete("g1") is True
    left = await notes.read(1)
    assert left.gadget_id == "g1"  # dangling: the column keeps the key


@stored(key="id")
class Holder:
    id: int
    gadget: Ref[Gadget]  # block


@stored(key="id")
class Sticker:
    id: int
    gadget: Ref[Gadget] | None = field(default=None, on_delete="ignore")


@pytest.mark.one_server_per_backend
async def test_delete_where_over_many_referenced_items(store_factory) -> None:  # noqa: ANN001
    """More deleted items than one bounded lookup takes (100 keys): every chunk is
    planned and applied. The chunking is the store front's, the same on every backend:
    run where it is cheap, and on DynamoDB, whose IN lists take at most 100 values."""
    if store_factory.spec.id not in ("memory", "sqlite", "dynamodb"):
        pytest.skip("the store front's chunking: memory, SQLite and DynamoDB are enough")
    makers, gadgets = store_factory(Maker), store_factory(Gadget)
    size = makers.meta.max_batch
    for start in range(0, 105, size):
        await makers.edit_batch([Create(Maker(id=i + 1, name="m"))
                                 for i in range(start, min(start + size, 105))])
    await gadgets.create(Gadget(id="first", maker=1))
    await gadgets.create(Gadget(id="last", maker=105))
    assert await makers.delete_where(name="m") == 105
    assert [g.maker_id for g in await gadgets.all()] == [None, None]


def test_an_unnamed_memory_store_shares_its_private_database_with_related_stores() -> None:
    from storeroom import open_store
    with open_store(Gadget) as gadgets:
        related = gadgets._related(Maker)  # what the store opens for its references
        related.create(Maker(id=1, name="m"))
        assert gadgets.create(Gadget(id="g", maker=1)).maker_id == 1
        with open_store(Maker) as elsewhere:  # another private database
            assert elsewhere.read(1) is None
        assert gadgets._related(Maker) is related
    with pytest.raises(Exception, match="closed"):
        related.read(1)  # closed with the store that opened it

"""Contract: a model whose only attribute is its generated sequence key (a row of nothing
but its id: SQL writes it with no values at all) is created, alone and in batches, read,
counted and deleted on every backend, sync and async."""

from __future__ import annotations

from storeroom import Create, generated, stored


@stored(key="id")
class Ticket:
    id: int = generated.sequence()


async def test_a_model_of_only_a_sequence_key(store_factory) -> None:  # noqa: ANN001
    s = store_factory(Ticket)
    first = await s.create(Ticket())
    results = await s.edit_batch([Create(Ticket()) for _ in range(3)])
    ids = [first.id, *(r.item.id for r in results)]
    assert all(r.ok for r in results) and len(set(ids)) == 4
    assert await s.read(ids[-1]) == Ticket(id=ids[-1])
    assert await s.count() == 4
    assert await s.delete(first.id) is True
    assert sorted(t.id for t in await s.search_all()) == sorted(ids[1:])

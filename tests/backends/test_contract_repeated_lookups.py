"""Contract: a count or a first page of the same plain lookups, asked again, reflects
the data as it is then on every backend, sync and async. (A store remembers the filter
of plain lookups, and a SQL store its prepared statement: what it keeps is the plan,
never the result.)"""

from __future__ import annotations

import pytest

from storeroom import Create, Index, generated, stored
from storeroom.errors import StoreClosed


@stored(key="id", indexes=[Index("owner")])
class Chore:
    id: int = generated.sequence()
    owner: str
    done: bool
    rank: int


async def test_the_same_count_and_page_again_see_every_change(store_factory) -> None:  # noqa: ANN001
    s = store_factory(Chore)
    await s.edit_batch([Create(Chore(owner="ann", done=i % 2 == 0, rank=i)) for i in range(5)])
    assert await s.count(owner="ann", done=True) == 3
    page = await s.search(owner="ann", done=True, order_by=["-rank"], limit=2)
    assert [c.rank for c in page.items] == [4, 2] and page.next is not None

    made = await s.create(Chore(owner="ann", done=True, rank=9))
    await s.update((await s.search(owner="ann", rank=0)).items[0].id, done=False)
    assert await s.count(owner="ann", done=True) == 3  # one more, one less
    page = await s.search(owner="ann", done=True, order_by=["-rank"], limit=2)
    assert [c.rank for c in page.items] == [9, 4]
    assert page.items[0] == made

    await s.delete(made.id)
    assert await s.count(owner="ann", done=True) == 2
    page = await s.search(owner="ann", done=True, order_by=["-rank"], limit=2)
    assert [c.rank for c in page.items] == [4, 2] and page.next is None
    # the same names with other values are other filters
    assert await s.count(owner="bob", done=True) == 0
    assert await s.count(owner="ann", done=False) == 3


async def test_a_repeated_count_on_a_closed_store_raises(store_factory) -> None:  # noqa: ANN001
    s = store_factory(Chore)
    await s.create(Chore(owner="ann", done=True, rank=1))
    assert await s.count(owner="ann", done=True) == 1
    assert len((await s.search(owner="ann", done=True, limit=5)).items) == 1
    closing = s.close()
    if closing is not None:
        await closing
    with pytest.raises(StoreClosed):
        await s.count(owner="ann", done=True)
    with pytest.raises(StoreClosed):
        await s.search(owner="ann", done=True, limit=5)

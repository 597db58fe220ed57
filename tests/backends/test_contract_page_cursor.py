"""A page's cursor on every backend, sync and async: signed when ``next`` is first read,
yet fixed when the page was made (changing a returned item does not move it); pages stay
immutable values."""

from __future__ import annotations

import dataclasses

import pytest

from storeroom import stored
from storeroom.store.types import Page


@stored
class Slot:
    id: int
    rank: int = 0


async def test_cursor_is_fixed_when_the_page_is_made(store_factory):
    s = store_factory(Slot)
    for i in range(5):
        await s.create(Slot(id=i, rank=10 - i))
    page = await s.search(order_by=["rank"], limit=2)
    assert [x.id for x in page.items] == [4, 3]
    page.items[-1].rank = 999  # the item is the caller's: the cursor is not
    page.items.append(Slot(id=77, rank=-5))
    nxt = await s.search(order_by=["rank"], limit=2, after=page.next)
    assert [x.id for x in nxt.items] == [2, 1]
    assert page.next == page.next  # read twice: the same cursor


def test_page_value_semantics():
    p = Page.signed_later([1, 2], lambda: "c")
    assert p == Page([1, 2], "c") and p.next == "c" and list(p) == [1, 2] and len(p) == 2
    assert repr(Page([1], None)) == "Page(items=[1], next=None)"
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.items = []  # type: ignore[misc]
    with pytest.raises(TypeError):
        hash(p)

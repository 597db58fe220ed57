"""The store's memo of prepared filters (``store.filtermemo``) gives what ``build_filter``
gives, keeps ``False`` and ``0`` apart, and never keeps a refusal."""

from __future__ import annotations

import pytest

from storeroom import open_store, stored
from storeroom.errors import InvalidFilter, StoreroomError
from storeroom.model.stored import meta_of
from storeroom.query.prepare import build_filter
from storeroom.store.filtermemo import FilterMemo


@stored
class Memo:
    id: int
    owner: str
    done: bool
    n: int = 0
    tags: list[str] | None = None


CASES = [
    {"owner": "ann"},
    {"owner": "ann", "done": False},
    {"done": 0},
    {"done": True},
    {"n": True},
    {"n__gte": 3, "owner__startswith": "a"},
    {"owner": None},
    {"owner": "\ud800"},  # a lone surrogate: no item
    {"tags__contains": "x"},  # a JSON attribute: not kept
    {"n__in": [1, 2]},  # a list: not kept
    {"n": 2.0},  # a float: not kept
]


@pytest.mark.parametrize("lookups", CASES, ids=[repr(c) for c in CASES])
def test_memo_gives_what_build_filter_gives(lookups: dict) -> None:
    meta = meta_of(Memo)
    memo = FilterMemo(meta)
    try:
        expected = build_filter(meta, None, None, dict(lookups))
    except StoreroomError as exc:
        for _ in range(2):  # refused every time: nothing kept
            with pytest.raises(type(exc)):
                memo.build(None, None, dict(lookups))
        return
    for _ in range(2):  # the first call prepares, the second may come from the memo
        assert memo.build(None, None, dict(lookups)) == expected


def test_equal_values_of_other_types_are_other_filters() -> None:
    memo = FilterMemo(meta_of(Memo))
    assert memo.build(None, None, {"n": True}) == build_filter(meta_of(Memo), None, None,
                                                                {"n": True})
    assert memo.build(None, None, {"n": 1}) == build_filter(meta_of(Memo), None, None,
                                                             {"n": 1})
    assert len(memo._nodes) == 2  # True and 1 are one dict key, two memo keys
    with pytest.raises(InvalidFilter):
        memo.build(None, None, {"nope": 1})
    with pytest.raises(InvalidFilter):
        memo.build(None, None, {"owner__nope": "a"})
    assert len(memo._nodes) == 2


def test_store_search_through_the_memo() -> None:
    s = open_store(Memo, "memory://")
    for i in range(6):
        s.create(Memo(id=i, owner=f"u{i % 2}", done=i % 3 == 0, n=i))
    for _ in range(2):
        assert [m.id for m in s.search(owner="u0", done=False, order_by="id").items] == [2, 4]
        assert s.count(owner="u1", done=True) == 1
        assert s.count(n__gte=4) == 2
    s.close()

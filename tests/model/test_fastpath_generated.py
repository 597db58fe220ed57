"""The generated fast create handles sequence keys and datetimes exactly as the general
path does: the same values, or None (the general path decides, and names problems)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from storeroom import generated, stored
from storeroom.errors import ValidationError
from storeroom.model.fastpath import _never
from storeroom.model.stored import meta_of
from storeroom.store.prepare import create_values


@stored
class Ticket:
    title: str
    id: int = generated.sequence()
    at: datetime = generated.created_at()
    due: datetime | None = None


def test_sequence_and_datetime_models_get_a_fast_create():
    assert meta_of(Ticket).fast_create is not _never


@pytest.mark.parametrize("kw", [
    {}, {"id": 7}, {"id": -(2**63)}, {"due": datetime(2020, 1, 1, tzinfo=UTC)},
    {"at": datetime(2021, 5, 5, 1, 2, 3, tzinfo=UTC)},
])
def test_fast_values_equal_the_general_path(kw):
    item = Ticket(title="t", **kw)
    fast = meta_of(Ticket).fast_create(item)
    assert fast is not None
    general = create_values(meta_of(Ticket), item)  # (the fast path again: compare shape)
    assert list(fast) == [n for n in ("title", "id", "at", "due") if n in general]
    assert "id" in fast if "id" in kw else "id" not in fast
    assert isinstance(fast["at"], datetime) and fast["at"].tzinfo is UTC
    for k, v in kw.items():
        assert fast[k] == v


@pytest.mark.parametrize("kw", [
    {"id": True}, {"id": 2**63}, {"id": "3"},
    {"due": datetime(2020, 1, 1)},  # naive: the general path makes it UTC
    {"due": datetime(2020, 1, 1, tzinfo=timezone(timedelta(hours=2)))},
])
def test_other_values_take_the_general_path(kw):
    item = Ticket(title="t", **kw)
    assert meta_of(Ticket).fast_create(item) is None
    try:
        out = create_values(meta_of(Ticket), item)
    except ValidationError:
        return
    if "due" in kw:
        assert out["due"].tzinfo is UTC and out["due"] == kw["due"].replace(
            tzinfo=kw["due"].tzinfo or UTC)
    else:
        assert type(out["id"]) is int


def test_fast_create_all_gives_what_fast_create_gives_per_item():
    from storeroom import Create
    meta = meta_of(Ticket)
    when = datetime(2020, 1, 1, tzinfo=UTC)
    edits = [Create(Ticket(title="a", at=when)), Create(Ticket(title="b", id=3, at=when)),
             Create(Ticket(title="c", due=when, at=when))]
    assert meta.fast_create_all(edits) == [meta.fast_create(e.item) for e in edits]
    assert meta.fast_create_all([]) == []
    late = Ticket(title="d", at=when)
    late.due = datetime(2020, 1, 1)  # naive: the general path decides
    assert meta.fast_create_all([*edits, Create(late)]) is None
    assert meta.fast_create_all([Create({"title": "x"})]) is None  # not an instance
    gone = Ticket(title="e")
    del gone.title
    with pytest.raises(KeyError):  # as fast_create: the general path names it
        meta.fast_create_all([Create(gone)])

"""The generated fast create handles sequence keys and datetimes exactly as the general
path does: the same values, or None (the general path decides, and names problems)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from storeroom import generated, stored
from storeroom.errors import ValidationError
from storeroom.model.fastpath import _never
from storeroom.model.stored import meta_of
from storeroom.store.prepare import checked_create_values, create_values


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


def _rows_of(meta, names):
    from storeroom.backends.sql.codec import value_encoder
    from storeroom.model.fastpath import make_fast_rows
    return make_fast_rows(meta, names, value_encoder(meta, "sqlite"))


def test_fast_rows_give_what_fast_create_gives_per_item_in_order_and_encoded():
    from storeroom import Create
    meta = meta_of(Ticket)
    names = ["due", "title", "at"]  # an INSERT's order, the sequence key left out
    rows = _rows_of(meta, names)
    when = datetime(2020, 1, 1, tzinfo=UTC)
    edits = [Create(Ticket(title="a", at=when)), Create(Ticket(title="c", due=when, at=when))]
    values, params = rows(edits)
    assert values == [tuple(meta.fast_create(e.item)[n] for n in names) for e in edits]
    # the datetimes encoded for SQLite, None left None; the values themselves not
    iso = "2020-01-01T00:00:00.000000+00:00"
    assert params == [(None, "a", iso), (iso, "c", iso)]
    assert values[1][0] is when
    assert rows([]) == ([], [])


def test_fast_rows_without_encoders_are_the_parameters_themselves():
    from storeroom import Create

    @stored
    class Plain:
        title: str
        n: int = 0
        id: int = generated.sequence()

    values, params = _rows_of(meta_of(Plain), ["n", "title"])([Create(Plain(title="x"))])
    assert values == [(0, "x")] and params is values


def test_fast_rows_send_items_the_general_path_decides_to_it():
    from storeroom import Create
    meta = meta_of(Ticket)
    rows = _rows_of(meta, ["title", "at", "due"])
    when = datetime(2020, 1, 1, tzinfo=UTC)
    good = Create(Ticket(title="a", at=when))
    assert rows([good, Create(Ticket(title="b", id=3, at=when))]) is None  # key given
    late = Ticket(title="d", at=when)
    late.due = datetime(2020, 1, 1)  # naive: the general path decides
    assert rows([good, Create(late)]) is None
    assert rows([Create({"title": "x"})]) is None  # not an instance
    gone = Ticket(title="e")
    del gone.title
    with pytest.raises(AttributeError):  # as fast_create: the general path names it
        rows([Create(gone)])
    # an attribute left out of the names (other than the backend's sequence): no fast rows
    assert _rows_of(meta, ["title", "at"]) is _never


# reading attributes (``item.name``) instead of the instance's __dict__ -----------------
@stored
class Defaults:
    title: str
    id: int = generated.sequence()
    n: int = 3
    tag: str = "t"
    at: datetime = generated.created_at()


@stored
class Described:
    id: int = generated.sequence()
    title: str = ""

    @property
    def shout(self) -> str:  # no stored attribute: reading by attribute stays exact
        return self.title.upper()


class _Loud:
    def __get__(self, obj: object, owner: type) -> str:
        return "LOUD"


@pytest.mark.parametrize("model", [Ticket, Defaults, Described])
def test_plain_models_are_read_by_attribute(model):
    from storeroom.model.fastpath import _reads_by_attribute
    assert _reads_by_attribute(meta_of(model))


@pytest.mark.parametrize("kw", [{}, {"n": 5, "tag": "u"}, {"id": 9}])
def test_a_missing_attribute_reads_as_the_general_path_does(kw):
    # a dataclass leaves a plain default as a class attribute: read by attribute, an
    # instance lacking it reads the default, which is what the general path makes of it
    meta = meta_of(Defaults)
    when = datetime(2020, 1, 1, tzinfo=UTC)
    for gone in ("n", "tag", "id", "at"):
        item = Defaults(title="x", at=when, **kw)
        delattr(item, gone)
        fast = meta.fast_create(item)
        slow = checked_create_values(meta, item)
        assert fast is not None
        if gone == "at":  # generated anew: the same kind of value
            assert fast.keys() == slow.keys() and fast["at"].tzinfo is UTC
        else:
            assert fast == slow, gone
    item = Defaults(title="x")
    del item.title  # required: the general path names it
    with pytest.raises(AttributeError):
        meta.fast_create(item)
    with pytest.raises(ValidationError):
        create_values(meta, item)


def test_classes_that_look_attributes_up_otherwise_are_read_from_their_dict():
    from storeroom.model.fastpath import _reads_by_attribute

    @stored
    class Hooked:
        id: int = generated.sequence()
        title: str = ""

        def __getattr__(self, name: str) -> str:
            return "made up"

    @stored
    class Shadowed:
        id: int = generated.sequence()
        title: str = ""

    type.__setattr__(Shadowed, "title", _Loud())  # a descriptor in the class's way
    assert not _reads_by_attribute(meta_of(Hooked))
    assert not _reads_by_attribute(meta_of(Shadowed))
    item = Hooked(title="a")
    del item.title  # read from the dict: missing, the default; never the hook's value
    with pytest.raises(KeyError):
        meta_of(Hooked).fast_create(item)
    assert create_values(meta_of(Hooked), item) == {"title": ""}

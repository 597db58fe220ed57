"""The generated SQL row builders (``sql.codec``): a result's rows unpacked into locals
and a bool written inline give exactly what converting each value gives (``bool(v)``,
None kept where the attribute is optional), one item per row, where the driver returns
ints for booleans."""

from __future__ import annotations

import pytest

from storeroom import Create, generated, open_store, stored
from storeroom.backends.sql.codec import row_builder, rows_builder
from storeroom.model.stored import meta_of


@stored(key="id")
class Flagged:
    id: int
    flag: bool
    maybe: bool | None = None
    label: str = ""


NAMES = ("id", "flag", "maybe", "label")
# what drivers hand back for booleans (ints, bools from a bool-typed expression) and
# values no storeroom write makes but a table written by others may hold
ROWS = [(1, 0, None, "a"), (2, 1, 0, "b"), (3, 2, 1, "c"), (4, -1, 7, "d"),
        (5, True, False, "e"), (6, False, True, "")]


@pytest.mark.parametrize("dialect", ["sqlite", "mysql"])  # (psycopg returns bools)
def test_rows_builder_gives_what_row_builder_and_bool_give(dialect: str) -> None:
    meta = meta_of(Flagged)
    many = rows_builder(meta, NAMES, dialect)(ROWS)
    one = [row_builder(meta, NAMES, dialect)(r) for r in ROWS]
    assert [vars(i) for i in many] == [vars(i) for i in one]
    for item, (k, flag, maybe, label) in zip(many, ROWS, strict=True):
        assert type(item) is Flagged
        assert vars(item) == {"id": k, "flag": bool(flag),
                              "maybe": None if maybe is None else bool(maybe), "label": label}
        assert type(item.flag) is bool
    assert rows_builder(meta, NAMES, "sqlite")([]) == []


@stored(key="id")
class Shown:
    id: int
    flag: bool

    @property
    def shown(self) -> str:
        return f"#{self.id}"


@stored(key="id")
class Guarded:
    id: int
    flag: bool

    def __setattr__(self, name: str, value: object) -> None:
        if name == "id" and "id" in self.__dict__:
            raise AttributeError("the id is set once")
        object.__setattr__(self, name, value)


@pytest.mark.parametrize("model", [Flagged, Shown, Guarded])
def test_items_built_from_rows_equal_items_made(model: type) -> None:
    # attribute by attribute where that is plain, else the __dict__ assigned: the same
    # items either way (a class's own __setattr__ is not run; a property is left alone)
    meta = meta_of(model)
    names = meta.stored_names
    rows = [(1, 1, None, "x")[:len(names)], (2, 0, True, "")[:len(names)]]
    many = rows_builder(meta, names, "sqlite")(rows)
    one = [row_builder(meta, names, "sqlite")(r) for r in rows]
    assert many == one
    made = [model(**{n: (bool(v) if n in ("flag", "maybe") and v is not None else v)
                     for n, v in zip(names, r, strict=True)}) for r in rows]
    assert many == made and [vars(i) for i in many] == [vars(i) for i in made]
    if model is Shown:
        assert many[0].shown == "#1"


@stored(key="id")
class Counted:
    id: int = generated.sequence()
    flag: bool = False
    label: str = ""


@stored(key="id")
class CountedGuarded:
    id: int = generated.sequence()
    flag: bool = False
    label: str = ""

    def __setattr__(self, name: str, value: object) -> None:
        if name == "id" and "id" in self.__dict__:
            raise AttributeError("the id is set once")
        object.__setattr__(self, name, value)


@pytest.mark.parametrize("model", [Counted, CountedGuarded])
def test_items_of_a_run_of_creates_equal_items_read(model: type, tmp_path) -> None:
    # a batch of creates only on SQLite (``create_run``, ``SqlCore.keyed_items``):
    # attribute by attribute where that is plain, else the __dict__ assigned; either
    # way the items returned are those read back, attributes in the class's order
    s = open_store(model, f"sqlite:///{tmp_path}/t.db")
    try:
        out = s.edit_batch([Create(model(flag=i % 2 == 0, label=f"l{i}")) for i in range(5)])
        assert [r.ok for r in out] == [True] * 5
        ids = [r.item.id for r in out]
        assert ids == list(range(ids[0], ids[0] + 5))
        for r in out:
            got = s.read(r.item.id)
            assert type(r.item) is model and r.item == got
            assert list(vars(r.item).items()) == list(vars(got).items())
    finally:
        s.close()

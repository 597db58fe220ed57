"""The generated SQL row builders (``sql.codec``): a result's rows unpacked into locals
and a bool written inline give exactly what converting each value gives (``bool(v)``,
None kept where the attribute is optional), one item per row, where the driver returns
ints for booleans."""

from __future__ import annotations

import pytest

from storeroom import stored
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

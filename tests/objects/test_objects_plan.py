"""The pure steps of a query set (objects/plan.py): slices, orders, shapes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from storeroom.objects.plan import (
    DICTS,
    FLAT,
    TUPLES,
    QueryState,
    create_values,
    index_of,
    replace,
    reversed_order,
    shape,
    sliced,
)


def test_a_slice_of_a_slice_narrows_it() -> None:
    s = sliced(QueryState(), slice(5, 15))
    assert (s.start, s.stop) == (5, 15)
    assert (sliced(s, slice(2, 4)).start, sliced(s, slice(2, 4)).stop) == (7, 9)
    assert (sliced(s, slice(8, 50)).start, sliced(s, slice(8, 50)).stop) == (13, 15)
    assert (sliced(s, slice(20, None)).start, sliced(s, slice(20, None)).stop) == (25, 25)
    assert sliced(QueryState(), slice(None, 3)).stop == 3
    assert index_of(s, 2) == (7, 8)
    with pytest.raises(IndexError):
        index_of(s, 10)
    for bad in (slice(-1, None), slice(None, -1)):
        with pytest.raises(ValueError):
            sliced(QueryState(), bad)
    with pytest.raises(ValueError):
        sliced(QueryState(), slice(0, 4, 2))
    with pytest.raises(ValueError):
        index_of(QueryState(), -1)
    with pytest.raises(TypeError):
        index_of(QueryState(), "1")  # type: ignore[arg-type]


def test_state_is_an_immutable_value() -> None:
    s = QueryState()
    t = replace(s, order=("x",), engine="e")
    assert s == QueryState() and t.order == ("x",) and t.engine == "e"
    with pytest.raises(AttributeError):
        t.order = ()  # type: ignore[misc]


def test_orders_and_created_values() -> None:
    assert reversed_order(("-a", "b"), ("id",)) == ("a", "-b")
    assert reversed_order((), ("k1", "k2")) == ("-k1", "-k2")
    assert create_values({"name": "x", "age__gte": 3, "id__eq": 4}, {"age": 5}) == {
        "name": "x", "id": 4, "age": 5}


def test_shapes_and_distinct_rows() -> None:
    items = [SimpleNamespace(a=1, b=[1]), SimpleNamespace(a=1, b=[1]),
             SimpleNamespace(a=2, b={"k": 1})]
    assert shape(QueryState(mode=DICTS, fields=("a",), distinct=True), items) == [
        {"a": 1}, {"a": 2}]
    assert shape(QueryState(mode=TUPLES, fields=("a", "b"), distinct=True), items) == [
        (1, [1]), (2, {"k": 1})]
    assert shape(QueryState(mode=FLAT, fields=("a",)), items) == [1, 1, 2]


def test_keyword_lookups_go_to_the_store_as_given_unless_they_name_its_parameters() -> None:
    assert QueryState(where=({"owner": "ann"},)).lookups() == {"owner": "ann"}
    for name in ("where", "order_by", "limit", "after", "query"):
        state = QueryState(where=({name: 1},))
        assert state.lookups() is None and state.node() is not None
    assert QueryState(where=({"a": 1}, {"b": 2})).lookups() is None

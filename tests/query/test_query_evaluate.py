"""Local evaluation: the reference semantics (two-valued logic, literal % and _, case)."""

from __future__ import annotations

import enum

import pytest

from storeroom import Q, attr, matches, stored
from storeroom.query import And, Cond, Not, Or, compile_local, sort_items


class Color(enum.Enum):
    RED = "red"
    BLUE = "Blue"


@stored
class Item:
    id: int
    s: str = ""
    o: str | None = None
    n: int | None = None
    c: Color | None = None


def it(**kw):
    kw.setdefault("id", 1)
    return Item(**kw)


@pytest.mark.parametrize(("where", "item", "want"), [
    # two-valued logic: ne / not_in / ~ match None
    (Q(n__ne=1), it(n=None), True),
    (Q(n__ne=1), it(n=1), False),
    (Q(n__ne=1), it(n=2), True),
    (Q(n__not_in=[1, 2]), it(n=None), True),
    (Q(n__not_in=[1, 2]), it(n=2), False),
    (~Q(n=1), it(n=None), True),
    (~Q(n__gt=1), it(n=None), True),
    (~Q(o__contains="a"), it(o=None), True),
    (Q(n=1), it(n=None), False),
    (Q(n__lt=1), it(n=None), False),
    (Q(n__gte=-(2**63)), it(n=None), False),
    (Q(n__range=(0, 9)), it(n=None), False),
    (Q(n__in=[1]), it(n=None), False),
    (Q(n__in=[1, None]), it(n=None), True),
    (Q(n__not_in=[1, None]), it(n=None), False),
    (Q(n=None), it(n=None), True),
    (Q(n__isnull=False), it(n=0), True),
    (Q(o__contains="a"), it(o=None), False),
    (Q(o__icontains=""), it(o=None), False),
    (Q(o__icontains=""), it(o=""), True),
    # % and _ are literal
    (Q(s__contains="%"), it(s="100%"), True),
    (Q(s__contains="%"), it(s="100"), False),
    (Q(s__contains="a%c"), it(s="abc"), False),
    (Q(s__startswith="a_"), it(s="abc"), False),
    (Q(s__startswith="a_"), it(s="a_c"), True),
    (Q(s__endswith="_"), it(s="a"), False),
    (Q(s__iexact="A_C"), it(s="abc"), False),
    (Q(s__iexact="A_C"), it(s="a_c"), True),
    (Q(s__icontains="\\"), it(s="a\\b"), True),
    (Q(s__contains="'"), it(s="it's"), True),
    (Q(s__contains="*"), it(s="abc"), False),
    (Q(s__contains="[a]"), it(s="a"), False),
    # case
    (Q(s="Milk"), it(s="milk"), False),
    (Q(s__contains="Milk"), it(s="buy milk"), False),
    (Q(s__icontains="Milk"), it(s="buy MILK"), True),
    (Q(s__startswith="b"), it(s="Buy"), False),
    (Q(s__istartswith="b"), it(s="Buy"), True),
    (Q(s__endswith="K"), it(s="milk"), False),
    (Q(s__iendswith="K"), it(s="milk"), True),
    (Q(s__iexact="MILK"), it(s="milk"), True),
    (Q(s__iexact="MILK"), it(s="milk "), False),
    (Q(s__icontains="é"), it(s="ÉCOLE"), True),
    (Q(s__contains="é"), it(s="ÉCOLE"), False),
    (Q(s__iexact="straße"), it(s="STRASSE"), False),  # lower(), not casefold()
    (Q(s__iexact="ß"), it(s="ẞ"), True),
    (Q(s="a"), it(s="a "), False),  # no trailing-space padding
    (Q(s__lt="b"), it(s="B"), True),  # code point order
    (Q(s__gt="z"), it(s="é"), True),
    # enums compare by value, text operators on string values
    (Q(c="Blue"), it(c=Color.BLUE), True),
    (Q(c=Color.BLUE), it(c=Color.BLUE), True),
    (Q(c__icontains="blu"), it(c=Color.BLUE), True),
    (Q(c__contains="blu"), it(c=Color.BLUE), False),
    (Q(c__in=["red"]), it(c=Color.RED), True),
    (Q(c__ne="red"), it(c=None), True),
    # combinations
    (Q(n=1) & Q(s="a"), it(n=1, s="a"), True),
    (Q(n=1) & Q(s="a"), it(n=1, s="b"), False),
    (Q(n=2) | Q(s="a"), it(n=1, s="a"), True),
    (~(Q(n=2) | Q(s="a")), it(n=None, s="b"), True),
    (Q(), it(), True),
    (~Q(), it(), False),
    (~~Q(), it(), True),
    (attr("n").range(1, 3), it(n=3), True),
    (attr("n").range(1, 3), it(n=4), False),
    ({"n__gt": 0, "s": "a"}, it(n=1, s="a"), True),
    (Q(n="2"), it(n=2), True),  # coerced first, as a store does
])
def test_matches(where, item, want):
    assert matches(where, item) is want


def test_compile_local_raw_nodes():
    item = it(n=None, s="x")
    assert compile_local(And(()))(item) is True
    assert compile_local(Or(()))(item) is False
    assert compile_local(Not(Cond("n", "eq", 1)))(item) is True
    assert compile_local(Cond("n", "ne", 1))(item) is True
    assert compile_local(Cond("n", "isnull", True))(item) is True
    assert compile_local(Or((Cond("s", "eq", "y"), Cond("s", "eq", "x"))))(item) is True
    with pytest.raises(TypeError):
        compile_local("nope")  # type: ignore[arg-type]


def test_sort_items_none_last_in_both_directions():
    items = [it(id=1, n=3), it(id=2), it(id=3, n=1), it(id=4), it(id=5, n=2)]
    assert [i.id for i in sort_items(items, [("n", False), ("id", False)])] == [3, 5, 1, 2, 4]
    assert [i.id for i in sort_items(items, [("n", True), ("id", False)])] == [1, 5, 3, 2, 4]
    assert [i.id for i in sort_items(items, [("n", True), ("id", True)])] == [1, 5, 3, 4, 2]
    assert sort_items([], [("n", True)]) == []


def test_sort_items_multi_key_and_code_points():
    names = ["b", "B", "a", "é", "Z", "", "a ", None, "ab"]
    items = [it(id=i, s="g" if i % 2 else "h", o=n) for i, n in enumerate(names)]
    got = sort_items(items, [("s", True), ("o", False), ("id", False)])
    want = sorted(items, key=lambda i: (-ord(i.s), i.o is None, i.o or "", i.id))
    assert got == want
    by_o = [i.o for i in sort_items(items, [("o", False)])]
    assert by_o == ["", "B", "Z", "a", "a ", "ab", "b", "é", None]
    assert [i.o for i in sort_items(items, [("o", True)])] == [
        "é", "b", "ab", "a ", "a", "Z", "B", "", None]


def test_sort_items_enum_by_value():
    items = [it(id=1, c=Color.RED), it(id=2, c=None), it(id=3, c=Color.BLUE)]
    assert [i.id for i in sort_items(items, [("c", False)])] == [3, 1, 2]  # "Blue" < "red"
    assert [i.id for i in sort_items(items, [("c", True)])] == [1, 3, 2]

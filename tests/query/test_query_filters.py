"""Filters: three spellings, one AST; simplification; coercion; InvalidFilter."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from storeroom import InvalidFilter, Q, attr, field, stored
from storeroom.model import meta_of
from storeroom.query import (
    EVERYTHING,
    NOTHING,
    OPERATORS,
    And,
    Cond,
    Not,
    Or,
    build_filter,
    lookups_node,
    parse_lookup,
    parse_order,
    prepare,
    simplify,
    to_node,
)


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@stored
class Task:
    id: int
    owner: str = ""
    title: str = ""
    done: bool = False
    priority: int = 0
    score: float = 0.0
    ref: uuid.UUID | None = None
    at: datetime | None = None
    color: Color = Color.RED
    maybe: str | None = None
    tags: list[str] = field(default_factory=list)
    hidden: str = field(default="", store=False)
    unsorted: int = field(default=0, sortable=False)


M = meta_of(Task)


def prep(where=None, **lookups):
    return build_filter(M, where, None, lookups)


def test_operators():
    assert OPERATORS == {"eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "contains",
                         "icontains", "startswith", "istartswith", "endswith", "iendswith",
                         "iexact", "isnull", "range"}


def test_three_spellings_one_ast():
    lookups = dict(done=False, title__icontains="milk", priority__gte=2)
    a = prep(**lookups)
    b = prep(Q(**lookups))
    c = prep((attr("done") == False) & attr("title").icontains("milk")  # noqa: E712
             & (attr("priority") >= 2))
    d = prep(Q(done=False) & Q(title__icontains="milk") & Q(priority__gte=2))
    e = prep(lookups)  # a dict of lookups
    want = And((Cond("done", "eq", False), Cond("title", "icontains", "milk"),
                Cond("priority", "gte", 2)))
    assert a == b == c == d == e == want


def test_mixed_spelling():
    got = prep(Q(done=False) & (Q(title__icontains="milk") | ~Q(owner="bob")))
    assert got == And((Cond("done", "eq", False),
                       Or((Cond("title", "icontains", "milk"),
                           Not(Cond("owner", "eq", "bob"))))))
    got = prep(attr("title").startswith("Mi") & (attr("priority") > 2))
    assert got == And((Cond("title", "startswith", "Mi"), Cond("priority", "gt", 2)))


@pytest.mark.parametrize(("expr", "op", "value"), [
    (attr("priority") == 1, "eq", 1), (attr("priority") != 1, "ne", 1),
    (attr("priority") < 1, "lt", 1), (attr("priority") <= 1, "lte", 1),
    (attr("priority") > 1, "gt", 1), (attr("priority") >= 1, "gte", 1),
    (attr("priority").eq(1), "eq", 1), (attr("priority").ne(1), "ne", 1),
    (attr("priority").in_([1, 2]), "in", [1, 2]),
    (attr("priority").not_in([1, 2]), "not_in", [1, 2]),
    (attr("priority").range(1, 3), "range", (1, 3)),
    (attr("title").contains("a"), "contains", "a"),
    (attr("title").icontains("a"), "icontains", "a"),
    (attr("title").startswith("a"), "startswith", "a"),
    (attr("title").istartswith("a"), "istartswith", "a"),
    (attr("title").endswith("a"), "endswith", "a"),
    (attr("title").iendswith("a"), "iendswith", "a"),
    (attr("title").iexact("a"), "iexact", "a"),
    (attr("maybe").isnull(), "isnull", True), (attr("maybe").isnull(False), "isnull", False),
])
def test_attr_expressions(expr, op, value):
    assert isinstance(expr, Q)
    assert expr.node.op == op and expr.node.value == value
    name = expr.node.attr
    assert Q(**{f"{name}__{op}": value}) == expr


def test_parse_lookup():
    assert parse_lookup("title", 1) == Cond("title", "eq", 1)
    assert parse_lookup("title__icontains", "x") == Cond("title", "icontains", "x")
    assert parse_lookup("title__like", "x") == Cond("title", "like", "x")
    assert lookups_node({}) == EVERYTHING


def test_q_basics():
    assert Q().node == EVERYTHING
    assert Q(a=1) == Q(a=1) and hash(Q(a=1)) == hash(Q(a=1)) and Q(a=1) != Q(a=2)
    assert Q(a=1, b=2).node == And((Cond("a", "eq", 1), Cond("b", "eq", 2)))
    assert Q(Q(a=1), b=2).node == And((Cond("a", "eq", 1), Cond("b", "eq", 2)))
    assert "a" in repr(Q(a=1))
    assert to_node(None) == EVERYTHING and to_node(True) == EVERYTHING
    assert to_node(False) == NOTHING
    assert to_node(Cond("a", "eq", 1)) == Cond("a", "eq", 1)
    with pytest.raises(InvalidFilter):  # a storeroom error, never a TypeError
        to_node(42)


# simplification --------------------------------------------------------------------------
def test_simplification():
    x, y = Cond("priority", "eq", 1), Cond("owner", "eq", "a")
    assert prep() == EVERYTHING
    assert prep(Q()) == EVERYTHING
    assert prep(~Q()) == NOTHING
    assert prep(~~Q()) == EVERYTHING
    assert prep(And(())) == EVERYTHING
    assert prep(Or(())) == NOTHING
    assert prep(~~Q(priority=1)) == x
    assert prep(Q(priority=1) & Q()) == x
    assert prep(Q(priority=1) | Q()) == EVERYTHING
    assert prep(Q(priority=1) & ~Q()) == NOTHING
    assert prep(Q(priority=1) | ~Q()) == x
    assert prep(Q(priority=1) & Q(priority=1)) == x
    assert prep((Q(priority=1) & Q(owner="a")) & Q(priority=1)) == And((x, y))
    assert prep(Q(priority=1) | Q(owner="a") | Q(priority=1)) == Or((x, y))
    assert simplify(Not(Not(Not(x)))) == Not(x)
    assert simplify(And((And((x,)), Or((y,))))) == And((x, y))


def test_isnull_and_none_simplify():
    assert prep(maybe=None) == Cond("maybe", "isnull", True)
    assert prep(maybe__ne=None) == Cond("maybe", "isnull", False)
    assert prep(~Q(maybe__isnull=True)) == Cond("maybe", "isnull", False)
    assert prep(title__isnull=True) == NOTHING  # not optional: never None
    assert prep(title__isnull=False) == EVERYTHING
    assert prep(title=None) == NOTHING
    assert prep(maybe__in=["a", None]) == Or((Cond("maybe", "in", ("a",)),
                                              Cond("maybe", "isnull", True)))
    assert prep(maybe__in=[None]) == Cond("maybe", "isnull", True)
    assert prep(maybe__in=[]) == NOTHING
    assert prep(maybe__not_in=[]) == EVERYTHING
    assert prep(maybe__not_in=["a", None]) == And((Cond("maybe", "not_in", ("a",)),
                                                   Cond("maybe", "isnull", False)))
    assert prep(priority__in=[1, 1, 2]) == Cond("priority", "in", (1, 2))
    assert prep(tags=None) == NOTHING


# coercion --------------------------------------------------------------------------------
def test_coercion():
    u = uuid.UUID(int=7)
    assert prep(priority="13") == Cond("priority", "eq", 13)
    assert type(prep(priority="13").value) is int
    assert prep(priority=13.0) == Cond("priority", "eq", 13)
    assert prep(ref=str(u)) == Cond("ref", "eq", u)
    assert type(prep(ref=str(u)).value) is uuid.UUID
    assert prep(score=2) == Cond("score", "eq", 2.0) and type(prep(score=2).value) is float
    assert prep(color="blue") == Cond("color", "eq", Color.BLUE)
    assert prep(color=Color.BLUE) == Cond("color", "eq", Color.BLUE)
    assert prep(priority__in=["1", 2]) == Cond("priority", "in", (1, 2))
    assert prep(priority__range=("1", 3.0)) == Cond("priority", "range", (1, 3))
    local = datetime(2024, 1, 1, 5, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    got = prep(at=local).value
    assert got == datetime(2024, 1, 1, tzinfo=UTC) and got.utcoffset() == timedelta(0)
    got = prep(at="2024-01-01T00:00:00Z").value
    assert got == datetime(2024, 1, 1, tzinfo=UTC)


# InvalidFilter ---------------------------------------------------------------------------
@pytest.mark.parametrize(("where", "named"), [
    (Q(nope=1), "nope"),
    (Q(title__like="x"), "like"),
    (Q(title__icontains__x="x"), "icontains__x"),
    (Q(hidden="x"), "hidden"),
    (Q(priority="high"), "priority"),
    (Q(priority="1.5"), "priority"),
    (Q(priority=1.5), "priority"),
    (Q(priority=2**63), "priority"),
    (Q(ref="not-a-uuid"), "ref"),
    (Q(at="yesterday"), "at"),
    (Q(color="green"), "color"),
    (Q(score=float("nan")), "score"),
    (Q(score__ne=float("nan")), "score"),
    (Q(score__in=[1.0, float("nan")]), "score"),
    (Q(done__contains="x"), "done"),
    (Q(title__contains=1), "title"),
    (Q(priority__in=3), "priority"),
    (Q(priority__in="12"), "priority"),
    (Q(priority__range=(1, 2, 3)), "priority"),
    (Q(priority__range=5), "priority"),
    (Q(priority__lt=None), "priority"),
    (Q(maybe__isnull="yes"), "maybe"),
    (Q(tags=["a"]), "tags"),
    (Q(tags__startswith="a"), "tags"),
    (Q(owner="a") & ~Q(nope=1), "nope"),
    (Q(owner="a") | Q(priority__bogus=1), "bogus"),
])
def test_invalid_filters(where, named):
    with pytest.raises(InvalidFilter) as info:
        prep(where)
    assert named in str(info.value)
    assert isinstance(info.value, ValueError)


def test_invalid_filter_node():
    with pytest.raises(InvalidFilter):
        prepare(M, "not a node")  # type: ignore[arg-type]


# ordering --------------------------------------------------------------------------------
def test_parse_order():
    assert parse_order(M, None) == (("id", False),)
    assert parse_order(M, ()) == (("id", False),)
    assert parse_order(M, "-priority") == (("priority", True), ("id", False))
    assert parse_order(M, ["+owner", "-at", "owner"]) == (
        ("owner", False), ("at", True), ("id", False))
    assert parse_order(M, ["-id", "title"]) == (("id", True), ("title", False))


@pytest.mark.parametrize("order_by", ["nope", "-nope", "tags", "hidden", "unsorted", "", "-",
                                      [None], [3]])
def test_invalid_order(order_by):
    with pytest.raises(InvalidFilter) as info:
        parse_order(M, order_by)
    if isinstance(order_by, str) and order_by.strip("-"):
        assert order_by.strip("-") in str(info.value)

"""Filters of any size and depth in the query layer (issue 8, defects 17 and 18).

Chains of ``|``/``&`` are n-ary as they are built; trees that cannot be flat (``&``
and ``|`` alternating, ``~`` nested) are compared, hashed, printed, prepared, simplified
and evaluated without recursion, far beyond Python's recursion limit.
"""

from __future__ import annotations

import functools
import operator
import sys

import pytest

from storeroom import Q, stored
from storeroom.model import meta_of
from storeroom.query import (
    EVERYTHING,
    NOTHING,
    And,
    Cond,
    Not,
    Or,
    build_filter,
    compile_local,
    fingerprint,
    parse_order,
    prepare,
    simplify,
)
from storeroom.query.ast import conds, depth, fold, weight
from storeroom.store.plan import split_filter

DEEP = 10 * sys.getrecursionlimit()


@stored
class Item:
    id: int
    title: str = ""
    n: int | None = None


META = meta_of(Item)
ITEMS = [Item(id=i, title=f"t{i}", n=None if i % 5 == 0 else i % 7) for i in range(60)]


def not_chain(node, times):
    for _ in range(times):
        node = Not(node)
    return node


def alternating(levels):
    """``&`` and ``|`` alternating: a tree no flattening can make shallow."""
    q = Q(id__lt=3)
    for i in range(levels):
        q = (q | Q(title=f"t{i % 70}")) if i % 2 else (q & ~Q(n=i % 7))
    return q


def reference(q_levels, item):
    """``alternating(q_levels)`` evaluated by a plain loop (the tree's meaning)."""
    ok = item.id < 3
    for i in range(q_levels):
        ok = (ok or item.title == f"t{i % 70}") if i % 2 else (ok and item.n != i % 7)
    return ok


# construction -------------------------------------------------------------------------
def test_q_chains_are_n_ary():
    qs = [Q(title=f"t{i}") for i in range(5000)]
    ors = functools.reduce(operator.or_, qs)
    assert type(ors.node) is Or and len(ors.node.items) == 5000 and depth(ors.node) == 1
    ands = functools.reduce(operator.and_, qs)
    assert type(ands.node) is And and len(ands.node.items) == 5000
    # flattening keeps the order and merges only the same kind
    a, b, c = Q(id=1), Q(id=2), Q(id=3)
    assert ((a | b) | (c | a)).node == Or((a.node, b.node, c.node, a.node))
    assert ((a & b) | c).node == Or((And((a.node, b.node)), c.node))
    assert (a & (b & c)).node == And((a.node, b.node, c.node))


def test_long_chains_take_linear_time_and_views_stay_independent():
    import time
    qs = [Q(title=f"t{i}") for i in range(200_000)]
    start = time.perf_counter()
    ors = functools.reduce(operator.or_, qs)
    assert len(ors.node.items) == 200_000
    assert time.perf_counter() - start < 20  # quadratic copying took minutes
    a = Q(id=1) | Q(id=2)
    b, c = a | Q(id=3), a | Q(id=4)
    d = b | Q(id=5)
    assert [x.node.items[-1].value for x in (a, b, c, d)] == [2, 3, 4, 5]
    assert [len(x.node.items) for x in (a, b, c, d)] == [2, 3, 3, 4]
    assert (a & Q(id=9)).node == And((a.node, Cond("id", "eq", 9)))
    import copy
    import pickle
    fresh = functools.reduce(operator.or_, qs[:5000])  # a chain not yet made a node
    assert pickle.loads(pickle.dumps(fresh)) == fresh
    assert copy.deepcopy(functools.reduce(operator.or_, qs[:5000])) == fresh
    e = c | Q(id=6)  # c's node was made above: e continues from it
    assert [x.value for x in e.node.items] == [1, 2, 4, 6]
    mixed = (Q(id=1) | Q(id=2)) & Q(id=3) | Q(id=4)
    assert mixed.node == Or((And((Or((Cond("id", "eq", 1), Cond("id", "eq", 2))),
                                  Cond("id", "eq", 3))), Cond("id", "eq", 4)))


def test_deep_nodes_compare_hash_and_print():
    x = Cond("id", "eq", 1)
    deep, same, other = not_chain(x, DEEP), not_chain(x, DEEP), not_chain(x, DEEP + 1)
    assert deep == same and hash(deep) == hash(same)
    assert deep != other and not_chain(Cond("id", "eq", 2), DEEP) != deep
    assert len({deep, same, other}) == 2
    text = repr(deep)
    assert text.startswith("Not(item=Not(item=") and text.endswith(repr(x) + ")" * DEEP)
    mixed = alternating(DEEP).node
    assert mixed == alternating(DEEP).node and hash(mixed) == hash(alternating(DEEP).node)
    assert repr(mixed) == repr(alternating(DEEP).node)
    assert fingerprint("s", mixed, ()) == fingerprint("s", alternating(DEEP).node, ())
    assert fingerprint("s", mixed, ()) != fingerprint("s", alternating(DEEP - 1).node, ())


def test_repr_is_the_dataclass_repr():
    x, y = Cond("a", "eq", 1), Cond("b", "in", ("x", "y"))
    assert repr(And(())) == "And(items=())"
    assert repr(Or((x,))) == f"Or(items=({x!r},))"
    assert repr(And((x, Not(y)))) == f"And(items=({x!r}, Not(item={y!r})))"
    assert repr(Q(a=1) | ~Q(b=2)) == ("Q(Or(items=(Cond(attr='a', op='eq', value=1), "
                                      "Not(item=Cond(attr='b', op='eq', value=2)))))")


def test_walks_of_deep_trees():
    node = alternating(DEEP).node
    assert depth(node) == DEEP + 1  # the innermost ~ is one more level
    assert len(conds(node)) == DEEP + 1 == weight(node)
    assert fold(node, lambda c: 1, lambda n, parts: sum(parts)) == DEEP + 1
    # leaves left to right
    assert fold(Or((Cond("a", "eq", 1), And((Cond("b", "eq", 2), Cond("c", "eq", 3))))),
                lambda c: c.attr, lambda n, parts: "".join(parts)) == "abc"


# preparation and simplification ---------------------------------------------------------
def test_prepare_and_simplify_deep_trees():
    node = build_filter(META, alternating(DEEP))
    assert depth(node) >= DEEP // 2  # still deep: nothing to flatten
    assert simplify(node) == node
    x = Cond("id", "eq", 1)
    assert simplify(not_chain(x, DEEP)) == x
    assert simplify(not_chain(x, DEEP + 1)) == Not(x)
    assert prepare(META, not_chain(Cond("id", "eq", "1"), DEEP + 1)) == Not(x)


def test_or_of_equalities_becomes_in():
    assert build_filter(META, Q(title="a") | Q(title="b") | Q(title="a")) == Cond(
        "title", "in", ("a", "b"))
    got = build_filter(META, Q(id=1) | Q(title="a") | Q(id__in=[2, 3]) | Q(id=1) | Q(n__gt=1))
    assert got == Or((Cond("id", "in", (1, 2, 3)), Cond("title", "eq", "a"),
                      Cond("n", "gt", 1)))
    ors = functools.reduce(operator.or_, [Q(title=f"t{i}") for i in range(5000)])
    assert build_filter(META, ors) == Cond("title", "in", tuple(f"t{i}" for i in range(5000)))
    # an And of ne / not_in on one attribute is one not_in
    assert build_filter(META, Q(id__ne=1) & Q(id__ne=2) & Q(id__not_in=[3, 1])) == Cond(
        "id", "not_in", (1, 2, 3))
    # an equality inside an And is not merged with one outside it
    assert build_filter(META, (Q(id=1) & Q(title="a")) | Q(id=2)) == Or((
        And((Cond("id", "eq", 1), Cond("title", "eq", "a"))), Cond("id", "eq", 2)))
    for where in [Q(id=1) | Q(id=2) | Q(n=3), Q(id__ne=4) & Q(id__ne=5),
                  Q(n=None) | Q(n=2) | Q(n=3)]:
        keep, raw = compile_local(build_filter(META, where)), where.node
        assert [keep(i) for i in ITEMS] == [_naive(raw, i) for i in ITEMS]


def _naive(node, item):
    """A tiny recursive evaluator of unprepared shallow trees (the tests' own oracle)."""
    if isinstance(node, Cond):
        v = getattr(item, node.attr)
        if node.op == "eq":
            return v == node.value
        if node.op == "ne":
            return v != node.value
        raise AssertionError(node.op)
    if isinstance(node, And):
        return all(_naive(n, item) for n in node.items)
    if isinstance(node, Or):
        return any(_naive(n, item) for n in node.items)
    return not _naive(node.item, item)


def test_simplify_keeps_unhashable_unprepared_values():
    a, b = Cond("id", "in", [1, 2]), Cond("id", "in", [1, 2])
    assert simplify(Or((a, b, Cond("id", "eq", 3)))) == Or((a, Cond("id", "eq", 3)))
    many = tuple(Cond("id", "in", [i]) for i in range(20))
    assert simplify(Or(many + many)) == Or(many)


# local evaluation -----------------------------------------------------------------------
@pytest.mark.parametrize("levels", [10, 60, 1000, DEEP])
def test_local_evaluation_of_deep_trees(levels):
    keep = compile_local(build_filter(META, alternating(levels)))
    assert [keep(i) for i in ITEMS] == [reference(levels, i) for i in ITEMS]


def test_local_evaluation_of_deep_negation():
    base = Cond("n", "eq", 3)
    for times in (DEEP, DEEP + 1):
        keep = compile_local(not_chain(base, times))  # not simplified: evaluated as is
        assert [keep(i) for i in ITEMS] == [(i.n == 3) is (times % 2 == 0) for i in ITEMS]
    assert compile_local(not_chain(EVERYTHING, DEEP + 1))(ITEMS[0]) is False
    assert compile_local(not_chain(NOTHING, DEEP + 1))(ITEMS[0]) is True


# planning --------------------------------------------------------------------------------
def test_split_moves_what_does_not_fit_to_local():
    small, big = Cond("n", "eq", 1), Cond("id", "in", tuple(range(50)))
    mid = Cond("title", "in", ("a", "b", "c"))
    node = And((small, big, mid))
    always = lambda n: True  # noqa: E731
    split = split_filter(node, always, lambda n: weight(n) <= 10)
    assert split.native == And((small, mid)) and split.local == big
    split = split_filter(node, always, lambda n: weight(n) <= 1)
    assert split.native == small and split.local == And((big, mid))
    split = split_filter(Or((small, big)), always, lambda n: weight(n) <= 10)
    assert split.native == EVERYTHING and split.local == Or((small, big))
    assert split_filter(node, always, lambda n: True).all_native
    order = parse_order(META, ["id"])
    assert order  # the same split serves ordered searches (nothing order-specific here)


def _random_tree(rng, levels):
    """A random tree whose every level mixes a deeper subtree with shallow parts."""
    leaf = lambda: Cond(rng.choice(["id", "n"]), rng.choice(["lt", "gt", "eq", "ne"]),  # noqa: E731
                        rng.randrange(0, 60))
    node = leaf()
    for _ in range(levels):
        parts = [node] + [leaf() for _ in range(rng.randrange(0, 3))]
        rng.shuffle(parts)
        kind = rng.choice([And, Or, Not, And, Or])
        node = Not(node) if kind is Not else kind(tuple(parts))
    return node


def _slow(node, item):
    """Post-order evaluation with an explicit stack, no short-circuit (a second oracle)."""
    done = {}
    stack = [(node, False)]
    while stack:
        n, seen = stack.pop()
        if isinstance(n, Cond):
            v = getattr(item, n.attr)
            done[id(n)] = v is not None and {"lt": v < n.value, "gt": v > n.value,
                                             "eq": v == n.value, "ne": True}[n.op] \
                if n.op != "ne" else v != n.value
        elif not seen:
            stack.append((n, True))
            stack.extend((k, False) for k in (n.items if not isinstance(n, Not) else (n.item,)))
        elif isinstance(n, Not):
            done[id(n)] = not done[id(n.item)]
        else:
            vals = [done[id(k)] for k in n.items]
            done[id(n)] = all(vals) if isinstance(n, And) else any(vals)
    return done[id(node)]


@pytest.mark.parametrize("seed", range(6))
def test_local_evaluation_of_random_deep_trees(seed):
    import random
    rng = random.Random(seed)
    node = _random_tree(rng, rng.choice([40, 300, 3000]))
    keep = compile_local(node)
    assert [keep(i) for i in ITEMS] == [_slow(node, i) for i in ITEMS]

"""Search planning shared by every backend: which part runs natively, which locally."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..query.ast import EVERYTHING, And, Cond, Node, weight
from ..query.evaluate import plain


@dataclass(frozen=True, slots=True)
class Split:
    """A filter split into the part a backend runs and the part evaluated locally."""

    native: Node
    local: Node

    @property
    def all_native(self) -> bool:
        """True when nothing is left to evaluate locally."""
        return self.local == EVERYTHING


def split_filter(node: Node, can_compile: Callable[[Node], bool],
                 fits: Callable[[Node], bool] | None = None,
                 relax: Callable[[Node], Node | None] | None = None) -> Split:
    """Split a prepared filter: the conjuncts a backend can compile, and the rest.

    ``can_compile(node)`` says whether a node compiles natively at all (operators,
    kinds, depth); ``fits(node)``, when given, whether a native node is within the size
    limits of one request (parameters, expression length). While the native conjuncts
    together do not fit, the largest moves to the local part: a filter too big for the
    backend is evaluated locally over what the rest selects, never refused. ``relax``
    (e.g. :func:`list_superset`) may give, for a conjunct left local, a weaker condition
    that does compile: it joins the native part, so that less is fetched.
    """
    if can_compile(node) and (fits is None or fits(node)):
        return Split(node, EVERYTHING)
    items = node.items if type(node) is And else (node,)
    native: list[Node] = []
    local: list[Node] = []
    for n in items:
        (native if can_compile(n) else local).append(n)
    if fits is not None:
        while native and not fits(_and(native)):
            big = max(native, key=weight)
            native.remove(big)
            local.append(big)
    if relax is not None:
        for n in local:
            weak = relax(n)
            if weak is not None and can_compile(weak) and (
                    fits is None or fits(_and([*native, weak]))):
                native.append(weak)
    return Split(_and(native), _and(local))


def list_superset(node: Node) -> Node | None:
    """For a long ``in`` list: the range from its least to its greatest value, which
    every item it matches lies in (None for any other node)."""
    if type(node) is not Cond or node.op != "in" or len(node.value) < 2:
        return None
    values = node.value
    try:
        lo, hi = min(values, key=plain), max(values, key=plain)
    except TypeError:  # values that do not order (an Enum of mixed values)
        return None
    return Cond(node.attr, "range", (lo, hi))


def _and(items: list[Node]) -> Node:
    if not items:
        return EVERYTHING
    return items[0] if len(items) == 1 else And(tuple(items))


def check_limit(limit: Any, max_page: int) -> int:
    """A page size: default ``max_page``; below 1 or above it is a ValidationError."""
    from ..errors import ValidationError
    if limit is None:
        return max_page
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= max_page:
        raise ValidationError.one("limit", limit, "range",
                                  f"limit must be an int from 1 to {max_page}, got {limit!r}")
    return limit

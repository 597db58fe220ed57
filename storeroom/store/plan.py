"""Search planning shared by every backend: which part runs natively, which locally."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..query.ast import EVERYTHING, And, Node


@dataclass(frozen=True, slots=True)
class Split:
    """A filter split into the part a backend runs and the part evaluated locally."""

    native: Node
    local: Node

    @property
    def all_native(self) -> bool:
        """True when nothing is left to evaluate locally."""
        return self.local == EVERYTHING


def split_filter(node: Node, can_compile: Callable[[Node], bool]) -> Split:
    """Split a prepared filter: the conjuncts a backend can compile, and the rest."""
    if can_compile(node):
        return Split(node, EVERYTHING)
    if isinstance(node, And):
        native = [n for n in node.items if can_compile(n)]
        local = [n for n in node.items if not can_compile(n)]
        return Split(_and(native), _and(local))
    return Split(EVERYTHING, node)


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

"""``Query``: what a backend's ``find`` is asked for (filter, order, limit, cursor position).

The Store decodes a page's cursor into the ordered values of the previous page's last
item (``after``) and hands it to the backend next to the filter, instead of folding the
keyset condition into the filter: each backend builds "comes after" in its own terms (a
SQL row-value or expanded comparison, DynamoDB's ``ExclusiveStartKey``, a sorted-set
range on Redis, an ``$or`` on MongoDB), and nothing has to be recovered from a filter.

``keyset()`` is the backend-neutral meaning: the filter node of "comes after ``after``"
with ``None`` sorting last in both directions (``after_filter``); backends that have no
better way use it, and local evaluation uses it too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .ast import EVERYTHING, And, Node
from .cursor import after_filter
from .order import Order


@dataclass(frozen=True, slots=True)
class Query:
    """One ``find``: items matching ``node`` in ``order``, at most ``limit``, and (when
    ``after`` is set) only those that come after the item whose order values are
    ``after`` (one value per entry of ``order``, the key attributes last)."""

    node: Node
    order: Order = ()
    limit: int | None = None
    after: tuple[Any, ...] | None = None

    def __post_init__(self) -> None:
        if self.after is not None and len(self.after) != len(self.order):
            raise ValueError("a cursor position has one value per ordered attribute")

    def keyset(self, nullable: Callable[[str], bool] | None = None) -> Node:
        """The keyset condition of ``after`` as a filter node (``EVERYTHING`` without one);
        ``nullable(name)``, when given, says which attributes can be None at all (the None
        group of the others is left out)."""
        if self.after is None:
            return EVERYTHING
        return after_filter(self.order, self.after, nullable)

    def where(self, nullable: Callable[[str], bool] | None = None) -> Node:
        """The filter and the keyset condition together, as one node."""
        if self.after is None:
            return self.node
        from .prepare import simplify
        return simplify(And((self.node, self.keyset(nullable))))

    def uniform(self) -> bool | None:
        """The direction shared by every ordered attribute (True: descending), or None when
        the directions are mixed (or there is no order)."""
        dirs = {d for _, d in self.order}
        return dirs.pop() if len(dirs) == 1 else None

    def replace(self, **changes: Any) -> Query:
        """A copy with some fields changed."""
        from dataclasses import replace
        return replace(self, **changes)


__all__ = ["Query"]

"""Prepared filters of a store's commonest searches, remembered (sans-I/O).

``search(owner="ann", done=False)`` on every request prepared the same filter again:
the lookups parsed, each attribute and operator checked, each value coerced. A store
keeps what ``build_filter`` made for lookups of plain values (str, int, bool, None) on
the model's own attributes, keyed by the names, the values *and their types* (``False``
and ``0`` are equal keys of a dict, not equal filters), so the same call gives the same
(immutable) node without the work. Anything else (``where`` nodes, free text, lists,
floats, paths through JSON values or relations) is prepared every time, as before.

Each remembered filter also has a small dict of what the store prepared from it for its
backend (``entry``): a count's or a first page's statement, so that the same call also
skips the backend's planning and compiling (``SqlBackend.prepare``).
"""

from __future__ import annotations

from typing import Any

from ..model.stored import ModelMeta
from ..model.types import JSON
from ..query.ast import OPERATORS, Node
from ..query.prepare import build_filter

#: the value types whose equality is exact and whose filter depends on the value alone
_PLAIN = frozenset({str, int, bool, type(None)})

#: how many distinct lookups a store remembers (then it prepares the others each time)
MEMO_SIZE = 256


class FilterMemo:
    """``build_filter`` for one model, remembering the filters of plain lookups."""

    __slots__ = ("_meta", "_nodes")

    def __init__(self, meta: ModelMeta) -> None:
        self._meta = meta
        self._nodes: dict[tuple[Any, ...], tuple[Node, dict[Any, Any]]] = {}

    def build(self, where: Any, query: str | None, lookups: dict[str, Any]) -> Node:
        """The validated filter of a search, as ``build_filter`` gives it."""
        return self.entry(where, query, lookups)[0]

    def entry(self, where: Any, query: str | None, lookups: dict[str, Any]
              ) -> tuple[Node, dict[Any, Any] | None]:
        """``build``'s filter and, when it is remembered, the dict of what the store
        prepared from it (empty at first; the store fills it in), else None."""
        if where is not None or query is not None or not lookups:
            return build_filter(self._meta, where, query, lookups), None
        key = self._key(lookups)
        if key is None:
            return build_filter(self._meta, None, None, lookups), None
        got = self._nodes.get(key)
        if got is None:
            node = build_filter(self._meta, None, None, lookups)  # raises: nothing kept
            if len(self._nodes) >= MEMO_SIZE:
                return node, None
            got = self._nodes[key] = (node, {})
        return got

    def _key(self, lookups: dict[str, Any]) -> tuple[Any, ...] | None:
        """The memo key of ``lookups``, or None when they are not all plain lookups on
        the model's own stored attributes."""
        attrs = self._meta.attrs
        key: list[Any] = []
        for name, value in lookups.items():
            t = type(value)
            if t not in _PLAIN:
                return None
            attr, sep, op = name.partition("__")
            a = attrs.get(attr)
            if a is None or not a.store or a.kind == JSON or (sep and op not in OPERATORS):
                return None
            key.append((name, t, value))
        return tuple(key)

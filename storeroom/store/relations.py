"""Sans-I/O parts of relation integrity, shared by every backend's store front: which
keys a write references, the filters that find referencing items, and the errors.

The store front (``_async/store.py``) does the I/O: it reads the referenced keys before
a write (``ValidationError`` rule ``reference`` for a missing one), and before a delete
plans ``on_delete`` over every ``Ref`` pointing at the model (``registry.refs_to``):
``block`` refuses (``Conflict``, edit code ``referenced``) before anything is deleted,
``cascade`` deletes the referencing items (planned to any depth first, so a cascade
that reaches a blocked item is blocked as a whole), ``nullify`` sets their columns to
None, ``ignore`` does nothing.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable
from typing import Any

from ..errors import Conflict, ValidationError
from ..model.relations import RefInfo
from ..model.stored import ModelMeta
from ..query.q import Q
from .fexpr import F

#: the edit code of a delete that a ``Ref(on_delete="block")`` refuses
REFERENCED = "referenced"


def referenced(meta: ModelMeta, rows: Iterable[dict[str, Any]],
               skip: set[tuple[Any, ...]] | None = None,
               exclude: frozenset[str] = frozenset()
               ) -> list[tuple[RefInfo, list[tuple[Any, ...]]]]:
    """Per Ref of ``meta``, the distinct target keys (as key parts) the validated
    ``rows`` (create values or update changes) set. A row that leaves a Ref unchanged,
    sets it to None, or computes it with an ``F`` expression, references nothing here;
    ``skip`` holds keys of ``meta``'s own model known to exist (created in the same
    batch: a tree's parent and child); ``exclude`` names Refs not to check (a FOREIGN
    KEY enforces them)."""
    out = []
    rows = list(rows)
    for ref in meta.refs.values():
        if ref.name in exclude:
            continue
        seen: dict[tuple[Any, ...], None] = {}
        for values in rows:
            parts = tuple(values.get(c) for c in ref.columns)
            if any(p is None or isinstance(p, F) for p in parts):
                continue
            if skip and ref.target is meta.cls and parts in skip:
                continue
            seen[parts] = None
        if seen:
            out.append((ref, list(seen)))
    return out


def missing_reference(meta: ModelMeta, ref: RefInfo, parts: tuple[Any, ...]
                      ) -> ValidationError:
    """The error of a write referencing a key no target item has."""
    key = parts[0] if len(parts) == 1 else parts
    return ValidationError.one(ref.name, key, "reference",
                               f"no {ref.target.__name__} has the key {key!r}", model=meta.name)


def refers_to(ref: RefInfo, keys: list[tuple[Any, ...]]) -> Any:
    """A filter (``Q``) on ``ref.model``: the items whose ``ref`` is one of ``keys``."""
    cols = ref.columns
    if len(cols) == 1:
        return Q(**{f"{cols[0]}__in": [k[0] for k in keys]})
    return functools.reduce(operator.or_, (Q(**dict(zip(cols, k, strict=True))) for k in keys))


def keys_filter(meta: ModelMeta, keys: list[tuple[Any, ...]]) -> Any:
    """A filter (``Q``) on ``meta``'s model: the items at ``keys``."""
    names = meta.key.attrs
    if len(names) == 1:
        return Q(**{f"{names[0]}__in": [k[0] for k in keys]})
    return functools.reduce(operator.or_, (Q(**dict(zip(names, k, strict=True))) for k in keys))


def sets_refs(meta: ModelMeta, values: dict[str, Any]) -> bool:
    """True when ``values`` (create values or update changes) write a Ref column."""
    return any(c in values for ref in meta.refs.values() for c in ref.columns)


def expr_on_ref(meta: ModelMeta, values: dict[str, Any]) -> bool:
    """True when ``values`` compute a Ref column with an ``F`` expression: its result is
    known only over the item as it is, so it is checked then (``referenced`` skips it)."""
    return any(isinstance(values.get(c), F) for ref in meta.refs.values()
               for c in ref.columns)


def cyclic(ref: RefInfo) -> bool:
    """True when ``ref`` closes a cycle of Refs between models (not a Ref of a model to
    itself): SQL gives one edge of such a cycle no FOREIGN KEY, and which edge depends
    on which table was created first, so storeroom checks every edge of it itself."""
    from ..model.stored import meta_of
    if ref.target is ref.model:
        return False
    seen: set[type] = set()
    todo = [ref.target]
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        try:
            refs = meta_of(cls).refs.values()
        except Exception:  # noqa: BLE001 - not configured: no store of it, no FK either
            continue
        for r in refs:
            if r.on_delete == "ignore" or r.target is cls:
                continue
            if r.target is ref.model:
                return True
            todo.append(r.target)
    return False


def is_reference_error(exc: BaseException) -> bool:
    """True for the ``ValidationError`` a backend raises when its FOREIGN KEY refuses a
    write (rule ``reference``, no field: the store front names the field)."""
    return isinstance(exc, ValidationError) and any(
        e.get("rule") == "reference" and e.get("field") is None for e in exc.errors)


class Blocked(Conflict):
    """A delete refused by a ``Ref(on_delete="block")``: the item is still referenced.
    ``.ref`` is the Ref, ``.by`` the key of one referencing item."""

    def __init__(self, meta: ModelMeta, ref: RefInfo, target_key: tuple[Any, ...] | None,
                 by: tuple[Any, ...]) -> None:
        self.ref = ref
        self.by = by[0] if len(by) == 1 else by
        what = (f"the {meta.cls.__name__} {target_key[0] if len(target_key) == 1 else target_key!r}"
                if target_key is not None else f"a {meta.cls.__name__}")
        super().__init__(f"{meta.name}: cannot delete {what}: it is referenced by the "
                         f"{ref.model.__name__} {self.by!r} ({ref.model.__name__}.{ref.name}, "
                         "on_delete='block'); nothing was deleted")


__all__ = ["REFERENCED", "Blocked", "cyclic", "expr_on_ref", "is_reference_error",
           "keys_filter", "missing_reference", "referenced", "refers_to", "sets_refs"]

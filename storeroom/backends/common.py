"""Pieces every backend shares: store meta, outcomes of edits, applying changes locally."""

from __future__ import annotations

from typing import Any

from ..errors import Conflict
from ..model.stored import ModelMeta
from ..query.ast import OPERATORS
from ..store.types import DUPLICATE_KEY, MISSING_KEY, StoreMeta

Outcome = tuple[bool, Any, str | None, str | None]
"""What a backend reports per edit: (ok, item, code, detail)."""


def ok(item: Any) -> Outcome:
    """A successful edit."""
    return (True, item, None, None)


def missing(key: Any) -> Outcome:
    """An edit whose key does not exist (or whose precondition failed)."""
    return (False, None, MISSING_KEY, f"no item with key {key!r}")


def duplicate(exc: Conflict | str) -> Outcome:
    """An edit that would duplicate a key or unique attribute."""
    return (False, None, DUPLICATE_KEY, str(exc))


def make_store_meta(meta: ModelMeta, backend: str, *, native_ops: frozenset[str] = OPERATORS,
                    atomic_batch: bool = True, max_batch: int = 1000, max_page: int = 1000,
                    transactions: bool = False) -> StoreMeta:
    """The ``StoreMeta`` of a store of ``meta`` on a backend."""
    return StoreMeta(name=meta.name, model=meta.cls, key_attrs=meta.key.attrs,
                     native_ops=native_ops, atomic_batch=atomic_batch, max_batch=max_batch,
                     max_page=max_page, transactions=transactions, backend=backend)


def key_dict(meta: ModelMeta, key: tuple[Any, ...]) -> dict[str, Any]:
    """A key tuple as {attribute: value}."""
    return dict(zip(meta.key.attrs, key, strict=True))

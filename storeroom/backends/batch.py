"""Sans-I/O pieces of batch and upsert planning shared by every backend.

An upsert is a full write: on an existing item every stored attribute is written except
the key and the attributes that cannot be updated (``generated.created_at`` and
``updatable=False`` ones keep their stored value); on a missing key it is a create.
"""

from __future__ import annotations

from typing import Any

from ..model.stored import ModelMeta


def kept_names(meta: ModelMeta) -> frozenset[str]:
    """Attributes an upsert of an existing item leaves as stored (not updatable)."""
    kept = getattr(meta, "_upsert_kept", None)
    if kept is None:
        kept = frozenset(a.name for a in meta.stored_attrs
                         if not a.is_key and not a.updatable)
        meta._upsert_kept = kept  # type: ignore[attr-defined]  # asked on every upsert
    return kept


def written_names(meta: ModelMeta, names: Any) -> list[str]:
    """Of ``names`` (the attributes of an upsert's values), those written on an existing
    item: not the key, not the kept ones."""
    kept = kept_names(meta)
    keys = set(meta.key.attrs)
    return [n for n in names if n not in keys and n not in kept]


def upserted(meta: ModelMeta, current: dict[str, Any] | None, values: dict[str, Any]
             ) -> dict[str, Any]:
    """The stored values after upserting ``values`` over ``current`` (None: no item)."""
    if current is None:
        return dict(values)
    kept = kept_names(meta)
    return {**values, **{n: current.get(n) for n in kept if n in current or n in values}}


def upsert_key(meta: ModelMeta, values: dict[str, Any]) -> tuple[Any, ...] | None:
    """The key of an upsert's values; None when part of it is left to the backend
    (a sequence): then the upsert is a create."""
    try:
        return tuple(values[n] for n in meta.key.attrs)
    except KeyError:
        return None

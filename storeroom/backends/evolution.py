"""Schema evolution on the non-SQL backends, without I/O: what an item stored before an
attribute was added reads as.

An item written by an older model has no value of an attribute added since. Reading it
gives the attribute's default (``default`` or ``default_factory``); an attribute without
a default cannot be read: :class:`~storeroom.errors.BackendError` naming the table, the
item and the attribute, instead of a bare ``KeyError`` / ``AttributeError`` later.
(SQL gets the same result from a migration's server default.)

On MongoDB and DynamoDB a None value is stored as an absent attribute, so there an absent
*optional* attribute reads None (its default cannot be told from a stored None); only a
non-optional one reads its default. A server-side filter, count, order or ``F`` update
would not see that default in the stored item, so on those two backends
``create_tables()`` writes it once into the stored items that lack it (the *backfill*:
:func:`backfilled` names the attributes) and records the attributes done in a small
bookkeeping record (the *marker*), so that a later ``create_tables()`` reads one record
and writes nothing.
"""

from __future__ import annotations

from typing import Any

from ..errors import BackendError, Conflict
from ..model.attrs import Attr
from ..model.stored import ModelMeta
from .common import unique_text, unique_value


def absent_value(meta: ModelMeta, name: str, where: Any = None) -> Any:
    """The value of attribute ``name`` of an item stored without it: its default.

    ``where`` (the item's key or stored form) only names the item in the error raised
    when the attribute has no default.
    """
    a = meta.attrs[name]
    if a.has_default:
        return a.default_value()
    shown = "" if where is None else f" {where!r}"
    raise BackendError(
        f"{meta.name}: the stored item{shown} has no value of the required attribute "
        f"{name!r} (added to the model after the item was written, without a default); "
        f"give {name!r} a default or write the value into the stored items")


def fill_absent(meta: ModelMeta, values: dict[str, Any], where: Any = None) -> dict[str, Any]:
    """``values`` (a stored item's attribute dict, changed in place and returned) with
    every stored attribute it lacks set to :func:`absent_value`."""
    for a in meta.stored_attrs:
        if a.name not in values:
            values[a.name] = absent_value(meta, a.name, where)
    return values


class UniqueScan:
    """Finds the values of a unique set that several stored items share, over items fed
    in batches (``add``), before a uniqueness structure is built for items written
    without it. ``error()`` is the ``Conflict`` naming the first duplicates, or None."""

    def __init__(self, meta: ModelMeta, names: tuple[str, ...]) -> None:
        self.meta = meta
        self.names = names
        self.owners: dict[tuple[Any, ...], Any] = {}
        self.dups: list[tuple[tuple[Any, ...], Any, Any]] = []

    def add(self, key: Any, values: dict[str, Any]) -> None:
        """Note that the item at ``key`` holds ``values``."""
        v = unique_value(self.names, values)
        if v is None:
            return
        first = self.owners.setdefault(v, key)
        if first != key and len(self.dups) < 5:
            self.dups.append((v, first, key))

    def error(self) -> Conflict | None:
        """The ``Conflict`` naming the duplicates found, or None."""
        if not self.dups:
            return None
        shown = "; ".join(f"{unique_text(self.names, v)} in items {a!r} and {b!r}"
                          for v, a, b in self.dups)
        return Conflict(f"{self.meta.name}: cannot make {', '.join(self.names)} unique: "
                        f"stored items share values ({shown}); nothing was built")


#: the name of the bookkeeping record of a store's backfilled defaults is this prefix and
#: the store's table / collection name (MongoDB ``storeroom_meta``; DynamoDB's companion
#: table has its own per table)
DEFAULTS_MARKER = "defaults"


def backfilled(meta: ModelMeta) -> tuple[Attr, ...]:
    """The attributes whose default ``create_tables`` writes into stored items that lack
    them, on backends that store None as an absent attribute (MongoDB, DynamoDB): every
    stored, non-key, non-optional attribute with a default. (An absent optional attribute
    reads None there, which filters on None match natively: nothing to write.)"""
    return tuple(a for a in meta.stored_attrs
                 if a.has_default and not a.optional and not a.is_key)


def backfill_plan(meta: ModelMeta, done: set[str] | frozenset[str]
                  ) -> tuple[tuple[Attr, ...], tuple[str, ...]]:
    """``(todo, gone)`` against the marker's names ``done``: the attributes to backfill
    now (declared, not yet recorded) and the recorded names the model no longer
    declares (removed from the marker, so that adding one back backfills again the
    items written while it was not declared)."""
    names = backfilled(meta)
    todo = tuple(a for a in names if a.name not in done)
    declared = {a.name for a in names}
    gone = tuple(sorted(n for n in done if n not in declared))
    return todo, gone

"""Pieces every backend shares: store meta, outcomes of edits, applying changes locally."""

from __future__ import annotations

from typing import Any

from ..errors import BackendError, Conflict, StoreroomError, ValidationError
from ..model.stored import ModelMeta
from ..query.ast import OPERATORS, Node
from ..query.evaluate import compile_local
from ..store.types import DUPLICATE_KEY, INVALID, MISSING_KEY, PRECONDITION_FAILED, StoreMeta

Outcome = tuple[bool, Any, str | None, str | None]
"""What a backend reports per edit: (ok, item, code, detail)."""


def ok(item: Any) -> Outcome:
    """A successful edit."""
    return (True, item, None, None)


def missing(key: Any) -> Outcome:
    """An edit whose key does not exist."""
    return (False, None, MISSING_KEY, f"no item with key {key!r}")


def precondition_failed(key: Any) -> Outcome:
    """An edit of an existing item whose precondition does not hold."""
    return (False, None, PRECONDITION_FAILED, f"the precondition does not hold for {key!r}")


def refusal(meta: ModelMeta, key: tuple[Any, ...], item: Any, pre: Node | None
            ) -> Outcome | None:
    """Why an update (or delete) of the item at ``key``, read as ``item`` (None: there is
    none), must not be written: ``missing`` or ``precondition_failed``; None when it may."""
    if item is None:
        return missing(key_dict(meta, key))
    if pre is not None and not compile_local(pre)(item):
        return precondition_failed(key_dict(meta, key))
    return None


def duplicate(exc: Conflict | str) -> Outcome:
    """An edit that would duplicate a key or unique attribute."""
    return (False, None, DUPLICATE_KEY, str(exc))


def invalid(exc: ValidationError) -> Outcome:
    """An edit whose values are refused (an ``F`` result out of its bounds, ...)."""
    return (False, None, INVALID, str(exc))


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


def sets_unique(meta: ModelMeta, values: dict[str, Any]) -> bool:
    """True when changes give every attribute of a unique set a value: at most one item
    can take them (None is no value; any number of items may hold it)."""
    return any(all(values.get(n) is not None for n in names) for names in meta.unique_sets)


def touches_unique(meta: ModelMeta, values: dict[str, Any]) -> bool:
    """True when changes write an attribute of a unique set (the write may conflict)."""
    return any(n in values for names in meta.unique_sets for n in names)


def unique_value(names: tuple[str, ...], values: Any) -> tuple[Any, ...] | None:
    """The values of the unique set ``names`` in ``values`` (a dict), or None when one
    is None or missing: such an item is not constrained by the set (SQL's rule)."""
    out = tuple(values.get(n) for n in names)
    return None if any(v is None for v in out) else out


def unique_id(names: tuple[str, ...]) -> str:
    """The name of a unique set in a backend's structures: the attribute's name for one
    attribute (as before sets), the names joined by ``+`` for several."""
    return "+".join(names)


def unique_text(names: tuple[str, ...], value: tuple[Any, ...]) -> str:
    """``a='x', b=2``: a unique set's values in error messages."""
    return ", ".join(f"{n}={v!r}" for n, v in zip(names, value, strict=True))


def unique_for_many(meta: ModelMeta, values: dict[str, Any]) -> Conflict:
    """The error of an ``update_where`` that would give several items one unique value."""
    names = "; ".join(unique_text(ns, v) for ns in meta.unique_sets
                      if (v := unique_value(ns, values)) is not None)
    return Conflict(f"{meta.name}: update_where would give several items {names}")


def unreadable(model: str, exc: BaseException) -> BackendError:
    """The error of a stored value its converter refuses when an item is built from what
    the database returned (text another program wrote where a date belongs): every
    backend's, raised ``from`` the converter's exception."""
    return BackendError(f"a stored {model} could not be read as an item: "
                        f"{type(exc).__name__}: {exc}")


def unreadable_env(meta: ModelMeta) -> dict[str, Any]:
    """The names a generated decoder's ``UNREADABLE_EXCEPT`` needs in its namespace."""
    return {"unreadable": unreadable, "model": meta.name, "StoreroomError": StoreroomError}


# the end of a generated decoder's outermost ``try`` (four spaces in): a stored value its
# converter refuses is ``unreadable``'s error; storeroom's own (an absent attribute
# without a default) pass unchanged. A ``try`` costs nothing in CPython 3.11 until
# something is raised.
UNREADABLE_EXCEPT = ("    except StoreroomError:\n        raise\n"
                     "    except Exception as exc:\n"
                     "        raise unreadable(model, exc) from exc\n")

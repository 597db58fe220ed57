"""Turn what users pass to a store into validated values: creates, updates, keys."""

from __future__ import annotations

from typing import Any

from ..errors import ValidationError
from ..model.relations import fill_columns, ref_changes
from ..model.stored import ModelMeta
from ..model.text import has_surrogate
from ..model.types import INT, STR
from ..model.undefined import UNDEFINED
from ..model.validate import error, raise_if
from .fexpr import F, check


def create_values(meta: ModelMeta, item: Any) -> dict[str, Any]:
    """Validated stored values for creating ``item``; generated values filled in."""
    if type(item) is meta.cls:
        try:
            fast = meta.fast_create(item)
        except (KeyError, AttributeError):  # missing an attribute: the general path
            fast = None
        if fast is not None:
            return fast
    return checked_create_values(meta, item)


def checked_create_values(meta: ModelMeta, item: Any) -> dict[str, Any]:
    """``create_values`` by the general path (after ``meta.fast_create`` gave up, or
    for an item that is not exactly of the model's class): coerces values and names
    every problem."""
    if not isinstance(item, meta.cls):
        raise ValidationError.one(None, item, "type",
                                  f"expected a {meta.cls.__name__}, got {type(item).__name__}",
                                  model=meta.name)
    if meta.refs:
        fill_columns(meta, item)
    d = item.__dict__
    errors: list[dict[str, Any]] = []
    out: dict[str, Any] = {}
    checkers = meta.checkers
    for a in meta.stored_attrs:
        name = a.name
        v = d.get(name, UNDEFINED)
        gen = a.generator
        if v is UNDEFINED:
            if gen is not None:
                if gen.on_create is not None:
                    v = gen.on_create()
                    if a.kind == STR and not isinstance(v, str):
                        v = str(v)
                else:  # sequence: the backend assigns it
                    continue
            elif a.has_default:
                v = a.default_value()
            else:
                errors.append(error(a, v, "required", "a value is required"))
                continue
        elif not a.creatable and gen is None and not (a.has_default and v == a.default_value()):
            # (the dataclass fills in the default: that is not "setting" the attribute)
            errors.append(error(a, v, "not_creatable", f"{name} cannot be set on create"))
            continue
        out[name] = checkers[name](v, errors)
    raise_if(errors, meta.name)
    return out


def update_changes(meta: ModelMeta, changes: dict[str, Any], *, full: bool = False
                   ) -> dict[str, Any]:
    """Validated changes of an update; on_update generators added.

    In a partial update, naming a key, non-updatable or unknown attribute is an error;
    a full update (``full=True``) just leaves them out. ``UNDEFINED`` means unchanged.
    """
    errors: list[dict[str, Any]] = []
    out: dict[str, Any] = {}
    if meta.refs and any(n in meta.refs for n in changes):
        changes = ref_changes(meta, changes)
    for name, v in changes.items():
        if v is UNDEFINED:
            continue
        a = meta.attrs.get(name)
        if a is None:  # (str(): a changes dict passed to update_where may have any keys)
            errors.append(error(str(name), v, "unknown", f"{meta.cls.__name__} has no "
                                                        f"attribute {name!r}"))
            continue
        if not a.store:
            continue
        if a.is_key:
            if full:
                continue
            errors.append(error(a, v, "immutable", f"key attribute {name} cannot be updated"))
            continue
        if not a.updatable or (a.generator is not None and a.generator.on_update is not None):
            if full:
                continue
            errors.append(error(a, v, "not_updatable", f"{name} cannot be updated"))
            continue
        if isinstance(v, F):  # an update expression: evaluated by the backend, atomically
            out[name] = check(meta, name, v, errors)
            continue
        out[name] = meta.checkers[name](v, errors)
    if errors:
        raise_if(errors, meta.name)
    for a in meta.on_update_attrs:
        gen = a.generator
        if gen is not None and gen.on_update is not None:  # (always: on_update_attrs)
            out[a.name] = meta.checkers[a.name](gen.on_update(), errors)
    return out


def full_update_changes(meta: ModelMeta, item: Any) -> tuple[Any, dict[str, Any]]:
    """``(key, changes)`` of a full update from an item."""
    if not isinstance(item, meta.cls):
        raise ValidationError.one(None, item, "type",
                                  f"expected a {meta.cls.__name__}, got {type(item).__name__}",
                                  model=meta.name)
    if meta.refs:
        fill_columns(meta, item)
    key = key_parts(meta, meta.key.of(item))
    d = item.__dict__
    return key, update_changes(meta, {a.name: d.get(a.name, UNDEFINED)
                                      for a in meta.stored_attrs if a.updatable}, full=True)


class NoSuchKey(Exception):  # noqa: N818 - a signal between key_parts and the store front
    """A key no item can have: a str part holding a lone surrogate (see ``model.text``).

    The store front answers as for a missing key (None, False, ``missing_key``)."""


def key_parts(meta: ModelMeta, key: Any) -> tuple[Any, ...]:
    """A user's key as a validated tuple of parts; ``NoSuchKey`` when none can match.

    A key is a value, never a key string (``store.parse_key`` reads those): a str given
    for a str key is the key itself, and a str given for another kind is coerced like
    any value (``"7"`` for an int key is 7).
    """
    attrs = meta.key_attrs
    if len(attrs) == 1:
        a = attrs[0]
        if type(key) is a.inner:
            kind = a.kind
            if kind == INT:
                if -(2**63) <= key < 2**63:
                    return (key,)
            elif kind != STR or key.isascii() or not has_surrogate(key):
                return (key,)
            else:
                raise NoSuchKey
        return (_coerce_key(meta, key),)
    return tuple(_coerce_key(meta, key))


def _coerce_key(meta: ModelMeta, key: Any) -> Any:
    try:
        return meta.coerce_key(key)
    except ValidationError as exc:
        if all(e["rule"] == "unicode" for e in exc.errors):
            raise NoSuchKey from None
        raise

"""Lookups into list and nested attributes (sans-I/O, shared by every backend).

``tags__contains="x"`` is membership on a ``list`` attribute; ``address__city="Paris"``
and ``address__zip__startswith="75"`` (or ``attr("address.zip")``) follow nested
dataclass fields and dict keys, any depth. A prepared nested condition names its path
dotted: ``Cond("address.zip", "startswith", "75")``.

Typing of the value at the end of a path:

* **typed**: every step is a dataclass field or the key of a ``dict[str, X]`` and the
  leaf annotation is a scalar (``str``, ``int``, ``datetime``, an Enum...): the filter
  value is coerced to it as for a top-level attribute, and every operator applies.
* **loose**: the path reaches ``Any`` (``dict[str, Any]``, a bare ``dict``, ``object``,
  a union): the value is compared with its own type. A filter value must be a JSON
  scalar (``str``, ``int``, finite ``float``, ``bool``); a stored value matches only a
  value of the same JSON type (``True`` is not ``1``, ``"1"`` is not ``1``; ``1`` and
  ``1.0`` are equal numbers): ``eq``/``in``/order/text operators are false for another
  type, ``ne``/``not_in`` true.
* **list**: only ``contains`` (membership, the value coerced to the element type),
  ``isnull``, and ``eq``/``ne`` None.
* a **dataclass or dict** leaf: only ``isnull`` (and ``eq``/``ne`` None).

A missing key, a ``None`` on the way, or a step into something that is not a dataclass
or dict gives ``None``: ``isnull`` is true, ``ne``/``not_in`` match, nothing else does.
An unknown field of a dataclass is ``InvalidFilter``.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin

from ..errors import InvalidFilter
from ..model.attrs import Attr
from ..model.fields import DEFAULT_OPTIONS, option_values
from ..model.types import (
    BOOL,
    INT,
    JSON,
    SCALAR_KINDS,
    STR,
    is_dataclass_type,
    kind_of,
    unwrap_optional,
)
from .ast import NOTHING, OPERATORS, TEXT_OPERATORS, And, Cond, Node, Or

if TYPE_CHECKING:
    from ..model.stored import ModelMeta

_SEQUENCES = (list, set, frozenset, tuple)
# loose leaves: the JSON scalars a filter value may be
_JSON_SCALARS = (str, int, float, bool)

TYPED, LOOSE, LIST, DOCUMENT = "typed", "loose", "list", "document"


class JsonBool(enum.Enum):
    """A bool filter value of a loose path. ``True == 1`` in Python, so a plain bool
    would make ``Q(meta__k=1) | Q(meta__k=True)`` one condition when simplified or
    compared; an Enum member equals only itself, and ``plain`` (local evaluation, the
    compilers) gives the bool back."""

    FALSE = False
    TRUE = True


@dataclass(frozen=True, slots=True)
class PathInfo:
    """What a dotted path reaches: the root attribute, the keys after it, and the leaf.

    ``shape`` is ``typed`` (a scalar annotation: ``attr`` is a synthetic attribute of
    that type), ``loose`` (the value's own type), ``list`` (``element`` is the element
    annotation, ``element_attr`` its synthetic attribute when the element is a scalar)
    or ``document`` (a dataclass or dict). ``through_dict`` is True when a step is a dict
    key or goes through ``Any``; ``strict`` when every step is a dataclass field or the
    key of a ``dict[str, X]`` (no ``Any`` on the way, no dict whose keys are not ``str``):
    then every value on the way is a mapping or None, never a list, and its keys are the
    path's keys as written, which is what a document store's native path needs.
    """

    root: str
    keys: tuple[str, ...]
    shape: str
    attr: Attr | None
    element: Any
    element_attr: Attr | None
    through_dict: bool
    strict: bool = False


def _strip(tp: Any) -> Any:
    tp, _ = unwrap_optional(tp)
    while get_origin(tp) is typing.Annotated:
        tp = get_args(tp)[0]
        tp, _ = unwrap_optional(tp)
    return tp


@lru_cache(maxsize=1024)
def _hints(tp: type) -> dict[str, Any]:
    try:
        hints = typing.get_type_hints(tp, include_extras=True)
    except Exception as exc:  # noqa: BLE001 - an unresolvable annotation: name it
        raise InvalidFilter(f"cannot resolve the fields of {tp.__name__}: {exc}") from exc
    return {f.name: hints[f.name] for f in dataclasses.fields(tp)}


def _is_loose(tp: Any) -> bool:
    if tp is Any or tp is object:
        return True
    o = get_origin(tp)
    return o is Union or o is types.UnionType or o is typing.Literal


def synthetic_attr(name: str, tp: Any) -> Attr:
    """An ``Attr`` for a nested value of annotation ``tp`` (optional: it may be missing)."""
    return Attr(name=name, annotation=tp, inner=tp, kind=kind_of(tp), optional=True,
                default=None, default_factory=None, is_key=False,
                **option_values(DEFAULT_OPTIONS))


def _shape(name: str, tp: Any) -> tuple[str, Attr | None, Any, Attr | None]:
    if _is_loose(tp):
        return LOOSE, None, None, None
    if kind_of(tp) in SCALAR_KINDS:
        return TYPED, synthetic_attr(name, tp), None, None
    o = get_origin(tp) or tp
    if o in _SEQUENCES:
        args = [a for a in get_args(tp) if a is not Ellipsis]
        el = _strip(args[0]) if len(args) == 1 or (o is tuple and len(set(args)) == 1) \
            else Any
        ea = synthetic_attr(name, el) if not _is_loose(el) and kind_of(el) in SCALAR_KINDS \
            else None
        return LIST, None, el, ea
    return DOCUMENT, None, None, None


@lru_cache(maxsize=4096)
def _resolve(root_tp: Any, root: str, keys: tuple[str, ...]) -> PathInfo:
    tp = _strip(root_tp)
    through_dict = False
    strict = True
    for i, k in enumerate(keys):
        where = ".".join((root, *keys[:i]))
        if not k:
            raise InvalidFilter(f"empty key in the path {'.'.join((root, *keys))!r}")
        if _is_loose(tp):
            through_dict = True
            strict = False
            continue  # Any: the value's own type from here on
        o = get_origin(tp) or tp
        if is_dataclass_type(tp):
            fields = _hints(tp)
            if k not in fields:
                raise InvalidFilter(f"unknown attribute {k!r} of {where} ({tp.__name__}: "
                                    f"{', '.join(fields)})")
            tp = _strip(fields[k])
        elif o is dict:
            through_dict = True
            args = get_args(tp)
            # a dict[int, X] holds 1, not "1": a native path would find the JSON key
            strict = strict and len(args) == 2 and _strip(args[0]) is str
            tp = _strip(args[1]) if len(args) == 2 else Any
        else:
            raise InvalidFilter(f"{where} is not a dataclass or dict: cannot look up {k!r}")
    name = ".".join((root, *keys))
    shape, a, el, ea = _shape(name, tp)
    return PathInfo(root, keys, shape, a, el, ea, through_dict, strict)


DOCUMENT_KINDS = frozenset({STR, INT, BOOL})
"""Leaf kinds a document store compares natively at a nested path: their JSON form is
the value itself (a float may be ``"Infinity"``, a datetime, Decimal, UUID, Enum or bytes
is JSON text that does not compare as the value does)."""


def document_path(meta: ModelMeta, c: Cond) -> PathInfo | None:
    """The path of a nested condition (or of list membership) when a document store
    (MongoDB, DynamoDB) can run it natively with local evaluation's meaning, else None.

    Native: a ``strict`` path (see :class:`PathInfo`) to a ``str``, ``int`` or ``bool``
    leaf (any operator the backend then accepts for that kind), ``contains`` on a list of
    such elements, and ``isnull`` on a scalar or a nested dataclass / dict leaf. Local:
    loose values (their meaning depends on the stored JSON type), other leaf kinds,
    ``isnull`` on a nested list (both servers match a list *holding* null as null).
    """
    info = path_info(meta, c.attr)
    if not info.strict:
        return None
    if c.op == "isnull":
        return info if info.shape != LIST and info.shape != LOOSE else None
    if info.shape == TYPED:
        assert info.attr is not None
        return info if info.attr.kind in DOCUMENT_KINDS else None
    if info.shape == LIST and c.op == "contains":
        ea = info.element_attr
        return info if ea is not None and ea.kind in DOCUMENT_KINDS else None
    return None


def path_info(meta: ModelMeta, name: str) -> PathInfo:
    """The path ``name`` (dotted) of ``meta``'s model, resolved; ``InvalidFilter`` when a
    step does not exist."""
    root, *keys = name.split(".")
    a = meta.attrs.get(root)
    if a is None or not a.store:
        raise InvalidFilter(f"unknown attribute {root!r} in filter {name} on {meta.name}")
    if keys and a.kind != JSON:
        raise InvalidFilter(f"{root} is a {a.kind} attribute: cannot look up "
                            f"{'.'.join(keys)!r} in it")
    return _resolve(a.inner, root, tuple(keys))


def _loose_value(name: str, op: str, v: Any) -> Any:
    if v is None:
        raise InvalidFilter(f"{name}__{op}: None is not a valid value (use isnull)")
    if isinstance(v, JsonBool):
        return v
    if not isinstance(v, _JSON_SCALARS):
        raise InvalidFilter(f"{name}__{op}: {v!r} is not a JSON scalar (str, int, float, "
                            "bool), as a value of a dict attribute must be")
    if isinstance(v, float) and not math.isfinite(v):
        raise InvalidFilter(f"{name}__{op}: {v!r}: JSON holds no infinities or NaN")
    if type(v) is not bool and isinstance(v, int) and not -(2**63) <= v < 2**63:
        raise InvalidFilter(f"{name}__{op}: {v!r} is outside the 64-bit integer range")
    if type(v) is bool:
        return JsonBool(v)
    return v


def _values(name: str, op: str, value: Any) -> list[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidFilter(f"{name}__{op} needs a list of values, got {value!r}")
    return list(value)


def dedupe(values: Iterable[Any]) -> tuple[Any, ...]:
    """Values without repeats, a bool never merged with the number equal to it."""
    return tuple(v for _, v in dict.fromkeys((type(v) is bool, v) for v in values))


def _loose(name: str, op: str, value: Any) -> Node:
    if op == "isnull":
        if not isinstance(value, bool):
            raise InvalidFilter(f"{name}__isnull needs True or False, got {value!r}")
        return Cond(name, op, value)
    if op in ("eq", "ne") and value is None:
        return Cond(name, "isnull", op == "eq")
    if op in ("in", "not_in"):
        values = _values(name, op, value)
        has_none = any(v is None for v in values)
        vs = dedupe(_loose_value(name, op, v) for v in values if v is not None)
        parts: list[Node]
        if op == "in":
            parts = [Cond(name, "in", vs)] if vs else []
            if has_none:
                parts.append(Cond(name, "isnull", True))
            return parts[0] if len(parts) == 1 else Or(tuple(parts))
        parts = [Cond(name, "not_in", vs)] if vs else []
        if has_none:
            parts.append(Cond(name, "isnull", False))
        return parts[0] if len(parts) == 1 else And(tuple(parts))
    if op == "range":
        pair = _values(name, op, value)
        if len(pair) != 2:
            raise InvalidFilter(f"{name}__range needs exactly two values, got {value!r}")
        return Cond(name, op, tuple(_loose_value(name, op, v) for v in pair))
    if op in TEXT_OPERATORS and not isinstance(value, str):
        raise InvalidFilter(f"{name}__{op}: {value!r} is not a str")
    return Cond(name, op, _loose_value(name, op, value))


def prepare_path(meta: ModelMeta, c: Cond) -> Node:
    """A condition on a nested path or a list attribute, validated and coerced."""
    from .prepare import _prepare_on  # prepare imports this module

    raw, op, value = c.attr, c.op, c.value
    parts = [raw] if raw in meta.attrs else raw.split(".") if "." in raw else raw.split("__")
    root = meta.attrs.get(parts[0])
    if op not in OPERATORS and root is not None and root.kind == JSON:
        parts.append(op)  # address__city: the last part is a key, the operator eq
        op = "eq"
    if op not in OPERATORS:
        raise InvalidFilter(f"unknown operator {op!r} in filter {raw}__{op} "
                            f"(operators: {', '.join(sorted(OPERATORS))})")
    name = ".".join(parts)
    info = path_info(meta, name)
    if op == "isnull" or (op in ("eq", "ne") and value is None):
        if len(parts) == 1:  # a top-level list/dict/dataclass attribute
            return _prepare_on(meta, meta.attrs[name], Cond(name, op, value))
        return _loose(name, op, value)
    if info.shape == TYPED:
        assert info.attr is not None
        return _prepare_on(meta, info.attr, Cond(name, op, value))
    if info.shape == LOOSE:
        return _loose(name, op, value)
    if info.shape == LIST:
        if op != "contains":
            raise InvalidFilter(f"{name}__{op}: a list can only be filtered with contains "
                                "(membership) and isnull")
        if info.element_attr is not None:
            ea = info.element_attr
            if ea.is_text and isinstance(value, str):
                from ..model.text import has_surrogate
                if has_surrogate(value):
                    return NOTHING  # no stored string holds a lone surrogate
            from .prepare import coerce_value
            return Cond(name, "contains", coerce_value(ea, op, value))
        return Cond(name, "contains", _loose_value(name, op, value))
    raise InvalidFilter(f"{name}__{op}: a nested document can only be filtered with "
                        "isnull (or look up one of its fields)")

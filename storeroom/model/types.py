"""Attribute kinds: what an annotation means for validation, storage and comparison."""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Union, get_args, get_origin

# Kinds. Scalar kinds compare natively; "json" values are stored as JSON documents.
STR, INT, FLOAT, BOOL, DECIMAL, DATETIME, DATE, UUID, BYTES, ENUM, JSON = (
    "str", "int", "float", "bool", "decimal", "datetime", "date", "uuid", "bytes", "enum", "json",
)
SCALAR_KINDS = frozenset({STR, INT, FLOAT, BOOL, DECIMAL, DATETIME, DATE, UUID, BYTES, ENUM})
ORDERED_KINDS = frozenset({STR, INT, FLOAT, BOOL, DECIMAL, DATETIME, DATE, UUID, BYTES, ENUM})

_SIMPLE: dict[Any, str] = {
    str: STR, int: INT, float: FLOAT, bool: BOOL, Decimal: DECIMAL,
    datetime: DATETIME, date: DATE, uuid.UUID: UUID, bytes: BYTES,
}


def unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    """``(inner, optional)`` for ``X | None`` / ``Optional[X]``; other annotations unchanged."""
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        args = [a for a in get_args(annotation) if a is not type(None)]
        optional = len(args) != len(get_args(annotation))
        if len(args) == 1:
            return args[0], optional
        return Union[tuple(args)], optional  # noqa: UP007 - runtime construction
    if annotation is type(None):
        return annotation, True
    return annotation, False


def kind_of(annotation: Any) -> str:
    """The storeroom kind of a (non-optional) annotation."""
    if annotation in _SIMPLE:
        return _SIMPLE[annotation]
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return ENUM
    if get_origin(annotation) is typing.Annotated:
        return kind_of(get_args(annotation)[0])
    return JSON


def enum_value_kind(enum_cls: type[enum.Enum]) -> str:
    """The kind of an Enum's values (str for mixed or string values, int for int values)."""
    values = [m.value for m in enum_cls]
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return INT
    return STR


def is_dataclass_type(tp: Any) -> bool:
    """True for a dataclass class (not an instance)."""
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)

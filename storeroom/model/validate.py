"""Validation of values written by users: fast exact-type checks, pydantic for the rest.

Reading rows back never comes here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Any, get_args, get_origin

import pydantic

from ..errors import ValidationError
from .attrs import Attr
from .jsonvalues import json_may_hold_text, json_normaliser
from .text import has_surrogate, holds_surrogate, surrogate_message, surrogate_path
from .types import BOOL, BYTES, DATE, DATETIME, DECIMAL, FLOAT, INT, JSON, STR, UUID

_EXACT: dict[str, tuple[type, ...]] = {
    STR: (str,), INT: (int,), FLOAT: (float,), BOOL: (bool,), DECIMAL: (Decimal,),
    BYTES: (bytes,), DATE: (date,),
}

_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1

_RULES = {
    "string_too_long": "max_length", "too_long": "max_length", "bytes_too_long": "max_length",
    "string_too_short": "min_length", "too_short": "min_length", "bytes_too_short": "min_length",
    "greater_than_equal": "ge", "less_than_equal": "le", "greater_than": "ge", "less_than": "le",
    "string_pattern_mismatch": "pattern",
}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@lru_cache(maxsize=4096)
def _adapter(annotation: Any) -> pydantic.TypeAdapter[Any]:
    return pydantic.TypeAdapter(annotation)


def field_adapter(attr: Attr) -> pydantic.TypeAdapter[Any]:
    """The pydantic adapter for an attribute: its annotation plus its constraints."""
    return _field_adapter(attr.annotation, attr.max_length, attr.min_length, attr.ge, attr.le,
                          attr.pattern)


@lru_cache(maxsize=4096)
def _field_adapter(annotation: Any, max_length: Any, min_length: Any, ge: Any, le: Any,
                   pattern: Any) -> pydantic.TypeAdapter[Any]:
    constraints = {k: v for k, v in dict(max_length=max_length, min_length=min_length, ge=ge,
                                         le=le, pattern=pattern).items() if v is not None}
    if constraints:
        return pydantic.TypeAdapter(Annotated[annotation, pydantic.Field(**constraints)])
    return pydantic.TypeAdapter(annotation)


def error(attr: Attr | str, value: Any, rule: str, message: str) -> dict[str, Any]:
    """One entry of ``ValidationError.errors``."""
    name = attr if isinstance(attr, str) else attr.name
    if rule not in message:
        message = f"{message} (rule: {rule})"
    return {"field": name, "value": value, "rule": rule, "message": message}


def to_utc(value: datetime) -> datetime:
    """A datetime in UTC, tz-aware; naive datetimes are taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    if value.tzinfo is UTC:
        return value
    return value.astimezone(UTC)


def make_checker(attr: Attr) -> Callable[[Any, list[dict[str, Any]]], Any]:
    """A function ``check(value, errors) -> value`` for one attribute.

    It returns the (possibly coerced) value, or appends to ``errors``. Values of the
    exact type with no constraint violated take a fast path with no pydantic call.
    """
    exact = _EXACT.get(attr.kind)
    optional = attr.optional
    max_len, min_len, ge, le = attr.max_length, attr.min_length, attr.ge, attr.le
    rx = re.compile(attr.pattern) if attr.pattern else None
    kind = attr.kind
    name = attr.name
    is_str = kind == STR
    # values of a JSON attribute whose annotation leaves their type open (Any, unions)
    # become what a JSON round trip gives, the same on every backend
    normalise = json_normaliser(attr.inner) if kind == JSON else None
    scan = _surrogate_scan(attr)

    def slow(value: Any, errors: list[dict[str, Any]]) -> Any:
        try:
            out = field_adapter(attr).validate_python(value)
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            rule = _RULES.get(first["type"], "type")
            msg = first["msg"]
            if rule == "type":
                msg = f"{_short(value)} is not a valid {_type_name(attr)} ({msg})"
            else:
                msg = f"{_short(value)}: {msg[0].lower() + msg[1:]}"
            errors.append(error(name, value, rule, msg))
            return value
        if kind == DATETIME and out is not None:
            out = to_utc(out)
        if kind == INT and type(out) is int and not _I64_MIN <= out <= _I64_MAX:
            errors.append(error(name, value, "range",
                                f"{_short(value)} is outside the 64-bit integer range"))
        if scan is not None and scan(out):
            where = surrogate_path(out) or ""
            errors.append(error(name, value, "unicode", surrogate_message(where)))
            return value
        if normalise is not None and out is not None:
            out = normalise(out)
        return out

    def check(value: Any, errors: list[dict[str, Any]]) -> Any:
        if value is None:
            if optional:
                return None
            errors.append(error(name, value, "type", f"None is not a valid {_type_name(attr)}"))
            return value
        if exact is not None and type(value) in exact:
            if is_str and not value.isascii() and has_surrogate(value):
                errors.append(error(name, value, "unicode", surrogate_message()))
            elif max_len is not None and len(value) > max_len:
                errors.append(error(name, value, "max_length",
                                    f"{_short(value)} is longer than max_length={max_len}"))
            elif min_len is not None and len(value) < min_len:
                errors.append(error(name, value, "min_length",
                                    f"{_short(value)} is shorter than min_length={min_len}"))
            elif ge is not None and value < ge:
                errors.append(error(name, value, "ge", f"{_short(value)} is less than ge={ge}"))
            elif le is not None and value > le:
                errors.append(error(name, value, "le", f"{_short(value)} is greater than le={le}"))
            elif rx is not None and not rx.search(value):
                errors.append(error(name, value, "pattern",
                                    f"{_short(value)} does not match {attr.pattern!r}"))
            elif kind == INT and not _I64_MIN <= value <= _I64_MAX:
                errors.append(error(name, value, "range",
                                    f"{_short(value)} is outside the 64-bit integer range"))
            elif kind == FLOAT and value != value:
                errors.append(error(name, value, "type", "NaN is not a storable float"))
            return value
        if kind == DATETIME and type(value) is datetime and not (ge or le):
            return to_utc(value)
        if kind == UUID and value.__class__.__name__ == "UUID" and not (ge or le):
            return value
        if kind == FLOAT and type(value) is int and not isinstance(value, bool):
            value = float(value)
            return check(value, errors)
        return slow(value, errors)

    return check


def _surrogate_scan(attr: Attr) -> Callable[[Any], bool] | None:
    """``value -> True when a string in it holds a lone surrogate``; None: none can."""
    if attr.kind == STR:
        return has_surrogate
    if attr.kind != JSON or not json_may_hold_text(attr.inner):
        return None
    inner = attr.inner
    if get_origin(inner) in (list, set, frozenset, tuple) and get_args(inner) in ((str,),
                                                                                 (str, ...)):
        def texts(v: Any) -> bool:  # list[str] and the like: one C-level pass
            joined = "".join(v)
            return not joined.isascii() and has_surrogate(joined)
        return texts
    return holds_surrogate


def _type_name(attr: Attr) -> str:
    inner = attr.inner
    return getattr(inner, "__name__", None) or str(inner)


def raise_if(errors: list[dict[str, Any]], model: str) -> None:
    """Raise ``ValidationError`` when ``errors`` is not empty."""
    if errors:
        raise ValidationError(errors, model=model)

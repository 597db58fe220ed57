"""JSON values (list, dict and dataclass attributes): one encoding for every backend.

Every backend stores such a value as the JSON that :func:`json_adapter` writes: bytes
as base64 (URL-safe alphabet; raw bytes are often not UTF-8), infinities and NaN as the
strings ``"Infinity"``, ``"-Infinity"`` and ``"NaN"`` (JSON has no literal for them,
PostgreSQL's ``jsonb`` and MySQL's ``JSON`` refuse one). Reading it back follows the
annotation. Where the annotation does not say which type a JSON value comes back as
(``Any``, ``object``, unions of several types, a bare ``list`` or ``dict``),
validation already turns the value into what a JSON round trip gives, so that the item
a write returns, and a memory store, hold exactly what every other backend reads back.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, Union, get_args, get_origin

import pydantic

JSON_CONFIG = pydantic.ConfigDict(ser_json_bytes="base64", val_json_bytes="base64",
                                  ser_json_inf_nan="strings")

_EXACT_LEAVES: frozenset[Any] = frozenset({
    str, int, float, bool, type(None), Decimal, datetime, date, time, timedelta, uuid.UUID,
    bytes,
})
_SEQUENCES = (list, set, frozenset, tuple)


@lru_cache(maxsize=4096)
def json_adapter(annotation: Any) -> pydantic.TypeAdapter[Any]:
    """The pydantic adapter that writes and reads JSON values of ``annotation``."""
    try:
        return pydantic.TypeAdapter(annotation, config=JSON_CONFIG)
    except pydantic.PydanticUserError:
        pass
    try:
        # a dataclass takes no config of its own adapter, but does inside a union (None is
        # never written: backends store None as themselves)
        return pydantic.TypeAdapter(annotation | None, config=JSON_CONFIG)
    except (pydantic.PydanticUserError, TypeError):  # a pydantic model: its own config
        return pydantic.TypeAdapter(annotation)


def json_exact(annotation: Any) -> bool:
    """True when a JSON round trip gives back every valid value of ``annotation`` as it was.

    Conservative: False for anything it does not know (``Any``, unions of several
    types, bare containers, custom classes), which then get normalised on validation.
    """
    return _exact(annotation, frozenset())


def _exact(tp: Any, seen: frozenset[Any]) -> bool:
    if tp in _EXACT_LEAVES:
        return True
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return True
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is typing.Annotated:
        return _exact(args[0], seen)
    if origin is typing.Literal:
        return True
    if origin is Union or origin is types.UnionType:
        rest = [a for a in args if a is not type(None)]
        return len(rest) == 1 and _exact(rest[0], seen)
    if origin in _SEQUENCES:
        if not args:
            return False
        items = [a for a in args if a is not Ellipsis]
        return all(_exact(a, seen) for a in items)
    if origin is dict:
        return len(args) == 2 and _exact(args[0], seen) and _exact(args[1], seen)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if tp in seen:  # recursive: not worth proving
            return False
        try:
            hints = typing.get_type_hints(tp)
        except Exception:  # noqa: BLE001 - unresolvable annotations: normalise
            return False
        return all(_exact(hints[f.name], seen | {tp}) for f in dataclasses.fields(tp))
    return False


def mentions_bytes(annotation: Any) -> bool:
    """True when ``bytes`` appears anywhere in ``annotation`` (dataclass fields included)."""
    return _mentions(annotation, (bytes, bytearray))


def json_may_hold_text(annotation: Any) -> bool:
    """True unless a value of ``annotation`` can hold no string (``list[int]``, ...)."""
    return not json_exact(annotation) or _mentions(annotation, (str,))


def _mentions(annotation: Any, wanted: tuple[type, ...]) -> bool:
    stack, seen = [annotation], set()
    while stack:
        tp = stack.pop()
        if tp in wanted:
            return True
        if id(tp) in seen:
            continue
        seen.add(id(tp))
        stack.extend(get_args(tp))
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            try:
                stack.extend(typing.get_type_hints(tp).values())
            except Exception:  # noqa: BLE001 - unresolvable: assume the worst
                return True
    return False


def json_dumper(annotation: Any) -> Callable[[Any], str]:
    """``value -> JSON text``."""
    adapter = json_adapter(annotation)

    def dump(v: Any) -> str:
        return adapter.dump_json(v).decode()
    return dump


def json_python_dumper(annotation: Any) -> Callable[[Any], Any]:
    """``value -> parsed JSON`` (lists, dicts, strings, numbers), as the JSON text holds it."""
    adapter = json_adapter(annotation)

    def dump(v: Any) -> Any:
        return adapter.dump_python(v, mode="json")
    return dump


def json_loader(annotation: Any) -> Callable[[Any], Any]:
    """``JSON text, or JSON a driver already parsed -> value``."""
    adapter = json_adapter(annotation)
    # parsed JSON validates in Python mode, which reads a string as the bytes of its UTF-8
    # text (base64 is only decoded in JSON mode) and may pick another member of a union:
    # such values go back through JSON text
    reparse = mentions_bytes(annotation) or not json_exact(annotation)
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

    def load(v: Any) -> Any:
        if isinstance(v, str | bytes | bytearray):
            return adapter.validate_json(v)
        if reparse:
            return adapter.validate_json(dumps(v))
        return adapter.validate_python(v)
    return load


def json_normaliser(annotation: Any) -> Callable[[Any], Any] | None:
    """``value -> value as a JSON round trip gives it``; None when that is the identity."""
    if json_exact(annotation):
        return None
    adapter = json_adapter(annotation)

    def normalise(v: Any) -> Any:
        return adapter.validate_json(adapter.dump_json(v))
    return normalise

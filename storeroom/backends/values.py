"""Value encodings more than one backend uses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..model.attrs import Attr
from ..model.validate import _adapter


def iso_utc(v: datetime) -> str:
    """A datetime as fixed-width ISO text in UTC (so text order is time order)."""
    if v.tzinfo is not UTC:
        v = v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)
    return v.isoformat(timespec="microseconds")


def json_text_dumper(a: Attr) -> Callable[[Any], str]:
    """``value -> JSON text`` for a list/dict/dataclass attribute (pydantic renders it)."""
    adapter = _adapter(a.inner)

    def dump(v: Any) -> str:
        return adapter.dump_json(v).decode()
    return dump


def json_text_loader(a: Attr) -> Callable[[Any], Any]:
    """``JSON text (or already parsed JSON) -> value`` for a list/dict/dataclass attribute."""
    adapter = _adapter(a.inner)

    def load(v: Any) -> Any:
        if isinstance(v, str | bytes | bytearray):
            return adapter.validate_json(v)
        return adapter.validate_python(v)  # a driver that already parsed JSON
    return load

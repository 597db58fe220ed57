"""Value encodings more than one backend uses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..model.attrs import Attr
from ..model.jsonvalues import json_dumper, json_loader


def iso_utc(v: datetime) -> str:
    """A datetime as fixed-width ISO text in UTC (so text order is time order)."""
    if v.tzinfo is not UTC:
        v = v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)
    return v.isoformat(timespec="microseconds")


def json_text_dumper(a: Attr) -> Callable[[Any], str]:
    """``value -> JSON text`` for a list/dict/dataclass attribute (``model.jsonvalues``)."""
    return json_dumper(a.inner)


def json_text_loader(a: Attr) -> Callable[[Any], Any]:
    """``JSON text (or already parsed JSON) -> value`` for a list/dict/dataclass attribute."""
    return json_loader(a.inner)

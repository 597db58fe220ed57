"""Value encodings more than one backend uses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..model.attrs import Attr
from ..model.jsonvalues import json_dumper, json_loader, json_python_dumper


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


def json_doc_dumper(a: Attr, to_native: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``value -> document`` for a list/dict/dataclass attribute of a document store: the
    parsed JSON that :func:`json_text_dumper` would write, through ``to_native`` (the
    backend's own arrays and maps). A value whose JSON is a string (a union with ``str``)
    is written as JSON text, since a stored string means JSON text to the loader."""
    dump = json_python_dumper(a.inner)
    text = json_dumper(a.inner)

    def enc(v: Any) -> Any:
        j = dump(v)
        return text(v) if isinstance(j, str) else to_native(j)
    return enc


def json_doc_loader(a: Attr, from_native: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The inverse of :func:`json_doc_dumper`; a string is JSON text (also what earlier
    versions stored for every such value), anything else the backend's document."""
    load = json_loader(a.inner)

    def dec(v: Any) -> Any:
        return load(v) if isinstance(v, str) else load(from_native(v))
    return dec

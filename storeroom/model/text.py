"""Strings that cannot be stored: lone surrogates.

A Python ``str`` may hold a surrogate code point (U+D800..U+DFFF), for instance from
``os.fsdecode`` of undecodable bytes or from ``"\\ud83d"`` sliced out of an emoji. No
Unicode encoding can represent one, so no database or file can store it. storeroom's
one rule: such a string in a value is a ``ValidationError`` (rule ``unicode``) naming
the field; as a key or a filter value it matches nothing (no stored string holds one).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")


def has_surrogate(text: str) -> bool:
    """True when ``text`` holds a surrogate code point (ASCII text costs one ``isascii``)."""
    if text.isascii():
        return False
    try:  # (UTF-8 encoding finds one several times faster than a regular expression)
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def first_surrogate(text: str) -> int:
    """The index of the first surrogate in ``text`` (-1 when there is none)."""
    m = _SURROGATE.search(text)
    return -1 if m is None else m.start()


_LEAVES = frozenset({int, float, bool, type(None)})
_SEQS = (list, tuple, set, frozenset)


def holds_surrogate(value: Any) -> bool:
    """True when a string anywhere in a JSON-like value holds a surrogate (fast: no paths)."""
    t = type(value)
    if t is str:
        return has_surrogate(value)
    if t in _LEAVES:
        return False
    if t is list or t is tuple or t is set or t is frozenset:
        for x in value:
            tx = type(x)
            if tx is str:
                if not x.isascii() and has_surrogate(x):
                    return True
            elif tx not in _LEAVES and holds_surrogate(x):
                return True
        return False
    if t is dict:
        for k, x in value.items():
            if holds_surrogate(k) or holds_surrogate(x):
                return True
        return False
    if isinstance(value, str):
        return has_surrogate(value)
    if isinstance(value, _SEQS):
        return any(holds_surrogate(x) for x in value)
    if isinstance(value, dict):
        return any(holds_surrogate(k) or holds_surrogate(x) for k, x in value.items())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(holds_surrogate(getattr(value, f.name)) for f in dataclasses.fields(value))
    return False


def surrogate_path(value: Any, path: str = "") -> str | None:
    """Where a string holding a surrogate is inside a JSON-like value, or None (slow: call
    it once :func:`holds_surrogate` said there is one).

    ``""`` is the value itself; ``"[2]"``, ``"['k']"`` or ``".name"`` point inside
    lists, dicts (keys included) and dataclass instances.
    """
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        v, p = stack.pop()
        if isinstance(v, str):
            if has_surrogate(v):
                return p
        elif isinstance(v, dict):
            for k, x in v.items():
                if isinstance(k, str) and has_surrogate(k):
                    return f"{p} (a key)"
                stack.append((x, f"{p}[{k!r}]"))
        elif isinstance(v, _SEQS):
            stack.extend((x, f"{p}[{i}]") for i, x in enumerate(v))
        elif dataclasses.is_dataclass(v) and not isinstance(v, type):
            stack.extend((getattr(v, f.name), f"{p}.{f.name}") for f in dataclasses.fields(v))
    return None


def surrogate_message(where: str = "") -> str:
    """The message of a ``unicode`` validation error (``where``: see :func:`surrogate_path`)."""
    inside = f" at {where}" if where else ""
    return (f"a string{inside} holds a lone surrogate code point (U+D800..U+DFFF), which no "
            "encoding can store")


def surrogate_free_bound(text: str) -> str:
    """The smallest surrogate-free string above every stored string below ``text``.

    For a string ``s`` without surrogates, ``s < text`` exactly when
    ``s < surrogate_free_bound(text)``: ``text`` is cut at its first surrogate and
    U+E000 (the first code point after the surrogates) put in its place.
    """
    i = first_surrogate(text)
    return text if i < 0 else text[:i] + "\ue000"

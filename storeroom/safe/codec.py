"""Turning keys and values into what the safe stores: checked ``str`` keys, pickled values."""

from __future__ import annotations

import pickle
from typing import Any

from storeroom.safe.errors import UnpicklableError

#: Pickle protocol 5 (Python 3.8+): the fastest and most compact for large buffers.
PROTOCOL = 5

loads = pickle.loads


def check_key(key: object) -> str:
    """Return ``key`` as a plain ``str``; raise ``TypeError`` naming its type otherwise."""
    if type(key) is str:
        return key
    if isinstance(key, str):
        return str.__str__(key)
    raise TypeError(f"safe keys must be str, not {type(key).__name__}")


def dumps(value: Any) -> bytes:
    """Pickle ``value``; raise :class:`UnpicklableError` if it cannot be pickled."""
    try:
        return pickle.dumps(value, PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError, ValueError, RecursionError) as exc:
        raise UnpicklableError(
            f"cannot store a value of type {type(value).__name__}: it is not picklable ({exc})"
        ) from exc

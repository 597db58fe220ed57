"""Turning keys and values into what the safe stores, and back: checked ``str`` keys, pickles.

Keys are text: a ``str`` that UTF-8 can encode (so not one holding a lone surrogate such as
``"\\ud800"``). Values are pickles; reading one that cannot be unpickled, or a key that is not
text, means the file is damaged: :class:`SafeError`.
"""

from __future__ import annotations

import pickle
from typing import Any

from storeroom.errors import ValidationError
from storeroom.safe.errors import SafeError, UnpicklableError

#: Pickle protocol 5 (Python 3.8+): the fastest and most compact for large buffers.
PROTOCOL = 5

#: Raw unpickling, for hot paths that catch its errors themselves (see :func:`damaged_value`).
loads = pickle.loads


def check_key(key: object) -> str:
    """Return ``key`` as a plain ``str``.

    Raises ``TypeError`` naming its type if it is not a ``str``, and
    :class:`~storeroom.errors.ValidationError` (a ``ValueError``, rule ``"unicode"``) naming it
    if it holds a lone surrogate, which is not text and cannot be stored. Hot paths skip the
    call for a plain ASCII ``str`` (``type(key) is str and key.isascii()``), which is always
    valid.
    """
    if type(key) is not str:
        if not isinstance(key, str):
            raise TypeError(f"safe keys must be str, not {type(key).__name__}")
        key = str.__str__(key)
    if not key.isascii():
        try:
            key.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValidationError.one(
                "key",
                key,
                "unicode",
                f"safe keys must be valid Unicode text, and {key!r} holds a lone surrogate "
                f"({key[exc.start]!r} at index {exc.start})",
            ) from exc
    return key


def dumps(value: Any) -> bytes:
    """Pickle ``value``; raise :class:`UnpicklableError` if it cannot be pickled."""
    try:
        return pickle.dumps(value, PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError, ValueError, RecursionError) as exc:
        raise UnpicklableError(
            f"cannot store a value of type {type(value).__name__}: it is not picklable ({exc})"
        ) from exc


def damaged_value(path: str, key: object, exc: Exception) -> SafeError:
    """The error for a stored value that cannot be unpickled (raise it ``from exc``)."""
    return SafeError(
        f"safe {path} is damaged: the value of key {key!r} cannot be unpickled "
        f"({type(exc).__name__}: {exc})"
    )


def load(path: str, key: object, blob: Any) -> Any:
    """Unpickle the value stored under ``key``; :class:`SafeError` if it cannot be."""
    try:
        return loads(blob)
    except Exception as exc:  # any failure of a damaged pickle (or a class gone since)
        raise damaged_value(path, key, exc) from exc


def stored_key(path: str, key: object) -> str:
    """Check a key read from the file: :class:`SafeError` if it is not text."""
    if type(key) is not str:
        raise SafeError(f"safe {path} is damaged: a key is not text but {key!r}")
    return key

"""The ``UNDEFINED`` marker: "no value given / leave unchanged"."""

from __future__ import annotations

from typing import Any, Final


class _Undefined:
    """Type of :data:`UNDEFINED`; a falsy singleton that survives copy and pickle."""

    _instance: _Undefined | None = None
    __slots__ = ()

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "UNDEFINED"

    def __copy__(self) -> _Undefined:
        return self

    def __deepcopy__(self, memo: Any) -> _Undefined:
        return self


UNDEFINED: Final[Any] = _Undefined()
"""Marks an attribute with no value: not yet generated, or "leave unchanged" in a partial update."""

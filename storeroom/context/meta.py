"""``Meta``: the read-only data about a context (the user, the request, ...)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


class Meta(Mapping[str, Any]):
    """Read-only metadata of a context.

    Keys read as attributes (``meta.user``); a missing key reads as ``None``.
    ``meta["user"]``, ``"user" in meta``, ``len``, iteration and ``get`` work as
    on a dict. Any assignment raises ``AttributeError``.
    """

    __slots__ = ("_values",)

    _values: dict[str, Any]

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "_values", dict(values) if values else {})

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        return self._values.get(key)

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"meta is read-only: cannot set {key!r}")

    def __delattr__(self, key: str) -> None:
        raise AttributeError(f"meta is read-only: cannot delete {key!r}")

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when it is missing."""
        return self._values.get(key, default)

    def require(self, key: str) -> Any:
        """The value of ``key``; ``ValueError`` when it is missing, ``None`` or empty.

        "Empty" means ``None`` or a sized value of length 0 (``""``, ``[]``,
        ``{}``); ``0`` and ``False`` are values.
        """
        value = self._values.get(key)
        if value is None or (hasattr(value, "__len__") and len(value) == 0):
            raise ValueError(f"context meta {key!r} is required but empty")
        return value

    def to_dict(self) -> dict[str, Any]:
        """A new dict holding every key."""
        return dict(self._values)

    def __repr__(self) -> str:
        return f"Meta({self._values!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Meta, (self._values,))


EMPTY_META = Meta()
"""The meta of a context created without one (shared, it cannot change)."""

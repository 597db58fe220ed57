"""Keys: one attribute or several, with a string form for URLs and cursors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from ..errors import ValidationError


@dataclass(frozen=True)
class KeyConfig:
    """Which attributes form an item's key: ``KeyConfig("id")`` or ``KeyConfig("owner", "id")``."""

    attrs: tuple[str, ...]
    # set by @stored: converts one string component back to the attribute's type
    _parsers: tuple[Callable[[str], Any], ...] = field(default=(), compare=False, repr=False)

    def __init__(self, *attrs: str, _parsers: tuple[Callable[[str], Any], ...] = ()) -> None:
        if len(attrs) == 1 and isinstance(attrs[0], tuple | list):
            attrs = tuple(attrs[0])
        if not attrs:
            raise TypeError("a key needs at least one attribute")
        object.__setattr__(self, "attrs", tuple(attrs))
        object.__setattr__(self, "_parsers", _parsers)

    @property
    def composite(self) -> bool:
        """True when the key has more than one attribute (read with a tuple)."""
        return len(self.attrs) > 1

    def of(self, item: Any) -> Any:
        """The key of an item: a scalar, or a tuple for a composite key."""
        if len(self.attrs) == 1:
            return getattr(item, self.attrs[0])
        return tuple(getattr(item, a) for a in self.attrs)

    def parts(self, key: Any) -> tuple[Any, ...]:
        """A key value as a tuple of its components."""
        if len(self.attrs) == 1:
            return (key,)
        if not isinstance(key, tuple | list) or len(key) != len(self.attrs):
            raise ValidationError.one(
                ",".join(self.attrs), key, "key",
                f"a key of {len(self.attrs)} parts {self.attrs} is needed, got {key!r}",
            )
        return tuple(key)

    def to_str(self, key: Any) -> str:
        """The string form of a key value (components percent-encoded, joined by '/')."""
        return "/".join(quote(_component_str(p), safe="") for p in self.parts(key))

    def from_str(self, text: str) -> Any:
        """Parse the string form back into a key value (typed like the attributes)."""
        pieces = text.split("/")
        if len(pieces) != len(self.attrs):
            raise ValidationError.one(",".join(self.attrs), text, "key",
                                      f"not a key string of {len(self.attrs)} parts: {text!r}")
        values = []
        parsers: tuple[Callable[[str], Any], ...] = self._parsers or (str,) * len(pieces)
        for piece, parser in zip(pieces, parsers, strict=True):
            values.append(parser(unquote(piece)))
        return values[0] if len(values) == 1 else tuple(values)


def _component_str(value: Any) -> str:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "value") and not isinstance(value, str | int | float):
        return str(value.value)  # Enum
    return str(value)

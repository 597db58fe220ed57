"""``Attr``: everything storeroom knows about one attribute of a stored class."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .fields import Generator
from .types import DATETIME, ENUM, INT, ORDERED_KINDS, STR, enum_value_kind


@dataclass(frozen=True, slots=True, eq=False)
class Attr:
    """One attribute of a stored class, with its kind and options."""

    name: str
    annotation: Any
    inner: Any  # the annotation without ``| None``
    kind: str
    optional: bool
    default: Any
    default_factory: Callable[[], Any] | None
    max_length: int | None
    min_length: int | None
    ge: Any
    le: Any
    pattern: str | None
    store: bool
    creatable: bool
    updatable: bool
    readable: bool
    sortable: bool
    unique: bool
    index: bool
    generator: Generator | None
    is_key: bool
    reverse: str | None = None
    through: Any = None
    on_delete: str | None = None

    @property
    def has_default(self) -> bool:
        """True when the attribute can be left out at construction."""
        return self.default is not dataclasses.MISSING or self.default_factory is not None

    def default_value(self) -> Any:
        """A fresh default (calls the factory)."""
        if self.default_factory is not None:
            return self.default_factory()
        return self.default

    @property
    def enum_cls(self) -> type[enum.Enum] | None:
        """The Enum class of an enum attribute."""
        return self.inner if self.kind == ENUM else None

    @property
    def value_kind(self) -> str:
        """The kind of the stored scalar (an Enum is stored by its value)."""
        if self.kind == ENUM:
            return enum_value_kind(self.inner)
        return self.kind

    @property
    def orderable(self) -> bool:
        """True when the attribute can be compared and sorted (scalar kinds)."""
        return self.kind in ORDERED_KINDS and self.sortable

    @property
    def is_text(self) -> bool:
        """True for string attributes and string-valued enums (string operators apply)."""
        return self.kind == STR or (self.kind == ENUM and self.value_kind == STR)

    @property
    def is_int(self) -> bool:
        """True for int attributes (and int-valued enums)."""
        return self.value_kind == INT

    @property
    def is_datetime(self) -> bool:
        """True for datetime attributes."""
        return self.kind == DATETIME

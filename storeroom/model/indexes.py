"""Secondary indexes declared on a model."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, init=False)
class Index:
    """An index over one or more attributes: ``Index("owner", "created_at", unique=False)``."""

    attrs: tuple[str, ...]
    unique: bool
    name: str | None

    def __init__(self, *attrs: str, unique: bool = False, name: str | None = None) -> None:
        if not attrs:
            raise TypeError("Index needs at least one attribute")
        object.__setattr__(self, "attrs", tuple(attrs))
        object.__setattr__(self, "unique", unique)
        object.__setattr__(self, "name", name)

    def index_name(self, table: str) -> str:
        """The index's name in a backend: given, or derived from table and attributes."""
        return self.name or ("uq_" if self.unique else "ix_") + table + "_" + "_".join(self.attrs)

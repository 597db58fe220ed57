"""Values a store hands back: ``StoreMeta``, ``Page``, edits and ``EditResult``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import FrozenInstanceError, dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")

DEFAULT_MAX_PAGE = 1000


@dataclass(frozen=True, slots=True)
class StoreMeta:
    """What a store is and what its backend does natively."""

    name: str
    model: type
    key_attrs: tuple[str, ...]
    native_ops: frozenset[str]
    atomic_batch: bool
    max_batch: int
    max_page: int = DEFAULT_MAX_PAGE
    transactions: bool = False
    backend: str = ""


class Page(Generic[T]):
    """One page of a search: ``items`` and the opaque cursor ``next`` (None when done).

    Immutable. A store may hand the cursor over as a function that signs it: it runs on
    the first read of ``next`` (most pages are shown and never continued).
    """

    __slots__ = ("items", "_next", "_sign")
    __match_args__ = ("items", "next")
    __hash__ = None  # type: ignore[assignment]  # (items is a list)

    items: list[T]
    _next: str | None
    _sign: Callable[[], str] | None

    def __init__(self, items: list[T], next: str | None = None) -> None:  # noqa: A002
        object.__setattr__(self, "items", items)
        object.__setattr__(self, "_next", next)
        object.__setattr__(self, "_sign", None)

    @classmethod
    def signed_later(cls, items: list[T], sign: Callable[[], str]) -> Page[T]:
        """A page whose cursor ``sign()`` makes when ``next`` is first read."""
        page = cls(items)
        object.__setattr__(page, "_sign", sign)
        return page

    def with_items(self, items: list[T]) -> Page[T]:
        """The same page (its cursor still made lazily) holding ``items`` instead."""
        page = type(self)(items, self._next)
        object.__setattr__(page, "_sign", self._sign)
        return page

    @property
    def next(self) -> str | None:
        """The cursor of the following page (pass it as ``after=``), or None."""
        sign = self._sign
        if sign is not None:
            object.__setattr__(self, "_next", sign())
            object.__setattr__(self, "_sign", None)
        return self._next

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        o: Page[Any] = other
        return (self.items, self.next) == (o.items, o.next)

    def __repr__(self) -> str:
        return f"Page(items={self.items!r}, next={self.next!r})"

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> T:
        return self.items[i]


@dataclass(frozen=True, slots=True, init=False)
class Create:
    """An edit that creates ``item``."""

    item: Any

    def __init__(self, item: Any) -> None:
        # the slot's own setter: a frozen dataclass's generated ``__init__`` goes through
        # ``object.__setattr__`` (looked up per call), a third of a bulk create's cost
        # per row outside the database
        _set_create_item(self, item)


_set_create_item = Create.__dict__["item"].__set__


@dataclass(frozen=True, slots=True, init=False)
class Update:
    """An edit that updates the item at ``key``: ``Update(key, title="x")`` or ``Update(item)``."""

    key: Any
    changes: dict[str, Any]
    item: Any
    precondition: Any

    def __init__(self, key: Any = None, *, item: Any = None, precondition: Any = None,
                 **changes: Any) -> None:
        if item is None and hasattr(type(key), "__storeroom__"):
            key, item = None, key
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "changes", changes)
        object.__setattr__(self, "item", item)
        object.__setattr__(self, "precondition", precondition)


@dataclass(frozen=True, slots=True)
class Delete:
    """An edit that deletes the item at ``key``."""

    key: Any


@dataclass(frozen=True, slots=True)
class Upsert:
    """An edit that creates ``item``, or fully updates the item at its key when one exists."""

    item: Any


Edit = Create | Update | Delete | Upsert

DUPLICATE_KEY = "duplicate_key"
MISSING_KEY = "missing_key"
PRECONDITION_FAILED = "precondition_failed"
INVALID = "invalid"
FORBIDDEN = "forbidden"
ERROR = "error"


@dataclass(slots=True)
class EditResult:
    """The outcome of one edit of a batch; ``code`` is None when ``ok``, else
    ``duplicate_key``, ``missing_key`` (no item at the key), ``precondition_failed``
    (the item exists, its precondition does not hold), ``invalid`` or ``error``."""

    edit: Any
    ok: bool
    item: Any = None
    code: str | None = None
    detail: str | None = None


@dataclass(slots=True)
class PreparedEdit:
    """An edit after validation: what a backend needs to apply it."""

    kind: str  # "create" | "update" | "delete" | "upsert"
    key: Any  # key parts tuple
    values: dict[str, Any] = field(default_factory=dict)  # create, upsert: all; update: changes
    precondition: Any = None  # prepared filter node or None
    index: int = 0

"""What a Store needs of a backend, and what every store-like object offers.

``Backend`` / ``AsyncBackend`` are the seam between :class:`Store` / :class:`AsyncStore`
and the backends (memory, SQL, DynamoDB, MongoDB, Redis, and a context's unit backends):
every method a store calls, and nothing else. A backend is any object with these
members; it need not inherit from anything (the protocols are structural), and the
test suite and mypy check that every backend satisfies its protocol.

``StoreLike`` / ``AsyncStoreLike`` are the public surface of a store: what
``Store`` / ``AsyncStore`` implement, and what a wrapper (secured, cached, triggered)
implements over another store, so that code written against the protocol accepts any
of them.

The protocols are written here twice, sync and async, by hand: they are declarations
only (no I/O), so the ``_async`` -> ``_sync`` generation does not apply to them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from ..query.ast import Node
from ..query.order import Order
from ..query.plan import Query
from .aggregate import AggSpec
from .plan import Split
from .types import Create, Delete, EditResult, Page, PreparedEdit, StoreMeta, Update

T = TypeVar("T")

Outcome = tuple[bool, Any, str | None, str | None]
"""What a backend reports per prepared edit: (ok, item, code, detail)."""

Key = tuple[Any, ...]
"""A key as a backend receives it: the key attributes' values, in key order."""

Values = dict[str, Any]
"""Attribute values as a backend receives them: validated and encoded for storage."""

FexprUse = Literal["update", "batch", "where"]
"""Where ``F`` expressions are to be written (see ``Backend.native_fexpr``): by
``update``, in an update edit of ``apply``, or by ``update_where``."""


@runtime_checkable
class Backend(Protocol[T]):
    """What a sync :class:`Store` needs of its backend.

    Items are the model's instances (``T``). Keys and values arrive prepared by
    the store (``store/prepare.py``); filters arrive as prepared nodes, and the store
    asks ``split`` which part the backend runs natively and evaluates the rest. A
    backend may also have ``max_local_sort`` (the most items it lets the store sort
    locally; None or absent: no bound) and ``holds_connections`` (False when an
    unclosed store of it need not warn); the store reads those with ``getattr``.
    """

    store_meta: StoreMeta

    def split(self, node: Node) -> Split:
        """The part of ``node`` this backend runs natively, and the part left local."""
        ...

    def can_order(self, order: Order) -> bool:
        """Whether this backend returns rows in ``order`` itself."""
        ...

    def create_tables(self) -> None:
        """Create the table / collection and its indexes (idempotent)."""
        ...

    def close(self) -> None:
        """Release every connection the backend holds."""
        ...

    def cursor_secret(self) -> bytes:
        """The database's cursor secret (created there on first use)."""
        ...

    def insert(self, values: Values) -> T:
        """Store a new item; ``Conflict`` when its key or a unique attribute exists."""
        ...

    def upsert(self, values: Values) -> T:
        """Create the item, or fully update the one at its key (kept: attributes that
        cannot be updated); ``Conflict`` when a unique attribute's value is another's."""
        ...

    def get(self, key: Key) -> T | None:
        """The item at ``key``, or None."""
        ...

    def get_many(self, keys: list[Key]) -> list[T | None]:
        """The items at ``keys``, aligned with them."""
        ...

    def update(self, key: Key, values: Values, pre: Node | None) -> T | None:
        """Write ``values`` at ``key`` if ``pre`` holds; the item, or None."""
        ...

    def delete(self, key: Key, pre: Node | None) -> bool:
        """Delete the item at ``key`` if ``pre`` holds; whether one was deleted."""
        ...

    def find(self, query: Query) -> list[T]:
        """Up to ``query.limit`` items matching the native filter ``query.node`` in
        ``query.order``, after the position ``query.after``; the backend builds the keyset
        condition itself (``query.keyset()``)."""
        ...

    def iterate(self, node: Node) -> Iterator[T]:
        """Every item matching the native filter ``node``, in no particular order."""
        ...

    def count(self, node: Node) -> int:
        """How many items match the native filter ``node``."""
        ...

    def aggregate(self, node: Node, specs: tuple[AggSpec, ...]) -> dict[str, Any]:
        """The aggregates ``specs`` over the items matching the native filter ``node``
        (``{name: value}``, readings of ``store/aggregate.py``): natively where the
        database can, else with ``store.aggregate.Accumulator`` over ``iterate``."""
        ...

    def update_where(self, node: Node, values: Values) -> int:
        """Write ``values`` to every item matching ``node`` (checked when written)."""
        ...

    def delete_where(self, node: Node) -> int:
        """Delete every item matching ``node`` (checked when deleted)."""
        ...

    def native_fexpr(self, values: Values, pre: Node | None, use: FexprUse) -> bool:
        """Whether this backend evaluates the ``F`` expressions in ``values`` itself, in
        one atomic write per item, when they reach it through ``use``:

        - ``"update"``: ``update(key, values, pre)``;
        - ``"batch"``: an update edit of ``apply`` (atomic or not) whose precondition is
          ``pre``; an ``F`` then sees the item as the batch's earlier edits left it;
        - ``"where"``: ``update_where(pre, values)`` (``pre`` is the filter).

        A result outside its attribute's ``ge`` / ``le`` (or 64 bits) raises
        ``ValidationError`` with nothing written (in a batch: the edit's outcome is
        ``invalid``). When False, the store reads the items, computes the results and
        writes them guarded by the values read (``store/fexpr.py``), and the backend
        only ever sees plain values.
        """
        ...

    def apply(self, edits: list[PreparedEdit], atomic: bool) -> list[Outcome]:
        """Apply prepared edits; one outcome per edit, in order."""
        ...


@runtime_checkable
class AsyncBackend(Protocol[T]):
    """What an :class:`AsyncStore` needs of its backend: :class:`Backend`, awaited."""

    store_meta: StoreMeta

    def split(self, node: Node) -> Split:
        """The part of ``node`` this backend runs natively, and the part left local."""
        ...

    def can_order(self, order: Order) -> bool:
        """Whether this backend returns rows in ``order`` itself."""
        ...

    async def create_tables(self) -> None:
        """Create the table / collection and its indexes (idempotent)."""
        ...

    async def close(self) -> None:
        """Release every connection the backend holds."""
        ...

    async def cursor_secret(self) -> bytes:
        """The database's cursor secret (created there on first use)."""
        ...

    async def insert(self, values: Values) -> T:
        """Store a new item; ``Conflict`` when its key or a unique attribute exists."""
        ...

    async def upsert(self, values: Values) -> T:
        """Create the item, or fully update the one at its key (kept: attributes that
        cannot be updated); ``Conflict`` when a unique attribute's value is another's."""
        ...

    async def get(self, key: Key) -> T | None:
        """The item at ``key``, or None."""
        ...

    async def get_many(self, keys: list[Key]) -> list[T | None]:
        """The items at ``keys``, aligned with them."""
        ...

    async def update(self, key: Key, values: Values, pre: Node | None) -> T | None:
        """Write ``values`` at ``key`` if ``pre`` holds; the item, or None."""
        ...

    async def delete(self, key: Key, pre: Node | None) -> bool:
        """Delete the item at ``key`` if ``pre`` holds; whether one was deleted."""
        ...

    async def find(self, query: Query) -> list[T]:
        """Up to ``query.limit`` items matching the native filter ``query.node`` in
        ``query.order``, after the position ``query.after``; the backend builds the keyset
        condition itself (``query.keyset()``)."""
        ...

    # an async generator in every backend: a plain def returning the iterator
    def iterate(self, node: Node) -> AsyncIterator[T]:
        """Every item matching the native filter ``node``, in no particular order."""
        ...

    async def count(self, node: Node) -> int:
        """How many items match the native filter ``node``."""
        ...

    async def aggregate(self, node: Node, specs: tuple[AggSpec, ...]) -> dict[str, Any]:
        """The aggregates ``specs`` over the items matching the native filter ``node``
        (``{name: value}``, readings of ``store/aggregate.py``): natively where the
        database can, else with ``store.aggregate.Accumulator`` over ``iterate``."""
        ...

    async def update_where(self, node: Node, values: Values) -> int:
        """Write ``values`` to every item matching ``node`` (checked when written)."""
        ...

    async def delete_where(self, node: Node) -> int:
        """Delete every item matching ``node`` (checked when deleted)."""
        ...

    def native_fexpr(self, values: Values, pre: Node | None, use: FexprUse) -> bool:
        """Whether this backend evaluates the ``F`` expressions in ``values`` itself, in
        one atomic write per item, when they reach it through ``use``:

        - ``"update"``: ``update(key, values, pre)``;
        - ``"batch"``: an update edit of ``apply`` (atomic or not) whose precondition is
          ``pre``; an ``F`` then sees the item as the batch's earlier edits left it;
        - ``"where"``: ``update_where(pre, values)`` (``pre`` is the filter).

        A result outside its attribute's ``ge`` / ``le`` (or 64 bits) raises
        ``ValidationError`` with nothing written (in a batch: the edit's outcome is
        ``invalid``). When False, the store reads the items, computes the results and
        writes them guarded by the values read (``store/fexpr.py``), and the backend
        only ever sees plain values.
        """
        ...

    async def apply(self, edits: list[PreparedEdit], atomic: bool) -> list[Outcome]:
        """Apply prepared edits; one outcome per edit, in order."""
        ...


class Transaction(Protocol):
    """A backend transaction as a context's unit of work drives it."""

    def commit(self) -> None:
        """Make the transaction's writes durable."""
        ...

    def rollback(self) -> None:
        """Discard the transaction's writes."""
        ...

    def begin_nested(self) -> Any:
        """A savepoint inside the transaction (``commit`` / ``rollback`` it)."""
        ...


class AsyncTransaction(Protocol):
    """A backend transaction as an async context's unit of work drives it."""

    async def commit(self) -> None:
        """Make the transaction's writes durable."""
        ...

    async def rollback(self) -> None:
        """Discard the transaction's writes."""
        ...

    async def begin_nested(self) -> Any:
        """A savepoint inside the transaction (``commit`` / ``rollback`` it)."""
        ...


class TransactionalBackend(Backend[T], Protocol[T]):
    """A backend whose ``StoreMeta.transactions`` is True: a context's unit of work
    begins one transaction (``begin``) and runs each store in it (``bind``)."""

    def begin(self) -> Transaction:
        """Begin a transaction."""
        ...

    def bind(self, tx: Any) -> Backend[T]:
        """This backend running inside ``tx`` (one of its own transactions)."""
        ...


class AsyncTransactionalBackend(AsyncBackend[T], Protocol[T]):
    """:class:`TransactionalBackend`, awaited."""

    async def begin(self) -> AsyncTransaction:
        """Begin a transaction."""
        ...

    async def bind(self, tx: Any) -> AsyncBackend[T]:
        """This backend running inside ``tx`` (one of its own transactions)."""
        ...


class StoreLike(Protocol[T]):
    """The public surface of a sync store: :class:`Store`, and every wrapper of one."""

    model: type[T]
    meta: StoreMeta

    def close(self) -> None:
        """Release the store's connections."""
        ...

    def create_tables(self) -> None:
        """Create the backing table / collection now (else on first use)."""
        ...

    def key_str(self, item_or_key: Any) -> str:
        """The string form of an item's key (or of a key value)."""
        ...

    def parse_key(self, text: str) -> Any:
        """The key whose string form is ``text``."""
        ...

    def create(self, item: T) -> T:
        """Store a new item."""
        ...

    def read(self, key: Any, *, refresh: bool = False) -> T | None:
        """The item at ``key``, or None."""
        ...

    def update(self, item_or_key: Any, /, *, precondition: Any = None,
               **changes: Any) -> T | None:
        """Update an item (full or partial); None when missing or refused."""
        ...

    def delete(self, key: Any, /, *, precondition: Any = None) -> bool:
        """Delete the item at ``key``; False when there was none."""
        ...

    def search(self, where: Any = None, *, order_by: Iterable[str] | str = (),
               limit: int | None = None, after: str | None = None,
               query: str | None = None, refresh: bool = False,
               **lookups: Any) -> Page[T]:
        """One page of matching items."""
        ...

    def search_all(self, where: Any = None, *, order_by: Iterable[str] | str = (),
                   limit: int | None = None, query: str | None = None,
                   refresh: bool = False, **lookups: Any) -> Iterator[T]:
        """Every matching item, page by page."""
        ...

    def count(self, where: Any = None, **lookups: Any) -> int:
        """How many items match."""
        ...

    def aggregate(self, where: Any = None, *, aggregates: dict[str, Any],
                  **lookups: Any) -> dict[str, Any]:
        """The named aggregates (``Count Sum Min Max Avg``) over the matching items."""
        ...

    def read_batch(self, keys: Iterable[Any], *, refresh: bool = False) -> list[T | None]:
        """The items at ``keys``, aligned with them."""
        ...

    def edit_batch(self, edits: Iterable[Create | Update | Delete], *,
                   atomic: bool = False) -> list[EditResult]:
        """Apply edits; one result per edit."""
        ...

    def update_where(self, where: Any = None, *, changes: dict[str, Any],
                     **lookups: Any) -> int:
        """Apply ``changes`` to every matching item; how many."""
        ...

    def delete_where(self, where: Any = None, **lookups: Any) -> int:
        """Delete every matching item; how many."""
        ...


class AsyncStoreLike(Protocol[T]):
    """The public surface of an async store: :class:`AsyncStore`, and every wrapper."""

    model: type[T]
    meta: StoreMeta

    async def close(self) -> None:
        """Release the store's connections."""
        ...

    async def create_tables(self) -> None:
        """Create the backing table / collection now (else on first use)."""
        ...

    def key_str(self, item_or_key: Any) -> str:
        """The string form of an item's key (or of a key value)."""
        ...

    def parse_key(self, text: str) -> Any:
        """The key whose string form is ``text``."""
        ...

    async def create(self, item: T) -> T:
        """Store a new item."""
        ...

    async def read(self, key: Any, *, refresh: bool = False) -> T | None:
        """The item at ``key``, or None."""
        ...

    async def update(self, item_or_key: Any, /, *, precondition: Any = None,
                     **changes: Any) -> T | None:
        """Update an item (full or partial); None when missing or refused."""
        ...

    async def delete(self, key: Any, /, *, precondition: Any = None) -> bool:
        """Delete the item at ``key``; False when there was none."""
        ...

    async def search(self, where: Any = None, *, order_by: Iterable[str] | str = (),
                     limit: int | None = None, after: str | None = None,
                     query: str | None = None, refresh: bool = False,
                     **lookups: Any) -> Page[T]:
        """One page of matching items."""
        ...

    # an async generator in AsyncStore: a plain def returning the iterator
    def search_all(self, where: Any = None, *, order_by: Iterable[str] | str = (),
                   limit: int | None = None, query: str | None = None,
                   refresh: bool = False, **lookups: Any) -> AsyncIterator[T]:
        """Every matching item, page by page."""
        ...

    async def count(self, where: Any = None, **lookups: Any) -> int:
        """How many items match."""
        ...

    async def aggregate(self, where: Any = None, *, aggregates: dict[str, Any],
                        **lookups: Any) -> dict[str, Any]:
        """The named aggregates (``Count Sum Min Max Avg``) over the matching items."""
        ...

    async def read_batch(self, keys: Iterable[Any], *, refresh: bool = False) -> list[T | None]:
        """The items at ``keys``, aligned with them."""
        ...

    async def edit_batch(self, edits: Iterable[Create | Update | Delete], *,
                         atomic: bool = False) -> list[EditResult]:
        """Apply edits; one result per edit."""
        ...

    async def update_where(self, where: Any = None, *, changes: dict[str, Any],
                           **lookups: Any) -> int:
        """Apply ``changes`` to every matching item; how many."""
        ...

    async def delete_where(self, where: Any = None, **lookups: Any) -> int:
        """Delete every matching item; how many."""
        ...


__all__ = ["AsyncBackend", "AsyncStoreLike", "AsyncTransaction", "AsyncTransactionalBackend",
           "Backend", "FexprUse", "Key", "Outcome", "StoreLike", "Transaction", "TransactionalBackend",
           "Values"]

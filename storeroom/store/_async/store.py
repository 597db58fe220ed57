"""``AsyncStore``: the Store contract over any backend (the sync ``Store`` is generated)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Set
from contextlib import asynccontextmanager
from contextvars import ContextVar
from functools import partial
from itertools import repeat
from operator import attrgetter
from typing import Any, Generic, TypeVar, cast

from ...backends.batch import NOT_APPLIED, upsert_key, upserted
from ...backends.common import invalid
from ...errors import BatchError, Conflict, StoreroomError, UnsupportedOperation, ValidationError
from ...model.registry import generation, refs_to
from ...model.relations import RefInfo
from ...model.stored import ModelMeta, meta_of
from ...query.ast import EVERYTHING, NOTHING, And, Node, Not
from ...query.cursor import (
    CursorKeys,
    after_filter,
    cursor_keys,
    decode_cursor,
    encode_cursor,
    env_cursor_keys,
    fingerprint,
)
from ...query.evaluate import compile_local, sort_items
from ...query.order import Order, order_values, parse_order
from ...query.plan import Query
from ...query.prepare import build_filter, junction, prepare, simplify
from ...query.q import to_node
from ...query.relations import Rel, finish_rel, has_rel, plan_rel, rels, replace_rels, step_filter
from ...relations._async import loader
from ...relations.loading import order_plan, order_prefixes
from ..aggregate import Accumulator, Aggregate, prepare_aggregates
from ..checks import check_error, check_item, failed_check, residual_all, with_checks
from ..fexpr import guard, has_expr, resolve
from ..filtermemo import FilterMemo
from ..lifecycle import ClosedBackend, watch_unclosed
from ..pages import apages_items
from ..plan import check_limit
from ..prepare import (
    NoSuchKey,
    checked_create_values,
    create_values,
    full_update_changes,
    key_parts,
    update_changes,
)
from ..protocol import AsyncBackend, AsyncTransactionalBackend
from ..relations import (
    REFERENCED,
    Blocked,
    expr_on_ref,
    is_reference_error,
    keys_filter,
    missing_reference,
    referenced,
    refers_to,
)
from ..txstate import OpenTransaction, PerTask, owner
from ..types import (
    DUPLICATE_KEY,
    ERROR,
    INVALID,
    MISSING_KEY,
    PRECONDITION_FAILED,
    Create,
    Delete,
    EditResult,
    Page,
    PreparedEdit,
    StoreMeta,
    Update,
    Upsert,
)
from . import integrity

T = TypeVar("T")

#: the kind of a ``PreparedEdit``
_kind = attrgetter("kind")

#: not yet asked of the backend (a plan of None means: it has none)
_UNPLANNED: Any = object()

# how many rows to fetch per round when a local filter thins out natively ordered rows
LOCAL_CHUNK = 500
# how often an optimistic F-expression write is tried again after another writer changed
# the item between its read and its guarded write (each round, some writer succeeds)
EXPR_RETRIES = 10_000


class AsyncStore(Generic[T]):
    """The eight store actions on one model, over one backend.

    ``secret`` signs the cursors of pages: a str or bytes, or a list of them (the first
    signs, every one verifies: rotate by putting the new secret first). Without it,
    ``STOREROOM_SECRET``; without that, a secret generated once and kept in the database,
    so that every process on one database accepts the same cursors.
    """

    is_async = True

    def __init__(self, model: type[T], backend: AsyncBackend[T], *,
                 secret: str | bytes | Iterable[str | bytes] | CursorKeys | None = None
                 ) -> None:
        self.model = model
        self._m: ModelMeta = meta_of(model)
        self._keys: CursorKeys | None = None if secret is None else cursor_keys(secret)
        self._base: AsyncBackend[T] = backend
        # the backend each operation runs on: ``backend`` until the store first opens a
        # transaction, a ``PerTask`` from then on (bound to the open transaction, if any)
        self._b: AsyncBackend[T] = backend
        # the transaction (``transaction()``) each thread / task is in: made on first use
        self._txvar: ContextVar[OpenTransaction | None] | None = None
        self.meta: StoreMeta = backend.store_meta
        self._max_page = self.meta.max_page
        # the page size of ``search_all`` without a ``limit``: the backend's ``scan_page``
        # where it has one (SQL reads large pages: few round trips), else ``max_page``
        self._scan_page: int = getattr(backend, "scan_page", None) or self._max_page
        self._orders: dict[Any, Order] = {}  # parse_order's results, per order_by given
        self._filters = FilterMemo(self._m)  # search's filters of plain lookups, prepared
        self._unclosed = watch_unclosed(self, backend)
        # relations: how to open the store of a related model on the same database (set
        # by ``open_async_store``), the stores so opened (shared by the whole family,
        # closed with the store that opened them), and the Refs pointing at this model
        self._opener: Callable[[type], AsyncStore[Any]] | None = None
        self._family: dict[type, AsyncStore[Any]] = {model: self}
        self._owned: list[AsyncStore[Any]] = []
        self._incoming: tuple[int, tuple[RefInfo, ...]] | None = None
        # a context's stores borrow their relatives from the context (``ctx.store``
        # memoizes and the context closes them), so they keep no family of their own
        self._borrows_related = False
        # lookups across relations are possible (the model has a Ref or a Many)
        self._rels = bool(self._m.refs or self._m.manys)
        # ``@stored(checks=...)`` the backend does not enforce itself (SQL has CHECK
        # constraints): tested here on every write; False keeps every path as it was
        self._checks = bool(self._m.checks) and not getattr(backend, "native_checks", False)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._m.name} on {self.meta.backend}>"

    # transactions ----------------------------------------------------------------------
    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Group this store's writes into one transaction: ``async with store.transaction():``.

        Committed when the block ends, rolled back when it raises (all or nothing);
        reads inside see its writes, other connections do not see them before the
        commit. It belongs to the thread / task that opened it: others using the store
        meanwhile are not in it. Nested, it is a savepoint where the backend has them
        (``UnsupportedOperation`` on MongoDB). ``UnsupportedOperation`` on a backend
        without transactions (``StoreMeta.transactions`` is False: DynamoDB, Redis).
        """
        if not self.meta.transactions:
            raise UnsupportedOperation(f"{self.meta.backend} has no transactions "
                                       "(StoreMeta.transactions is False)")
        var = self._txvar
        if var is None:
            var = self._txvar = ContextVar(f"storeroom_tx_{id(self)}", default=None)
            self._b = cast("AsyncBackend[T]", PerTask(var, self._base))
        me = owner()
        cur = var.get()
        if cur is not None and cur.owner == me:  # nested: a savepoint
            sp = await cur.tx.begin_nested()
            try:
                yield
            except BaseException:
                await sp.rollback()
                raise
            await sp.commit()
            return
        base = cast("AsyncTransactionalBackend[T]", self._base)
        await integrity.before_transaction(self)
        tx = await base.begin()
        try:
            bound = await base.bind(tx)
        except BaseException:
            await tx.rollback()
            raise
        token = var.set(OpenTransaction(tx, bound, me))
        try:
            yield
        except BaseException:
            var.reset(token)
            await tx.rollback()
            raise
        var.reset(token)
        await tx.commit()

    # lifecycle ------------------------------------------------------------------------
    async def close(self) -> None:
        """Release the store's connections; using the store afterwards → ``StoreClosed``.

        Closing a closed store does nothing.
        """
        backend = self._base
        if isinstance(backend, ClosedBackend):
            return
        # every member of the stand-in raises StoreClosed, whatever the protocol says
        self._base = cast("AsyncBackend[T]", ClosedBackend(repr(self)))
        if self._txvar is None:
            self._b = self._base
        else:
            cast("PerTask", self._b).base = self._base
        if self._unclosed is not None:
            self._unclosed.detach()
        owned, self._owned = self._owned, []
        for related in owned:
            await related.close()
        await backend.close()

    async def __aenter__(self) -> AsyncStore[T]:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def create_tables(self) -> None:
        """Create the backing table / collection and its indexes now (else on first use)."""
        await self._b.create_tables()

    def key_str(self, item_or_key: Any) -> str:
        """The string form of an item's key (or of a key value): URL-safe, one path segment.

        ``parse_key`` reads it back; ``ValidationError`` for something that is neither.
        """
        m = self._m
        key = m.key.of(item_or_key) if isinstance(item_or_key, m.cls) else item_or_key
        return m.key.to_str(m.coerce_key(key))

    def parse_key(self, text: str) -> Any:
        """The key whose string form (``key_str``) is ``text``; ``ValidationError`` if none."""
        return self._m.key.from_str(text)

    # the eight actions ----------------------------------------------------------------
    async def create(self, item: T) -> T:
        """Store a new item; ``Conflict`` if its key (or a unique attribute) exists."""
        values = create_values(self._m, item)
        if self._checks:
            check_item(self._m, values)
        if self._m.refs:
            return await self._create_checked(values)
        return await self._b.insert(values)

    async def _create_checked(self, values: dict[str, Any], upsert: bool = False) -> T:
        """``create`` / ``upsert`` of an item with Refs, race-safe (``integrity``)."""
        m = self._m
        b = self._b
        with integrity.guarded(self):
            native = integrity.native_refs(self)
            await self._check_refs([values], exclude=native)
            verify = integrity.verifying(self)
            key = upsert_key(m, values) if upsert else None
            old = await b.get(key) if verify and key is not None else None
            try:
                out = await (b.upsert(values) if key is not None else b.insert(values))
            except ValidationError as exc:
                if native and is_reference_error(exc):
                    await integrity.precise(self, [values], exc)
                raise
            if verify:
                await integrity.check_written(
                    self, [values], lambda: integrity.restore_refs(self, _parts(m, out), old,
                                                                    values))
            return out

    async def upsert(self, item: T) -> T:
        """Create ``item``, or fully update the item at its key when one exists.

        A full write: attributes the item leaves at their defaults are stored as those
        defaults; attributes that cannot be updated (``created_at``) of an existing item
        keep their stored value. Validated as on create; generated keys are filled in
        when not given; ``Conflict`` when a unique attribute's value is another item's.
        """
        values = create_values(self._m, item)
        if self._checks:
            check_item(self._m, values)
        if self._m.refs:
            return await self._create_checked(values, upsert=True)
        if upsert_key(self._m, values) is None:  # a sequence key the backend assigns
            return await self._b.insert(values)
        return await self._b.upsert(values)

    async def read(self, key: Any, *, refresh: bool = False, select_related: Any = (),
                   prefetch_related: Any = ()) -> T | None:
        """The item at ``key``, or None.

        ``refresh`` matters in a context's identity map only (see ``MappedAsyncStore``):
        a store without one returns fresh objects always, so there it changes nothing.
        ``select_related`` / ``prefetch_related``: relation paths loaded with the item
        (see ``load``).
        """
        try:
            parts = key_parts(self._m, key)
        except NoSuchKey:
            return None
        if select_related or prefetch_related:
            return (await loader.read_many(self, [parts], select_related, prefetch_related,
                                           refresh)).get(parts)
        return await self._b.get(parts)

    async def load(self, items: Any, *paths: str, refresh: bool = False) -> Any:
        """Load the relations ``paths`` (``"category"``, ``"products__tags"``: ``__`` at
        any depth) of one item or a list of them, in place, in the fewest round trips
        (one batched read per relation and depth); returns ``items``.

        A ``Ref`` gets its object (None when its key names no item: an
        ``on_delete="ignore"`` reference), a ``Many`` the list of its items in key
        order. In a context the loaded objects are the identity map's (``refresh``:
        updated in place from the database).
        """
        return await loader.load(self, items, paths, refresh)

    async def update(self, item_or_key: Any, /, *, precondition: Any = None,
                     **changes: Any) -> T | None:
        """Update an item (full: pass the item; partial: the key and changes).

        Returns the updated item, or None when the key is missing or the precondition fails.
        """
        m = self._m
        try:
            if isinstance(item_or_key, m.cls) and not changes:
                key, values = full_update_changes(m, item_or_key)
            else:
                key = key_parts(m, item_or_key)
                values = update_changes(m, changes)
        except NoSuchKey:
            return None
        pre = None if precondition is None else self._precondition(precondition)
        if pre is not None and pre == NOTHING:
            return None
        if m.refs:
            return await self._update_related(key, values, pre)
        b = self._b
        if self._checks:
            return await self._update_checked(key, values, pre)
        if has_expr(values) and not b.native_fexpr(values, pre, "update"):
            return await self._update_expr(key, values, pre)
        return await b.update(key, values, pre)

    async def _update_checked(self, key: tuple[Any, ...], values: dict[str, Any],
                              pre: Node | None) -> T | None:
        """An update of a model with checks the backend does not enforce: written on
        condition (with ``pre``) that the stored item's other attributes let the result
        pass every check (``checks.residual``); when refused, one read tells a failed
        check (``ValidationError``) from a missing item or a failed precondition."""
        if has_expr(values):  # the results are computed from the item read, then checked
            return await self._update_expr(key, values, pre)
        m, b = self._m, self._b
        res = residual_all(m, values)
        for name, r in res.items():
            if r == NOTHING:  # the changes alone fail it
                raise check_error(m, name)
        guarded = with_checks(pre, res)
        for _ in range(EXPR_RETRIES):
            out = await b.update(key, values, guarded)
            if out is not None or guarded is pre:
                return out
            item = await b.get(key)
            if item is None or (pre is not None and not compile_local(pre)(item)):
                return None
            for name, r in res.items():
                if not compile_local(r)(item):
                    raise check_error(m, name)
        raise StoreroomError(f"{m.name}: the update of {key!r} lost to other writers "
                             f"{EXPR_RETRIES} times")

    async def _update_related(self, key: tuple[Any, ...], values: dict[str, Any],
                              pre: Node | None) -> T | None:
        """``update`` of a model with Refs, race-safe (``integrity``); an ``F`` computing
        a Ref column is checked over the item as it is (read, computed, guarded write),
        unless a FOREIGN KEY checks it."""
        m = self._m
        b = self._b
        write = self._update_checked if self._checks else b.update
        with integrity.guarded(self):
            native = integrity.native_refs(self)
            await self._check_refs([values], exclude=native)
            computed = expr_on_ref(m, values) and not {
                r.name for r in m.refs.values()
                if any(c in values for c in r.columns)} <= native
            try:
                if computed or (has_expr(values) and not b.native_fexpr(values, pre, "update")):
                    out = await self._update_expr(key, values, pre)
                elif integrity.verifying(self) and integrity.writes_refs(
                        self, PreparedEdit("update", key, values, pre, 0)):
                    old = await b.get(key)
                    out = await write(key, values, pre)
                    if out is not None:
                        await integrity.check_written(
                            self, [values], lambda: integrity.restore_refs(self, key, old,
                                                                            values))
                else:
                    out = await write(key, values, pre)
            except ValidationError as exc:
                if native and is_reference_error(exc):
                    if has_expr(values):  # the values it failed on: the item's, computed
                        item = await b.get(key)
                        if item is not None:
                            await integrity.precise(self, [resolve(m, values, item)], exc)
                    await integrity.precise(self, [values], exc)
                raise
            return out

    async def _update_expr(self, key: tuple[Any, ...], values: dict[str, Any],
                           pre: Node | None) -> T | None:
        """An update with ``F`` expressions on a backend that does not evaluate them:
        read the item, compute the results here, write them guarded by the values read
        (one conditional write), and try again when another writer came between."""
        b = self._b
        for _ in range(EXPR_RETRIES):
            item = await b.get(key)
            if item is None or (pre is not None and not compile_local(pre)(item)):
                return None
            new = resolve(self._m, values, item)
            if self._m.refs and expr_on_ref(self._m, values):
                await self._check_refs([new])  # the Ref columns an F computed
            cond: Node | None = guard(values, item, pre)
            if self._checks:  # the result checked, written if the rest is unchanged
                check_item(self._m, {**item.__dict__, **new})
                cond = with_checks(cond, residual_all(self._m, new))
            out = await b.update(key, new, cond)
            if out is not None:
                if self._m.refs and expr_on_ref(self._m, values) and integrity.verifying(self):
                    await integrity.check_written(
                        self, [new], partial(integrity.restore_refs, self, key, item, new))
                return out
        raise StoreroomError(f"{self._m.name}: the update of {key!r} lost to other writers "
                             f"{EXPR_RETRIES} times")

    async def delete(self, key: Any, /, *, precondition: Any = None) -> bool:
        """Delete the item at ``key``; False when there was none."""
        pre = self._precondition(precondition)
        if pre == NOTHING:
            return False
        try:
            parts = key_parts(self._m, key)
        except NoSuchKey:
            return False
        incoming = await self._refs_in()
        if not incoming:
            return await self._b.delete(parts, pre)
        b = self._b
        with integrity.guarded(self):
            if await integrity.native_in(self, incoming):  # the FOREIGN KEYs act
                try:
                    return await b.delete(parts, pre)
                except Conflict as exc:
                    await integrity.blocked(self, [parts], incoming, exc)
            actions = await self._plan_delete([parts], incoming)  # Blocked: nothing deleted
            old = await b.get(parts) if integrity.verifying(self) else None
            deleted = await b.delete(parts, pre)
            if deleted:
                log: list[Any] | None = [] if old is not None else None
                await self._run_actions(actions, log)
                if old is not None:
                    await integrity.recheck_deleted(self, [old], incoming, log)
            return deleted

    async def search(self, where: Any = None, *, order_by: Iterable[str] | str = (),
                     limit: int | None = None, after: str | None = None,
                     query: str | None = None, refresh: bool = False,
                     select_related: Any = (), prefetch_related: Any = (),
                     **lookups: Any) -> Page[T]:
        """One page of the items matching the filter, in order; ``next`` continues.

        ``refresh``, ``select_related``, ``prefetch_related``: as on ``read``.
        """
        m = self._m
        limit = check_limit(limit, self._max_page)
        node, plans = self._filters.entry(where, query, lookups)
        order = self._order(order_by)
        position = None
        if after is not None:
            keys = self._keys or await self._cursor_keys()
            position = decode_cursor(after, fingerprint(m.name, node, order), m, order, keys)
        # the cursor position goes to the backend as it is: it builds the keyset
        # condition in its own terms (see query/plan.py)
        if select_related or prefetch_related:
            run = await self._lookups(node) if self._rels else node
            items = await self._fetch_related(run, order, limit, position, select_related,
                                              prefetch_related, refresh)
        elif plans is not None and position is None and not self._rels:
            # a remembered filter's first page: the backend's prepared statement
            plan = plans.get((order, limit), _UNPLANNED)
            if plan is _UNPLANNED:
                plan = self._plan(plans, (order, limit), "find", node, order, limit + 1)
            # (``prepare``, ``find_prepared``, ``count_prepared``: a SQL backend's, not
            # part of the backend protocol; ``_plan`` asks whether the backend has them)
            items = await (cast(Any, self._b).find_prepared(plan) if plan is not None
                           else self._fetch(node, order, limit + 1, None))
        else:
            run = await self._lookups(node) if self._rels else node
            items = await self._fetch(run, order, limit + 1, position)
        if len(items) > limit:
            items = items[:limit]
            keys = self._keys or await self._cursor_keys()
            # signed when first read (most pages are never continued); the last item's
            # order values are taken now, before anyone can change the item
            last = order_values(items[-1], order)
            return Page.signed_later(items, lambda: encode_cursor(
                fingerprint(m.name, node, order), last, keys))
        return Page(items, None)

    def search_all(self, where: Any = None, *, order_by: Iterable[str] | str = (),
                   limit: int | None = None, query: str | None = None,
                   refresh: bool = False, select_related: Any = (),
                   prefetch_related: Any = (), **lookups: Any) -> AsyncIterator[T]:
        """Every matching item, page by page (``limit`` is the page size; ``refresh``,
        ``select_related``, ``prefetch_related``: as on ``read``, loaded per page).

        Without ``limit`` (and without relations to load) the pages are the backend's
        ``scan_page`` items long where it has one (SQL: 10,000 rows, so that iterating
        a table takes few round trips), else ``max_page``. Lazy: nothing is checked or
        read before the first item is asked for.
        """
        return apages_items(self._pages(where, order_by, limit, query, refresh,
                                        select_related, prefetch_related, lookups))

    async def _pages(self, where: Any, order_by: Iterable[str] | str, limit: int | None,
                     query: str | None, refresh: bool, select_related: Any,
                     prefetch_related: Any, lookups: dict[str, Any]
                     ) -> AsyncIterator[list[T]]:
        """``search_all``'s pages, as the store hands their items out."""
        m = self._m
        related = bool(select_related or prefetch_related)
        if limit is None and not related:
            limit = self._scan_page
        else:
            limit = check_limit(limit, self._max_page)
        node = build_filter(m, where, query, lookups)
        order = self._order(order_by)
        # pages continue from the last item's order values, as a cursor would, without
        # signing and verifying one (nor reading the cursor secret)
        position = None
        if self._rels:
            node = await self._lookups(node)
        while True:
            if related:
                items = await self._fetch_related(node, order, limit, position,
                                                  select_related, prefetch_related, refresh)
            else:
                items = await self._fetch(node, order, limit + 1, position)
            more = len(items) > limit
            if more:
                items = items[:limit]
                position = order_values(items[-1], order)
            yield items if related else self._mapped(items, refresh)
            if not more:
                return

    def restore(self, row: Any, *, refresh: bool = False) -> T:
        """The item a row of the model's SQL table holds, as a model instance.

        ``row``: a SQLAlchemy ``Row`` of a statement over ``storeroom.sql.table_of(Model)``
        (also a row of a JOIN: its columns found as the table's own, under labels
        ``<table>_<column>`` as ``LABEL_STYLE_TABLENAME_PLUS_COL`` or explicit labels so
        named give them, or under their names), or a mapping of column names. No I/O: the row was read already (``ctx.engines.writer.execute``).
        In a context it goes through the identity map, as reads do: the mapped object
        of its key is returned, updated from the row only with ``refresh=True``.
        ``TypeError`` on a store that is not SQL; ``ValueError`` when the row lacks
        the table's columns.
        """
        core = getattr(self._base, "core", None)
        if core is None or not hasattr(core, "table"):
            raise TypeError(f"restore() needs a SQL store; this one is on "
                            f"{self.meta.backend!r}")
        from ...sql import restore
        return self._mapped([restore(core, row)], refresh)[0]

    def _mapped(self, items: list[T], refresh: bool) -> list[T]:
        """``items`` as this store hands them out: as read here; a store with an identity
        map returns the mapped objects (``refresh``: updated from ``items``)."""
        return items

    def _remember(self, items: list[Any]) -> None:
        """Note ``items`` as one result (a context's store keeps them as peers for lazy
        loading); nothing here."""

    async def _fetch_related(self, node: Node, order: Order, limit: int,
                             after: tuple[Any, ...] | None, select: Any, prefetch: Any,
                             refresh: bool) -> list[T]:
        """Up to ``limit + 1`` items of a page (as ``_fetch``), the first ``limit`` (the
        page's) mapped and with their relations loaded (``select_related`` as a JOIN
        where the backend has one)."""
        items = None
        # a JOIN where the backend has one and every target is on its database (an order
        # across relations is the store's own: see ``_fetch``)
        if select and all(n in self._m.attrs for n, _ in order):
            items = await loader.fetch_joined(self, node, order, limit + 1, after, select)
        joined = items is not None
        preloaded: frozenset[str] = frozenset()
        if items is None:
            items = await self._fetch(node, order, limit + 1, after)
            if select and not refresh:
                # an order across Refs loaded them onto the items (``_fetch``): the
                # select_related paths among them are not read again
                preloaded = order_prefixes(self.model, order)
        page, extra = items[:limit], items[limit:]
        return [*await loader.with_relations(self, page, select, prefetch, refresh, joined,
                                             preloaded),
                *extra]

    async def count(self, where: Any = None, **lookups: Any) -> int:
        """How many items match."""
        node, plans = self._filters.entry(where, None, lookups)
        if plans is not None and not self._rels:
            # a remembered filter: the backend's prepared statement, when it has one
            plan = plans.get("count", _UNPLANNED)
            if plan is _UNPLANNED:
                plan = self._plan(plans, "count", "count", node)
            if plan is not None:
                return int(await cast(Any, self._b).count_prepared(plan))
            return await self._count(node)
        return await self._count(await self._lookups(node) if self._rels else node)

    def _plan(self, plans: dict[Any, Any], key: Any, kind: str, node: Node,
              *args: Any) -> Any:
        """The backend's prepared statement of a count (``kind`` "count") or a first page
        (``find``: ``args`` are the order and how many items) over ``node``, a filter
        the ``FilterMemo`` remembers; kept in its ``plans`` under ``key``. None (kept
        too) when the backend prepares none (not all native, not SQL): the general
        path then runs."""
        prepare = getattr(self._base, "prepare", None)
        plan = None if prepare is None or node == NOTHING else prepare(kind, node, *args)
        if len(plans) < 16:
            plans[key] = plan
        return plan

    async def _count(self, node: Node) -> int:
        if node == NOTHING:
            return 0
        split = self._b.split(node)
        if split.all_native:
            return await self._b.count(split.native)
        keep = compile_local(split.local)
        n = 0
        async for item in self._b.iterate(split.native):
            if keep(item):
                n += 1
        return n

    async def aggregate(self, where: Any = None, *, aggregates: Mapping[str, Aggregate],
                        **lookups: Any) -> dict[str, Any]:
        """The named aggregates over the matching items: ``{"n": 3, "top": 5}`` for
        ``aggregates={"n": Count(), "top": Max("priority")}``.

        Run by the backend (natively on SQL and MongoDB) when it runs the whole filter,
        else evaluated here over the natively filtered items; over no items Sum, Min,
        Max and Avg are None and Count is 0.
        """
        specs = prepare_aggregates(self._m, aggregates)
        node = build_filter(self._m, where, None, lookups)
        if self._rels:
            node = await self._lookups(node)
        acc = Accumulator(specs)
        if node == NOTHING:
            return acc.result()
        b = self._b
        split = b.split(node)
        if split.all_native:
            return await b.aggregate(split.native, specs)
        keep = compile_local(split.local)
        async for item in b.iterate(split.native):
            if keep(item):
                acc.add(item)
        return acc.result()

    async def read_batch(self, keys: Iterable[Any], *, refresh: bool = False,
                         select_related: Any = (), prefetch_related: Any = ()
                         ) -> list[T | None]:
        """The items at ``keys``, aligned with them (None for a missing key; ``refresh``,
        ``select_related``, ``prefetch_related``: as on ``read``)."""
        m = self._m
        if select_related or prefetch_related:
            wanted: list[tuple[Any, ...] | None] = []
            for k in _sequence("keys", keys):
                try:
                    wanted.append(key_parts(m, k))
                except NoSuchKey:
                    wanted.append(None)
            if len(wanted) > self.meta.max_batch:
                raise ValidationError.one("keys", len(wanted), "max_batch",
                                          f"at most {self.meta.max_batch} keys per batch")
            found = await loader.read_many(
                self, list(dict.fromkeys(p for p in wanted if p is not None)),
                select_related, prefetch_related, refresh)
            return [None if p is None else found.get(p) for p in wanted]
        parts: list[tuple[Any, ...] | None] = []
        none = False  # a key no item can have: None in its slot, not asked for
        for k in _sequence("keys", keys):
            try:
                parts.append(key_parts(m, k))
            except NoSuchKey:
                parts.append(None)
                none = True
        if len(parts) > self.meta.max_batch:
            raise ValidationError.one("keys", len(parts), "max_batch",
                                      f"at most {self.meta.max_batch} keys per batch")
        if not none:  # every slot holds key parts
            return await self._b.get_many(cast("list[tuple[Any, ...]]", parts)) if parts else []
        asked = [p for p in parts if p is not None]
        got = iter(await self._b.get_many(asked) if asked else [])
        return [None if p is None else next(got) for p in parts]

    async def edit_batch(self, edits: Iterable[Create | Update | Delete | Upsert], *,
                         atomic: bool = False) -> list[EditResult]:
        """Apply creates, updates, deletes and upserts; one ``EditResult`` per edit, in order.

        With ``atomic=True`` all are applied or none, and ``BatchError`` is raised
        when any fails.
        """
        edits = _sequence("edits", edits)
        if not isinstance(atomic, bool):
            raise ValidationError.one("atomic", atomic, "type",
                                      f"atomic is True or False, got {atomic!r}")
        if len(edits) > self.meta.max_batch:
            raise ValidationError.one("edits", len(edits), "max_batch",
                                      f"at most {self.meta.max_batch} edits per batch")
        if atomic and not self.meta.atomic_batch:
            from ...errors import UnsupportedOperation
            raise UnsupportedOperation(f"{self.meta.backend} cannot apply batches atomically")
        m = self._m
        cls, fast = m.cls, m.fast_create
        if len(edits) > 1 and not self._checks and not m.refs and \
                set(map(type, edits)) == _CREATES_ONLY:
            run = getattr(self._b, "create_run", None)
            if run is not None:
                done = await self._create_run(edits, run)
                if done is not None:
                    return done
        results: list[EditResult | None] = [None] * len(edits)
        prepared: list[PreparedEdit] = []
        append = prepared.append
        for i, e in enumerate(edits):
            try:
                if type(e) is Create:  # the common bulk case: ``create_values`` inlined
                    item = e.item
                    values = None
                    if type(item) is cls:
                        try:
                            values = fast(item)
                        except (KeyError, AttributeError):  # missing an attribute: the general path
                            pass
                    if values is None:
                        values = checked_create_values(m, item)
                    append(PreparedEdit("create", None, values, None, i))
                else:
                    prepared.append(self._prepare_edit(i, e))
            except NoSuchKey:
                results[i] = EditResult(e, False, None, MISSING_KEY,
                                        "no item has a key holding a lone surrogate")
            except ValidationError as exc:
                results[i] = EditResult(e, *invalid(exc))
            except StoreroomError as exc:
                results[i] = EditResult(e, False, None, ERROR, str(exc))
        if self._checks and prepared:
            prepared = await self._batch_checks(edits, prepared, results)
        if m.refs or ("delete" in map(_kind, prepared) and await self._refs_in()):
            with integrity.guarded(self):
                return await self._edit_related(edits, prepared, results, atomic)
        return await self._edit(edits, prepared, results, atomic, {})

    async def _create_run(self, edits: list[Any], run: Callable[..., Any]
                          ) -> list[EditResult] | None:
        """``edit_batch`` of creates only, on a backend with a ``create_run``: the items
        checked and written in one go (no ``PreparedEdit``), an ``EditResult`` each;
        None, nothing written, when an item needs the general path (coerced, invalid,
        its key given) or the write failed: the caller then applies the batch the
        general way, which names every failure."""
        items = await run(edits)
        if items is None:
            return None
        return list(map(EditResult, edits, repeat(True), items))

    async def _edit_related(self, edits: list[Any], prepared: list[PreparedEdit],
                            results: list[EditResult | None], atomic: bool
                            ) -> list[EditResult]:
        """``edit_batch`` of edits that write Refs or delete referenced items, race-safe
        (``integrity``): checked and planned first; on SQL the FOREIGN KEYs' refusals
        reported as the checks would; in verify mode checked again after, and an edit
        found dangling then (or, atomic, the whole batch) taken back."""
        m = self._m
        native = integrity.native_refs(self)
        incoming = await self._refs_in()
        fk_deletes = bool(incoming) and await integrity.native_in(self, incoming)
        prepared, actions = await self._batch_relations(edits, prepared, results, native,
                                                        fk_deletes)
        verify = integrity.verifying(self)
        before: dict[Any, Any] = {}
        if verify and prepared and not (atomic and any(r is not None for r in results)):
            before = await integrity.olds(self, prepared)
        # verify mode: what each delete's on_delete changed, to put back with the delete
        logs: dict[int, list[Any]] | None = {} if verify else None
        await self._edit(edits, prepared, results, atomic, actions, check=False, logs=logs)
        if native or fk_deletes:  # refusals of the FOREIGN KEYs, named as the checks do
            for p in prepared:
                r = results[p.index]
                if r is None or r.ok or r.code not in (INVALID, DUPLICATE_KEY):
                    continue
                e = edits[p.index]
                if p.kind == "delete" and fk_deletes and r.code == DUPLICATE_KEY:
                    try:
                        await self._plan_delete([p.key], incoming)
                    except Blocked as exc:
                        results[p.index] = EditResult(e, False, None, REFERENCED, str(exc))
                elif p.kind != "delete" and r.code == INVALID and native:
                    values = p.values
                    if p.kind == "update" and expr_on_ref(m, values):
                        # the values it failed on: the item's, computed (as ``update``)
                        item = await self._b.get(p.key)
                        if item is not None:
                            try:
                                values = resolve(m, values, item)
                            except ValidationError:
                                pass
                    bad = await self._missing_refs([values])
                    if bad:
                        results[p.index] = EditResult(e, *invalid(bad[0][1]))
        if not verify or (atomic and any(r is None or not r.ok for r in results)):
            return self._edit_outcome(edits, results, atomic)
        done = [p for p in prepared if (r := results[p.index]) is not None and r.ok]
        wrong: dict[int, EditResult] = {}
        written = [p for p in done if integrity.writes_refs(self, p)]
        if written:
            made = {tuple(p.values.get(a) for a in m.key.attrs) for p in written
                    if p.kind != "update"}
            # an F computing a Ref column: checked again with the value it wrote
            rows = {p.index: _written_refs(m, p.values, results[p.index]) for p in written}
            late = {rk: err for rk, err in await self._missing_refs(
                list(rows.values()), made, after=True)}
            for p in written if late else ():
                row = rows[p.index]
                err = next((late[(ref, parts)] for ref in m.refs.values()
                            if (ref, parts := tuple(row.get(c) for c in ref.columns))
                            in late), None)
                if err is not None:
                    wrong[p.index] = EditResult(edits[p.index], *invalid(err))
        for p in done:
            if p.kind == "delete" and incoming and p.index not in wrong:
                try:
                    more = await self._plan_delete([p.key], incoming)
                except Blocked as exc:
                    wrong[p.index] = EditResult(edits[p.index], False, None, REFERENCED,
                                                str(exc))
                    continue
                except ValidationError as exc:  # a late nullify failing a check
                    wrong[p.index] = EditResult(edits[p.index], *invalid(exc))
                    continue
                if more:
                    await self._run_actions(
                        more, None if logs is None else logs.setdefault(p.index, []))
        if not wrong:
            return self._edit_outcome(edits, results, atomic)
        # taken back: each wrong edit (atomic: every applied edit, last first)
        undo = done if atomic else [p for p in done if p.index in wrong]
        for p in reversed(undo):
            r = results[p.index]
            await integrity.undo_edit(self, p, r.item if r is not None else None,
                                      before.get(p.key))
            if logs and p.index in logs:  # and what its on_delete did
                await integrity.take_back(self, logs[p.index])
        for i, r in wrong.items():
            results[i] = r
        if atomic:
            failed = _not_applied(edits, results)
            raise BatchError("batch not applied: " + "; ".join(
                f"#{i} {r.code}" for i, r in enumerate(failed) if r.code), failed)
        return [r for r in results if r is not None]

    async def _edit(self, edits: list[Any], prepared: list[PreparedEdit],
                    results: list[EditResult | None], atomic: bool,
                    actions: dict[int, list[Any]], check: bool = True,
                    logs: dict[int, list[Any]] | None = None) -> list[EditResult]:
        """Apply the prepared edits of ``edit_batch`` and run the ``on_delete`` actions of
        the deletes done. ``check=False``: an atomic batch that failed returns its results
        (``_edit_outcome`` raises) so that the caller can name the failures first.
        ``logs``: per edit, what its actions changed (``_run_actions``' log)."""
        if atomic:
            if any(r is not None for r in results):
                if not check:
                    return []
                raise BatchError("batch not applied: an edit is invalid",
                                 _not_applied(edits, results))
        b = self._b
        # (``in map``: a C loop over the kinds, the common all-creates batch pays little)
        if "update" in map(_kind, prepared) and any(
                p.kind == "update" and has_expr(p.values) for p in prepared) and (
                self._checks or not all(b.native_fexpr(p.values, p.precondition, "batch")
                                        and not self._computes_refs(p.values)
                                        for p in prepared
                                        if p.kind == "update" and has_expr(p.values))):
            outcomes = await self._apply_expr(prepared, atomic)
        else:
            outcomes = await self._b.apply(prepared, atomic) if prepared else []
        failed = False
        for p, (ok, item, code, detail) in zip(prepared, outcomes, strict=True):
            results[p.index] = EditResult(edits[p.index], ok, item, code, detail)
            failed = failed or not ok
        if actions and not (atomic and failed):  # on_delete of the deletes that were done
            for p in prepared:
                r = results[p.index]
                if p.index in actions and r is not None and r.ok:
                    await self._run_actions(actions[p.index], None if logs is None
                                            else logs.setdefault(p.index, []))
        if not check:
            return [r for r in results if r is not None]
        return self._edit_outcome(edits, results, atomic)

    def _edit_outcome(self, edits: list[Any], results: list[EditResult | None],
                      atomic: bool) -> list[EditResult]:
        """The results of ``edit_batch``; ``BatchError`` for an atomic one that failed."""
        if atomic and any(r is None or not r.ok for r in results):
            out = _not_applied(edits, results)
            raise BatchError("batch not applied: " + "; ".join(
                f"#{i} {r.code}" for i, r in enumerate(out) if r.code), out)
        return [r for r in results if r is not None]

    async def update_where(self, where: Any = None, *, changes: dict[str, Any],
                           **lookups: Any) -> int:
        """Apply ``changes`` to every matching item; how many were updated.

        Each item is changed only if it matches the filter when it is written, and
        changes that would give several items one unique value raise ``Conflict`` and
        change nothing.
        """
        if not isinstance(changes, Mapping):
            raise ValidationError.one("changes", changes, "type",
                                      "changes is a dict of attribute names and values, "
                                      f"got {type(changes).__name__}")
        values = update_changes(self._m, changes)
        node = build_filter(self._m, where, None, lookups)
        if self._rels:
            node = await self._lookups(node)
        if node == NOTHING:
            return 0
        if not values:  # nothing to write: how many match
            return await self._count(node)
        b = self._b
        m = self._m
        if not (m.refs and values):
            if self._checks:
                return await self._update_where_checked(node, values)
            if has_expr(values) and not b.native_fexpr(values, node, "where"):
                return await self._update_where_expr(node, values)
            # the backend checks the whole filter, native and local parts, atomically
            # with its writes (and lets its unique index, where it has one, refuse a
            # duplicate)
            return await b.update_where(node, values)
        with integrity.guarded(self):
            native = integrity.native_refs(self)
            await self._check_refs([values], exclude=native)
            computed = expr_on_ref(m, values) and not {
                r.name for r in m.refs.values()
                if any(c in values for c in r.columns)} <= native
            if computed or (has_expr(values) and not b.native_fexpr(values, node, "where")):
                return await self._update_where_expr(node, values)
            verify = integrity.verifying(self) and integrity.writes_refs(
                self, PreparedEdit("update", None, values, None, 0))
            before = [i async for i in self.search_all(node)] if verify else []
            try:
                n = await (self._update_where_checked(node, values) if self._checks else
                           b.update_where(node, values))
            except ValidationError as exc:
                if native and is_reference_error(exc):
                    await integrity.precise(self, [values], exc)
                raise

            async def undo() -> None:
                for item in before:
                    await integrity.restore_refs(self, _parts(m, item), item, values)

            if verify and n:
                await integrity.check_written(self, [values], undo)
            return n

    async def _update_where_checked(self, node: Node, values: dict[str, Any]) -> int:
        """``update_where`` of a model with checks the backend does not enforce: a match
        the changes would make fail a check → ``ValidationError``, nothing written; then
        each match written on condition it still lets the result pass (a match changed
        meanwhile so that it would fail is not written)."""
        if has_expr(values):
            return await self._update_where_expr(node, values)
        m = self._m
        res = residual_all(m, values)
        for name, r in res.items():
            if r == EVERYTHING:
                continue
            bad = node if r == NOTHING else junction(And, [node, simplify(Not(r))])
            if bad != NOTHING and await self._count(bad):
                raise check_error(m, name)
        guarded = with_checks(node, res)
        return await self._b.update_where(node if guarded is None else guarded, values)

    async def delete_where(self, where: Any = None, **lookups: Any) -> int:
        """Delete every matching item (each only if it matches when deleted); how many."""
        node = build_filter(self._m, where, None, lookups)
        if self._rels:
            node = await self._lookups(node)
        if node == NOTHING:
            return 0
        incoming = await self._refs_in()
        if not incoming:
            return await self._b.delete_where(node)
        b = self._b
        m = self._m
        with integrity.guarded(self):
            if await integrity.native_in(self, incoming):  # one statement, all or nothing
                try:
                    return await b.delete_where(node)
                except Conflict as exc:
                    keys = [_parts(m, item) async for item in self.search_all(node)]
                    await integrity.blocked(self, keys, incoming, exc)
            # all or nothing: plan for every matching item (Blocked before any delete),
            # then delete just those (an item matching only later is not one the plan
            # covered)
            items = [item async for item in self.search_all(node)]
            keys = [_parts(m, item) for item in items]
            if not keys:
                return 0
            actions = await self._plan_delete(keys, incoming)
            n = await b.delete_where(junction(And, [node, build_filter(m, keys_filter(m, keys))]))
            log: list[Any] | None = [] if integrity.verifying(self) else None
            await self._run_actions(actions, log)
            if integrity.verifying(self) and n:
                gone = [i for i, now in zip(items, await self._get_all(keys), strict=True)
                        if now is None]
                await integrity.recheck_deleted(self, gone, incoming, log)
            return n

    # relations --------------------------------------------------------------------------
    def _related(self, model: type) -> AsyncStore[Any]:
        """The store of a related model on this store's database (opened on first use)."""
        if self._borrows_related and self._opener is not None:
            return self._opener(model)
        found = self._family.get(model)
        if found is not None:
            return found
        related = getattr(self._base, "related", None)
        if related is not None:  # the backend shares its (maybe private) database
            store: AsyncStore[Any] = AsyncStore(model, related(model), secret=self._keys)
        elif self._opener is not None:
            store = self._opener(model)
        else:
            raise LookupError(f"{self._m.name}: no store of the related model "
                              f"{model.__qualname__} can be opened (open the store with "
                              "open_store / open_async_store)")
        store._opener = self._opener
        store._family = self._family
        self._family[model] = store
        self._owned.append(store)
        return store

    async def _lookups(self, node: Node, native: bool = True) -> Node:
        """``node`` with every relation lookup (``Rel``) the backend does not compile
        replaced by a condition on this model's own attributes: the related model is
        searched (its keys, or its reference columns, collected) and the lookup becomes
        ``<ref>_id__in`` / ``key__in`` (``query/relations.py`` plans it). Forward and
        reverse cost one search each, many-to-many two; each is its own round trip, so
        the result is a snapshot, not atomic with the search that uses it. ``native=False``
        plans every lookup (for a filter evaluated locally)."""
        if not has_rel(node):
            return node
        compiles = getattr(self._b, "compiles_rel", None) if native else None
        done: dict[Rel, Node] = {}
        todo = [r for r in rels(node) if compiles is None or not compiles(r, self._related)]
        if len(todo) < len(rels(node)):
            # native ones must not land in the local part (a stub has no attributes)
            local = self._b.split(replace_rels(node, {r: NOTHING for r in todo})).local
            todo.extend(rels(local))
        for rel in todo:
            if rel in done:
                continue
            values: list[tuple[Any, ...]] = []
            for i, step in enumerate(plan_rel(rel)):
                sm = meta_of(step.model)
                where = step.where if i == 0 else step_filter(rel, i, values)
                values = await self._related(step.model)._collect(prepare(sm, where),
                                                                  step.collect)
            done[rel] = prepare(self._m, finish_rel(self._m, rel, values))
        return replace_rels(node, done) if done else node

    async def _collect(self, node: Node, names: tuple[str, ...]) -> list[tuple[Any, ...]]:
        """The distinct tuples of the attributes ``names`` of the items matching ``node``
        (read from the backend, past any identity map)."""
        if self._rels:
            node = await self._lookups(node)
        if node == NOTHING:
            return []
        split = self._b.split(node)
        keep = None if split.all_native else compile_local(split.local)
        out: dict[tuple[Any, ...], None] = {}
        async for item in self._b.iterate(split.native):
            if keep is None or keep(item):
                out[tuple(getattr(item, n) for n in names)] = None
        return list(out)

    async def _check_refs(self, rows: list[dict[str, Any]],
                          skip: set[tuple[Any, ...]] | None = None,
                          exclude: frozenset[str] = frozenset()) -> None:
        """``ValidationError`` (rule ``reference``) for the first key ``rows`` reference
        that no target item has (one batched read per Ref; none for the Refs named in
        ``exclude``, which a FOREIGN KEY checks)."""
        bad = await self._missing_refs(rows, skip, exclude)
        if bad:
            raise bad[0][1]

    async def _get_all(self, keys: list[tuple[Any, ...]]) -> list[Any]:
        """``get_many`` of any number of keys (in batches of ``max_batch``)."""
        size = self.meta.max_batch
        out: list[Any] = []
        for i in range(0, len(keys), size):
            out.extend(await self._b.get_many(keys[i:i + size]))
        return out

    async def _missing_refs(self, rows: list[dict[str, Any]],
                            skip: set[tuple[Any, ...]] | None = None,
                            exclude: frozenset[str] = frozenset(), after: bool = False
                            ) -> list[tuple[tuple[RefInfo, tuple[Any, ...]], ValidationError]]:
        """The keys ``rows`` reference that no target item has, with their errors.
        ``after``: the check after a write (``integrity.check_written``), by a write to
        each target where the backend ``touches`` (MongoDB with transactions)."""
        m = self._m
        out: list[tuple[tuple[RefInfo, tuple[Any, ...]], ValidationError]] = []
        for ref, keys in referenced(m, rows, skip, exclude):
            target = self._related(ref.target)
            size = target.meta.max_batch
            rb = await self._bound(target)
            touch = after and getattr(rb, "touches", False)
            for i in range(0, len(keys), size):
                chunk = keys[i:i + size]
                got: list[Any] = await (rb.touch(chunk)  # type: ignore[attr-defined]
                                        if touch else rb.get_many(chunk))
                out.extend(((ref, k), missing_reference(m, ref, k))
                           for k, item in zip(chunk, got, strict=True)
                           if item is None or item is False)
        return out

    async def _bound(self, other: AsyncStore[Any]) -> AsyncBackend[Any]:
        """The backend of the related store ``other`` for this store's current
        operation: inside this store's open transaction, bound to it (a check in a
        transaction sees its writes and is part of it), else ``other``'s own."""
        var = self._txvar
        cur = var.get() if var is not None else None
        if cur is None or cur.owner != owner() or other is self:
            return other._b
        bound = cur.related.get(other.model)
        if bound is None:
            base = cast("AsyncTransactionalBackend[Any]", other._base)
            try:
                bound = await base.bind(cur.tx)
            except (ValueError, UnsupportedOperation):
                # the transaction cannot take it (MongoDB: the related store has a
                # client of its own): outside it, as before
                bound = other._b
            cur.related[other.model] = bound
        return cast("AsyncBackend[Any]", bound)

    async def _refs_in(self) -> tuple[RefInfo, ...]:
        """The Refs of every registered model pointing at this one, except ``ignore``."""
        gen = generation()
        if self._incoming is None or self._incoming[0] != gen:
            self._incoming = (gen, tuple(r for r in refs_to(self.model)
                                         if r.on_delete != "ignore"))
        return self._incoming[1]

    async def _plan_delete(self, keys: list[tuple[Any, ...]],
                           incoming: tuple[RefInfo, ...]) -> list[Any]:
        """What deleting ``keys`` does to the items referencing them, planned to any depth
        before anything is written: ``Blocked`` when a ``block`` Ref is met anywhere."""
        actions: list[Any] = []
        gone: dict[type, set[tuple[Any, ...]]] = {self.model: set(keys)}
        todo: list[tuple[AsyncStore[Any], list[tuple[Any, ...]], tuple[RefInfo, ...]]] = [
            (self, keys, incoming)]
        while todo:
            store, ks, refs = todo.pop()
            for ref in refs:
                src = self._related(ref.model)
                sm = src._m
                found: list[tuple[Any, ...]] = []
                hit: list[Any] = []
                for chunk in _chunks(ks):  # bounded IN lists (DynamoDB takes 100 values)
                    for i in await self._matching(src, refers_to(ref, chunk)):
                        k = _parts(sm, i)
                        if k not in gone.get(ref.model, ()):
                            found.append(k)
                            hit.append(i)
                if not found:
                    continue
                if ref.on_delete == "block":
                    raise Blocked(store._m, ref, ks[0] if len(ks) == 1 else None, found[0])
                if ref.on_delete == "nullify":
                    if src._checks:  # an item the nullify would make fail a check: refused
                        # (as SQL's CHECK refuses the FOREIGN KEY's SET NULL), nothing deleted
                        nulls = dict.fromkeys(ref.columns)
                        for i in hit:
                            name = failed_check(sm, {**i.__dict__, **nulls})
                            if name is not None:
                                raise check_error(sm, name)
                    actions.append(("nullify", src, ref, ks))
                    continue
                gone.setdefault(ref.model, set()).update(found)
                actions.append(("delete", src, None, found))
                todo.append((src, found, await src._refs_in()))
        return actions

    async def _run_actions(self, actions: list[Any], log: list[Any] | None = None) -> None:
        """Apply a delete plan: nullify the columns of referencing items, delete cascaded
        ones (each a backend write: not atomic with the delete on these backends).
        ``log`` (verify mode): what each action changes is read first and appended, so
        that a delete refused after all puts it back (``integrity.take_back``)."""
        for kind, src, ref, keys in actions:
            sm = src._m
            sb = await self._bound(src)
            for chunk in _chunks(keys):
                if kind == "nullify":
                    where = build_filter(sm, refers_to(ref, chunk))
                    if log is not None:
                        log.append((kind, src, ref, await self._matching(src, where)))
                    await sb.update_where(where, {c: None for c in ref.columns})
                else:
                    if log is not None:
                        log.append((kind, src, ref, [i for i in await sb.get_many(chunk)
                                                     if i is not None]))
                    await sb.delete_where(build_filter(sm, keys_filter(sm, chunk)))

    async def _matching(self, other: AsyncStore[Any], where: Any) -> list[Any]:
        """The items of the related store ``other`` matching ``where`` (in this store's
        transaction, if one is open: ``_bound``)."""
        b = await self._bound(other)
        node = build_filter(other._m, where, None, {})
        if node == NOTHING:
            return []
        split = b.split(node)
        keep = compile_local(split.local)
        return [i async for i in b.iterate(split.native) if keep(i)]

    async def _batch_relations(self, edits: list[Any], prepared: list[PreparedEdit],
                               results: list[EditResult | None],
                               native: frozenset[str] = frozenset(), fk_deletes: bool = False
                               ) -> tuple[list[PreparedEdit], dict[int, list[Any]]]:
        """References of a batch's writes checked (an edit to a missing key is invalid)
        and its deletes planned (a blocked one fails with code ``referenced``); not the
        Refs in ``native`` nor, with ``fk_deletes``, the deletes: FOREIGN KEYs check them."""
        m = self._m
        keep: list[PreparedEdit] = []
        actions: dict[int, list[Any]] = {}
        writes = [p for p in prepared if p.kind != "delete"]
        if m.refs and writes:
            made = {tuple(p.values.get(a) for a in m.key.attrs) for p in writes
                    if p.kind != "update"}
            bad = await self._missing_refs([p.values for p in writes], made, native)
            missing = {rk: err for rk, err in bad}
        else:
            missing = {}
        incoming = () if fk_deletes else await self._refs_in()
        for p in prepared:
            e = edits[p.index]
            if p.kind == "delete":
                if incoming:
                    try:
                        actions[p.index] = await self._plan_delete([p.key], incoming)
                    except Blocked as exc:
                        results[p.index] = EditResult(e, False, None, REFERENCED, str(exc))
                        continue
                    except ValidationError as exc:  # a nullify failing a check
                        results[p.index] = EditResult(e, *invalid(exc))
                        continue
            elif missing:
                err = next((missing[(ref, parts)] for ref in m.refs.values()
                            if (ref, parts := tuple(p.values.get(c) for c in ref.columns))
                            in missing), None)
                if err is not None:
                    results[p.index] = EditResult(e, *invalid(err))
                    continue
            keep.append(p)
        return keep, actions

    async def _batch_checks(self, edits: list[Any], prepared: list[PreparedEdit],
                            results: list[EditResult | None]) -> list[PreparedEdit]:
        """The edits of a batch whose items pass every check; the others get an
        ``invalid`` result (rule = the check's name). Each edit is tested on the item as
        the batch's earlier edits leave it (the items read first); an update without
        ``F`` is written on condition the stored item still lets it pass."""
        m, b = self._m, self._b
        keys = list(dict.fromkeys(p.key for p in prepared if p.kind != "create"))
        state: dict[Any, dict[str, Any] | None] = {
            k: None if i is None else dict(i.__dict__)
            for k, i in zip(keys, await b.get_many(keys) if keys else [], strict=True)}
        out: list[PreparedEdit] = []
        for p in prepared:
            k = p.key if p.kind != "create" else None
            item = state.get(k) if k is not None else None
            new: dict[str, Any] | None
            if p.kind == "delete":
                new = None
            elif p.kind == "create":
                new = p.values
            elif p.kind == "upsert":
                new = upserted(m, item, p.values)
            elif item is None:  # missing: the backend reports it
                out.append(p)
                continue
            else:
                try:
                    new = {**item, **(resolve(m, p.values, item) if has_expr(p.values)
                                      else p.values)}
                except ValidationError:
                    out.append(p)  # an F result out of bounds: the backend's path says so
                    continue
            name = None if new is None else failed_check(m, new)
            if name is not None:
                results[p.index] = EditResult(edits[p.index], *invalid(check_error(m, name)))
                continue
            if p.kind == "update" and not has_expr(p.values):
                p = PreparedEdit(p.kind, p.key, p.values,
                                 with_checks(p.precondition, residual_all(m, p.values)),
                                 p.index)
            if k is not None:
                state[k] = new
            out.append(p)
        return out

    def _computes_refs(self, values: dict[str, Any]) -> bool:
        """True when ``values`` compute a Ref column with an ``F`` expression that no
        FOREIGN KEY checks: the store checks the result over the item as it is (read,
        computed, checked, written guarded), as ``update`` does."""
        m = self._m
        return bool(m.refs) and expr_on_ref(m, values) and not {
            r.name for r in m.refs.values()
            if any(c in values for c in r.columns)} <= integrity.native_refs(self)

    async def _apply_expr(self, prepared: list[PreparedEdit], atomic: bool) -> list[Any]:
        """Apply edits holding ``F`` expressions some of which the backend does not
        evaluate in a batch (``native_fexpr(..., "batch")``).

        Not atomic: in order, runs of edits the backend takes in one call, each other
        ``F`` update as ``update`` does it. Atomic: the items read first, the results
        computed, and the batch applied with every ``F`` update guarded by the values
        read; tried again when another writer came between. An ``F`` refers to the item as
        the batch's earlier edits left it, as on the backends' own paths.
        """
        b = self._b
        if not atomic:
            out: list[Any] = []
            run: list[PreparedEdit] = []
            for p in prepared:
                if p.kind == "update" and has_expr(p.values) and (
                        self._checks or self._computes_refs(p.values)
                        or not b.native_fexpr(p.values, p.precondition, "batch")):
                    if run:
                        out.extend(await b.apply(run, False))
                        run = []
                    out.append(await self._expr_outcome(p))
                else:
                    run.append(p)
            if run:
                out.extend(await b.apply(run, False))
            return out
        outcomes: list[Any] = []
        for _ in range(EXPR_RETRIES):
            edits: list[PreparedEdit] = []
            keys = list(dict.fromkeys(p.key for p in prepared
                                      if p.kind == "update" and has_expr(p.values)))
            # the state of each key an F reads, advanced edit by edit as the backend will
            # apply them, so an F sees the batch's earlier edits (as on every other path)
            items: dict[Any, dict[str, Any] | None] = {
                k: None if i is None else dict(i.__dict__)
                for k, i in zip(keys, await b.get_many(keys), strict=True)}
            raced = False
            for p in prepared:
                k = p.key if p.kind in ("update", "delete") else upsert_key(self._m, p.values)
                item = items.get(k)
                if p.kind == "update" and has_expr(p.values):
                    if item is None:  # the backend reports it (missing_key)
                        edits.append(p)
                        continue
                    try:
                        values = resolve(self._m, p.values, item)
                        if self._computes_refs(p.values):  # the Ref columns the F computed
                            await self._check_refs([values],
                                                   exclude=integrity.native_refs(self))
                    except ValidationError as exc:
                        return [invalid(exc) if q is p else
                                NOT_APPLIED
                                for q in prepared]
                    cond: Node | None = guard(p.values, item, p.precondition)
                    if self._checks:  # written if what the check read is unchanged
                        cond = with_checks(cond, residual_all(self._m, values))
                    edits.append(PreparedEdit("update", p.key, values, cond, p.index))
                else:
                    values = p.values
                    edits.append(p)
                if k in items:
                    items[k] = (None if p.kind == "delete" else
                                upserted(self._m, item, values) if p.kind == "upsert" else
                                {**(item or {}), **values})
            outcomes = await b.apply(edits, True)
            for p, (ok, _, code, _) in zip(prepared, outcomes, strict=True):
                if not ok and code == PRECONDITION_FAILED and has_expr(p.values):
                    # the guard or the user's precondition: which, the next read tells
                    cur = await b.get(p.key)
                    raced = raced or cur is None or p.precondition is None or \
                        compile_local(p.precondition)(cur)
            if not raced:
                return outcomes
        return outcomes

    async def _expr_outcome(self, p: PreparedEdit) -> Any:
        """The outcome of one ``F`` update of a non-atomic batch."""
        try:
            if not (self._checks or self._computes_refs(p.values)) and self._b.native_fexpr(
                    p.values, p.precondition, "update"):
                item = await self._b.update(p.key, p.values, p.precondition)
            else:
                item = await self._update_expr(p.key, p.values, p.precondition)
        except ValidationError as exc:
            return invalid(exc)
        except StoreroomError as exc:
            if type(exc).__name__ == "Conflict":
                return (False, None, DUPLICATE_KEY, str(exc))
            return (False, None, ERROR, str(exc))
        if item is not None:
            return (True, item, None, None)
        if await self._b.get(p.key) is None:
            return (False, None, MISSING_KEY, f"no item with key {p.key!r}")
        return (False, None, PRECONDITION_FAILED,
                f"the precondition does not hold for {p.key!r}")

    async def _update_where_expr(self, node: Node, values: dict[str, Any]) -> int:
        """``update_where`` with ``F`` expressions on a backend that does not evaluate
        them: the matches read, their results computed (any outside its bounds →
        ``ValidationError``, nothing written), then written guarded by the values read,
        as one atomic batch where the backend has them (tried again when another writer
        came between), else item by item."""
        b = self._b
        m = self._m
        names = m.key.attrs
        for _ in range(EXPR_RETRIES):
            split = b.split(node)
            keep = compile_local(split.local)
            items = [i async for i in b.iterate(split.native) if keep(i)]
            edits = [PreparedEdit("update", tuple(getattr(i, n) for n in names),
                                  resolve(m, values, i), guard(values, i, node), k)
                     for k, i in enumerate(items)]
            if not edits:
                return 0
            on_ref = bool(m.refs) and expr_on_ref(m, values)
            if on_ref:  # the Ref columns the F computed, over the items read
                await self._check_refs([e.values for e in edits])
            if self._checks:  # every result checked before anything is written
                for e, i in zip(edits, items, strict=True):
                    check_item(m, {**i.__dict__, **e.values})
                    e.precondition = with_checks(e.precondition,
                                                 residual_all(m, e.values)) or e.precondition
            if not (self.meta.atomic_batch and len(edits) <= self.meta.max_batch):
                n = 0
                native = (not self._checks and not on_ref
                          and b.native_fexpr(values, node, "update"))
                for e in edits:
                    n += await (b.update(e.key, values, node) if native else
                                self._update_expr(e.key, values, node)) is not None
                return n
            outcomes = await b.apply(edits, True)
            if all(o[0] for o in outcomes):
                return len(edits)
            for o in outcomes:
                if not o[0] and o[2] == DUPLICATE_KEY:
                    from ...errors import Conflict
                    raise Conflict(o[3] or f"{m.name}: a unique value exists already")
        raise StoreroomError(f"{m.name}: update_where lost to other writers "
                             f"{EXPR_RETRIES} times")

    # helpers ------------------------------------------------------------------------
    async def _cursor_keys(self) -> CursorKeys:
        """The keys of this store's cursors, found on the first page that needs them:
        ``STOREROOM_SECRET``, else the database's secret (the backend's
        ``cursor_secret()``, created there on first use)."""
        keys = env_cursor_keys()
        if keys is None:
            keys = CursorKeys((await self._b.cursor_secret(),))
        self._keys = keys
        return keys

    def _order(self, order_by: Any) -> Order:
        """``parse_order`` of ``order_by``, remembered for an order_by of names (a str, or
        a list or tuple of them: the common case, validated once)."""
        if type(order_by) is str:
            key: Any = order_by
        elif (type(order_by) is tuple or type(order_by) is list) and all(
                type(n) is str for n in order_by):
            key = tuple(order_by)
        else:
            return parse_order(self._m, order_by)
        order = self._orders.get(key)
        if order is None:
            order = parse_order(self._m, order_by)
            if len(self._orders) < 256:
                self._orders[key] = order
        return order

    def _precondition(self, precondition: Any) -> Node | None:
        if precondition is None:
            return None
        node = prepare(self._m, to_node(precondition))
        if self._rels and has_rel(node):
            from ...errors import InvalidFilter
            raise InvalidFilter(f"{self._m.name}: a precondition is checked on the item "
                                "itself; it cannot look across relations (filter the "
                                "related model first)")
        return None if node == EVERYTHING else node

    def _prepare_edit(self, i: int, e: Any) -> PreparedEdit:
        m = self._m
        if isinstance(e, Create):
            return PreparedEdit("create", None, create_values(m, e.item), None, i)
        if isinstance(e, Update):
            if e.item is not None:
                key, values = full_update_changes(m, e.item)
            else:
                key, values = key_parts(m, e.key), update_changes(m, e.changes)
            return PreparedEdit("update", key, values, self._precondition(e.precondition), i)
        if isinstance(e, Delete):
            return PreparedEdit("delete", key_parts(m, e.key), {}, None, i)
        if isinstance(e, Upsert):
            values = create_values(m, e.item)
            key = upsert_key(m, values)
            return PreparedEdit("create" if key is None else "upsert", key, values, None, i)
        raise ValidationError.one(None, e, "type", f"not an edit: {e!r}")

    async def _fetch(self, node: Node, order: Order, want: int,
                     after: tuple[Any, ...] | None = None) -> list[T]:
        """Up to ``want`` items matching ``node`` in ``order`` after the position ``after``
        (a cursor's decoded order values), native where possible."""
        if node == NOTHING:
            return []
        if self._rels and any(n not in self._m.attrs for n, _ in order):
            found = await self._fetch_rel_ordered(node, order, want, after)
            if found is not None:
                return found
            return await self._fetch_by_relation(node, order, want, after)
        b = self._b
        split = b.split(node)
        if b.can_order(order):
            if split.all_native:
                return await b.find(Query(split.native, order, want, after))
            # natively ordered chunks, thinned locally, continued by keyset
            keep = compile_local(split.local)
            out: list[T] = []
            while True:
                chunk = await b.find(Query(split.native, order, LOCAL_CHUNK, after))
                out.extend(i for i in chunk if keep(i))
                if len(out) >= want or len(chunk) < LOCAL_CHUNK:
                    return out[:want]
                after = order_values(chunk[-1], order)
        query = Query(split.local, order, None, after)
        keep = compile_local(query.where())
        items = [i async for i in b.iterate(split.native) if keep(i)]
        self._check_local_sort(len(items))
        return sort_items(items, order)[:want]

    async def _fetch_rel_ordered(self, node: Node, order: Order, want: int,
                                 after: tuple[Any, ...] | None) -> list[T] | None:
        """``_fetch`` for an order across relations sorted by the backend (SQL: LEFT OUTER
        JOINs of the referenced tables, ``sql/relorder.py``): one statement, the related
        items of the order's paths attached (through the related stores' identity maps,
        as ``loader.run`` attaches them); None when the backend cannot (no
        ``order_joins``, a filter it does not run whole, a table elsewhere)."""
        b: Any = self._b  # (``order_joins`` and ``find_joined``: SQL's, not the protocol's)
        order_joins = getattr(b, "order_joins", None)
        if order_joins is None:
            return None
        split = b.split(node)
        if not split.all_native:
            return None
        joins = order_joins(order, self._related)
        if joins is None:
            return None
        items: list[T] = list(await b.find_joined(Query(split.native, order, want, after),
                                                  joins))
        if items and getattr(self, "identity", None) is not None:
            await loader._adopt_joined(self, items, items, order_plan(self.model, order),
                                       False)
        return items

    async def _fetch_by_relation(self, node: Node, order: Order, want: int,
                                 after: tuple[Any, ...] | None) -> list[T]:
        """``_fetch`` for an order across relations (``category__name``), on every
        backend: the matching items are read, their related items loaded as
        ``select_related`` of the order's paths loads them (one batched read per Ref of
        the order and depth, through the related stores' maps), and sorted here."""
        b = self._b
        split = b.split(node)
        keep = compile_local(split.local)
        items = [i async for i in b.iterate(split.native) if keep(i)]
        self._check_local_sort(len(items))
        if items:
            await loader.run(self, items, order_plan(self.model, order), False)
        rows = [_OrderRow(i, order_values(i, order), order) for i in items]
        if after is not None:
            later = compile_local(after_filter(order, after))
            rows = [r for r in rows if later(r)]
        return [r._storeroom_item for r in sort_items(rows, order)[:want]]

    def _check_local_sort(self, n: int) -> None:
        bound = getattr(self._b, "max_local_sort", None)
        if bound is not None and n > bound:
            from ...errors import UnsupportedOperation
            raise UnsupportedOperation(
                f"{self.meta.backend} would have to sort {n} items locally (bound {bound}); "
                "order by an indexed attribute or narrow the filter")


class _OrderRow:
    """An item and its order values by name, for sorting by values across relations."""

    def __init__(self, item: Any, values: tuple[Any, ...], order: Order) -> None:
        self.__dict__.update(zip((n for n, _ in order), values, strict=True))
        self.__dict__["_storeroom_item"] = item


def _written_refs(m: ModelMeta, values: dict[str, Any], r: EditResult | None
                  ) -> dict[str, Any]:
    """``values`` of an applied edit, each Ref column an ``F`` computed replaced by the
    value written (read from the edit's result item)."""
    if r is None or r.item is None or not expr_on_ref(m, values):
        return values
    d = r.item.__dict__
    return {**values, **{c: d.get(c) for ref in m.refs.values() for c in ref.columns
                         if c in values and has_expr({c: values[c]})}}


def _chunks(keys: list[tuple[Any, ...]], size: int = 100) -> list[list[tuple[Any, ...]]]:
    return [keys[i:i + size] for i in range(0, len(keys), size)]


def _parts(m: ModelMeta, item: Any) -> tuple[Any, ...]:
    return tuple(getattr(item, a) for a in m.key.attrs)


_CREATES_ONLY = {Create}


def _sequence(name: str, values: Any) -> list[Any]:
    """``values`` (keys, edits) as a list; ``ValidationError`` when it is not a collection
    of them (a str, bytes, mapping or set is refused: it is one value, or unordered)."""
    if isinstance(values, list):
        return values
    if isinstance(values, str | bytes | bytearray | Mapping | Set) or not isinstance(
            values, Iterable):
        raise ValidationError.one(name, values, "type",
                                  f"{name} is a list, got {type(values).__name__}")
    return list(values)


def _not_applied(edits: list[Any], results: list[EditResult | None]) -> list[EditResult]:
    """The results of an atomic batch that failed: each failure as it is, every other
    edit (applied, or never tried) ``NOT_APPLIED``."""
    return [r if r is not None and not r.ok else EditResult(edits[i], *NOT_APPLIED)
            for i, r in enumerate(results)]


__all__ = ["AsyncStore", "DUPLICATE_KEY", "MISSING_KEY"]

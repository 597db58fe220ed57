"""``AsyncStore``: the Store contract over any backend (the sync ``Store`` is generated)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Set
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, Generic, TypeVar, cast

from ...backends.batch import NOT_APPLIED, upsert_key, upserted
from ...backends.common import invalid
from ...errors import BatchError, StoreroomError, UnsupportedOperation, ValidationError
from ...model.registry import generation, refs_to
from ...model.relations import RefInfo
from ...model.stored import ModelMeta, meta_of
from ...query.ast import EVERYTHING, NOTHING, And, Node
from ...query.cursor import (
    CursorKeys,
    cursor_keys,
    decode_cursor,
    encode_cursor,
    env_cursor_keys,
    fingerprint,
)
from ...query.evaluate import compile_local, sort_items
from ...query.order import Order, order_values, parse_order
from ...query.plan import Query
from ...query.prepare import build_filter, junction, prepare
from ...query.q import to_node
from ..aggregate import Accumulator, Aggregate, prepare_aggregates
from ..fexpr import guard, has_expr, resolve
from ..filtermemo import FilterMemo
from ..lifecycle import ClosedBackend, watch_unclosed
from ..plan import check_limit
from ..prepare import NoSuchKey, create_values, full_update_changes, key_parts, update_changes
from ..protocol import AsyncBackend, AsyncTransactionalBackend
from ..relations import REFERENCED, Blocked, keys_filter, missing_reference, referenced, refers_to
from ..txstate import OpenTransaction, PerTask, owner
from ..types import (
    DUPLICATE_KEY,
    ERROR,
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

T = TypeVar("T")

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
        if self._m.refs:
            await self._check_refs([values])
        return await self._b.insert(values)

    async def upsert(self, item: T) -> T:
        """Create ``item``, or fully update the item at its key when one exists.

        A full write: attributes the item leaves at their defaults are stored as those
        defaults; attributes that cannot be updated (``created_at``) of an existing item
        keep their stored value. Validated as on create; generated keys are filled in
        when not given; ``Conflict`` when a unique attribute's value is another item's.
        """
        values = create_values(self._m, item)
        if self._m.refs:
            await self._check_refs([values])
        if upsert_key(self._m, values) is None:  # a sequence key the backend assigns
            return await self._b.insert(values)
        return await self._b.upsert(values)

    async def read(self, key: Any, *, refresh: bool = False) -> T | None:
        """The item at ``key``, or None.

        ``refresh`` matters in a context's identity map only (see ``MappedAsyncStore``):
        a store without one returns fresh objects always, so there it changes nothing.
        """
        try:
            parts = key_parts(self._m, key)
        except NoSuchKey:
            return None
        return await self._b.get(parts)

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
            await self._check_refs([values])
        b = self._b
        if has_expr(values) and not b.native_fexpr(values, pre, "update"):
            return await self._update_expr(key, values, pre)
        return await b.update(key, values, pre)

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
            out = await b.update(key, resolve(self._m, values, item),
                                 guard(values, item, pre))
            if out is not None:
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
        actions = await self._plan_delete([parts], incoming)  # Blocked: nothing deleted
        deleted = await self._b.delete(parts, pre)
        if deleted:
            await self._run_actions(actions)
        return deleted

    async def search(self, where: Any = None, *, order_by: Iterable[str] | str = (),
                     limit: int | None = None, after: str | None = None,
                     query: str | None = None, refresh: bool = False,
                     **lookups: Any) -> Page[T]:
        """One page of the items matching the filter, in order; ``next`` continues.

        ``refresh``: as on ``read``.
        """
        m = self._m
        limit = check_limit(limit, self._max_page)
        node = self._filters.build(where, query, lookups)
        order = self._order(order_by)
        position = None
        if after is not None:
            keys = self._keys or await self._cursor_keys()
            position = decode_cursor(after, fingerprint(m.name, node, order), m, order, keys)
        # the cursor position goes to the backend as it is: it builds the keyset
        # condition in its own terms (see query/plan.py)
        items = await self._fetch(node, order, limit + 1, position)
        if len(items) > limit:
            items = items[:limit]
            keys = self._keys or await self._cursor_keys()
            # signed when first read (most pages are never continued); the last item's
            # order values are taken now, before anyone can change the item
            last = order_values(items[-1], order)
            return Page.signed_later(items, lambda: encode_cursor(
                fingerprint(m.name, node, order), last, keys))
        return Page(items, None)

    async def search_all(self, where: Any = None, *, order_by: Iterable[str] | str = (),
                         limit: int | None = None, query: str | None = None,
                         refresh: bool = False, **lookups: Any) -> AsyncIterator[T]:
        """Every matching item, page by page (``limit`` is the page size; ``refresh``: as
        on ``read``)."""
        m = self._m
        limit = check_limit(limit, self._max_page)
        node = build_filter(m, where, query, lookups)
        order = self._order(order_by)
        # pages continue from the last item's order values, as a cursor would, without
        # signing and verifying one (nor reading the cursor secret)
        position = None
        while True:
            items = await self._fetch(node, order, limit + 1, position)
            more = len(items) > limit
            if more:
                items = items[:limit]
                position = order_values(items[-1], order)
            for item in self._mapped(items, refresh):
                yield item
            if not more:
                return

    def _mapped(self, items: list[T], refresh: bool) -> list[T]:
        """``items`` as this store hands them out: as read here; a store with an identity
        map returns the mapped objects (``refresh``: updated from ``items``)."""
        return items

    async def count(self, where: Any = None, **lookups: Any) -> int:
        """How many items match."""
        return await self._count(build_filter(self._m, where, None, lookups))

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

    async def read_batch(self, keys: Iterable[Any], *, refresh: bool = False
                         ) -> list[T | None]:
        """The items at ``keys``, aligned with them (None for a missing key; ``refresh``:
        as on ``read``)."""
        m = self._m
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
        results: list[EditResult | None] = [None] * len(edits)
        prepared: list[PreparedEdit] = []
        m = self._m
        for i, e in enumerate(edits):
            try:
                if type(e) is Create:  # the common bulk case, without a further call
                    prepared.append(PreparedEdit("create", None, create_values(m, e.item),
                                                 None, i))
                else:
                    prepared.append(self._prepare_edit(i, e))
            except NoSuchKey:
                results[i] = EditResult(e, False, None, MISSING_KEY,
                                        "no item has a key holding a lone surrogate")
            except ValidationError as exc:
                results[i] = EditResult(e, *invalid(exc))
            except StoreroomError as exc:
                results[i] = EditResult(e, False, None, ERROR, str(exc))
        actions: dict[int, list[Any]] = {}
        if m.refs or any(p.kind == "delete" for p in prepared):
            prepared, actions = await self._batch_relations(edits, prepared, results)
        if atomic:
            if any(r is not None for r in results):
                raise BatchError("batch not applied: an edit is invalid",
                                 _not_applied(edits, results))
        b = self._b
        if not all(b.native_fexpr(p.values, p.precondition, "batch") for p in prepared
                   if p.kind == "update" and has_expr(p.values)):
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
                    await self._run_actions(actions[p.index])
        if atomic and failed:
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
        if node == NOTHING:
            return 0
        if self._m.refs and values:
            await self._check_refs([values])
        if not values:  # nothing to write: how many match
            return await self._count(node)
        b = self._b
        if has_expr(values) and not b.native_fexpr(values, node, "where"):
            return await self._update_where_expr(node, values)
        # the backend checks the whole filter, native and local parts, atomically with
        # its writes (and lets its unique index, where it has one, refuse a duplicate)
        return await self._b.update_where(node, values)

    async def delete_where(self, where: Any = None, **lookups: Any) -> int:
        """Delete every matching item (each only if it matches when deleted); how many."""
        node = build_filter(self._m, where, None, lookups)
        if node == NOTHING:
            return 0
        incoming = await self._refs_in()
        if not incoming:
            return await self._b.delete_where(node)
        # all or nothing: plan for every matching item (Blocked before any delete), then
        # delete just those (an item matching only later is not one the plan covered)
        m = self._m
        keys = [_parts(m, item) async for item in self.search_all(node)]
        if not keys:
            return 0
        actions = await self._plan_delete(keys, incoming)
        n = await self._b.delete_where(junction(And, [node, build_filter(m, keys_filter(m, keys))]))
        await self._run_actions(actions)
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

    async def _check_refs(self, rows: list[dict[str, Any]],
                          skip: set[tuple[Any, ...]] | None = None) -> None:
        """``ValidationError`` (rule ``reference``) for the first key ``rows`` reference
        that no target item has (one batched read per Ref)."""
        bad = await self._missing_refs(rows, skip)
        if bad:
            raise bad[0][1]

    async def _missing_refs(self, rows: list[dict[str, Any]],
                            skip: set[tuple[Any, ...]] | None = None
                            ) -> list[tuple[tuple[RefInfo, tuple[Any, ...]], ValidationError]]:
        m = self._m
        out: list[tuple[tuple[RefInfo, tuple[Any, ...]], ValidationError]] = []
        for ref, keys in referenced(m, rows, skip):
            target = self._related(ref.target)
            size = target.meta.max_batch
            for i in range(0, len(keys), size):
                chunk = keys[i:i + size]
                got = await target._b.get_many(chunk)
                out.extend(((ref, k), missing_reference(m, ref, k))
                           for k, item in zip(chunk, got, strict=True) if item is None)
        return out

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
                for chunk in _chunks(ks):  # bounded IN lists (DynamoDB takes 100 values)
                    found.extend(k for k in [_parts(sm, i) async for i in
                                             src.search_all(refers_to(ref, chunk))]
                                 if k not in gone.get(ref.model, ()))
                if not found:
                    continue
                if ref.on_delete == "block":
                    raise Blocked(store._m, ref, ks[0] if len(ks) == 1 else None, found[0])
                if ref.on_delete == "nullify":
                    actions.append(("nullify", src, ref, ks))
                    continue
                gone.setdefault(ref.model, set()).update(found)
                actions.append(("delete", src, None, found))
                todo.append((src, found, await src._refs_in()))
        return actions

    async def _run_actions(self, actions: list[Any]) -> None:
        """Apply a delete plan: nullify the columns of referencing items, delete cascaded
        ones (each a backend write: not atomic with the delete on these backends)."""
        for kind, src, ref, keys in actions:
            sm = src._m
            for chunk in _chunks(keys):
                if kind == "nullify":
                    await src._b.update_where(build_filter(sm, refers_to(ref, chunk)),
                                              {c: None for c in ref.columns})
                else:
                    await src._b.delete_where(build_filter(sm, keys_filter(sm, chunk)))

    async def _batch_relations(self, edits: list[Any], prepared: list[PreparedEdit],
                               results: list[EditResult | None]
                               ) -> tuple[list[PreparedEdit], dict[int, list[Any]]]:
        """References of a batch's writes checked (an edit to a missing key is invalid)
        and its deletes planned (a blocked one fails with code ``referenced``)."""
        m = self._m
        keep: list[PreparedEdit] = []
        actions: dict[int, list[Any]] = {}
        writes = [p for p in prepared if p.kind != "delete"]
        if m.refs and writes:
            made = {tuple(p.values.get(a) for a in m.key.attrs) for p in writes
                    if p.kind != "update"}
            bad = await self._missing_refs([p.values for p in writes], made)
            missing = {rk: err for rk, err in bad}
        else:
            missing = {}
        incoming = await self._refs_in()
        for p in prepared:
            e = edits[p.index]
            if p.kind == "delete":
                if incoming:
                    try:
                        actions[p.index] = await self._plan_delete([p.key], incoming)
                    except Blocked as exc:
                        results[p.index] = EditResult(e, False, None, REFERENCED, str(exc))
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
                if p.kind == "update" and has_expr(p.values) and not b.native_fexpr(
                        p.values, p.precondition, "batch"):
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
                    except ValidationError as exc:
                        return [invalid(exc) if q is p else
                                NOT_APPLIED
                                for q in prepared]
                    edits.append(PreparedEdit("update", p.key, values,
                                              guard(p.values, item, p.precondition),
                                              p.index))
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
            if self._b.native_fexpr(p.values, p.precondition, "update"):
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
            if not (self.meta.atomic_batch and len(edits) <= self.meta.max_batch):
                n = 0
                native = b.native_fexpr(values, node, "update")
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

    def _check_local_sort(self, n: int) -> None:
        bound = getattr(self._b, "max_local_sort", None)
        if bound is not None and n > bound:
            from ...errors import UnsupportedOperation
            raise UnsupportedOperation(
                f"{self.meta.backend} would have to sort {n} items locally (bound {bound}); "
                "order by an indexed attribute or narrow the filter")


def _chunks(keys: list[tuple[Any, ...]], size: int = 100) -> list[list[tuple[Any, ...]]]:
    return [keys[i:i + size] for i in range(0, len(keys), size)]


def _parts(m: ModelMeta, item: Any) -> tuple[Any, ...]:
    return tuple(getattr(item, a) for a in m.key.attrs)


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

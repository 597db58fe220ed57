"""``AsyncQuerySet``: ``Model.objects`` in an async context (the sync ``QuerySet`` is
generated from this file by ``scripts/unasync.py``).

A query set is lazy and immutable: chaining (``filter exclude order_by all using none
values values_list distinct`` and slicing) returns a new one and does no I/O; terminal
methods run against ``ctx.store(Model)`` (awaited here). The pure steps are in
``objects/plan.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Iterable, Mapping
from typing import Any, Generic, TypeVar

from ...errors import (
    BatchError,
    Conflict,
    MultipleFound,
    StoreroomError,
    UnsupportedOperation,
    ValidationError,
)
from ...model.stored import meta_of
from ...query.evaluate import compile_local
from ...query.prepare import build_filter
from ...store.aggregate import Aggregate, local_aggregate, prepare_aggregates
from ...store.types import DUPLICATE_KEY, INVALID, Create, Delete
from ..plan import (
    DICTS,
    FLAT,
    ITEMS,
    SEARCH_KEYWORDS,
    TUPLES,
    QueryState,
    check_fields,
    create_values,
    filter_node,
    index_of,
    negate,
    order_names,
    replace,
    reversed_order,
    shape,
    sliced,
    with_where,
)

IS_ASYNC = True
T = TypeVar("T")

_EMPTY = QueryState()
_new_object = object.__new__
_new_tuple = tuple.__new__


class AsyncQuerySet(Generic[T]):
    """A lazy, chainable, immutable query over the store of ``model`` in ``ctx``.

    Reach it as ``Model.objects`` inside an active context. Terminal methods (``get
    first last earliest latest count exists aggregate in_bulk create bulk_create
    get_or_create update_or_create update delete``) do I/O. The async set: awaiting it
    gives its list, iterating it with ``async for`` its rows, ``qs[i]`` an awaitable of one
    item; it caches nothing, and ``bool(qs)`` / ``len(qs)`` raise ``TypeError`` (they
    would be hidden I/O: use the awaited ``exists()`` / ``count()``). The sync set:
    iterating it, ``len(qs)`` and ``bool(qs)`` evaluate it once and keep its rows (as a
    Django query set does); its terminal methods and chained sets ask the store again.
    """

    __slots__ = ("_model", "_ctx", "_state", "_default", "_cache")

    def __init__(self, model: type[T], ctx: Any, state: QueryState = _EMPTY,
                 store: Any = None) -> None:
        self._model = model
        self._ctx = ctx
        self._state = state
        # the context's store of the model on its own engine (found once, by objects_for)
        self._default = store
        # the rows of the first evaluation (the sync set's; None until then)
        self._cache: list[Any] | None = None

    def _with(self, state: QueryState) -> AsyncQuerySet[T]:
        qs = object.__new__(type(self))
        qs._model, qs._ctx, qs._state, qs._default = (self._model, self._ctx, state,
                                                      self._default)
        qs._cache = None
        return qs

    @property
    def model(self) -> type[T]:
        """The stored class queried."""
        return self._model

    @property
    def state(self) -> QueryState:
        """The immutable state of this set (filter, order, slice, mode, engine)."""
        return self._state

    def _store(self) -> Any:
        engine = self._state.engine
        if engine is None and self._default is not None:
            return self._default
        return self._ctx.store(self._model, engine)

    def _unsliced(self, what: str) -> None:
        if self._state.sliced:
            raise TypeError(f"cannot {what} a query set once a slice has been taken")

    def __repr__(self) -> str:
        s = self._state
        return (f"<{type(self).__name__} {self._model.__name__} where={s.node()!r} "
                f"order={list(s.order)} slice={s.start}:{s.stop}>")

    # chaining (no I/O) --------------------------------------------------------------
    def all(self) -> AsyncQuerySet[T]:
        """A copy of this set."""
        return self._with(self._state)

    def filter(self, *args: Any, **lookups: Any) -> AsyncQuerySet[T]:
        """The items that also match: keyword lookups, ``Q`` objects, dicts of lookups, or
        a list of dicts (the OR of its dicts); all ANDed."""
        s = self._state
        if s.start or s.stop is not None:  # _unsliced, inlined: filter is the hot path
            self._unsliced("filter")
        # keyword lookups alone are kept as given (the store parses them, once); the new
        # set and state are made here, not by _with / with_where: this is the hot path
        # of ``Model.objects.filter(...)[:n]``, and each Python call is ~5% of its cost
        qs = _new_object(type(self))
        qs._model, qs._ctx, qs._default, qs._cache = (self._model, self._ctx,
                                                      self._default, None)
        qs._state = _new_tuple(QueryState, (
            s[0] + (lookups if not args and lookups else filter_node(args, lookups),),
            *s[1:]))
        return qs

    def exclude(self, *args: Any, **lookups: Any) -> AsyncQuerySet[T]:
        """The items that do not match (``~`` of what ``filter`` would keep);
        ``exclude()`` with nothing to exclude is the same set (as in Django)."""
        self._unsliced("filter")
        if not args and not lookups:
            return self._with(self._state)
        return self._with(with_where(self._state, negate(filter_node(args, lookups))))

    def order_by(self, *fields: str) -> AsyncQuerySet[T]:
        """Ordered by ``fields`` (``"-x"`` descending; replaces an earlier order)."""
        self._unsliced("reorder")
        return self._with(replace(self._state, order=order_names(fields)))

    def using(self, engine: str) -> AsyncQuerySet[T]:
        """This set on the engine called ``engine`` (the context's connections to it)."""
        return self._with(replace(self._state, engine=engine))

    def select_related(self, *paths: str) -> AsyncQuerySet[T]:
        """This set with the ``Ref`` paths ``paths`` loaded with its items (a JOIN on
        SQL; see ``store.search(select_related=...)``); chained calls add paths."""
        return self._with(replace(self._state, select=self._state.select + paths))

    def prefetch_related(self, *paths: str) -> AsyncQuerySet[T]:
        """This set with the relation paths ``paths`` loaded after its items (one round
        trip per relation and depth; ``store.search(prefetch_related=...)``)."""
        return self._with(replace(self._state, prefetch=self._state.prefetch + paths))

    def none(self) -> AsyncQuerySet[T]:
        """A set that matches nothing (and asks the store nothing)."""
        return self._with(replace(self._state, empty=True))

    def values(self, *fields: str) -> AsyncQuerySet[Any]:
        """A set of dicts of ``fields`` (every readable stored attribute when none)."""
        names = check_fields(meta_of(self._model), fields)
        return self._with(replace(self._state, mode=DICTS, fields=names))  # type: ignore[return-value]

    def values_list(self, *fields: str, flat: bool = False) -> AsyncQuerySet[Any]:
        """A set of tuples of ``fields``; with ``flat=True`` (one field) of its values."""
        if flat and len(fields) != 1:
            raise TypeError("values_list(flat=True) takes exactly one field")
        names = check_fields(meta_of(self._model), fields)
        return self._with(replace(self._state, mode=FLAT if flat else TUPLES,  # type: ignore[return-value]
                                  fields=names))

    def distinct(self) -> AsyncQuerySet[T]:
        """Without repeated rows (of ``values`` / ``values_list``; items are unique)."""
        return self._with(replace(self._state, distinct=True))

    def __getitem__(self, index: int | slice) -> Any:
        """``qs[a:b]`` a lazy slice (the store's limit and cursors); ``qs[i]`` one item
        (awaitable; ``IndexError`` when absent). Negative indexes are refused."""
        if type(index) is slice:
            s = self._state
            stop = index.stop
            if (index.start is None and index.step is None and type(stop) is int
                    and stop >= 0 and not s.start and s.stop is None):
                # ``qs[:n]`` of an unsliced set, inlined (plan.sliced does the rest)
                qs = _new_object(type(self))
                qs._model, qs._ctx, qs._default, qs._cache = (self._model, self._ctx,
                                                      self._default, None)
                qs._state = _new_tuple(QueryState, (s[0], s[1], 0, stop, *s[4:]))
                return qs
            return self._with(sliced(s, index))
        start, stop = index_of(self._state, index)
        return self._at(start, stop)

    async def _at(self, start: int, stop: int) -> Any:
        rows = await self._with(replace(self._state, start=start, stop=stop))._fetch()
        if not rows:
            raise IndexError("query set index out of range")
        return rows[0]

    # reading ------------------------------------------------------------------------
    async def _items(self, state: QueryState) -> list[Any]:
        """The model items of ``state``'s filter, order and slice: one search when the
        slice ends within a page, else pages continued by cursor."""
        if state.empty:
            return []
        start, stop = state.start, state.stop
        if stop is not None and stop <= start:
            return []
        store = self._default
        if store is None or state.engine is not None:
            store = self._store()
        order = state.order
        max_page = store.meta.max_page
        loading = state.loading() if state.select or state.prefetch else {}
        if stop is not None and stop <= max_page:
            w = state.where
            if loading:
                items = (await store.search(state.node(), order_by=order, limit=stop,
                                            **loading)).items
            elif len(w) == 1 and type(w[0]) is dict and SEARCH_KEYWORDS.isdisjoint(w[0]):
                # the filter(**lookups)[:n] of the hot path (state.lookups(), inlined)
                items = (await store.search(order_by=order, limit=stop, **w[0])).items
            else:
                items = (await store.search(state.node(), order_by=order, limit=stop)).items
            return items[start:] if start else items
        where = state.node()
        out: list[Any] = []
        skip = start
        after = None
        while True:
            want = max_page if stop is None else min(max_page, skip + stop - start - len(out))
            page = await store.search(where, order_by=order, limit=want, after=after,
                                      **loading)
            items = page.items
            if skip:
                if skip >= len(items):
                    skip -= len(items)
                    items = []
                else:
                    items = items[skip:]
                    skip = 0
            out.extend(items)
            if page.next is None or (stop is not None and len(out) >= stop - start):
                break
            after = page.next
        return out if stop is None else out[:stop - start]

    async def _fetch(self) -> list[Any]:
        """The rows of this set, shaped by its mode."""
        s = self._state
        if s.mode == ITEMS:
            return await self._items(s)
        if s.distinct and s.sliced:
            # distinct comes before the slice: the whole filter's rows, then the slice
            rows = shape(s, await self._items(replace(s, start=0, stop=None)))
            return rows[s.start:s.stop]
        return shape(s, await self._items(s))

    if IS_ASYNC:
        def __await__(self) -> Generator[Any, None, list[Any]]:
            """``await qs``: the list of rows."""
            # the sync twin has no __await__ (this branch is not taken there)
            s = self._state
            rows = self._items(s) if s.mode == ITEMS else self._fetch()  # _fetch, inlined
            return rows.__await__()  # type: ignore[attr-defined,unused-ignore]

        async def __aiter__(self) -> AsyncIterator[Any]:
            """Every row (fetched first, as evaluating a Django query set does)."""
            for row in await self._fetch():
                yield row

        def __bool__(self) -> bool:
            """Refused: truth-testing an async set would be hidden I/O."""
            raise TypeError(f"an async query set ({self._model.__name__}.objects) has no "
                            "truth value: use `await qs.exists()`")

        def __len__(self) -> int:
            """Refused: the length of an async set would be hidden I/O."""
            raise TypeError(f"an async query set ({self._model.__name__}.objects) has no "
                            "len(): use `await qs.count()` (or `len(await qs)`)")
    else:  # the sync twin: an iterator over the fetched list (no generator per row)
        def __iter__(self) -> Any:  # type: ignore[no-redef,misc,unused-ignore]
            """Every row: fetched at the first evaluation and kept (as a Django query set
            does), so that ``if qs:``, ``len(qs)`` and ``for x in qs`` read the store
            once."""
            rows = self._cache
            if rows is None:
                s = self._state
                rows = self._cache = (self._items(s) if s.mode == ITEMS  # type: ignore[assignment,unused-ignore]
                                      else self._fetch())  # _fetch's first step, inlined
            return iter(rows)  # type: ignore[arg-type,call-overload,unused-ignore]

        def __len__(self) -> int:  # type: ignore[no-redef,misc,unused-ignore]
            """How many rows: the set is evaluated (once, kept as iterating does);
            ``count()`` asks the store for the number alone."""
            rows = self._cache
            if rows is None:  # list(qs) asks len() first: this is the hot path
                s = self._state
                rows = self._cache = (self._items(s) if s.mode == ITEMS  # type: ignore[assignment,unused-ignore]
                                      else self._fetch())  # _fetch's first step, inlined
            return len(rows)  # type: ignore[arg-type,unused-ignore]

        def __bool__(self) -> bool:  # type: ignore[no-redef,misc,unused-ignore]
            """Whether there are rows: the set is evaluated (once, kept as iterating
            does); ``exists()`` asks the store for one item alone."""
            return self.__len__() != 0

    async def iterator(self, chunk_size: int | None = None) -> AsyncIterator[Any]:
        """Every row, streamed page by page (``chunk_size`` rows per page)."""
        s = self._state
        if s.empty:
            return
        if s.sliced or (s.distinct and s.mode != ITEMS):
            for row in await self._fetch():
                yield row
            return
        store = self._store()
        async for item in store.search_all(s.node(), order_by=s.order, limit=chunk_size,
                                           **s.loading()):
            if s.mode == ITEMS:
                yield item
            else:
                yield shape(s, [item])[0]

    async def get(self, *args: Any, **lookups: Any) -> Any:
        """The one matching item; None when none matches; ``MultipleFound`` when several."""
        qs = self.filter(*args, **lookups) if args or lookups else self
        rows = await qs._with(sliced(qs._state, slice(0, 2)))._fetch()
        if not rows:
            return None
        if len(rows) > 1:
            raise MultipleFound(f"{self._model.__name__}: more than one item matches "
                                f"{qs._state.node()!r}")
        return rows[0]

    async def first(self) -> Any:
        """The first row in order (by key when unordered), or None."""
        s = self._state
        qs = self if s.order else self._with(replace(s, order=meta_of(self._model).key.attrs))
        rows = await qs._with(sliced(qs._state, slice(0, 1)))._fetch()
        return rows[0] if rows else None

    async def last(self) -> Any:
        """The last row in order (by key when unordered), or None (``None`` values sort
        last in both directions, so they are not the last of a descending order)."""
        s = self._state
        if s.sliced:
            rows = await self._fetch()
            return rows[-1] if rows else None
        order = reversed_order(s.order, meta_of(self._model).key.attrs)
        rows = await self._with(replace(s, order=order, start=0, stop=1))._fetch()
        return rows[0] if rows else None

    async def earliest(self, field: str, *fields: str) -> Any:
        """The row with the smallest ``field`` (ties broken by ``fields``, as in
        Django's ``earliest(*fields)``), or None."""
        return await self.order_by(field, *fields).first()

    async def latest(self, field: str, *fields: str) -> Any:
        """The row with the largest ``field`` (ties broken by ``fields``), or None."""
        names = order_names((field, *fields))
        return await self.order_by(*(n[1:] if n.startswith("-") else "-" + n
                                     for n in names)).first()

    async def count(self) -> int:
        """How many rows (the store's count; within the slice when sliced)."""
        s = self._state
        if s.empty:
            return 0
        if s.distinct and s.mode != ITEMS:
            return len(await self._fetch())
        n = int(await self._store().count(s.node()))
        n = max(n - s.start, 0)
        return n if s.stop is None else min(n, s.stop - s.start)

    async def exists(self) -> bool:
        """Whether any row matches (a search of one item)."""
        s = self._state
        start, stop = s.start, s.stop
        if s.empty or (stop is not None and stop <= start):  # qs[:0], qs[5:5]: nothing
            return False
        return bool(await self._items(replace(s, start=start, stop=start + 1)))

    async def aggregate(self, **aggregates: Aggregate) -> dict[str, Any]:
        """``{name: value}`` of the aggregates (``n=Count(), top=Max("priority")``): run by
        the store (natively on SQL and MongoDB); over a slice, evaluated here over it."""
        s = self._state
        m = meta_of(self._model)
        specs = prepare_aggregates(m, aggregates)
        if s.empty:
            return local_aggregate(specs, ())
        if s.sliced:
            return local_aggregate(specs, await self._items(s))
        return dict(await self._store().aggregate(s.node(), aggregates=aggregates))

    async def in_bulk(self, keys: Iterable[Any] | None = None) -> dict[Any, T]:
        """``{key: item}`` of the matching items among ``keys`` (read by key, in batches);
        every matching item when ``keys`` is None."""
        s = self._state
        if s.mode != ITEMS:  # its values are items keyed by key, not rows (as in Django)
            raise TypeError("in_bulk() cannot be used after values() or values_list()")
        m = meta_of(self._model)
        if s.empty:
            return {}
        if keys is None:
            return {m.key.of(i): i for i in await self._items(s)}
        self._unsliced("in_bulk")
        store = self._store()
        node = s.node()
        flt = None if node is None else build_filter(m, node)
        if flt is not None and getattr(store, "_rels", False):
            # lookups across relations become conditions on the item's own attributes
            # (evaluated here, over items whose relations are not loaded)
            flt = await store._lookups(flt, native=False)
        keep = None if flt is None else compile_local(flt)
        wanted = list(keys)
        out: dict[Any, T] = {}
        step = store.meta.max_batch
        for at in range(0, len(wanted), step):
            for item in await store.read_batch(wanted[at:at + step], **self._state.loading()):
                if item is not None and (keep is None or keep(item)):
                    out[m.key.of(item)] = item
        return out

    # writing ------------------------------------------------------------------------
    async def create(self, **values: Any) -> T:
        """Create and store ``Model(**values)``; the stored item (``Conflict`` if its key
        or a unique attribute exists)."""
        return await self._store().create(self._new(values))  # type: ignore[no-any-return]

    def _new(self, values: Mapping[str, Any]) -> T:
        """``Model(**values)``; ``ValidationError`` (not the constructor's ``TypeError``)
        for an unknown or missing attribute."""
        try:
            return self._model(**values)
        except TypeError as exc:
            raise ValidationError.one(None, dict(values), "type",
                                      f"cannot make a {self._model.__name__}: {exc}",
                                      model=self._model.__name__) from exc

    async def bulk_create(self, items: Iterable[T]) -> list[T]:
        """Store new items; the stored items. All or nothing: one item that cannot be
        stored raises its typed error (``Conflict``, ``ValidationError``) and none is
        created.

        Up to the store's ``max_batch`` items this is one ``edit_batch(atomic=True)``
        (one transaction). Where one atomic batch cannot hold them (more items, or
        DynamoDB without transactions: ``UnsupportedOperation``), the items are created
        in batches and, when one fails, the ones created before it are deleted again:
        the outcome is all or nothing, but readers may see them in between.
        """
        store = self._store()
        todo = list(items)
        if not todo:
            return []
        step = store.meta.max_batch
        if len(todo) <= step and store.meta.atomic_batch:
            try:
                results = await store.edit_batch([Create(i) for i in todo], atomic=True)
            except BatchError as exc:
                raise _bulk_error(exc.results) from exc
            except UnsupportedOperation:
                pass  # DynamoDB without transactions: created, and taken back on failure
            else:
                return [r.item for r in results]
        out: list[T] = []
        for at in range(0, len(todo), step):
            results = await store.edit_batch([Create(i) for i in todo[at:at + step]])
            out.extend(r.item for r in results if r.ok)
            if not all(r.ok for r in results):
                await self._take_back(store, out)
                raise _bulk_error(results)
        return out

    @staticmethod
    async def _take_back(store: Any, created: list[Any]) -> None:
        """Delete the items a failed ``bulk_create`` created (in batches)."""
        keys = [store.key_str(i) for i in created]
        step = store.meta.max_batch
        for at in range(0, len(keys), step):
            await store.edit_batch([Delete(store.parse_key(k)) for k in keys[at:at + step]])

    async def get_or_create(self, defaults: Mapping[str, Any] | None = None,
                            **lookups: Any) -> tuple[T, bool]:
        """``(item, created)``: the one item matching ``lookups``, else a new one made of
        the plain lookups and ``defaults`` (found again if a concurrent writer created
        it first)."""
        found = await self.get(**lookups)
        if found is not None:
            return found, False
        try:
            return await self.create(**create_values(lookups, defaults)), True
        except Conflict:
            found = await self.get(**lookups)
            if found is None:
                raise
            return found, False

    async def update_or_create(self, defaults: Mapping[str, Any] | None = None,
                               **lookups: Any) -> tuple[T, bool]:
        """``(item, created)``: the one item matching ``lookups`` updated with
        ``defaults``, else a new one made of the plain lookups and ``defaults``."""
        found = await self.get(**lookups)
        if found is None:
            try:
                return await self.create(**create_values(lookups, defaults)), True
            except Conflict:
                found = await self.get(**lookups)
                if found is None:
                    raise
        if not defaults:
            return found, False
        store = self._store()
        m = meta_of(self._model)
        updated = await store.update(m.key.of(found), **dict(defaults))
        if updated is None:  # deleted meanwhile
            raise StoreroomError(f"{self._model.__name__}: the item changed while it was "
                                 "updated")
        return updated, False

    async def update(self, **changes: Any) -> int:
        """Apply ``changes`` to every matching item (``F`` expressions allowed); how many
        matched."""
        self._unsliced("update")
        s = self._state
        if s.empty:
            return 0
        return int(await self._store().update_where(s.node(), changes=changes))

    async def delete(self) -> int:
        """Delete every matching item; how many were deleted."""
        self._unsliced("delete")
        s = self._state
        if s.empty:
            return 0
        return int(await self._store().delete_where(s.node()))


def _bulk_error(results: list[Any]) -> StoreroomError:
    """The typed error of a failed ``bulk_create``: of its first failed create."""
    for r in results:
        if r.ok or not r.code:
            continue
        if r.code == DUPLICATE_KEY:
            return Conflict(r.detail or "an item exists already")
        if r.code == INVALID:
            return ValidationError(r.detail or "invalid item")
        return BatchError(f"bulk_create failed: {r.code} {r.detail}", results)
    return BatchError("bulk_create failed", results)


__all__ = ["AsyncQuerySet", "ITEMS", "DICTS", "TUPLES", "FLAT"]

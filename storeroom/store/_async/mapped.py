"""``MappedAsyncStore``: a store that runs its results through a context's identity map.

``ctx.store(Model)`` is one of these; stores opened with ``open_store`` are plain
``AsyncStore``s and pay nothing for the map. The rules (also in docs/contexts.md):

- reads (``read``, ``read_batch``, ``search``, ``search_all``, so ``Model.objects``)
  return the mapped object of a key already mapped, and map the others; a mapped
  object is not overwritten by a later result unless ``refresh=True`` is passed (then
  it takes the fresh values in place). Every read still asks the database: a key that
  reads as missing is dropped from the map.
- ``create`` maps the item it returns; ``update`` / ``upsert`` update the mapped
  object in place and return it; ``delete`` drops it. ``edit_batch`` does the same per
  applied edit (its results' ``item`` is the mapped object).
- ``update_where`` re-reads the model's mapped objects afterwards (one batched read
  per ``max_batch`` keys): the attributes it changed (and ``on_update`` ones) take
  the stored values in place; ``delete_where`` drops the mapped objects whose items
  are gone (found the same way). Mapped objects never keep values the
  database no longer has after a write through the store.
- a rolled-back savepoint (``ctx.savepoint()``) clears the context's whole map:
  mapped objects may hold values that were rolled back (the objects themselves keep
  them; the next read gives fresh objects).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from ...relations.lazy import remember
from ..identity import IdentityMap, ModelMap
from ..prepare import NoSuchKey, key_parts
from ..types import Create, Delete, EditResult, Page, Update, Upsert
from .store import AsyncStore, _sequence

T = TypeVar("T")


class MappedAsyncStore(AsyncStore[T]):
    """An ``AsyncStore`` whose results go through ``identity`` (a context's map).

    Made by ``ctx.store(Model)``; see the module docstring for the rules.
    """

    def __init__(self, model: type[T], backend: Any, identity: IdentityMap, *,
                 secret: Any = None) -> None:
        super().__init__(model, backend, secret=secret)
        self.identity = identity
        self._map: ModelMap = identity.of(model)
        # the attributes every update rewrites (updated_at): update_where re-reads them
        self._on_update = tuple(a.name for a in self._m.stored_attrs
                                if a.generator is not None and a.generator.on_update is not None)

    # reads --------------------------------------------------------------------------
    # Each read takes the base store's further keyword options (``**options``) and hands
    # them on, so options added to ``AsyncStore`` (relation loading) pass through.
    async def read(self, key: Any, *, refresh: bool = False, **options: Any) -> T | None:
        """The item at ``key`` (its mapped object), or None; see the module docstring."""
        try:
            parts = key_parts(self._m, key)
        except NoSuchKey:
            return None
        if options:
            item = await super().read(key, refresh=refresh, **options)
        else:  # the hot path: as AsyncStore.read, without a further call
            item = await self._b.get(parts)
        mapping = self._map
        if item is None:
            mapping.drop(mapping.key_of_parts(parts))
            return None
        return mapping.adopt(item, refresh)  # type: ignore[no-any-return]

    async def read_batch(self, keys: Iterable[Any], *, refresh: bool = False,
                         **options: Any) -> list[T | None]:
        """The items at ``keys`` (mapped objects), aligned with them (None if missing)."""
        keys = _sequence("keys", keys)
        items = await super().read_batch(keys, refresh=refresh, **options)
        mapping = self._map
        out = mapping.adopt_all(items, refresh)
        if self.identity.track_peers:
            self._remember(out)
        if None in out:
            m = self._m
            for k, item in zip(keys, out, strict=True):
                if item is None:
                    try:
                        mapping.drop(mapping.key_of_parts(key_parts(m, k)))
                    except NoSuchKey:
                        pass
        return out

    async def search(self, where: Any = None, *, refresh: bool = False,
                     **options: Any) -> Page[T]:
        """One page of matching items (mapped objects); ``next`` continues.

        Takes what ``AsyncStore.search`` takes (ordering, limit, cursor, lookups).
        """
        page = await super().search(where, refresh=refresh, **options)
        if options.get("select_related") or options.get("prefetch_related"):
            return page  # its items were mapped (and remembered) before their relations
        items = self._map.adopt_all(page.items, refresh)
        if self.identity.track_peers:
            self._remember(items)
        return page.with_items(items)

    def _mapped(self, items: list[T], refresh: bool) -> list[T]:
        """The mapped objects of ``items`` (``search_all``'s pages, relation loads)."""
        out = self._map.adopt_all(items, refresh)
        if self.identity.track_peers:
            self._remember(out)
        return out

    def _remember(self, items: list[Any]) -> None:
        """Keep ``items`` as one result's peers (lazy loading in mode "peers")."""
        if self.identity.track_peers:
            remember(self.identity, items)

    # writes -------------------------------------------------------------------------
    async def create(self, item: T) -> T:
        """Store a new item; the returned item is mapped."""
        return self._map.created(await super().create(item))  # type: ignore[no-any-return]

    async def upsert(self, item: T) -> T:
        """Create or fully update; the mapped object, updated in place, is returned."""
        return self._map.written(await super().upsert(item))  # type: ignore[no-any-return]

    async def update(self, item_or_key: Any, /, *, precondition: Any = None,
                     **changes: Any) -> T | None:
        """Update an item; the mapped object, updated in place, is returned (or None)."""
        out = await super().update(item_or_key, precondition=precondition, **changes)
        return None if out is None else self._map.written(out)

    async def delete(self, key: Any, /, *, precondition: Any = None) -> bool:
        """Delete the item at ``key``; its mapped object is dropped from the map."""
        done = await super().delete(key, precondition=precondition)
        if done or precondition is None:  # False without a precondition: it is gone
            try:
                mapping = self._map
                mapping.drop(mapping.key_of_parts(key_parts(self._m, key)))
            except NoSuchKey:
                pass
        return done

    async def edit_batch(self, edits: Iterable[Create | Update | Delete | Upsert], *,
                         atomic: bool = False) -> list[EditResult]:
        """Apply edits (as ``AsyncStore.edit_batch``); each applied one updates the map
        as the single write does, and its result's ``item`` is the mapped object."""
        results = await super().edit_batch(edits, atomic=atomic)
        mapping = self._map
        m = self._m
        for r in results:
            if not r.ok:
                continue
            e = r.edit
            if isinstance(e, Create):
                mapping.created(r.item)
            elif isinstance(e, Delete):
                try:
                    mapping.drop(mapping.key_of_parts(key_parts(m, e.key)))
                except NoSuchKey:
                    pass
            elif r.item is not None:  # Update, Upsert
                r.item = mapping.written(r.item)
        return results

    async def update_where(self, where: Any = None, *, changes: dict[str, Any],
                           **lookups: Any) -> int:
        """As ``AsyncStore.update_where``; then the model's mapped objects are read again:
        the attributes ``changes`` names (and those every update rewrites, such as an
        ``updated_at``) take their stored values in place, and the objects whose items
        are gone are dropped. Other attributes are left as they are (unsaved changes
        made to them are kept)."""
        n = await super().update_where(where, changes=changes, **lookups)
        if n and changes:
            attrs = self._m.attrs
            names = tuple(dict.fromkeys(
                [k for k in changes if k in attrs and attrs[k].store] + list(self._on_update)))
            await self._reload_mapped(names)
        return n

    async def delete_where(self, where: Any = None, **lookups: Any) -> int:
        """As ``AsyncStore.delete_where``; then the mapped objects whose items are gone
        are dropped from the map."""
        n = await super().delete_where(where, **lookups)
        if n:
            await self._reload_mapped(())
        return n

    async def _reload_mapped(self, names: tuple[str, ...]) -> None:
        """Read every mapped key of the model again: a gone item's object is dropped,
        the others take the stored values of attributes ``names`` in place."""
        mapping = self._map
        single = len(self._m.key_attrs) == 1
        keys = list(mapping.objects)
        step = self.meta.max_batch
        for at in range(0, len(keys), step):
            chunk = keys[at:at + step]
            parts = [(k,) if single else k for k in chunk]
            fresh = await self._b.get_many(parts)
            objects = mapping.objects
            for k, item in zip(chunk, fresh, strict=True):
                if item is None:
                    mapping.drop(k)
                elif names:
                    mapped = objects.get(k)
                    if mapped is not None:  # (another task of the context may drop it)
                        d, got = mapped.__dict__, item.__dict__
                        for name in names:
                            d[name] = got[name]


__all__ = ["MappedAsyncStore"]

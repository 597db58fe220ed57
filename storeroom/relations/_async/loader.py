"""The I/O of relation loading (``store.load``, ``select_related``, ``prefetch_related``):
the planning and attaching are sans-I/O in ``storeroom.relations.loading``.

Every function takes the store whose items are loaded from (an ``AsyncStore``) and
reads through the stores of the related models on the same database (``_related``: in
a context, the context's stores, so loaded objects go through its identity map).
Round trips: per step, one ``get_many`` per ``max_batch`` distinct keys (a Ref, the
targets of a many-to-many), or one search per ``in_chunk`` distinct source keys (a
reverse Many, the through items of a many-to-many).
"""

from __future__ import annotations

import operator
from typing import Any

from ...model.relations import Stub
from ...query.ast import NOTHING, Node
from ...query.evaluate import compile_local, sort_items
from ...query.order import Order
from ...query.plan import Query
from ...query.prepare import build_filter
from ...store.relations import keys_filter, refers_to
from .. import lazy as _lazy  # noqa: F401 - installs the lazy-loading hooks
from ..loading import (
    Step,
    attach_ref,
    attach_reverse,
    attach_through,
    chunks,
    in_chunk,
    key_of,
    link_targets,
    loaded_under,
    paths_of,
    plan,
    ref_keys,
    source_keys,
)


async def load(store: Any, items: Any, paths: tuple[str, ...], refresh: bool) -> Any:
    """``store.load(items, *paths)``: fill the relations ``paths`` of one item or a list
    in place; returns ``items``."""
    many = isinstance(items, list | tuple)
    objs = [i for i in (items if many else [items]) if i is not None]
    model = store.model
    # one C-level pass over the items' types, then a Python check per distinct type
    odd = [t for t in set(map(type, objs)) if not issubclass(t, model)]
    wrong = next((i for i in objs if not isinstance(i, model)), None) if odd else None
    if wrong is not None:
        from ...errors import ValidationError
        raise ValidationError.one(None, wrong, "type", f"store.load takes {store.model.__name__} "
                                  f"items, got {type(wrong).__name__}", model=store._m.name)
    steps = plan(store.model, paths_of(list(paths), "store.load"))
    if objs and steps:
        await run(store, objs, steps, refresh)
    return items


async def with_relations(store: Any, items: list[Any], select: Any, prefetch: Any,
                         refresh: bool, joined: bool = False,
                         preloaded: frozenset[str] = frozenset()) -> list[Any]:
    """``items`` as read (mapped, when the store has an identity map) with the relations
    of ``select_related`` (``joined``: a JOIN read them with ``items``, attached to
    them; ``preloaded``: the Ref paths whose objects the read attached already, through
    the related stores' maps, as an order across relations does) and
    ``prefetch_related`` loaded."""
    fresh = items
    items = store._mapped(items, refresh)
    if not items:
        return items
    if select:
        steps = plan(store.model, paths_of(select, "select_related"), select=True)
        if joined:
            if getattr(store, "identity", None) is not None:  # through a context's map
                await _adopt_joined(store, fresh, items, steps, refresh)
        elif preloaded:
            await _adopt_loaded(store, fresh, items, steps, refresh, preloaded, "")
        else:
            await run(store, items, steps, refresh)
    if prefetch:
        await run(store, items, plan(store.model, paths_of(prefetch, "prefetch_related")),
                  refresh)
    return items


async def read_many(store: Any, keys: list[tuple[Any, ...]], select: Any, prefetch: Any,
                    refresh: bool) -> dict[tuple[Any, ...], Any]:
    """``read`` / ``read_batch`` with relations: the items at the distinct ``keys`` (key
    parts → item; a missing key absent), mapped and loaded; with ``select_related``
    one SELECT with JOINs where the backend has them, else one ``get_many`` first."""
    if not keys:
        return {}
    m = store._m
    items = None
    if select:
        items = await fetch_joined(store, build_filter(m, keys_filter(m, keys), None, {}),
                                   store._order(()), len(keys), None, select)
    joined = items is not None
    if items is None:
        items = [i for i in await store._b.get_many(keys) if i is not None]
    items = await with_relations(store, items, select, prefetch, refresh, joined)
    names = m.key.attrs
    return {key_of(i, names): i for i in items}


async def fetch_joined(store: Any, node: Node, order: Order, want: int,
                       after: tuple[Any, ...] | None, select: Any) -> list[Any] | None:
    """Up to ``want`` items as ``store._fetch`` finds them, with the Refs of
    ``select_related`` read by the same statement (a LEFT OUTER JOIN per Ref) and
    attached; None when the backend cannot (no ``find_joined``, a filter or order it
    does not run itself, or a target on another database): then a batched read per Ref."""
    b = store._b
    find = getattr(b, "find_joined", None)
    if find is None or node == NOTHING:
        return None
    split = b.split(node)
    if not (split.all_native and b.can_order(order)):
        return None
    steps = plan(store.model, paths_of(select, "select_related"), select=True)
    joins: list[Any] = []
    if not await _joins(store, getattr(b, "core", None), steps, 0, joins):
        return None
    return list(await find(Query(split.native, order, want, after), tuple(joins)))


async def _joins(store: Any, core: Any, steps: tuple[Step, ...], parent: int,
                 out: list[Any]) -> bool:
    """Append the joins of ``steps`` (below the object at ``parent``) to ``out``; False
    when a target's table is not on ``core``'s database."""
    if core is None:
        return False
    for step in steps:
        target = store._related(step.target)
        tcore = getattr(target._base, "core", None)
        if tcore is None or tcore.engine.url != core.engine.url:
            return False
        if not tcore.ready:  # its table, created on first use
            await target._b.create_tables()
        out.append((parent, step.ref, tcore))
        if not await _joins(target, core, step.children, len(out), out):
            return False
    return True


async def _adopt_joined(store: Any, fresh: list[Any], items: list[Any],
                        steps: tuple[Step, ...], refresh: bool) -> None:
    """Run the objects a JOIN attached to ``fresh`` (the rows' items; ``items`` are
    their mapped objects) through the related stores' maps (the same object per key),
    attaching the mapped ones to ``items``."""
    for step in steps:
        target = store._related(step.target)
        got = loaded_under(step, fresh)
        mapped = target._mapped(got, refresh)  # remembered as one result by the map
        # the usual case: every joined object was mapped as it is (no key mapped before)
        # and the same goes for ``items``: they hold the mapped objects already
        kept = all(map(operator.is_, mapped, got))
        todo = items if not kept else [i for i, f in zip(items, fresh, strict=True)
                                       if i is not f]
        if todo:
            found = {key_of(o, target._m.key.attrs): o for o in mapped}
            attach_ref(step, todo, found)
        if step.children and got:
            await _adopt_joined(target, got, mapped, step.children, refresh)


async def _adopt_loaded(store: Any, fresh: list[Any], items: list[Any],
                        steps: tuple[Step, ...], refresh: bool, preloaded: frozenset[str],
                        prefix: str) -> None:
    """Load the Ref ``steps`` onto ``items`` (the mapped objects of ``fresh``, the items
    as read), reading only what the read did not attach: a step whose path is in
    ``preloaded`` takes the loaded objects found on ``fresh`` (mapped already) and reads
    just the keys among ``items`` they lack (a dangling key, a mapped item whose Ref
    changed); any other step is read as ``run`` reads it."""
    for step in steps:
        path = prefix + step.name
        if path not in preloaded:
            await run(store, items, (step,), refresh)
            continue
        target = store._related(step.target)
        names = target._m.key.attrs
        found = {key_of(o, names): o for o in loaded_under(step, fresh)
                 if not isinstance(o, Stub)}
        missing = [k for k in ref_keys(step, items) if k not in found]
        if missing:
            found.update(await _by_keys(target, missing, refresh))
        nxt = attach_ref(step, items, found)
        if step.children and nxt:
            await _adopt_loaded(target, nxt, nxt, step.children, refresh, preloaded,
                                path + "__")


async def run(store: Any, items: list[Any], steps: tuple[Step, ...], refresh: bool) -> None:
    """Load ``steps`` onto ``items`` (of ``store``'s model), depth by depth."""
    for step in steps:
        target = store._related(step.target)
        if step.kind == "ref":
            found = await _by_keys(target, ref_keys(step, items), refresh)
            nxt = attach_ref(step, items, found)
        elif step.kind == "reverse":
            children = await _referring(target, step, source_keys(step, items), refresh)
            nxt = attach_reverse(step, items, children)
        else:
            through = store._related(step.ref.model)
            links = await _referring(through, step, source_keys(step, items), refresh)
            found = await _by_keys(target, link_targets(step, links), refresh)
            nxt = attach_through(step, items, links, found)
        if step.children and nxt:
            await run(target, nxt, step.children, refresh)


async def _by_keys(store: Any, keys: list[tuple[Any, ...]], refresh: bool
                   ) -> dict[tuple[Any, ...], Any]:
    """The items at ``keys`` (key parts → mapped object; missing keys absent): one
    ``get_many`` per ``max_batch`` keys."""
    out: dict[tuple[Any, ...], Any] = {}
    if not keys:
        return out
    names = store._m.key.attrs
    got: list[Any] = []
    for chunk in chunks(keys, store.meta.max_batch):
        got.extend(g for g in await store._b.get_many(chunk) if g is not None)
    # mapped (and remembered as one result, every chunk's items together) at once
    for o in store._mapped(got, refresh):
        out[key_of(o, names)] = o
    return out


async def _referring(store: Any, step: Step, keys: list[tuple[Any, ...]], refresh: bool
                     ) -> list[Any]:
    """The items of ``store`` whose Ref ``step.ref`` holds one of ``keys`` (in key order
    per chunk): one search per ``in_chunk(backend)`` keys."""
    out: list[Any] = []
    order = store._order(())
    for chunk in chunks(keys, in_chunk(store.meta.backend)):
        node = build_filter(store._m, refers_to(step.ref, chunk), None, {})
        out.extend(await _fetch_all(store, node, order))
    objs: list[Any] = store._mapped(out, refresh)  # remembered as one result by the map
    return objs


async def _fetch_all(store: Any, node: Node, order: Order) -> list[Any]:
    """Every item matching ``node``, in ``order`` (no limit: one search)."""
    if node == NOTHING:
        return []
    b = store._b
    split = b.split(node)
    if split.all_native and b.can_order(order):
        return list(await b.find(Query(split.native, order)))
    keep = compile_local(split.local)
    found = [i async for i in b.iterate(split.native) if keep(i)]
    return sort_items(found, order)


__all__ = ["fetch_joined", "load", "read_many", "run", "with_relations"]

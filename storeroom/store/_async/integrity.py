"""Relation integrity that holds under concurrent writers: the store front's reference
checks and ``on_delete`` made race-safe on each backend (the sans-I/O parts are in
``store/relations.py``).

A backend says how (its ``ref_integrity`` attribute):

- ``"lock"`` (memory): the check, the write and the ``on_delete`` actions run under the
  database's ``relations_lock``, so no other writer of the database comes in between.
- ``"fk"`` (SQL): the FOREIGN KEY decides. A Ref it enforces (``fk_enforces``) is not
  read before the write; its violation is mapped to the same errors the reads give
  (``ValidationError`` rule ``reference``, ``Blocked`` / edit code ``referenced``) by
  reading then, on the failure path only. Refs without one (a cycle's edges,
  another database) and writes in a transaction (on PostgreSQL a failed statement
  aborts it) keep the reads; the FOREIGN KEY, where there is one, still backs them.
- ``"verify"`` (the default: MongoDB, Redis, DynamoDB, whose single writes are atomic but
  which have no constraint across items): both sides check again after their write.
  A write referencing ``T`` reads ``T`` after writing; a delete of ``T`` searches for
  items referencing ``T`` after deleting. Of two such writers at least one sees the
  other, and undoes its own write: a write whose target is gone is taken back
  (``ValidationError``); a delete that finds a new referencing item applies its
  ``on_delete`` to it (cascade, nullify) or, for ``block``, puts the item back
  (``Conflict``). The window: between a write and its undo, other readers may see the
  dangling reference (or the briefly deleted item); a process that dies in it leaves
  it so. Each backend's page states it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

from ...errors import Conflict, StoreroomError, ValidationError
from ...model.registry import generation
from ...model.relations import RefInfo
from ...query.q import Q
from ..relations import Blocked, sets_refs
from ..types import PreparedEdit

if TYPE_CHECKING:
    from .store import AsyncStore


def mode(store: AsyncStore[Any]) -> str:
    """How ``store``'s backend keeps references intact: "lock", "fk" or "verify"."""
    return getattr(store._base, "ref_integrity", "verify")


@contextmanager
def guarded(store: AsyncStore[Any]) -> Iterator[None]:
    """Hold the database's relations lock, where the backend has one (memory), around a
    check, its write and its actions: no writer of the database comes in between.

    (A plain lock in async code too: memory operations never suspend.)"""
    lock = getattr(store._base, "relations_lock", None)
    if lock is None:
        yield
        return
    with lock:
        yield


def native_refs(store: AsyncStore[Any]) -> frozenset[str]:
    """The names of ``store``'s Refs whose FOREIGN KEY makes the read before a write
    unnecessary (none outside SQL, in a transaction, or for a cycle's edges)."""
    b = store._b
    if not getattr(b, "fk_safe", False):
        return frozenset()
    gen = generation()
    cached = store.__dict__.get("_fk_refs")
    if cached is not None and cached[0] == gen:  # the hot path: one lookup per write
        return cast("frozenset[str]", cached[1])
    enforces = store._base.fk_enforces  # type: ignore[attr-defined]
    out = frozenset(r.name for r in store._m.refs.values()
                    if enforces(r, store._related(r.target)._base))
    store.__dict__["_fk_refs"] = (gen, out)
    return out


async def native_in(store: AsyncStore[Any], incoming: tuple[RefInfo, ...]) -> bool:
    """True when FOREIGN KEYs carry out every ``on_delete`` that deleting from
    ``store`` sets off, to any depth (cascades included): the delete needs no plan."""
    if not getattr(store._b, "fk_safe", False):
        return False
    seen: set[type] = {store.model}
    todo: list[tuple[AsyncStore[Any], tuple[RefInfo, ...]]] = [(store, incoming)]
    while todo:
        target, refs = todo.pop()
        for ref in refs:
            src = target._related(ref.model)
            enforces = getattr(src._base, "fk_enforces", None)
            if enforces is None or not enforces(ref, target._base):
                return False
            if ref.on_delete == "cascade" and ref.model not in seen:
                seen.add(ref.model)
                todo.append((src, await src._refs_in()))
    return True


async def before_transaction(store: AsyncStore[Any]) -> None:
    """Before ``store.transaction()`` begins: the tables of the related stores its
    checks and ``on_delete`` plans read in it created now (SQLite's DDL would wait for
    the write lock the transaction holds)."""
    related = [r.target for r in store._m.refs.values()]
    related += [r.model for r in await store._refs_in()]
    for model in dict.fromkeys(related):
        if model is not store.model:
            await store._related(model).create_tables()


def verifying(store: AsyncStore[Any]) -> bool:
    """True when writes check again after writing (see the module's docstring)."""
    return mode(store) == "verify"


async def precise(store: AsyncStore[Any], rows: list[dict[str, Any]],
                  exc: BaseException) -> None:
    """A FOREIGN KEY refused a write of ``rows``: raise the error the reads give (the
    field, the key and the message), else ``exc`` as it is."""
    bad = await store._missing_refs(rows)
    if bad:
        raise bad[0][1] from exc
    raise exc


async def blocked(store: AsyncStore[Any], keys: list[tuple[Any, ...]],
                  incoming: tuple[RefInfo, ...], exc: BaseException) -> None:
    """A FOREIGN KEY refused a delete of ``keys``: raise the ``Blocked`` a plan gives
    (which Ref, which item), else ``exc`` as it is."""
    await store._plan_delete(keys, incoming)  # raises Blocked
    raise exc


def _stored(store: AsyncStore[Any], item: Any) -> dict[str, Any]:
    """The stored values of an item read back, as an insert takes them (to put it back
    as it was: not validated again as a new item would be)."""
    d = item.__dict__
    return {a.name: d[a.name] for a in store._m.stored_attrs if a.name in d}


def _ref_state(store: AsyncStore[Any], item: Any) -> dict[str, Any]:
    """The Ref columns of ``item``, as an update's changes."""
    return {c: getattr(item, c) for ref in store._m.refs.values() for c in ref.columns}


async def restore_refs(store: AsyncStore[Any], key: tuple[Any, ...], old: Any,
                       values: dict[str, Any]) -> None:
    """Take back a write of ``values`` at ``key``: the Ref columns as ``old`` had them (or
    the item deleted when ``old`` is None: the write created it), only while they still
    hold what the write set (a later writer's values are kept)."""
    cols = {c: v for c, v in values.items()
            if any(c in ref.columns for ref in store._m.refs.values())}
    pre = store._precondition(Q(**cols)) if cols else None
    try:
        if old is None:
            await store._b.delete(key, pre)
        else:
            back = {c: v for c, v in _ref_state(store, old).items() if c in cols}
            if back:
                await store._b.update(key, back, pre)
    except StoreroomError:  # best effort: the caller reports the write as refused
        pass


async def check_written(store: AsyncStore[Any], rows: list[dict[str, Any]],
                        undo: Callable[[], Awaitable[None]],
                        skip: set[tuple[Any, ...]] | None = None) -> None:
    """After a write of ``rows`` (verify mode): the referenced keys read again; one gone
    meanwhile (a concurrent delete) → ``undo()`` and the ``ValidationError``."""
    bad = await store._missing_refs(rows, skip, after=True)
    if bad:
        await undo()
        raise bad[0][1]


async def recheck_deleted(store: AsyncStore[Any], items: list[Any],
                          incoming: tuple[RefInfo, ...], log: list[Any] | None = None
                          ) -> None:
    """After deleting ``items`` and running their plan (verify mode): items referencing
    them written meanwhile get their ``on_delete`` now; a ``block`` among them puts
    ``items`` back, and what the plan did (``log``, see ``AsyncStore._run_actions``:
    cascaded items, nullified references), and raises ``Blocked`` (the delete is
    refused after all, nothing of it kept)."""
    if not items:
        return
    m = store._m
    keys = [tuple(getattr(i, a) for a in m.key.attrs) for i in items]
    try:
        late = await store._plan_delete(keys, incoming)
    except (Blocked, ValidationError):  # a late block, or a nullify failing a check
        for item in items:
            try:
                await store._b.insert(_stored(store, item))
            except (Conflict, ValidationError):
                pass  # written again meanwhile: it exists
        await take_back(store, log or [])
        raise
    if late:
        await store._run_actions(late)


async def take_back(store: AsyncStore[Any], log: list[Any]) -> None:
    """Undo a delete plan's actions recorded in ``log``, last first (verify mode, best
    effort as ``restore_refs``): cascaded items inserted again as they were read, and
    nullified reference columns set back while they still hold None (a later writer's
    values are kept)."""
    for kind, src, ref, items in reversed(log):
        b = await store._bound(src)
        for item in items:
            try:
                if kind == "delete":
                    await b.insert(_stored(src, item))
                else:
                    key = tuple(getattr(item, a) for a in src._m.key.attrs)
                    back = {c: getattr(item, c) for c in ref.columns}
                    await b.update(key, back,
                                   src._precondition(Q(**{c: None for c in ref.columns})))
            except StoreroomError:
                pass  # written again meanwhile: the later writer's state is kept


async def olds(store: AsyncStore[Any], prepared: list[PreparedEdit]) -> dict[Any, Any]:
    """The items at the keys of a batch's updates, upserts and deletes, before it (what
    verify mode restores when it takes the batch, or one edit of it, back)."""
    keys = list(dict.fromkeys(p.key for p in prepared
                              if p.kind != "create" and p.key is not None))
    out: dict[Any, Any] = {}
    size = store.meta.max_batch
    for i in range(0, len(keys), size):
        chunk = keys[i:i + size]
        out.update(zip(chunk, await store._b.get_many(chunk), strict=True))
    return out


async def undo_edit(store: AsyncStore[Any], p: PreparedEdit, item: Any, old: Any) -> None:
    """Take back one applied edit of a batch (verify mode): a create deleted, an update
    or upsert restored to ``old``, a delete's item put back."""
    m = store._m
    b = store._b
    try:
        if p.kind == "create" or (p.kind == "upsert" and old is None):
            if item is not None:
                await b.delete(tuple(getattr(item, a) for a in m.key.attrs), None)
        elif p.kind == "delete":
            if old is not None:
                await b.insert(_stored(store, old))
        elif old is not None:
            await b.update(p.key, {a.name: getattr(old, a.name) for a in m.stored_attrs
                                   if not a.is_key}, None)
    except StoreroomError:
        pass  # best effort, as restore_refs


def writes_refs(store: AsyncStore[Any], p: PreparedEdit) -> bool:
    """True for an edit of a batch that writes a Ref column."""
    return p.kind != "delete" and sets_refs(store._m, p.values)


__all__ = ["blocked", "check_written", "guarded", "mode", "native_in", "native_refs",
           "olds", "precise", "recheck_deleted", "restore_refs", "take_back", "undo_edit",
           "verifying", "writes_refs"]

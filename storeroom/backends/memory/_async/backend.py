"""In-memory backend. Values are copied in and out, so stored state is never shared."""

from __future__ import annotations

import copy
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

from ....errors import BackendError, Conflict, ValidationError
from ....model.stored import ModelMeta, meta_of
from ....observe import OBSERVERS, Site, async_observed, autoconfigure
from ....query.ast import Node
from ....query.evaluate import compile_local, sort_items
from ....query.order import Order
from ....query.plan import Query
from ....store.aggregate import Accumulator, AggSpec
from ....store.fexpr import has_expr, resolve
from ....store.plan import Split
from ....store.protocol import FexprUse
from ....store.types import PreparedEdit
from ...batch import stopped, upserted
from ...bookkeeping import new_secret, secret_bytes
from ...common import (
    Outcome,
    duplicate,
    invalid,
    key_dict,
    make_store_meta,
    missing,
    ok,
    refusal,
    unique_text,
    unique_value,
    unreadable,
)
from ...evolution import UniqueScan, absent_value

R = TypeVar("R")

# One table per (url name, model name), shared by every store opened on the same name.
_TABLES: dict[tuple[str, str], _Table] = {}
_TABLES_LOCK = threading.Lock()
# the cursor secret of each named memory database
_SECRETS: dict[str, bytes] = {}
# the relations lock of each named memory database (``relations_lock``)
_REL_LOCKS: dict[str, threading.RLock] = {}


class _Table:
    def __init__(self) -> None:
        self.rows: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.lock = threading.RLock()
        self.sequence = 0
        #: the stored attributes its rows hold (every model opened on it so far)
        self.names: frozenset[str] = frozenset()
        #: each stored attribute's annotations, of every model opened on it so far
        self.annotations: dict[str, list[Any]] = {}
        #: how many times an attribute was opened with another annotation than before:
        #: nonzero, rows may hold values of a type a model's attribute does not have
        self.retyped = 0


def _evolve(t: _Table, meta: ModelMeta) -> None:
    """Give the rows of ``t`` written by an older model the attributes ``meta`` added
    since (their defaults): the memory backend's stored items are the rows themselves,
    so this is what reading them would give. A required attribute (no default) missing
    from stored rows: ``BackendError`` naming it (``absent_value``). An attribute opened
    with another annotation than before is noted (``retyped``: ``_Converter``)."""
    with t.lock:
        for a in meta.stored_attrs:
            seen = t.annotations.setdefault(a.name, [])
            if a.annotation not in seen:
                seen.append(a.annotation)
                if len(seen) > 1:
                    t.retyped += 1
    added = [n for n in meta.stored_names if n not in t.names]
    if not added:
        return
    with t.lock:
        for key, row in list(t.rows.items()):
            if any(n not in row for n in added):
                # a new dict: rows are never changed in place (transaction snapshots)
                new = dict(row)
                for n in added:
                    if n not in new:
                        new[n] = absent_value(meta, n, key[0] if len(key) == 1 else key)
                t.rows[key] = new
        t.names = t.names | frozenset(added)


class _Converter:
    """Reads stored rows into one model's types when the table was opened with another
    annotation for some attribute (an older model wrote text where this one has a
    date): the memory backend's stored form is the Python values themselves, so these
    attributes are checked on the way out, as a SQL decoder converts a column. A value
    that does not convert is ``unreadable``'s ``BackendError``. Only built while the
    table's ``retyped`` is nonzero, so every other read pays one comparison."""

    def __init__(self, t: _Table, meta: ModelMeta) -> None:
        self.retyped = t.retyped
        self.model = meta.name
        self.checks = [(a.name, meta.checkers[a.name]) for a in meta.stored_attrs
                       if len(t.annotations.get(a.name, ())) > 1]

    def __call__(self, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` with each retyped attribute's value in this model's type."""
        out = dict(values)
        for name, check in self.checks:
            if name in out:
                errors: list[dict[str, Any]] = []
                out[name] = check(out[name], errors)
                if errors:
                    exc = ValueError(errors[0]["message"])
                    raise unreadable(self.model, exc) from exc
        return out


class _TxTable:
    """A transaction's view of a table: a snapshot taken at its first use in the
    transaction, copied again (``own``) at the first write.

    The backend's code runs on it unchanged (it has ``rows``, ``lock`` and ``sequence``).
    Rows are never changed in place (a write stores a new dict), so a shallow copy is
    a snapshot, and ``rows[k] is not snapshot[k]`` tells what the transaction changed.
    The lock and the sequence are the shared table's: numbers handed out are never
    given again, even when the transaction rolls back (as SQL sequences do).
    """

    __slots__ = ("base", "snapshot", "rows")

    def __init__(self, base: _Table) -> None:
        self.base = base
        with base.lock:
            self.snapshot = dict(base.rows)
        self.rows = self.snapshot  # read-only until the first write

    def own(self) -> None:
        """Before a write: rows of this transaction's own."""
        if self.rows is self.snapshot:
            self.rows = dict(self.snapshot)

    @property
    def lock(self) -> threading.RLock:
        return self.base.lock

    @property
    def sequence(self) -> int:
        return self.base.sequence

    @sequence.setter
    def sequence(self, value: int) -> None:
        self.base.sequence = value

    def merged(self, meta: ModelMeta) -> dict[tuple[Any, ...], dict[str, Any]] | None:
        """The shared rows with this transaction's changes applied; None when it changed
        nothing. Conflict when another transaction committed a change to an item this one
        changed, or took a unique value this one sets. Call with the shared lock held."""
        rows, snap, live = self.rows, self.snapshot, self.base.rows
        if rows is snap:
            return None
        changed = [k for k, r in rows.items() if snap.get(k) is not r]
        changed += [k for k in snap if k not in rows]
        if not changed:
            return None
        for k in changed:
            if live.get(k) is not snap.get(k):
                shown = meta.key.to_str(k if len(k) > 1 else k[0])
                raise Conflict(f"{meta.name}: the item {shown!r} was changed by another "
                               "context or transaction that committed first")
        out = dict(live)
        for k in changed:
            if k in rows:
                out[k] = rows[k]
            else:
                out.pop(k, None)
        for names in meta.unique_sets:
            owner: dict[Any, list[tuple[Any, ...]]] = {}
            for k, r in out.items():
                v = unique_value(names, r)
                if v is not None:
                    owner.setdefault(v, []).append(k)
            for k in changed:
                v = unique_value(names, rows[k]) if k in rows else None
                if v is not None and len(owner[v]) > 1:
                    raise Conflict(f"{meta.name}: {unique_text(names, v)} exists already "
                                   "(committed by another context or transaction)")
        return out


class AsyncMemoryTransaction:
    """One transaction over memory tables: ``await backend.begin()``, then ``bind`` stores.

    Isolation is snapshot isolation: each table is read as it was committed when the
    transaction first used it, plus the transaction's own writes (the first use copies
    the table: memory tables are meant for tests and small data). Other transactions
    never see uncommitted writes.
    ``commit`` applies every table at once under their locks, or raises ``Conflict``
    and applies nothing when another transaction committed a change to an item this
    one changed (first committer wins) or took a unique value it sets.
    ``begin_nested`` gives a savepoint.
    """

    __slots__ = ("_tables", "_metas")

    def __init__(self) -> None:
        self._tables: dict[int, _TxTable] = {}
        self._metas: dict[int, ModelMeta] = {}

    def _table(self, base: _Table, meta: ModelMeta) -> _TxTable:
        t = self._tables.get(id(base))
        if t is None:
            t = self._tables[id(base)] = _TxTable(base)
            self._metas[id(base)] = meta
        return t

    async def commit(self) -> None:
        """Apply every change at once, or raise ``Conflict`` and apply none."""
        tables = sorted(self._tables.values(), key=lambda t: id(t.base))
        self._tables = {}
        locks = []
        try:
            for t in tables:  # always in one order: two commits cannot deadlock
                t.base.lock.acquire()
                locks.append(t.base.lock)
            plans = [(t, t.merged(self._metas[id(t.base)])) for t in tables]
            _check_references(plans, self._metas)
            for t, rows in plans:
                if rows is not None:
                    t.base.rows = rows
        finally:
            for lock in reversed(locks):
                lock.release()

    async def rollback(self) -> None:
        """Forget every change."""
        self._tables = {}

    async def begin_nested(self) -> _MemorySavepoint:
        """A savepoint: its ``rollback`` undoes only what was done after it."""
        return _MemorySavepoint(self)


def _check_references(plans: list[tuple[_TxTable, dict[tuple[Any, ...], dict[str, Any]] | None]],
                      metas: dict[int, ModelMeta]) -> None:
    """Before a transaction commits (its tables' locks held): ``Conflict`` when what it
    wrote references an item another transaction deleted meanwhile, or it deleted an
    item another one made a reference to (``on_delete`` other than "ignore").

    The store front checked both inside the transaction, against its snapshot; this
    closes the window up to the commit. Only tables the transaction used are known:
    the checks and ``on_delete`` plans read the tables they concern in it."""
    from ....model.registry import refs_to
    final = {metas[id(t.base)].cls: (t, rows if rows is not None else t.base.rows)
             for t, rows in plans}
    for t, rows in plans:
        if rows is None:
            continue
        meta = metas[id(t.base)]
        snap = t.snapshot
        changed = [k for k, r in t.rows.items() if snap.get(k) is not r]
        gone = [k for k in snap if k not in t.rows]
        for ref in meta.refs.values() if changed else ():
            target = final.get(ref.target)
            if target is None:
                continue
            for k in changed:
                parts = tuple(t.rows[k].get(c) for c in ref.columns)
                if None not in parts and parts not in target[1]:
                    raise Conflict(f"{meta.name}: the {ref.target.__name__} "
                                   f"{parts[0] if len(parts) == 1 else parts!r} that "
                                   f"{ref.name} references was deleted by another context "
                                   "or transaction that committed first")
        for ref in refs_to(meta.cls) if gone else ():
            if ref.on_delete == "ignore":
                continue
            source = final.get(ref.model)
            if source is None:
                continue
            dead = set(gone)
            for row in source[1].values():
                parts = tuple(row.get(c) for c in ref.columns)
                if parts in dead:
                    raise Conflict(f"{meta.name}: an item this transaction deletes is "
                                   f"referenced by a {ref.model.__name__} another context "
                                   "or transaction committed first")


class _MemorySavepoint:
    __slots__ = ("_tx", "_saved")

    def __init__(self, tx: AsyncMemoryTransaction) -> None:
        self._tx = tx
        self._saved = {key: t.rows if t.rows is t.snapshot else dict(t.rows)
                       for key, t in tx._tables.items()}

    async def commit(self) -> None:
        """Release it (the changes stay in the transaction)."""

    async def rollback(self) -> None:
        """Undo what the transaction changed since the savepoint."""
        for key, t in self._tx._tables.items():
            saved = self._saved.get(key)
            t.rows = saved if saved is not None else t.snapshot


def _copy(values: dict[str, Any]) -> dict[str, Any]:
    # scalars are immutable; only JSON-ish values need a deep copy
    return {k: (copy.deepcopy(v) if isinstance(v, list | dict) or hasattr(v, "__dict__")
                else v) for k, v in values.items()}


class AsyncMemoryBackend:
    """Items kept in a dict in this process (``memory://name`` shares one table per name)."""

    max_local_sort = None
    holds_connections = False  # nothing to release: an unclosed store does not warn
    #: how the store front keeps references intact here: under ``relations_lock``
    ref_integrity = "lock"

    def __init__(self, model: type, name: str = "",
                 _private: dict[str, _Table] | None = None) -> None:
        self._m: ModelMeta = meta_of(model)
        self._name = name
        # an unnamed store's private database: its tables, shared with related stores
        self._private: dict[str, _Table] = {} if _private is None else _private
        autoconfigure()  # the observer seam: loggers / tracing set up before the store
        self._secret: bytes | None = None
        self._rel_lock: threading.RLock | None = None
        self.store_meta = make_store_meta(self._m, "memory", transactions=True)
        if name:
            with _TABLES_LOCK:
                self._t = _TABLES.setdefault((name, self._m.name), _Table())
        else:
            self._t = self._private.setdefault(self._m.name, _Table())
        #: the shared table itself (``_t`` is a transaction's view of it in a bound store)
        self._table: _Table = self._t
        self._converter: _Converter | None = None
        _evolve(self._t, self._m)

    @property
    def relations_lock(self) -> threading.RLock:
        """The lock of this database (every table of the name, or of the private
        database) that the store front holds while it checks references or plans
        ``on_delete`` and writes: no other writer of the database comes in between, so
        a reference never dangles and a ``block`` is never lost."""
        lock = self._rel_lock
        if lock is None:
            if self._name:
                with _TABLES_LOCK:
                    lock = _REL_LOCKS.setdefault(self._name, threading.RLock())
            else:
                lock = self._private.setdefault("", _Table()).lock  # no model is named ""
            self._rel_lock = lock
        return lock

    def related(self, model: type) -> AsyncMemoryBackend:
        """A backend of ``model`` on this database (the same name, or the same private
        tables of an unnamed store)."""
        return type(self)(model, self._name, self._private)

    def native_fexpr(self, values: dict[str, Any], pre: Node | None, use: FexprUse) -> bool:
        """Always True: ``F`` expressions are evaluated under the table's lock, by
        ``update``, in batches and by ``update_where`` alike."""
        return True

    def split(self, node: Node) -> Split:
        """Everything runs "natively" here."""
        return Split(node, _everything())

    def can_order(self, order: Order) -> bool:
        """Every ordering is native."""
        return True

    # transactions (a context's unit of work) ---------------------------------------
    async def begin(self) -> AsyncMemoryTransaction:
        """A new transaction; ``bind`` runs a backend's operations in it."""
        return AsyncMemoryTransaction()

    async def bind(self, tx: AsyncMemoryTransaction) -> AsyncMemoryBackend:
        """This backend's operations inside ``tx`` (any memory backend's transaction)."""
        view = AsyncMemoryTxBackend.__new__(AsyncMemoryTxBackend)
        view.__dict__.update(self.__dict__)
        view._t = tx._table(self._t, self._m)  # type: ignore[assignment]
        return view

    async def create_tables(self) -> None:
        """Nothing to create: a unique set or an index needs no structure here. Rows
        written by an older model get the attributes added since (``_evolve``, also done
        when the store opens)."""
        if isinstance(self._t, _Table):
            _evolve(self._t, self._m)
            # a unique set added since items were written: they may already share values
            for names in self._m.unique_sets:
                scan = UniqueScan(self._m, names)
                with self._t.lock:
                    for key, row in self._t.rows.items():
                        scan.add(key[0] if len(key) == 1 else key, row)
                err = scan.error()
                if err is not None:
                    raise err

    async def close(self) -> None:
        """Nothing to release; the data stays for other stores on the same name."""

    async def cursor_secret(self) -> bytes:
        """The cursor secret of the named memory database (of this store when unnamed)."""
        if self._secret is None:
            if self._name:
                with _TABLES_LOCK:
                    self._secret = _SECRETS.setdefault(self._name,
                                                       secret_bytes(new_secret()))
            else:
                self._secret = secret_bytes(new_secret())
        return self._secret

    def _build(self, values: dict[str, Any]) -> Any:
        if self._table.retyped:
            values = self._convert(values)
        return self._m.build(_copy(values))

    def _convert(self, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` in this model's types (``_Converter``; the table is retyped)."""
        conv = self._converter
        if conv is None or conv.retyped != self._table.retyped:
            conv = self._converter = _Converter(self._table, self._m)
        return conv(values)

    def _item(self, row: dict[str, Any]) -> Any:
        """The item of a stored row for a precondition or filter to look at (not handed
        out: it shares the row's values)."""
        return self._m.build(self._convert(row) if self._table.retyped else dict(row))

    def _matching_retyped(self, keep: Callable[[Any], bool],
                          rows: list[dict[str, Any]]) -> list[Any]:
        """``_matching`` over a retyped table: the filter sees converted values; a row
        whose value does not convert fails the search when the filter would keep it (as
        building it would) or cannot compare it, and is passed over otherwise."""
        out = []
        build = self._m.build
        for r in rows:
            try:
                values = self._convert(r)
            except BackendError:
                try:
                    kept = keep(build(dict(r)))
                except TypeError:  # the old type's value against the new type's
                    kept = True
                if kept:
                    raise
                continue
            item = build(values)
            if keep(item):
                out.append(item)
        return out

    def _observed(self, name: str, method: Callable[..., Awaitable[R]], *args: Any
                  ) -> Awaitable[R]:
        # memory has no round trips: the observer seam sees one record per store
        # operation. Inside it OBSERVERS is empty, so ``method`` (the operation itself,
        # called again) takes its plain path: unobserved, one context-variable read.
        return async_observed(_SITE, name, args, partial(method, *args), _rows, self._m.name)

    def _check_unique(self, values: dict[str, Any], key: tuple[Any, ...] | None) -> None:
        for names in self._m.unique_sets:
            v = unique_value(names, values)
            if v is None:
                continue
            for k, row in self._t.rows.items():
                if k != key and unique_value(names, row) == v:
                    raise Conflict(f"{self._m.name}: {unique_text(names, v)} exists already")

    def _insert(self, values: dict[str, Any]) -> Any:
        m = self._m
        seq = m.sequence_attr
        t = self._t
        if seq is not None and seq.name not in values:
            t.sequence += 1
            values[seq.name] = t.sequence
        elif seq is not None and isinstance(values.get(seq.name), int):
            t.sequence = max(t.sequence, values[seq.name])
        key = tuple(values[a] for a in m.key.attrs)
        if key in t.rows:
            raise Conflict(f"{m.name}: an item with key {m.key.to_str(key if len(key) > 1 else key[0])!r} exists already")
        self._check_unique(values, None)
        t.rows[key] = _copy(values)
        return self._build(values)

    def _upsert(self, values: dict[str, Any]) -> Any:
        key = tuple(values[a] for a in self._m.key.attrs)
        row = self._t.rows.get(key)
        if row is None:
            return self._insert(values)
        new = upserted(self._m, row, values)
        self._check_unique(new, key)
        self._t.rows[key] = _copy(new)
        return self._build(new)

    def _update(self, key: tuple[Any, ...], values: dict[str, Any], pre: Node | None) -> Any:
        row = self._t.rows.get(key)
        if row is None:
            return None
        if pre is not None and not compile_local(pre)(self._item(row)):
            return None
        if has_expr(values):  # over the row as it is, under the lock the caller holds
            values = resolve(self._m, values, row)
        new = {**row, **values}
        self._check_unique(new, key)
        self._t.rows[key] = _copy(new)
        return self._build(new)

    def _delete(self, key: tuple[Any, ...], pre: Node | None) -> bool:
        row = self._t.rows.get(key)
        if row is None:
            return False
        if pre is not None and not compile_local(pre)(self._item(row)):
            return False
        del self._t.rows[key]
        return True

    async def insert(self, values: dict[str, Any]) -> Any:
        """Store a new item; Conflict on a duplicate key or unique value."""
        if OBSERVERS.get():
            return await self._observed("insert", self.insert, values)
        with self._t.lock:
            return self._insert(values)

    async def upsert(self, values: dict[str, Any]) -> Any:
        """Create, or fully update the item at the key; Conflict on a unique value."""
        if OBSERVERS.get():
            return await self._observed("upsert", self.upsert, values)
        with self._t.lock:
            return self._upsert(values)

    async def get(self, key: tuple[Any, ...]) -> Any:
        """The item at key, or None."""
        if OBSERVERS.get():
            return await self._observed("get", self.get, key)
        row = self._t.rows.get(key)
        return None if row is None else self._build(row)

    async def get_many(self, keys: list[tuple[Any, ...]]) -> list[Any]:
        """Items aligned with keys."""
        if OBSERVERS.get():
            return await self._observed("get_many", self.get_many, keys)
        rows = self._t.rows
        return [None if (r := rows.get(k)) is None else self._build(r) for k in keys]

    async def update(self, key: tuple[Any, ...], values: dict[str, Any], pre: Node | None) -> Any:
        """Apply changes; None when missing or the precondition fails."""
        if OBSERVERS.get():
            return await self._observed("update", self.update, key, values, pre)
        with self._t.lock:
            return self._update(key, values, pre)

    async def delete(self, key: tuple[Any, ...], pre: Node | None) -> bool:
        """Delete; False when missing or the precondition fails."""
        if OBSERVERS.get():
            return await self._observed("delete", self.delete, key, pre)
        with self._t.lock:
            return self._delete(key, pre)

    def _matching(self, node: Node) -> list[Any]:
        keep = compile_local(node)
        with self._t.lock:
            rows = list(self._t.rows.values())
        if self._table.retyped:
            return self._matching_retyped(keep, rows)
        build = self._m.build
        return [item for item in (build(dict(r)) for r in rows) if keep(item)]

    async def find(self, query: Query) -> list[Any]:
        """Matching items in order after the query's cursor position, at most limit."""
        if OBSERVERS.get():
            return await self._observed("find", self.find, query)
        limit = query.limit
        items = sort_items(self._matching(query.where()), query.order)
        items = items if limit is None else items[:limit]
        return [self._build(i.__dict__) for i in items]

    async def iterate(self, node: Node) -> AsyncIterator[Any]:
        """Matching items in no particular order."""
        for item in self._matching(node):
            yield self._build(item.__dict__)

    async def aggregate(self, node: Node, specs: tuple[AggSpec, ...]) -> dict[str, Any]:
        """Evaluated here over the matching items (no native aggregates)."""
        acc = Accumulator(specs)
        async for item in self.iterate(node):
            acc.add(item)
        return acc.result()

    async def count(self, node: Node) -> int:
        """How many match."""
        if OBSERVERS.get():
            return await self._observed("count", self.count, node)
        return len(self._matching(node))

    async def update_where(self, node: Node, values: dict[str, Any]) -> int:
        """Apply changes to every match (all or nothing: a unique value conflicts)."""
        if OBSERVERS.get():
            return await self._observed("update_where", self.update_where, node, values)
        with self._t.lock:
            keys = [tuple(getattr(i, a) for a in self._m.key.attrs) for i in self._matching(node)]
            snapshot = dict(self._t.rows)
            try:
                return sum(1 for k in keys if self._update(k, values, None) is not None)
            except (Conflict, ValidationError):
                self._t.rows = snapshot
                raise

    async def delete_where(self, node: Node) -> int:
        """Delete every match."""
        if OBSERVERS.get():
            return await self._observed("delete_where", self.delete_where, node)
        with self._t.lock:
            keys = [tuple(getattr(i, a) for a in self._m.key.attrs) for i in self._matching(node)]
            return sum(1 for k in keys if self._delete(k, None))

    async def apply(self, edits: list[PreparedEdit], atomic: bool) -> list[Outcome]:
        """Apply prepared edits in order; atomic restores everything when one fails."""
        if OBSERVERS.get():
            return await self._observed("apply", self.apply, edits, atomic)
        out: list[Outcome] = []
        with self._t.lock:
            snapshot = (dict(self._t.rows), self._t.sequence) if atomic else None
            for e in edits:
                out.append(self._apply_one(e))
                if atomic and not out[-1][0]:
                    assert snapshot is not None
                    self._t.rows, self._t.sequence = snapshot
                    return stopped(out, len(edits))
        return out

    def _apply_one(self, e: PreparedEdit) -> Outcome:
        try:
            if e.kind == "create":
                return ok(self._insert(e.values))
            if e.kind == "upsert":
                return ok(self._upsert(e.values))
            if e.kind == "update":
                row = self._t.rows.get(e.key)
                why = refusal(self._m, e.key, None if row is None else self._item(row),
                              e.precondition)
                return why if why is not None else ok(self._update(e.key, e.values, None))
            return ok(None) if self._delete(e.key, None) else missing(key_dict(self._m, e.key))
        except Conflict as exc:
            return duplicate(exc)
        except ValidationError as exc:
            return invalid(exc)


class AsyncMemoryTxBackend(AsyncMemoryBackend):
    """A memory backend inside a transaction (``AsyncMemoryBackend.bind``): its table
    is the transaction's ``_TxTable``, whose rows become its own at the first write."""

    def _own(self) -> None:
        self._t.own()  # type: ignore[attr-defined]

    async def insert(self, values: dict[str, Any]) -> Any:
        """As ``AsyncMemoryBackend.insert``, in the transaction."""
        self._own()
        return await super().insert(values)

    async def upsert(self, values: dict[str, Any]) -> Any:
        """As ``AsyncMemoryBackend.upsert``, in the transaction."""
        self._own()
        return await super().upsert(values)

    async def update(self, key: tuple[Any, ...], values: dict[str, Any], pre: Node | None) -> Any:
        """As ``AsyncMemoryBackend.update``, in the transaction."""
        self._own()
        return await super().update(key, values, pre)

    async def delete(self, key: tuple[Any, ...], pre: Node | None) -> bool:
        """As ``AsyncMemoryBackend.delete``, in the transaction."""
        self._own()
        return await super().delete(key, pre)

    async def update_where(self, node: Node, values: dict[str, Any]) -> int:
        """As ``AsyncMemoryBackend.update_where``, in the transaction."""
        self._own()
        return await super().update_where(node, values)

    async def delete_where(self, node: Node) -> int:
        """As ``AsyncMemoryBackend.delete_where``, in the transaction."""
        self._own()
        return await super().delete_where(node)

    async def apply(self, edits: list[PreparedEdit], atomic: bool) -> list[Outcome]:
        """As ``AsyncMemoryBackend.apply``, in the transaction."""
        self._own()
        return await super().apply(edits, atomic)


def _everything() -> Node:
    from ....query.ast import EVERYTHING
    return EVERYTHING


_SITE = Site("memory")


def _rows(result: object) -> int | None:
    if isinstance(result, bool):
        return int(result)
    if isinstance(result, int):
        return result
    if isinstance(result, list):
        return len(result)
    return None if result is None else 1

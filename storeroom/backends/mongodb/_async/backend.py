"""``AsyncMongoBackend``: the store's operations on one MongoDB collection (pymongo)."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from pymongo import IndexModel, ReturnDocument, UpdateOne
from pymongo.errors import (
    BulkWriteError,
    CollectionInvalid,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
)

from ....errors import BackendError, Conflict, StoreroomError, UnsupportedOperation
from ....errors import ValidationError as StoreroomValidationError
from ....query.ast import Node
from ....query.evaluate import compile_local
from ....query.order import Order
from ....query.plan import Query
from ....store.aggregate import Accumulator, AggSpec, finish
from ....store.fexpr import F, has_expr, resolve
from ....store.plan import Split
from ....store.protocol import FexprUse
from ....store.types import ERROR, PreparedEdit
from ...batch import kept_names, stopped
from ...bookkeeping import BOOKKEEPING, CURSOR_SECRET, new_secret, secret_bytes
from ...common import (
    Outcome,
    duplicate,
    invalid,
    key_dict,
    missing,
    ok,
    refusal,
    sets_unique,
    touches_unique,
    unique_for_many,
)
from ...evolution import DEFAULTS_MARKER, backfill_plan
from ..core import LOWER, SEQUENCES, MongoCore

# how often a read-check-write (a precondition the server cannot evaluate) is retried
# when the item changed between the read and the write
_CAS_TRIES = 20
_TX_TRIES = 3
# an atomic batch or update_where holding F expressions conflicts with every concurrent
# one on the same items (each increment is a write): a transient transaction error is
# retried this often (each round, some transaction commits)
_FEXPR_TX_TRIES = 1000
# documents of a backfill by ``default_factory`` updated per ``bulk_write``
_BACKFILL_BATCH = 500
RETRIES = 5  # an upsert racing other upserts of its key: tries before giving up


def _wrap(exc: BaseException, what: str) -> StoreroomError:
    """A driver exception as a storeroom error (the caller raises it ``from exc``)."""
    if isinstance(exc, StoreroomError):
        return exc
    if isinstance(exc, DuplicateKeyError):
        return Conflict(f"{what}: {exc}")
    return BackendError(f"{what}: {type(exc).__name__}: {exc}")


class AsyncMongoTransaction:
    """One multi-document transaction: a ``ClientSession`` of ``client`` (``begin``).

    ``session`` is the pymongo session: pass it (``session=tx.session``) to run raw
    pymongo operations in the same transaction. MongoDB aborts a transaction on any
    error inside it (a duplicate key included); storeroom then raises on its later
    operations and on ``commit``. There are no savepoints (``begin_nested`` raises
    ``UnsupportedOperation``).
    """

    __slots__ = ("client", "session", "_aborted")

    def __init__(self, client: Any, session: Any) -> None:
        self.client = client
        self.session = session
        self._aborted: str | None = None

    async def commit(self) -> None:
        """Commit (``BackendError`` when the transaction was aborted) and end the session."""
        try:
            if self._aborted is not None:
                raise BackendError(f"mongodb: the transaction was aborted ({self._aborted}); "
                                   "nothing of it was committed")
            await self.session.commit_transaction()
        except PyMongoError as exc:
            raise _wrap(exc, "commit") from exc
        finally:
            await self.session.end_session()

    async def rollback(self) -> None:
        """Abort (when still running) and end the session."""
        try:
            if self._aborted is None and self.session.in_transaction:
                await self.session.abort_transaction()
        except PyMongoError as exc:
            raise _wrap(exc, "abort") from exc
        finally:
            self._aborted = self._aborted or "rolled back"
            await self.session.end_session()

    async def abort(self, reason: str) -> None:
        """Abort now, for ``reason``: later operations and ``commit`` raise."""
        if self._aborted is None:
            self._aborted = reason
            try:
                if self.session.in_transaction:
                    await self.session.abort_transaction()
            except PyMongoError:
                pass  # the server aborted it already; nothing of it commits either way

    async def begin_nested(self) -> Any:
        """MongoDB transactions have no savepoints: ``UnsupportedOperation``."""
        raise UnsupportedOperation("mongodb transactions have no savepoints")


#: the field ``touch`` increments (no stored attribute has a name starting "__")
TOUCH = "__touch"


class AsyncMongoBackend:
    """Store operations of one model on one MongoDB collection."""

    max_local_sort = 100_000
    _txn: AsyncMongoTransaction

    def __init__(self, core: MongoCore, client: Any, database: str = "storeroom", *,
                 own_client: bool = True, transactions: bool | None = None) -> None:
        self.core = core
        self.store_meta = core.store_meta
        self.client = client
        self.db = client[database]
        self.coll = self.db[core.name]
        self._own = own_client
        self.holds_connections = own_client  # a client passed in is its owner's to close
        self._ready = False
        self._secret: bytes | None = None
        # None: detect at first use (a replica set or mongos supports transactions)
        self._tx: bool | None = False if transactions is False else None
        # the ClientSession of the transaction this backend runs in (``bind``), else None
        self._session: Any = None

    def split(self, node: Node) -> Split:
        """What of a filter runs on the server."""
        return self.core.split(node)

    def can_order(self, order: Order) -> bool:
        """True when the server sorts by this order (None last in both directions)."""
        return self.core.can_order(order)

    # lifecycle ----------------------------------------------------------------------
    async def create_tables(self) -> None:
        """Create the collection and the model's indexes (idempotent)."""
        core = self.core
        try:
            if self._tx is None:
                hello = await self.client.admin.command("hello")
                self._tx = bool(hello.get("logicalSessionTimeoutMinutes") is not None and
                                (hello.get("setName") or hello.get("msg") == "isdbgrid"))
            names = [core.name] + ([SEQUENCES] if core.seq is not None else [])
            existing = set(await self.db.list_collection_names(
                filter={"name": {"$in": names}}))
            for name in names:
                if name not in existing:
                    try:
                        await self.db.create_collection(name)
                    except CollectionInvalid:
                        pass  # created meanwhile
            specs = core.index_specs()
            if specs:
                await self.coll.create_indexes([IndexModel(keys, **opts)
                                                for keys, opts in specs])
            if core.name in existing:  # a new collection holds no item written before
                await self._backfill()
        except OperationFailure as exc:
            if exc.code != 11000:
                raise _wrap(exc, f"create collection {core.name}") from exc
            # a unique index added over stored items that already share values: the
            # server builds no part of it (an index build is all or nothing)
            dup = (exc.details or {}).get("keyValue") or {}
            shown = ", ".join(f"{k}={v!r}" for k, v in dup.items()) or str(exc)
            raise Conflict(f"{core.name}: cannot build a unique index: stored items share "
                           f"values ({shown}); nothing was built") from exc
        except PyMongoError as exc:
            raise _wrap(exc, f"create collection {core.name}") from exc
        self._ready = True

    async def _backfill(self) -> None:
        """Write the default of every attribute :func:`~..evolution.backfilled` names
        into the stored documents that lack it (written before the attribute was added),
        once: the marker document ``{_id: "defaults:<collection>", done: {attr: true}}``
        of ``storeroom_meta`` records the attributes done (and forgets those the model no
        longer declares), so a later call reads one document and writes nothing.

        Each document is updated only while it still lacks the attribute (a concurrent
        write of a value wins; a concurrent run writes the same defaults), so two
        processes running it at once both succeed. A plain default is one
        ``update_many``; a ``default_factory`` is called once per document (in batches
        of ``bulk_write``), so that each item gets its own value."""
        core = self.core
        marker_coll = self.db[BOOKKEEPING]
        which = {"_id": f"{DEFAULTS_MARKER}:{core.name}"}
        marker = await marker_coll.find_one(which) or {}
        done = marker.get("done")
        todo, gone = backfill_plan(core.meta, set(done) if isinstance(done, dict) else set())
        for a in todo:
            missing_q = {core.paths[a.name]: {"$exists": False}}
            if a.default_factory is None:
                await self.coll.update_many(missing_q,
                                            core.update_doc({a.name: a.default_value()}))
                continue
            while True:
                ids = [d["_id"] async for d in self.coll.find(
                    missing_q, {"_id": 1}, limit=_BACKFILL_BATCH)]
                if not ids:
                    break
                await self.coll.bulk_write(
                    [UpdateOne({"_id": i, **missing_q},
                               core.update_doc({a.name: a.default_value()}))
                     for i in ids], ordered=False)
        if todo or gone:
            update: dict[str, Any] = {}
            if todo:
                update["$set"] = {f"done.{a.name}": True for a in todo}
            if gone:
                update["$unset"] = {f"done.{n}": "" for n in gone}
            await marker_coll.update_one(which, update, upsert=True)

    async def close(self) -> None:
        """Close the client (when this backend opened it)."""
        if self._own:
            await self.client.close()

    async def cursor_secret(self) -> bytes:
        """The database's cursor secret: created once, race-free, as a document of the
        collection ``storeroom_meta``; cached by this backend."""
        if self._secret is None:
            coll = self.db[BOOKKEEPING]
            which = {"_id": CURSOR_SECRET}
            try:
                doc = await coll.find_one(which)
                if doc is None:
                    try:
                        await coll.insert_one({**which, "value": new_secret()})
                    except DuplicateKeyError:
                        pass  # another process created it meanwhile: read that one
                    doc = await coll.find_one(which)
            except PyMongoError as exc:
                raise _wrap(exc, f"cursor secret of {self.core.name}") from exc
            if doc is None or not isinstance(doc.get("value"), str | bytes):
                raise BackendError(f"{self.db.name}.{BOOKKEEPING}: no cursor secret")
            self._secret = secret_bytes(doc["value"])
        return self._secret

    async def _ensure(self) -> None:
        if not self._ready:
            await self.create_tables()
        if self._session is not None and self._txn._aborted is not None:
            # the session is out of its transaction: an operation would apply at once
            raise BackendError(f"mongodb: the transaction was aborted ({self._txn._aborted})")

    async def transactions(self) -> bool:
        """True when the server runs multi-document transactions (asked at first use)."""
        await self._ensure()
        return bool(self._tx)

    def related(self, model: type) -> AsyncMongoBackend:
        """A backend of ``model`` on this one's client and database: the related stores
        a store opens (reference checks, ``on_delete``) share its client, so that its
        transaction covers their reads and writes."""
        from ....model.stored import meta_of
        core = MongoCore(meta_of(model), None, transactions=self._tx is not False)
        return type(self)(core, self.client, self.db.name, own_client=False,
                          transactions=False if self._tx is False else None)

    async def touch(self, keys: list[tuple[Any, ...]]) -> list[bool]:
        """Which of ``keys`` have an item, each found by a write to it (a counter no
        attribute reads, ``TOUCH``): on a server with transactions, the store front's
        check of a reference after its write. A write, unlike a read, waits for a
        transaction that deletes the item to end (and two transactions writing one
        item conflict), so a delete in a transaction and a reference to the item
        written meanwhile always meet; see docs/backends/mongodb.md."""
        core = self.core
        await self._ensure()
        out = []
        try:
            for k in keys:
                r = await self.coll.update_one({"_id": core.key_id(k)}, {"$inc": {TOUCH: 1}},
                                               session=self._session)
                out.append(r.matched_count == 1)
        except PyMongoError as exc:
            raise _wrap(exc, f"check references to {core.name}") from exc
        return out

    @property
    def touches(self) -> bool:
        """True when references are checked after a write with ``touch`` (the server
        runs transactions: a read would not see a transaction's pending delete)."""
        return bool(self._tx)

    def shared_options(self) -> dict[str, Any]:
        """Options that open another model's backend on this one's client (so that one
        transaction covers both)."""
        return {"client": self.client}

    async def begin(self) -> AsyncMongoTransaction:
        """A new multi-document transaction on this backend's client.

        ``UnsupportedOperation`` when the server runs none (not a replica set or sharded
        cluster); open the store with ``transactions=False`` to write without one.
        """
        await self._ensure()
        if not self._tx:
            raise UnsupportedOperation(
                f"mongodb: the server at {self.db.name} does not run multi-document "
                "transactions (it is not a replica set or sharded cluster); pass "
                "transactions=False to write without them")
        session = self.client.start_session()
        try:
            await session.start_transaction()
        except PyMongoError as exc:
            await session.end_session()
            raise _wrap(exc, "begin a transaction") from exc
        return AsyncMongoTransaction(self.client, session)

    async def bind(self, tx: AsyncMongoTransaction) -> AsyncMongoBackend:
        """This backend's operations inside ``tx`` (a transaction on the same client)."""
        if tx.client is not self.client:
            raise ValueError("mongodb: the transaction belongs to another client")
        await self._ensure()  # collections and indexes are created outside the transaction
        view = copy.copy(self)
        view._own = False
        view._session = tx.session
        view._txn = tx
        return view

    # single items -------------------------------------------------------------------
    async def insert(self, values: dict[str, Any]) -> Any:
        """Insert; Conflict on a duplicate key or unique value."""
        await self._ensure()
        return await self._insert(values, self._session)

    async def _insert(self, values: dict[str, Any], session: Any) -> Any:
        core = self.core
        try:
            seq = core.seq
            if seq is not None:
                if values.get(seq.name) is None:
                    values[seq.name] = await self._next_seq(session)
                else:
                    await self._bump_seq(values[seq.name], session)
            doc = core.document(values)
            if self._in_context_tx(session):
                # a duplicate-key error would abort the whole transaction (MongoDB has no
                # savepoints): find the conflict without one, so the context stays usable
                await self._check_unique(values, doc["_id"], session)
                rest = {k: v for k, v in doc.items() if k != "_id"}
                res = await self.coll.update_one({"_id": doc["_id"]}, {"$setOnInsert": rest},
                                                 upsert=True, session=session)
                if res.upserted_id is None:
                    raise Conflict(core.conflict_text(values))
            else:
                await self.coll.insert_one(doc, session=session)
        except DuplicateKeyError as exc:
            raise Conflict(core.conflict_text(values)) from exc
        except PyMongoError as exc:
            raise _wrap(exc, f"create {core.name}") from exc
        return core.meta.build(dict(values))

    async def upsert(self, values: dict[str, Any]) -> Any:
        """Create, or fully update the document at the key: one ``find_one_and_update``
        with ``upsert=True`` (attributes that cannot be updated in ``$setOnInsert``)."""
        await self._ensure()
        return await self._upsert(dict(values), self._session)

    async def _upsert(self, values: dict[str, Any], session: Any) -> Any:
        core = self.core
        seq = core.seq
        try:
            if seq is not None and values.get(seq.name) is not None:
                await self._bump_seq(values[seq.name], session)
            doc = core.document(values)
            kid = doc["_id"]
            kept = kept_names(core.meta)
            write = {n: v for n, v in values.items()
                     if n not in kept and n not in core.key_names}
            update = core.update_doc(write)
            on_insert = {n: v for n, v in doc.items()
                         if n not in write and n not in ("_id", LOWER)}
            for n, lv in doc.get(LOWER, {}).items():
                if n not in write:
                    on_insert[f"{LOWER}.{n}"] = lv
            if on_insert:
                update["$setOnInsert"] = on_insert
            if not update:  # only a key: nothing to write on an existing document
                update = {"$setOnInsert": {"_id": kid}}
            if self._in_context_tx(session):
                # a duplicate-key error would abort the context's transaction
                await self._check_unique(values, kid, session)
        except PyMongoError as exc:
            raise _wrap(exc, f"upsert {core.name}") from exc
        for attempt in range(RETRIES):
            try:
                got = await self.coll.find_one_and_update(
                    {"_id": kid}, update, upsert=True, return_document=ReturnDocument.AFTER,
                    session=session)
                if got is None:  # (a server that returns no document for a racing insert)
                    got = await self.coll.find_one({"_id": kid}, session=session)
                    if got is None:
                        continue
            except DuplicateKeyError as exc:
                # two upserts inserting one _id at once: the loser updates on a retry;
                # a duplicate of another item's unique value stays one
                if attempt == RETRIES - 1 or session is not None:
                    raise Conflict(core.conflict_text(values)) from exc
                continue
            except PyMongoError as exc:
                raise _wrap(exc, f"upsert {core.name}") from exc
            return core.build(got)
        raise BackendError(f"upsert on {core.name}: the document kept changing")

    def _in_context_tx(self, session: Any) -> bool:
        """True when ``session`` is the transaction of a context this backend is bound to."""
        return session is not None and session is self._session

    async def _check_unique(self, values: dict[str, Any], key_id: Any, session: Any) -> None:
        """``Conflict`` when a unique index would refuse ``values`` for the item ``key_id``.

        Used inside a context's transaction only, where the server's own refusal would
        abort the transaction; the unique indexes stay the final guard against races.
        """
        core = self.core
        current: dict[str, Any] | None = None
        for ix in core.meta.indexes:
            if not ix.unique or not any(a in values for a in ix.attrs):
                continue
            q: dict[str, Any] = {"_id": {"$ne": key_id}}
            for a in ix.attrs:
                path = core.paths[a]
                if a in values:
                    bson = core.value(a, values[a])
                else:  # a partial update: the stored value of the index's other attributes
                    if current is None:
                        current = await self.coll.find_one({"_id": key_id},
                                                           session=session) or {}
                    bson = current.get(path)
                if bson is None:
                    break  # an item whose unique attribute is None is not constrained
                q[path] = bson
            else:
                if await self.coll.find_one(q, {"_id": 1}, session=session) is not None:
                    raise Conflict(core.conflict_text(values))

    async def _next_seq(self, session: Any) -> int:
        doc = await self.db[SEQUENCES].find_one_and_update(
            {"_id": self.core.name}, {"$inc": {"n": 1}}, upsert=True,
            return_document=ReturnDocument.AFTER, session=session)
        return int(doc["n"])

    async def _bump_seq(self, value: Any, session: Any) -> None:
        if isinstance(value, int):
            await self.db[SEQUENCES].update_one({"_id": self.core.name},
                                                {"$max": {"n": value}}, upsert=True,
                                                session=session)

    async def get(self, key: tuple[Any, ...]) -> Any:
        """The item at key, or None."""
        core = self.core
        await self._ensure()
        try:
            doc = await self.coll.find_one({"_id": core.key_id(key)}, core.projection,
                                           session=self._session)
        except PyMongoError as exc:
            raise _wrap(exc, f"read {core.name}") from exc
        return None if doc is None else core.build(doc)

    async def get_many(self, keys: list[tuple[Any, ...]]) -> list[Any]:
        """Items aligned with keys: one ``find({_id: {$in: [...]}})``."""
        core = self.core
        await self._ensure()
        unique = list(dict.fromkeys(keys))
        found: dict[tuple[Any, ...], Any] = {}
        try:
            for start in range(0, len(unique), 1000):
                ids = [core.key_id(k) for k in unique[start:start + 1000]]
                cursor = self.coll.find({"_id": {"$in": ids}}, core.projection,
                                        session=self._session)
                for doc in await cursor.to_list(None):
                    item = core.build(doc)
                    found[core.key_of(item)] = item
        except PyMongoError as exc:
            raise _wrap(exc, f"read {core.name}") from exc
        return [found.get(k) for k in keys]

    async def update(self, key: tuple[Any, ...], values: dict[str, Any], pre: Node | None) -> Any:
        """Apply changes; None when missing or the precondition fails."""
        await self._ensure()
        if pre is not None and not self.core.split(pre).all_native:
            return (await self._update_checked(key, values, pre, self._session))[1]
        return await self._update(key, values, pre, self._session)

    def native_fexpr(self, values: dict[str, Any], pre: Node | None, use: FexprUse) -> bool:
        """True when these ``F`` expressions are written natively (any ``+ - *``, see
        ``MongoCore.fexpr_update``: ``$inc`` or an update pipeline, the bounds in the
        query): by key and in batches (in the batch's session) with a native
        precondition; by ``update_where`` when the filter is native and no unique
        attribute changes (``update_many``; with bounds, inside a transaction)."""
        core = self.core
        if use == "where":
            return pre is not None and core.split(pre).all_native and \
                not sets_unique(core.meta, values)
        return pre is None or core.split(pre).all_native

    async def _update(self, key: tuple[Any, ...], values: dict[str, Any], pre: Node | None,
                      session: Any) -> Any:
        """find_one_and_update({_id, precondition}, changes): atomic check-and-write."""
        core = self.core
        q = core.key_query(key, pre)
        try:
            if not values:
                doc = await self.coll.find_one(q, core.projection, session=session)
            elif has_expr(values):
                if self._in_context_tx(session):
                    plain = {n: v for n, v in values.items() if not isinstance(v, F)}
                    if touches_unique(core.meta, values) and len(plain) < len(values):
                        # an F computing a unique attribute: checked with its result
                        old = await self.coll.find_one(q, core.projection, session=session)
                        if old is not None:
                            plain = resolve(core.meta, values, core.build(old))
                    await self._check_unique(plain, core.key_id(key), session)
                upd, guarded = core.fexpr_update(values, q)
                doc = await self.coll.find_one_and_update(
                    guarded, upd, projection=core.projection,
                    return_document=ReturnDocument.AFTER, session=session)
                if doc is None:  # missing, precondition failed, or a result out of bounds
                    old = await self.coll.find_one(q, core.projection, session=session)
                    if old is not None:
                        resolve(core.meta, values, core.build(old))  # raises when out
                        return await self._update(key, values, pre, session)  # it changed
            else:
                if self._in_context_tx(session):
                    await self._check_unique(values, core.key_id(key), session)
                doc = await self.coll.find_one_and_update(
                    q, core.update_doc(values), projection=core.projection,
                    return_document=ReturnDocument.AFTER, session=session)
        except DuplicateKeyError as exc:
            raise Conflict(core.conflict_text(values)) from exc
        except PyMongoError as exc:
            raise _wrap(exc, f"update {core.name}") from exc
        return None if doc is None else core.build(doc)

    async def _update_checked(self, key: tuple[Any, ...], values: dict[str, Any], pre: Node,
                              session: Any) -> Outcome:
        """A precondition evaluated locally: read, check, then write only if unchanged."""
        core = self.core
        for _ in range(_CAS_TRIES):
            try:
                doc = await self.coll.find_one({"_id": core.key_id(key)}, session=session)
                item = None if doc is None else core.build(doc)
                why = refusal(core.meta, key, item, pre)
                if why is not None:
                    return why
                if not values:
                    return ok(item)
                assert doc is not None
                if self._in_context_tx(session):
                    await self._check_unique(values, doc["_id"], session)
                new = await self.coll.find_one_and_update(
                    core.guard(doc), core.update_doc(values), projection=core.projection,
                    return_document=ReturnDocument.AFTER, session=session)
            except DuplicateKeyError as exc:
                raise Conflict(core.conflict_text(values)) from exc
            except PyMongoError as exc:
                raise _wrap(exc, f"update {core.name}") from exc
            if new is not None:
                return ok(core.build(new))
        raise BackendError(f"update {core.name}: the item kept changing during the update")

    async def _update_edit(self, e: PreparedEdit, session: Any) -> Outcome:
        """An update edit: ok, or why not (a refused write reads the item to tell)."""
        core = self.core
        pre = e.precondition
        if pre is not None and not core.split(pre).all_native:
            return await self._update_checked(e.key, e.values, pre, session)
        for _ in range(_CAS_TRIES):
            item = await self._update(e.key, e.values, pre, session)
            if item is not None:
                return ok(item)
            try:
                doc = await self.coll.find_one({"_id": core.key_id(e.key)}, core.projection,
                                               session=session)
            except PyMongoError as exc:
                raise _wrap(exc, f"update {core.name}") from exc
            why = refusal(core.meta, e.key, None if doc is None else core.build(doc), pre)
            if why is not None:
                return why
        raise BackendError(f"update {core.name}: the item kept changing during the update")

    async def delete(self, key: tuple[Any, ...], pre: Node | None) -> bool:
        """Delete; False when missing or the precondition fails."""
        await self._ensure()
        return await self._delete(key, pre, self._session)

    async def _delete(self, key: tuple[Any, ...], pre: Node | None, session: Any) -> bool:
        core = self.core
        try:
            if pre is None or core.split(pre).all_native:
                res = await self.coll.delete_one(core.key_query(key, pre), session=session)
                return bool(res.deleted_count)
            check = compile_local(pre)
            for _ in range(_CAS_TRIES):
                doc = await self.coll.find_one({"_id": core.key_id(key)}, session=session)
                if doc is None or not check(core.build(doc)):
                    return False
                res = await self.coll.delete_one(core.guard(doc), session=session)
                if res.deleted_count:
                    return True
        except PyMongoError as exc:
            raise _wrap(exc, f"delete {core.name}") from exc
        raise BackendError(f"delete {core.name}: the item kept changing during the delete")

    # many items ---------------------------------------------------------------------
    async def find(self, query: Query) -> list[Any]:
        """Matching items in order (filter and order native) after the cursor position,
        at most limit; the keyset condition is the expanded ``$or`` of ``after_filter``
        (None last in both directions, as the sort here)."""
        core = self.core
        await self._ensure()
        order, limit = query.order, query.limit
        if limit is not None and limit < 1:
            return []
        q = core.compile(query.where(lambda n: core.attrs[n].optional))
        try:
            if order and core.needs_pipeline(order):
                cursor = await self.coll.aggregate(core.pipeline(q, order, limit),
                                                   session=self._session)
            else:
                cursor = self.coll.find(q, core.projection, session=self._session)
                if order:
                    cursor = cursor.sort(core.sort_spec(order))
                if limit is not None:
                    cursor = cursor.limit(limit)
            docs = await cursor.to_list(None)
        except PyMongoError as exc:
            raise _wrap(exc, f"search {core.name}") from exc
        build = core.build
        return [build(d) for d in docs]

    async def iterate(self, node: Node) -> AsyncIterator[Any]:
        """Matching items (native filter), in no particular order, fetched in batches."""
        core = self.core
        await self._ensure()
        try:
            async with self.coll.find(core.compile(node), core.projection,
                                      session=self._session) as cursor:
                async for doc in cursor:
                    yield core.build(doc)
        except PyMongoError as exc:
            raise _wrap(exc, f"search {core.name}") from exc

    async def count(self, node: Node) -> int:
        """How many items match (``count_documents``)."""
        core = self.core
        await self._ensure()
        try:
            return int(await self.coll.count_documents(core.compile(node),
                                                       session=self._session))
        except PyMongoError as exc:
            raise _wrap(exc, f"count {core.name}") from exc

    async def aggregate(self, node: Node, specs: tuple[AggSpec, ...]) -> dict[str, Any]:
        """One aggregation pipeline (``$match``, ``$group``) when every aggregate is native
        (see ``MongoCore.group_pipeline``), else evaluated here over the matches."""
        core = self.core
        await self._ensure()
        stages = core.group_pipeline(core.compile(node), specs)
        if stages is None:
            acc = Accumulator(specs)
            async for item in self.iterate(node):
                acc.add(item)
            return acc.result()
        try:
            cursor = await self.coll.aggregate(stages, session=self._session)
            docs = await cursor.to_list(None)
        except PyMongoError as exc:
            raise _wrap(exc, f"aggregate {core.name}") from exc
        doc = docs[0] if docs else {}
        raw = {s.name: (doc.get(f"a{i}"), doc.get(f"n{i}")) if s.func == "avg"
               else doc.get(f"a{i}") for i, s in enumerate(specs)}
        return finish(specs, raw)

    async def update_where(self, node: Node, values: dict[str, Any]) -> int:
        """Apply changes to every match (``update_many``, when the server evaluates the
        whole filter); how many matched."""
        core = self.core
        await self._ensure()
        split = core.split(node)
        if sets_unique(core.meta, values):
            # update_many would change the first match, then fail on the second: the
            # value can go to one item only, updated on condition it still matches
            keys = await self._keys(split)
            if len(keys) > 1:
                raise unique_for_many(core.meta, values)
            return sum([await self.update(k, values, node) is not None for k in keys])
        if touches_unique(core.meta, values) and (
                not split.all_native or self._session is not None):
            # a match may conflict after earlier ones were written: all or nothing (a
            # transaction of its own; in a context's, each checked before it is written
            # - the server's refusal would abort the transaction - and the documents put
            # back on a Conflict)
            return await self._all_or_nothing(
                lambda s, w: self._update_each(split, node, values, s, w),
                f"update {core.name}")
        if not split.all_native:
            return sum([await self.update(k, values, node) is not None
                        for k in await self._keys(split)])
        if has_expr(values):
            return await self._update_where_f(node, values)
        q = core.compile(node)
        if self._session is None and self._tx and touches_unique(core.meta, values):
            # a change to part of a unique set may conflict on any match: update_many
            # would stop there with the earlier matches changed, so it runs in a
            # transaction of its own (all or nothing)
            return await self._update_many_tx(q, values)
        try:
            if not values:
                return int(await self.coll.count_documents(q, session=self._session))
            res = await self.coll.update_many(q, core.update_doc(values), session=self._session)
        except DuplicateKeyError as exc:
            raise Conflict(core.conflict_text(values)) from exc
        except PyMongoError as exc:
            raise _wrap(exc, f"update {core.name}") from exc
        return int(res.matched_count)

    async def _update_where_f(self, node: Node, values: dict[str, Any]) -> int:
        """``update_where`` with ``F`` expressions and a native filter: one ``update_many``
        (``MongoCore.fexpr_update``). With bounds, in a transaction (the context's, or
        one of its own): a match whose result is outside them is looked for first
        (``ValidationError``, nothing written), then all are written, on one snapshot.
        Without transactions: every match's result checked as read, then each match
        written by key with its bounds in the query."""
        core = self.core
        q = core.compile(node)
        upd, guarded = core.fexpr_update(values, q)
        if guarded is q:  # no bounds: nothing can be refused but a unique value
            if self._session is None and self._tx and touches_unique(core.meta, values):
                # update_many would stop at a conflicting match with the earlier ones
                # changed: in a transaction of its own (all or nothing)
                return await self._all_or_nothing(
                    lambda s, w: self._update_many(q, upd, values, s), f"update {core.name}")
            return await self._update_many(q, upd, values, self._session)
        if self._session is not None:
            return await self._update_many_checked(q, upd, guarded, values, self._session)
        if not self._tx:
            keys = []
            async for item in self.iterate(node):
                resolve(core.meta, values, item)  # raises when a result is out
                keys.append(core.key_of(item))
            return sum([await self._update(k, values, node, None) is not None for k in keys])
        for attempt in range(_FEXPR_TX_TRIES):
            try:
                async with self.client.start_session() as s:
                    async with await s.start_transaction():
                        return await self._update_many_checked(q, upd, guarded, values, s)
            except (BackendError, PyMongoError) as exc:
                cause = exc if isinstance(exc, PyMongoError) else exc.__cause__
                if (isinstance(cause, PyMongoError) and attempt + 1 < _FEXPR_TX_TRIES and
                        cause.has_error_label("TransientTransactionError")):
                    continue
                if isinstance(exc, StoreroomError):
                    raise
                raise _wrap(exc, f"update {core.name}") from exc
        raise BackendError(f"update {core.name}: transaction kept conflicting")

    async def _update_many_tx(self, q: dict[str, Any], values: dict[str, Any]) -> int:
        """``update_many`` in a transaction of its own: a ``Conflict`` writes nothing."""
        core = self.core
        return await self._all_or_nothing(
            lambda s, w: self._update_many(q, core.update_doc(values), values, s),
            f"update {core.name}")

    async def _all_or_nothing(self, run: Callable[[Any, dict[Any, Any] | None],
                                                  Awaitable[int]], what: str) -> int:
        """``run(session, watch)``, a write of several documents, all or nothing.

        Bound to a context's transaction: in it, and when ``run`` raises the documents
        it changed (``run`` records each in ``watch`` before it writes it) are written
        back (``_undo``: MongoDB transactions have no savepoints;
        a conflict is found by ``_check_unique`` before it would abort the
        transaction). Else, on a server with transactions: in a transaction of its
        own, tried again on a transient error. Without transactions (``transactions=
        False``, a standalone server): ``run`` as it is, document by document; a
        ``Conflict`` part way leaves the documents before it written (documented).
        """
        if self._session is not None:
            before: dict[Any, Any] = {}
            try:
                return await run(self._session, before)
            except StoreroomError:
                try:
                    await self._undo(before, self._session)
                except PyMongoError as exc:
                    raise _wrap(exc, what) from exc
                raise
        if not self._tx:
            return await run(None, None)
        for attempt in range(_FEXPR_TX_TRIES):
            try:
                async with self.client.start_session() as s:
                    async with await s.start_transaction():
                        return await run(s, None)
            except (BackendError, PyMongoError) as exc:
                cause = exc if isinstance(exc, PyMongoError) else exc.__cause__
                if (isinstance(cause, PyMongoError) and attempt + 1 < _FEXPR_TX_TRIES and
                        cause.has_error_label("TransientTransactionError")):
                    continue
                if isinstance(exc, StoreroomError):
                    raise
                raise _wrap(exc, what) from exc
        raise BackendError(f"{what}: transaction kept conflicting")

    async def _update_each(self, split: Split, node: Node, values: dict[str, Any],
                           session: Any, watch: dict[Any, Any] | None) -> int:
        """Every match of a filter evaluated partly here, read and updated by key in
        ``session`` (each on condition it still matches; ``watch``: each document as it
        was, recorded before it is written)."""
        core = self.core
        keys = await self._keys_in(split, session, f"update {core.name}")
        n = 0
        for k in keys:
            if watch is not None:
                kid = core.key_id(k)
                if _hashable(kid) not in watch:
                    try:
                        watch[_hashable(kid)] = await self.coll.find_one({"_id": kid},
                                                                         session=session)
                    except PyMongoError as exc:
                        raise _wrap(exc, f"update {core.name}") from exc
            if split.all_native:
                n += await self._update(k, values, node, session) is not None
            else:
                n += (await self._update_checked(k, values, node, session))[1] is not None
        return n

    async def _update_many_checked(self, q: dict[str, Any], upd: Any, guarded: dict[str, Any],
                                   values: dict[str, Any], session: Any) -> int:
        """In ``session``'s transaction: ``ValidationError`` when a match's result would be
        out of its bounds (nothing written), else every match written."""
        core = self.core
        try:
            bad = await self.coll.find_one({"$and": [q, {"$nor": [guarded]}]},
                                           core.projection, session=session)
        except PyMongoError as exc:
            raise _wrap(exc, f"update {core.name}") from exc
        if bad is not None:
            resolve(core.meta, values, core.build(bad))  # raises: the error names it
        return await self._update_many(guarded, upd, values, session)

    async def _update_many(self, q: dict[str, Any], upd: Any, values: dict[str, Any],
                           session: Any) -> int:
        core = self.core
        try:
            res = await self.coll.update_many(q, upd, session=session)
        except DuplicateKeyError as exc:
            raise Conflict(core.conflict_text(values)) from exc
        except PyMongoError as exc:
            raise _wrap(exc, f"update {core.name}") from exc
        return int(res.matched_count)

    async def delete_where(self, node: Node) -> int:
        """Delete every match (``delete_many``, when the server evaluates the whole
        filter, else each match on condition it still matches)."""
        core = self.core
        await self._ensure()
        split = core.split(node)
        if not split.all_native:
            if self._session is None and self._tx:
                # several deletes, each after a read: on one snapshot, all or nothing
                return await self._all_or_nothing(
                    lambda s, w: self._delete_each(split, node, s), f"delete {core.name}")
            return sum([await self._delete(k, node, self._session)
                        for k in await self._keys(split)])
        try:
            res = await self.coll.delete_many(core.compile(node), session=self._session)
        except PyMongoError as exc:
            raise _wrap(exc, f"delete {core.name}") from exc
        return int(res.deleted_count)

    async def _delete_each(self, split: Split, node: Node, session: Any) -> int:
        """Every match of a filter evaluated partly here, deleted by key in ``session``."""
        keys = await self._keys_in(split, session, f"delete {self.core.name}")
        return sum([await self._delete(k, node, session) for k in keys])

    async def _keys_in(self, split: Split, session: Any, what: str) -> list[tuple[Any, ...]]:
        """Keys of the items matching the whole filter, read in ``session`` (a
        transaction's snapshot: ``_keys`` reads outside it)."""
        core = self.core
        keep = compile_local(split.local)
        try:
            docs = await self.coll.find(core.compile(split.native), core.projection,
                                        session=session).to_list(None)
        except PyMongoError as exc:
            raise _wrap(exc, what) from exc
        return [core.key_of(i) for i in map(core.build, docs) if keep(i)]

    async def _keys(self, split: Split) -> list[tuple[Any, ...]]:
        """Keys of the items matching the whole filter."""
        keep = compile_local(split.local)
        return [self.core.key_of(i) async for i in self.iterate(split.native) if keep(i)]

    # batches ------------------------------------------------------------------------
    async def apply(self, edits: list[PreparedEdit], atomic: bool) -> list[Outcome]:
        """Apply edits in order; atomic: in one multi-document transaction."""
        await self._ensure()
        if atomic:
            if not self._tx:
                raise UnsupportedOperation(
                    f"mongodb: the server at {self.db.name} does not run multi-document "
                    "transactions (it is not a replica set or sharded cluster)")
            if self._session is not None:
                return await self._apply_in_transaction(edits)
            return await self._apply_atomic(edits)
        if self._bulk_insertable(edits):
            return await self._bulk_insert(edits)
        return [await self._apply_one(e, self._session) for e in edits]

    async def _apply_in_transaction(self, edits: list[PreparedEdit]) -> list[Outcome]:
        """An atomic batch inside the transaction this backend is bound to.

        MongoDB transactions have no savepoints, and a server error aborts the whole
        transaction: creates and unique values are checked before they are written
        (``_check_unique``), and when an edit fails the documents the batch changed are
        written back as they were, so the batch changes nothing and the context goes on.
        """
        core = self.core
        session = self._session
        out: list[Outcome] = []
        # the documents as they were before the batch, in order of first touch: a failed
        # edit is undone by writing them back (inside the transaction, so no other
        # transaction ever sees the batch half applied), and the context stays usable
        before: dict[Any, dict[str, Any] | None] = {}
        try:
            for e in edits:
                if e.kind != "create":
                    kid = core.key_id(e.key)
                    if _hashable(kid) not in before:
                        before[_hashable(kid)] = await self.coll.find_one({"_id": kid},
                                                                          session=session)
                outcome = await self._apply_one(e, session)
                out.append(outcome)
                if not outcome[0]:
                    await self._undo(before, session)
                    return stopped(out, len(edits))
                if e.kind == "create":
                    kid = core.key_id(core.key_of(outcome[1]))
                    before.setdefault(_hashable(kid), None)
        except PyMongoError as exc:
            raise _wrap(exc, f"batch on {core.name}") from exc
        return out

    async def _undo(self, before: dict[Any, dict[str, Any] | None], session: Any) -> None:
        """Write back the documents an atomic batch changed (``None``: it did not exist)."""
        for kid, doc in reversed(list(before.items())):
            key_id = dict(kid) if isinstance(kid, tuple) else kid
            if doc is None:
                await self.coll.delete_one({"_id": key_id}, session=session)
            else:
                await self.coll.replace_one({"_id": key_id}, doc, upsert=True,
                                            session=session)

    async def _apply_atomic(self, edits: list[PreparedEdit]) -> list[Outcome]:
        core = self.core
        tries = _FEXPR_TX_TRIES if any(has_expr(e.values) for e in edits) else _TX_TRIES
        for attempt in range(tries):
            try:
                async with self.client.start_session() as s:
                    async with await s.start_transaction():
                        out: list[Outcome] = []
                        for e in edits:
                            outcome = await self._apply_one(e, s)
                            out.append(outcome)
                            if not outcome[0]:
                                await s.abort_transaction()
                                return stopped(out, len(edits))
                return out
            except (BackendError, PyMongoError) as exc:
                cause = exc if isinstance(exc, PyMongoError) else exc.__cause__
                if (isinstance(cause, PyMongoError) and attempt + 1 < tries and
                        cause.has_error_label("TransientTransactionError")):
                    continue
                if isinstance(exc, StoreroomError):
                    raise
                raise _wrap(exc, f"batch on {core.name}") from exc
        raise BackendError(f"batch on {core.name}: transaction kept conflicting")

    def _bulk_insertable(self, edits: list[PreparedEdit]) -> bool:
        """All creates, no sequence, and no two alike in key or unique value."""
        core = self.core
        if len(edits) < 2 or core.seq is not None or any(e.kind != "create" for e in edits):
            return False
        for names in [core.key_names, *core.meta.unique_sets]:
            seen = [tuple(e.values.get(n) for n in names) for e in edits]
            seen = [s for s in seen if None not in s]
            if len(seen) != len(set(seen)):
                return False
        return True

    async def _bulk_insert(self, edits: list[PreparedEdit]) -> list[Outcome]:
        """Creates as one ``insert_many(ordered=False)``; failures reported per edit."""
        core = self.core
        try:
            docs = [core.document(e.values) for e in edits]
        except StoreroomValidationError:
            return [await self._apply_one(e, self._session) for e in edits]
        failed: dict[int, Outcome] = {}
        try:
            await self.coll.insert_many(docs, ordered=False, session=self._session)
        except BulkWriteError as exc:
            for err in exc.details.get("writeErrors", []):
                i = err["index"]
                if err.get("code") in (11000, 11001):
                    failed[i] = duplicate(core.conflict_text(edits[i].values))
                else:
                    failed[i] = (False, None, ERROR, str(err.get("errmsg")))
        except PyMongoError as exc:
            raise _wrap(exc, f"create {core.name}") from exc
        build = core.meta.build
        return [failed.get(i) or ok(build(dict(e.values))) for i, e in enumerate(edits)]

    async def _apply_one(self, e: PreparedEdit, session: Any) -> Outcome:
        core = self.core
        try:
            if e.kind == "create":
                return ok(await self._insert(dict(e.values), session))
            if e.kind == "upsert":
                return ok(await self._upsert(dict(e.values), session))
            if e.kind == "update":
                return await self._update_edit(e, session)
            if await self._delete(e.key, None, session):
                return ok(None)
            return missing(key_dict(core.meta, e.key))
        except Conflict as exc:
            return duplicate(exc)
        except StoreroomValidationError as exc:
            return invalid(exc)


def _hashable(key_id: Any) -> Any:
    """A document ``_id`` as a dict key (a composite key's sub-document as a tuple)."""
    return tuple(key_id.items()) if isinstance(key_id, dict) else key_id

"""``AsyncMongoBackend``: the store's operations on one MongoDB collection (pymongo)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pymongo import IndexModel, ReturnDocument
from pymongo.errors import (
    BulkWriteError,
    CollectionInvalid,
    DuplicateKeyError,
    PyMongoError,
)

from ....errors import BackendError, Conflict, StoreroomError, UnsupportedOperation
from ....errors import ValidationError as StoreroomValidationError
from ....query.ast import Node
from ....query.evaluate import compile_local
from ....query.order import Order
from ....store.plan import Split
from ....store.types import ERROR, INVALID, PreparedEdit
from ...common import (
    Outcome,
    duplicate,
    key_dict,
    missing,
    ok,
    refusal,
    sets_unique,
    unique_for_many,
)
from ..core import SEQUENCES, MongoCore

# how often a read-check-write (a precondition the server cannot evaluate) is retried
# when the item changed between the read and the write
_CAS_TRIES = 20
_TX_TRIES = 3
_NOT_APPLIED: Outcome = (False, None, None, "not applied: batch failed")


def _wrap(exc: BaseException, what: str) -> StoreroomError:
    """A driver exception as a storeroom error (the caller raises it ``from exc``)."""
    if isinstance(exc, StoreroomError):
        return exc
    if isinstance(exc, DuplicateKeyError):
        return Conflict(f"{what}: {exc}")
    return BackendError(f"{what}: {type(exc).__name__}: {exc}")


class AsyncMongoBackend:
    """Store operations of one model on one MongoDB collection."""

    max_local_sort = 100_000

    def __init__(self, core: MongoCore, client: Any, database: str = "storeroom", *,
                 own_client: bool = True, transactions: bool | None = None) -> None:
        self.core = core
        self.store_meta = core.store_meta
        self.client = client
        self.db = client[database]
        self.coll = self.db[core.name]
        self._own = own_client
        self._ready = False
        # None: detect at first use (a replica set or mongos supports transactions)
        self._tx: bool | None = False if transactions is False else None

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
        except PyMongoError as exc:
            raise _wrap(exc, f"create collection {core.name}") from exc
        self._ready = True

    async def close(self) -> None:
        """Close the client (when this backend opened it)."""
        if self._own:
            await self.client.close()

    async def _ensure(self) -> None:
        if not self._ready:
            await self.create_tables()

    async def transactions(self) -> bool:
        """True when the server runs multi-document transactions (asked at first use)."""
        await self._ensure()
        return bool(self._tx)

    # single items -------------------------------------------------------------------
    async def insert(self, values: dict[str, Any]) -> Any:
        """Insert; Conflict on a duplicate key or unique value."""
        await self._ensure()
        return await self._insert(values, None)

    async def _insert(self, values: dict[str, Any], session: Any) -> Any:
        core = self.core
        try:
            seq = core.seq
            if seq is not None:
                if values.get(seq.name) is None:
                    values[seq.name] = await self._next_seq(session)
                else:
                    await self._bump_seq(values[seq.name], session)
            await self.coll.insert_one(core.document(values), session=session)
        except DuplicateKeyError as exc:
            raise Conflict(core.conflict_text(values)) from exc
        except PyMongoError as exc:
            raise _wrap(exc, f"create {core.name}") from exc
        return core.meta.build(dict(values))

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
            doc = await self.coll.find_one({"_id": core.key_id(key)}, core.projection)
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
                cursor = self.coll.find({"_id": {"$in": ids}}, core.projection)
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
            return (await self._update_checked(key, values, pre, None))[1]
        return await self._update(key, values, pre, None)

    async def _update(self, key: tuple[Any, ...], values: dict[str, Any], pre: Node | None,
                      session: Any) -> Any:
        """find_one_and_update({_id, precondition}, changes): atomic check-and-write."""
        core = self.core
        q = core.key_query(key, pre)
        try:
            if not values:
                doc = await self.coll.find_one(q, core.projection, session=session)
            else:
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
        return await self._delete(key, pre, None)

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
    async def find(self, node: Node, order: Order | None, limit: int | None) -> list[Any]:
        """Matching items in order (filter and order native), at most limit."""
        core = self.core
        await self._ensure()
        if limit is not None and limit < 1:
            return []
        q = core.compile(node)
        try:
            if order and core.needs_pipeline(order):
                cursor = await self.coll.aggregate(core.pipeline(q, order, limit))
            else:
                cursor = self.coll.find(q, core.projection)
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
            async with self.coll.find(core.compile(node), core.projection) as cursor:
                async for doc in cursor:
                    yield core.build(doc)
        except PyMongoError as exc:
            raise _wrap(exc, f"search {core.name}") from exc

    async def count(self, node: Node) -> int:
        """How many items match (``count_documents``)."""
        core = self.core
        await self._ensure()
        try:
            return int(await self.coll.count_documents(core.compile(node)))
        except PyMongoError as exc:
            raise _wrap(exc, f"count {core.name}") from exc

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
        if not split.all_native:
            return sum([await self.update(k, values, node) is not None
                        for k in await self._keys(split)])
        q = core.compile(node)
        try:
            if not values:
                return int(await self.coll.count_documents(q))
            res = await self.coll.update_many(q, core.update_doc(values))
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
            return sum([await self._delete(k, node, None) for k in await self._keys(split)])
        try:
            res = await self.coll.delete_many(core.compile(node))
        except PyMongoError as exc:
            raise _wrap(exc, f"delete {core.name}") from exc
        return int(res.deleted_count)

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
            return await self._apply_atomic(edits)
        if self._bulk_insertable(edits):
            return await self._bulk_insert(edits)
        return [await self._apply_one(e, None) for e in edits]

    async def _apply_atomic(self, edits: list[PreparedEdit]) -> list[Outcome]:
        core = self.core
        for attempt in range(_TX_TRIES):
            try:
                async with self.client.start_session() as s:
                    async with await s.start_transaction():
                        out: list[Outcome] = []
                        for e in edits:
                            outcome = await self._apply_one(e, s)
                            out.append(outcome)
                            if not outcome[0]:
                                await s.abort_transaction()
                                out.extend(_NOT_APPLIED for _ in edits[len(out):])
                                return out
                return out
            except (BackendError, PyMongoError) as exc:
                cause = exc if isinstance(exc, PyMongoError) else exc.__cause__
                if (isinstance(cause, PyMongoError) and attempt + 1 < _TX_TRIES and
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
        for names in [core.key_names] + [(a.name,) for a in core.meta.unique_attrs]:
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
            return [await self._apply_one(e, None) for e in edits]
        failed: dict[int, Outcome] = {}
        try:
            await self.coll.insert_many(docs, ordered=False)
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
            if e.kind == "update":
                return await self._update_edit(e, session)
            if await self._delete(e.key, None, session):
                return ok(None)
            return missing(key_dict(core.meta, e.key))
        except Conflict as exc:
            return duplicate(exc)
        except StoreroomValidationError as exc:
            return (False, None, INVALID, str(exc))

"""``AsyncDynamoBackend``: the store's operations as DynamoDB requests (aioboto3).

Single writes are conditional requests (``attribute_not_exists`` / ``attribute_exists``
plus the compiled precondition). A precondition the server cannot evaluate, and every
write that moves a unique value, is a read followed by a write conditioned on the read
values (optimistic, retried). Unique values and atomic batches use TransactWriteItems;
on an endpoint without it (dynalite) they raise ``UnsupportedOperation`` and
``StoreMeta.atomic_batch`` turns False once the store has been used.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from ....errors import BackendError, Conflict, UnsupportedOperation, ValidationError
from ....query.ast import EVERYTHING, And, Node
from ....query.evaluate import compile_local, sort_items
from ....query.order import Order
from ....query.plan import Query
from ....query.prepare import simplify
from ....store.aggregate import Accumulator, AggSpec
from ....store.fexpr import F, has_expr, resolve
from ....store.plan import Split
from ....store.protocol import FexprUse
from ....store.types import DUPLICATE_KEY, INVALID, PreparedEdit
from ...batch import failed_at, kept_names, simulate, written_names
from ...bookkeeping import new_secret, secret_bytes
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
    unique_text,
)
from ...evolution import UniqueScan, backfill_plan
from ..client import AsyncDynamoClient
from ..core import (
    AUX_KEY,
    DynamoCore,
    Expected,
    Expr,
    Plan,
    attrs_of,
    error_code,
    prune,
    wrap_error,
)

CCF = "ConditionalCheckFailedException"
SECRET_ITEM = "secret\x1fcursor"  # the cursor secret's key in the companion table
NO_TX = ("{what}: this DynamoDB endpoint has no TransactWriteItems (dynalite); unique "
         "attributes and atomic batches need transactions - use moto_server or AWS")
RETRIES = 8


class AsyncDynamoBackend:
    """Store operations of one model on one DynamoDB table."""

    def __init__(self, core: DynamoCore, conn: AsyncDynamoClient,
                 transactions: bool | None = None) -> None:
        self.core = core
        self.conn = conn
        self.store_meta = core.store_meta
        self.max_local_sort = core.max_local_sort
        self._ready = False
        self._secret: bytes | None = None
        self._tx: bool | None = None
        if transactions is not None:
            self._set_tx(transactions)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.core.table}>"

    def _set_tx(self, flag: bool) -> None:
        self._tx = flag
        # the front holds this StoreMeta: it learns the truth once the endpoint is probed
        object.__setattr__(self.store_meta, "atomic_batch", flag)

    def split(self, node: Node) -> Split:
        """What of a filter runs on the server."""
        return self.core.split(node)

    def can_order(self, order: Order) -> bool:
        """True when a Query on a sort key can serve this order."""
        return self.core.can_order(order)

    # plumbing --------------------------------------------------------------------------
    async def client(self) -> Any:
        """The underlying aiobotocore / boto3 client."""
        return await self.conn.get()

    async def _call(self, op: str, params: dict[str, Any], expect: tuple[str, ...] = ()
                    ) -> dict[str, Any]:
        client = await self.conn.get()
        try:
            response: dict[str, Any] = await getattr(client, op)(**prune(params))
            return response
        except Exception as exc:
            code = error_code(exc)
            if code and code in expect:
                raise Expected(code, exc) from exc
            raise wrap_error(exc, f"{op} on {params.get('TableName', self.core.table)}"
                             ) from exc

    async def create_tables(self) -> None:
        """Create the table (and its companion table when needed); idempotent. On a
        table that exists, add what the model gained since: its missing GSIs (UpdateTable,
        one at a time, each waited for until ACTIVE; bools and empty strings of their key
        attributes in stored items are rewritten to the key form first) and the
        uniqueness items of an added unique set for the stored items (a set they already
        break: ``Conflict`` naming the shared values, none of its items written)."""
        if self._ready:
            return
        core = self.core
        created = await self._create(core.table_spec())
        if not created:
            await self._add_gsis()
        if core.needs_aux:
            await self._create(core.aux_spec())
        if self._tx is None:
            await self._probe()
        if not created:  # a new table holds no item written before
            await self._backfill()
        if core.unique and self._tx:
            await self._build_unique(fresh=created)
        self._ready = True

    async def _backfill(self) -> None:
        """Write the default of every attribute ``evolution.backfilled`` names into the
        stored items that lack it (written before the attribute was added), once: a
        Scan for the items lacking one, then per item a conditional UpdateItem that
        writes only while the item exists and still lacks the attribute (a concurrent
        write of a value wins; a concurrent run writes the same default; a deleted item
        stays deleted), so two processes running it at once both succeed. The record
        ``defaults_marker`` of the companion table (created when first needed) holds the
        attributes done and forgets those the model no longer declares: a later call
        reads one item and writes nothing."""
        core = self.core
        marker = core.defaults_marker()
        try:
            got = await self._call("get_item", {"TableName": core.aux_table, "Key": marker,
                                                "ConsistentRead": True},
                                   expect=("ResourceNotFoundException",))
            has_aux = True
        except Expected:  # no companion table yet
            got, has_aux = {}, False
        done = set(got.get("Item", {}).get("done", {}).get("SS", ()))
        todo, gone = backfill_plan(core.meta, done)
        if todo:
            names = [a.name for a in todo]
            async for items in self._scan_all(names, lacking=names):
                for raw in items:
                    await self._fill(raw, [a for a in todo if a.name not in raw])
        if not (todo or gone):
            return
        if not has_aux:
            await self._create(core.aux_spec())
        # one request per action: DynamoDB refuses ADD and DELETE of one path together
        for action, names in (("ADD", [a.name for a in todo]), ("DELETE", list(gone))):
            if names:
                await self._call("update_item", {
                    "TableName": core.aux_table, "Key": marker,
                    "UpdateExpression": f"{action} #d :s",
                    "ExpressionAttributeNames": {"#d": "done"},
                    "ExpressionAttributeValues": {":s": {"SS": names}}})

    async def _fill(self, raw: dict[str, Any], lacking: list[Any]) -> None:
        """Write the defaults of the attributes ``lacking`` into the stored item ``raw``
        while it exists and lacks them: one UpdateItem, else (a concurrent write set
        one of them) one per attribute, each skipped when the item no longer lacks it."""
        core = self.core
        key = {n: raw[n] for n in ([core.pk] + ([core.sk_name] if core.sk_name else []))}
        groups = [lacking]
        while groups:
            group = groups.pop()
            ex = Expr()
            sets: list[str] = []
            conds = [core.exists_cond(ex)]
            for a in group:
                sets += core.default_sets(a.name, a.default_value(), ex)
                conds.append(f"attribute_not_exists({ex.n(a.name)})")
            try:
                await self._call("update_item", {
                    "TableName": core.table, "Key": key,
                    "UpdateExpression": "SET " + ", ".join(sets),
                    "ConditionExpression": " AND ".join(conds), **ex.params()},
                    expect=(CCF,))
            except Expected:
                if len(group) > 1:  # written meanwhile: the attributes one by one
                    groups += [[a] for a in group]

    async def _scan_all(self, names: list[str] | None = None,
                        lacking: list[str] | None = None
                        ) -> AsyncIterator[list[dict[str, Any]]]:
        """Every stored item (only ``names`` and the key when given; only the items
        lacking one of ``lacking`` when given), a page at a time."""
        core = self.core
        req: dict[str, Any] = {"TableName": core.table, "ConsistentRead": True, "Limit": 500}
        if names is not None:
            keys = [core.pk] + ([core.sk_name] if core.sk_name else [])
            wanted = list(dict.fromkeys(keys + list(core.key_names) + names))
            req["ProjectionExpression"] = ", ".join(f"#p{i}" for i in range(len(wanted)))
            req["ExpressionAttributeNames"] = {f"#p{i}": n for i, n in enumerate(wanted)}
        if lacking:
            req.setdefault("ExpressionAttributeNames", {}).update(
                {f"#l{i}": n for i, n in enumerate(lacking)})
            req["FilterExpression"] = " OR ".join(
                f"attribute_not_exists(#l{i})" for i in range(len(lacking)))
        while True:
            page = await self._call("scan", req)
            yield page.get("Items", [])
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            req["ExclusiveStartKey"] = last

    async def _add_gsis(self) -> None:
        core = self.core
        described = (await self._call("describe_table", {"TableName": core.table}))["Table"]
        missing = core.missing_gsis(described)
        for name, p, s in missing:
            names = [p] + ([s] if s else [])
            async for items in self._scan_all(names):
                for raw in items:
                    changes = core.reencoded(raw, names)
                    if changes:
                        await self._rewrite(raw, changes)
            gsi, defs = core.gsi_spec(name, p, s)
            req = {"TableName": core.table,
                   "AttributeDefinitions": [{"AttributeName": n, "AttributeType": t}
                                            for n, t in defs.items()],
                   "GlobalSecondaryIndexUpdates": [{"Create": gsi}]}
            try:
                await self._call("update_table", req, expect=("ValidationException",))
            except Expected as exc:
                if "provisionedthroughput" not in str(exc.exc).lower():
                    raise wrap_error(exc.exc, f"update_table on {core.table}") from exc.exc
                # an on-demand table's index takes no throughput on DynamoDB, but
                # dynalite wants one for every index it adds
                gsi["ProvisionedThroughput"] = {"ReadCapacityUnits": 1,
                                                "WriteCapacityUnits": 1}
                await self._call("update_table", req)
            await self._wait_active(core.table)
        if missing:
            described = (await self._call("describe_table", {"TableName": core.table})
                         )["Table"]
            left = core.missing_gsis(described)
            if left:  # accepted but not built (dynalite): search without them
                core.without_gsis({g[0] for g in left})

    async def _rewrite(self, raw: dict[str, Any], changes: dict[str, Any]) -> None:
        """Store ``changes`` (name -> (old av, new av)) into the item while it still holds
        the old values (a writer that changed it meanwhile wrote the key form)."""
        core = self.core
        names = {f"#c{i}": n for i, n in enumerate(changes)}
        values: dict[str, Any] = {}
        sets, conds = [], []
        for i, (_old, _new) in enumerate(changes.values()):
            values[f":o{i}"], values[f":n{i}"] = _old, _new
            sets.append(f"#c{i} = :n{i}")
            conds.append(f"#c{i} = :o{i}")
        key = {n: raw[n] for n in ([core.pk] + ([core.sk_name] if core.sk_name else []))}
        try:
            await self._call("update_item", {
                "TableName": core.table, "Key": key,
                "UpdateExpression": "SET " + ", ".join(sets),
                "ConditionExpression": " AND ".join(conds),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values}, expect=(CCF,))
        except Expected:
            pass

    async def _build_unique(self, fresh: bool) -> None:
        """The uniqueness items of each unique set not yet built for the stored items
        (recorded by a marker item in the companion table once built)."""
        core = self.core
        todo = []
        for sid in core.unique:
            if not fresh:
                got = await self._call("get_item", {"TableName": core.aux_table,
                                                    "Key": core.schema_marker(sid),
                                                    "ConsistentRead": True})
                if "Item" in got:
                    continue
            todo.append(sid)
        if not todo:
            return
        if not fresh:
            # a first pass: stored items breaking an added unique set write nothing
            scans = {sid: UniqueScan(core.meta, core.unique_names[sid]) for sid in todo}
            async for items in self._scan_all(sorted(core.unique_attrs)):
                for raw in items:
                    owner = core.key_str(core.key_of_raw(raw))
                    for sid, scan in scans.items():
                        value = core.unique_of_raw(sid, raw)
                        if value is not None:
                            scan.add(owner, dict(zip(core.unique_names[sid], value,
                                                     strict=True)))
            for scan in scans.values():
                if (err := scan.error()) is not None:
                    raise err
            async for items in self._scan_all(sorted(core.unique_attrs)):
                for raw in items:
                    owner = core.key_str(core.key_of_raw(raw))
                    for sid in todo:
                        value = core.unique_of_raw(sid, raw)
                        if value is None:
                            continue
                        try:  # its own item already (a re-run) is fine
                            await self._call("put_item", self._uniq_put(sid, value, owner,
                                                                         prev=owner),
                                             expect=(CCF,))
                        except Expected as exc:
                            raise Conflict(
                                f"{core.meta.name}: cannot make "
                                f"{', '.join(core.unique_names[sid])} unique: "
                                f"{core.unique_shown(sid, value)} is taken by another "
                                f"item (written meanwhile)") from exc.exc
        for sid in todo:
            await self._call("put_item", {"TableName": core.aux_table,
                                          "Item": {**core.schema_marker(sid),
                                                   "owner": {"S": ""}}})

    async def _ensure(self) -> None:
        if not self._ready:
            await self.create_tables()

    async def _create(self, spec: dict[str, Any]) -> bool:
        """Create a table unless it exists; True when created now. Waits until ACTIVE."""
        name = spec["TableName"]
        created = True
        try:
            await self._call("create_table", spec, expect=("ResourceInUseException",))
        except Expected:
            created = False
        await self._wait_active(name)
        return created

    async def _wait_active(self, name: str) -> None:
        for i in range(600):
            d = (await self._call("describe_table", {"TableName": name}))["Table"]
            if d.get("TableStatus") == "ACTIVE" and all(
                    g.get("IndexStatus", "ACTIVE") == "ACTIVE"
                    for g in d.get("GlobalSecondaryIndexes", ())):
                return
            await self.conn.sleep(0.05 if i < 20 else 1.0)
        raise BackendError(f"table {name} did not become ACTIVE")

    async def _probe(self) -> None:
        """Does the endpoint have TransactWriteItems? (A condition check that writes
        nothing.)"""
        core = self.core
        key = {core.pk: _probe_value(core.codecs[core.pk].key_type)}
        if core.sk_name is not None:
            key[core.sk_name] = _probe_value(
                "S" if core.synthetic else core.codecs[core.sk_name].key_type)
        check = {"ConditionCheck": {
            "TableName": core.table, "Key": key,
            "ConditionExpression": "attribute_not_exists(#k) OR attribute_exists(#k)",
            "ExpressionAttributeNames": {"#k": core.pk}}}
        try:
            await self._call("transact_write_items", {"TransactItems": [check]},
                             expect=("UnknownOperationException",))
        except Expected:
            self._set_tx(False)
            return
        self._set_tx(True)

    async def cursor_secret(self) -> bytes:
        """The cursor secret of the store's table: created once, race-free, with a
        conditional put in the companion table (created now if the store had none);
        cached by this backend."""
        if self._secret is None:
            core = self.core
            key = {AUX_KEY: {"S": SECRET_ITEM}}
            get = {"TableName": core.aux_table, "Key": key, "ConsistentRead": True}
            try:
                item = (await self._call("get_item", get,
                                         expect=("ResourceNotFoundException",))).get("Item")
            except Expected:  # no companion table yet
                item = None
            if item is None:
                await self._create(core.aux_spec())
                try:
                    await self._call("put_item", {
                        "TableName": core.aux_table,
                        "Item": {**key, "v": {"S": new_secret()}},
                        "ConditionExpression": "attribute_not_exists(#k)",
                        "ExpressionAttributeNames": {"#k": AUX_KEY}}, expect=(CCF,))
                except Expected:
                    pass  # another process created it meanwhile: read that one
                item = (await self._call("get_item", get)).get("Item")
            value = (item or {}).get("v", {}).get("S")
            if not value:
                raise BackendError(f"{core.aux_table}: no cursor secret")
            self._secret = secret_bytes(value)
        return self._secret

    async def drop_tables(self) -> None:
        """Delete the store's tables (tests and tools)."""
        # (the companion table may exist for the cursor secret alone)
        names = [self.core.table, self.core.aux_table]
        for name in names:
            try:
                await self._call("delete_table", {"TableName": name},
                                 expect=("ResourceNotFoundException",))
            except Expected:
                pass
        self._ready = False

    async def close(self) -> None:
        """Close the client."""
        await self.conn.close()

    async def _transact(self, items: list[dict[str, Any]], what: str) -> list[str] | None:
        """Run TransactWriteItems: None when written, else the cancellation reason codes."""
        if self._tx is False:
            raise UnsupportedOperation(NO_TX.format(what=what))
        try:
            items = [{k: prune(v) for k, v in i.items()} for i in items]
            await self._call("transact_write_items", {"TransactItems": items},
                             expect=("TransactionCanceledException",
                                     "UnknownOperationException"))
        except Expected as exc:
            if exc.code == "UnknownOperationException":
                self._set_tx(False)
                raise UnsupportedOperation(NO_TX.format(what=what)) from exc.exc
            reasons = exc.response.get("CancellationReasons") or []
            codes = [str(r.get("Code") or "None") for r in reasons]
            return codes or ["Unknown"] * len(items)
        return None

    # sequences and unique records --------------------------------------------------------
    async def _next_seq(self) -> int:
        core = self.core
        r = await self._call("update_item", {
            "TableName": core.aux_table, "Key": core.seq_key(),
            "UpdateExpression": "ADD #n :one", "ExpressionAttributeNames": {"#n": "n"},
            "ExpressionAttributeValues": {":one": {"N": "1"}}, "ReturnValues": "UPDATED_NEW"})
        return int(r["Attributes"]["n"]["N"])

    async def _bump_seq(self, value: int) -> None:
        core = self.core
        try:
            await self._call("update_item", {
                "TableName": core.aux_table, "Key": core.seq_key(),
                "UpdateExpression": "SET #n = :v",
                "ConditionExpression": "attribute_not_exists(#n) OR #n < :v",
                "ExpressionAttributeNames": {"#n": "n"},
                "ExpressionAttributeValues": {":v": {"N": str(int(value))}}}, expect=(CCF,))
        except Expected:
            pass

    def _uniq_put(self, attr: str, value: tuple[Any, ...], owner: str,
                  prev: str | None = None) -> dict[str, Any]:
        core = self.core
        out: dict[str, Any] = {
            "TableName": core.aux_table,
            "Item": {**core.unique_key(attr, value), "owner": {"S": owner}},
            "ConditionExpression": "attribute_not_exists(#k)",
            "ExpressionAttributeNames": {"#k": AUX_KEY}}
        if prev is not None:
            out["ConditionExpression"] = "attribute_not_exists(#k) OR #o = :o"
            out["ExpressionAttributeNames"]["#o"] = "owner"
            out["ExpressionAttributeValues"] = {":o": {"S": prev}}
        return out

    def _uniq_delete(self, attr: str, value: tuple[Any, ...], owner: str) -> dict[str, Any]:
        core = self.core
        return {"TableName": core.aux_table, "Key": core.unique_key(attr, value),
                "ConditionExpression": "attribute_not_exists(#k) OR #o = :o",
                "ExpressionAttributeNames": {"#k": AUX_KEY, "#o": "owner"},
                "ExpressionAttributeValues": {":o": {"S": owner}}}

    def _conflict_text(self, values: dict[str, Any], attr: str | None = None) -> str:
        core = self.core
        if attr is not None:
            shown = unique_text(core.unique_names[attr],
                                tuple(values.get(n) for n in core.unique_names[attr]))
            return f"{core.meta.name}: an item with {shown} exists already"
        key = tuple(values.get(n) for n in core.key_names)
        return f"{core.meta.name}: an item with key {core.key_str(key)!r} exists already"

    # single items ---------------------------------------------------------------------
    async def _get_raw(self, key: tuple[Any, ...]) -> dict[str, Any] | None:
        core = self.core
        r = await self._call("get_item", {"TableName": core.table, "Key": core.key_av(key),
                                          "ConsistentRead": core.consistent})
        return r.get("Item")

    async def get(self, key: tuple[Any, ...]) -> Any:
        """The item at key, or None."""
        await self._ensure()
        raw = await self._get_raw(key)
        return None if raw is None else self.core.build(raw)

    async def get_many(self, keys: list[tuple[Any, ...]]) -> list[Any]:
        """Items aligned with keys: BatchGetItem, 100 keys per request."""
        await self._ensure()
        core = self.core
        found: dict[tuple[Any, ...], Any] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 100):
            chunk = unique[start:start + 100]
            for raw in await self._batch_get([core.key_av(k) for k in chunk]):
                found[core.key_of_raw(raw)] = core.build(raw)
        return [found.get(k) for k in keys]

    async def _batch_get(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        core = self.core
        request: dict[str, Any] = {core.table: {"Keys": keys, "ConsistentRead": core.consistent}}
        out: list[dict[str, Any]] = []
        delay = 0.05
        for _ in range(RETRIES * 2):
            r = await self._call("batch_get_item", {"RequestItems": request})
            out.extend(r.get("Responses", {}).get(core.table, ()))
            request = r.get("UnprocessedKeys") or {}
            if not request:
                return out
            await self.conn.sleep(delay)
            delay = min(delay * 2, 2.0)
        raise BackendError(f"BatchGetItem on {core.table}: keys still unprocessed after retries")

    async def _batch_write(self, table: str, requests: list[dict[str, Any]]) -> None:
        """BatchWriteItem, 25 requests per call, unprocessed ones retried with backoff."""
        for start in range(0, len(requests), 25):
            pending: dict[str, Any] = {table: requests[start:start + 25]}
            delay = 0.05
            for _ in range(RETRIES * 2):
                r = await self._call("batch_write_item", {"RequestItems": pending})
                pending = r.get("UnprocessedItems") or {}
                if not pending:
                    break
                await self.conn.sleep(delay)
                delay = min(delay * 2, 2.0)
            else:
                raise BackendError(f"BatchWriteItem on {table}: items still unprocessed")

    async def insert(self, values: dict[str, Any]) -> Any:
        """Create (conditional put, never overwrites); Conflict on a duplicate."""
        await self._ensure()
        core = self.core
        values = dict(values)
        if core.seq is not None:
            if values.get(core.seq) is None:
                values[core.seq] = await self._next_seq()
            else:
                await self._bump_seq(values[core.seq])
        ex = Expr()
        put = {"TableName": core.table, "Item": core.encode_item(values),
               "ConditionExpression": f"attribute_not_exists({ex.n(core.pk)})", **ex.params()}
        uniq = [(a, v) for a in core.unique if (v := core.unique_of(a, values)) is not None]
        if not uniq:
            try:
                await self._call("put_item", put, expect=(CCF,))
            except Expected as exc:
                raise Conflict(self._conflict_text(values)) from exc.exc
            return core.meta.build(values)
        owner = core.key_str(tuple(values[n] for n in core.key_names))
        items = [{"Put": put}] + [{"Put": self._uniq_put(a, v, owner)} for a, v in uniq]
        for _ in range(RETRIES):
            codes = await self._transact(items, "create with unique attributes")
            if codes is None:
                return core.meta.build(values)
            if codes[0] == "ConditionalCheckFailed":
                raise Conflict(self._conflict_text(values))
            for (a, _v), code in zip(uniq, codes[1:], strict=False):
                if code == "ConditionalCheckFailed":
                    raise Conflict(self._conflict_text(values, a))
            await self.conn.sleep(0.02)  # TransactionConflict: try again
        raise BackendError(f"create on {core.table}: transaction kept conflicting")

    async def upsert(self, values: dict[str, Any]) -> Any:
        """Create, or fully update the item at the key: one UpdateItem (which creates a
        missing item) setting every written attribute, ``if_not_exists`` for the ones
        that cannot be updated. With unique attributes: read, then a create or an
        update conditioned on the read (their unique records move in one transaction)."""
        await self._ensure()
        core = self.core
        values = dict(values)
        if core.seq is not None and values.get(core.seq) is not None:
            await self._bump_seq(values[core.seq])
        key = tuple(values[n] for n in core.key_names)
        if core.unique:
            return await self._upsert_checked(key, values)
        kept = kept_names(core.meta)
        keyav = core.key_av(key)
        ex = Expr()
        sets, removes = [], []
        for n, av in core.encode_item(values).items():
            if n in keyav:
                continue
            base = n[:-2] if n.endswith("~d") else n
            if base in kept:
                sets.append(f"{ex.n(n)} = if_not_exists({ex.n(n)}, {ex.v(av)})")
            else:
                sets.append(f"{ex.n(n)} = {ex.v(av)}")
        for n, v in values.items():
            if v is None and n not in kept and n not in core.key_names and n in core.codecs:
                removes.append(ex.n(n))
                if n in core.decimals:
                    removes.append(ex.n(n + "~d"))
        parts = (["SET " + ", ".join(sets)] if sets else []) + (
            ["REMOVE " + ", ".join(removes)] if removes else [])
        if not parts:  # only a key: a put writes nothing new on an existing item
            await self._call("put_item", {"TableName": core.table,
                                          "Item": core.encode_item(values)})
            return core.meta.build(values)
        r = await self._call("update_item", {
            "TableName": core.table, "Key": keyav, "UpdateExpression": " ".join(parts),
            "ReturnValues": "ALL_NEW", **ex.params()})
        return core.build(r["Attributes"])

    async def _upsert_checked(self, key: tuple[Any, ...], values: dict[str, Any]) -> Any:
        core = self.core
        write = written_names(core.meta, values)
        for _ in range(RETRIES):
            if await self._get_raw(key) is None:
                try:
                    return await self.insert(values)
                except Conflict:
                    if await self._get_raw(key) is None:
                        raise  # another item's unique value
                    continue  # created meanwhile: update it
            out = await self.update(key, {n: values[n] for n in write}, None)
            if out is not None:
                return out
        raise BackendError(f"upsert on {core.table}: the item kept changing")

    async def update(self, key: tuple[Any, ...], values: dict[str, Any], pre: Node | None) -> Any:
        """Apply changes; None when missing or the precondition fails."""
        await self._ensure()
        core = self.core
        if not values:
            item = await self.get(key)
            if item is None or (pre is not None and not compile_local(pre)(item)):
                return None
            return item
        moving = [a for a in core.unique if any(n in values for n in core.unique_names[a])]
        if moving or (pre is not None and not core.split(pre).all_native):
            return await self._update_checked(key, values, pre, moving)
        expr = has_expr(values)
        for _ in range(RETRIES):
            ex = Expr()
            cond = core.write_cond(pre, ex)
            if cond is None:
                return None
            if expr:  # F results inside their bounds: part of the one conditional write
                cond = " AND ".join([cond, *core.fexpr_bounds(values, ex)])
            params = {"TableName": core.table, "Key": core.key_av(key),
                      "UpdateExpression": core.update_expr(values, ex),
                      "ConditionExpression": cond, "ReturnValues": "ALL_NEW", **ex.params()}
            try:
                r = await self._call("update_item", params, expect=(CCF,))
            except Expected:
                if not expr:
                    return None
                # refused: missing, precondition failed, or a result out of bounds; one
                # read tells which (and a value changed since: write again)
                raw = await self._get_raw(key)
                if raw is None:
                    return None
                item = core.build(raw)
                if pre is not None and not compile_local(pre)(item):
                    return None
                resolve(core.meta, values, item)  # raises ValidationError when out
                continue
            return core.build(r["Attributes"])
        raise BackendError(f"update on {core.table}: the item kept changing under the check")

    def native_fexpr(self, values: dict[str, Any], pre: Node | None, use: FexprUse) -> bool:
        """True when these ``F`` expressions are int ``±F(x) + c`` (``SET #a = #x + :c``,
        DynamoDB never multiplies), no unique attribute changes, and the precondition
        (``update_where``: the filter) is native; others the store writes guarded by
        the values read. By key and in a non-atomic batch: one ``UpdateItem``, bounds
        in its condition. ``update_where``: every match's result checked as read, then
        per match that ``UpdateItem`` conditioned on the filter. An atomic batch: the
        results computed from the items read (``TransactWriteItems`` returns no values,
        so the items each edit returns are known only so) and written in one
        transaction guarded by what was read, again on a concurrent change.
        ``update_where`` changing a unique set (any ``F``, any filter): True, its
        transactions compute the results from the items read (``_update_where_tx``)."""
        if use == "where" and touches_unique(self.core.meta, values):
            return True
        return (pre is None or self.core.split(pre).all_native) and \
            self.core.native_fexpr(values)

    async def _update_checked(self, key: tuple[Any, ...], values: dict[str, Any],
                              pre: Node | None, moving: list[str]) -> Any:
        """Read, check locally, write on condition that what was checked is unchanged."""
        core = self.core
        keep = None if pre is None else compile_local(pre)
        # the stored values of every attribute of a moving set: its old tuple was read
        watch = (attrs_of(pre) if pre is not None else set()) | {
            n for a in moving for n in core.unique_names[a]}
        owner = core.key_str(key)
        for _ in range(RETRIES):
            raw = await self._get_raw(key)
            if raw is None:
                return None
            item = core.build(raw)
            if keep is not None and not keep(item):
                return None
            ex = Expr()
            upd: dict[str, Any] = {
                "TableName": core.table, "Key": core.key_av(key),
                "UpdateExpression": core.update_expr(values, ex),
                "ConditionExpression": core.same_values_cond(raw, watch, ex), **ex.params()}
            changes = []
            for a in moving:
                old = core.unique_of(a, item.__dict__)
                new = core.unique_of(a, {**item.__dict__, **values})
                same = (old is None and new is None) or (
                    old is not None and new is not None
                    and core.unique_key(a, old) == core.unique_key(a, new))
                if not same:
                    changes.append((a, old, new))
            if not changes:
                upd["ReturnValues"] = "ALL_NEW"
                try:
                    r = await self._call("update_item", upd, expect=(CCF,))
                except Expected:
                    continue  # changed since read: check again
                return core.build(r["Attributes"])
            tx: list[dict[str, Any]] = [{"Update": upd}]
            puts: dict[int, str] = {}
            for a, old, new in changes:
                if old is not None:
                    tx.append({"Delete": self._uniq_delete(a, old, owner)})
                if new is not None:
                    puts[len(tx)] = a
                    tx.append({"Put": self._uniq_put(a, new, owner)})
            codes = await self._transact(tx, "update of a unique attribute")
            if codes is None:
                new_values = {n: getattr(item, n) for n in core.codecs}
                new_values.update(values)
                return core.meta.build(new_values)
            for i, a in puts.items():
                if i < len(codes) and codes[i] == "ConditionalCheckFailed":
                    raise Conflict(self._conflict_text(values, a))
            await self.conn.sleep(0.01)
        raise BackendError(f"update on {core.table}: the item kept changing under the check")

    async def delete(self, key: tuple[Any, ...], pre: Node | None) -> bool:
        """Delete; False when missing or the precondition fails."""
        await self._ensure()
        core = self.core
        if not core.unique and (pre is None or core.split(pre).all_native):
            ex = Expr()
            cond = core.write_cond(pre, ex)
            if cond is None:
                return False
            try:
                await self._call("delete_item", {"TableName": core.table,
                                                 "Key": core.key_av(key),
                                                 "ConditionExpression": cond, **ex.params()},
                                 expect=(CCF,))
            except Expected:
                return False
            return True
        keep = None if pre is None else compile_local(pre)
        watch = (attrs_of(pre) if pre is not None else set()) | set(core.unique_attrs)
        owner = core.key_str(key)
        for _ in range(RETRIES):
            raw = await self._get_raw(key)
            if raw is None:
                return False
            item = core.build(raw)
            if keep is not None and not keep(item):
                return False
            ex = Expr()
            dele = {"TableName": core.table, "Key": core.key_av(key),
                    "ConditionExpression": core.same_values_cond(raw, watch, ex),
                    **ex.params()}
            uniq = [(a, v) for a in core.unique
                    if (v := core.unique_of(a, item.__dict__)) is not None]
            if not uniq:
                try:
                    await self._call("delete_item", dele, expect=(CCF,))
                except Expected:
                    continue
                return True
            tx = [{"Delete": dele}] + [{"Delete": self._uniq_delete(a, v, owner)}
                                       for a, v in uniq]
            if await self._transact(tx, "delete of an item with unique attributes") is None:
                return True
            await self.conn.sleep(0.01)
        raise BackendError(f"delete on {core.table}: the item kept changing under the check")

    # many items -----------------------------------------------------------------------
    async def _page(self, plan: Plan, params: dict[str, Any]) -> dict[str, Any]:
        return await self._call(plan.op, params)

    async def _collect(self, plan: Plan) -> list[Any]:
        """Every item of a plan (local part applied)."""
        build = self.core.build
        keep = None if plan.local == EVERYTHING else compile_local(plan.local)
        params = dict(plan.params)
        out: list[Any] = []
        while True:
            r = await self._page(plan, params)
            for raw in r.get("Items", ()):
                item = build(raw)
                if keep is None or keep(item):
                    out.append(item)
            lek = r.get("LastEvaluatedKey")
            if not lek:
                return out
            params["ExclusiveStartKey"] = lek

    async def find(self, query: Query) -> list[Any]:
        """Matching items in order after the cursor position, at most limit (Query in
        sort-key order when possible, else all matches sorted locally, at most
        ``max_local_sort``). On the table's own order the position is the Query's
        ``ExclusiveStartKey``; otherwise its keyset condition joins the filter."""
        await self._ensure()
        core = self.core
        order, limit = query.order, query.limit
        plan = core.plan(query.node, order)
        if plan.op == "none":
            return []
        if query.after is not None:
            start = core.start_key(plan, order, query.after) if order else None
            if start is not None:
                plan.params["ExclusiveStartKey"] = start
            else:
                # the general path: the keyset condition is part of the filter, what of
                # it the server cannot evaluate is checked here
                split = core.split(query.where())
                plan = core.plan(split.native, order)
                if plan.op == "none":
                    return []
                if not split.all_native:
                    plan.local = simplify(And((plan.local, split.local)))
        if order and plan.ordered:
            return await self._find_ordered(plan, order, limit)
        items = await self._collect(plan)
        if order:
            self._check_local_sort(len(items))
            items = sort_items(items, order)
        return items if limit is None else items[:limit]

    async def _find_ordered(self, plan: Plan, order: Order, limit: int | None) -> list[Any]:
        build = self.core.build
        keep = None if plan.local == EVERYTHING else compile_local(plan.local)
        params = dict(plan.params)
        tie = plan.tie
        lim = None if limit is None else min(limit + (tie is not None), 1000)
        out: list[Any] = []
        while True:
            if lim is not None:
                params["Limit"] = lim
            r = await self._page(plan, params)
            for raw in r.get("Items", ()):
                item = build(raw)
                if keep is None or keep(item):
                    out.append(item)
            lek = r.get("LastEvaluatedKey")
            if not lek or (limit is not None and _enough(out, limit, tie)):
                break
            params["ExclusiveStartKey"] = lek
            if lim is not None:
                lim = min(lim * 2, 1000)
        if tie is not None:
            out = sort_items(out, order)
        return out if limit is None else out[:limit]

    def _check_local_sort(self, n: int) -> None:
        bound = self.max_local_sort
        if bound is not None and n > bound:
            raise UnsupportedOperation(
                f"dynamodb would have to sort {n} items of {self.core.table} locally "
                f"(bound max_local_sort={bound}); order by an index's sort key with its "
                "partition key pinned by eq, or narrow the filter")

    async def iterate(self, node: Node) -> AsyncIterator[Any]:
        """Matching items in no particular order."""
        await self._ensure()
        plan = self.core.plan(node, None)
        if plan.op == "none":
            return
        build = self.core.build
        keep = None if plan.local == EVERYTHING else compile_local(plan.local)
        params = dict(plan.params)
        while True:
            r = await self._page(plan, params)
            for raw in r.get("Items", ()):
                item = build(raw)
                if keep is None or keep(item):
                    yield item
            lek = r.get("LastEvaluatedKey")
            if not lek:
                return
            params["ExclusiveStartKey"] = lek

    async def aggregate(self, node: Node, specs: tuple[AggSpec, ...]) -> dict[str, Any]:
        """Evaluated here over the matching items (no native aggregates)."""
        acc = Accumulator(specs)
        async for item in self.iterate(node):
            acc.add(item)
        return acc.result()

    async def count(self, node: Node) -> int:
        """How many match (Select=COUNT when nothing is left to check locally)."""
        await self._ensure()
        plan = self.core.plan(node, None)
        if plan.op == "none":
            return 0
        if plan.local != EVERYTHING:
            return len(await self._collect(plan))
        params = {**plan.params, "Select": "COUNT"}
        n = 0
        while True:
            r = await self._page(plan, params)
            n += int(r.get("Count", 0))
            lek = r.get("LastEvaluatedKey")
            if not lek:
                return n
            params["ExclusiveStartKey"] = lek

    async def _keys(self, node: Node) -> list[tuple[Any, ...]]:
        """Keys of the items matching the whole filter (its local part checked here)."""
        names = self.core.key_names
        split = self.core.split(node)
        keep = compile_local(split.local)
        return [tuple(getattr(i, n) for n in names)
                async for i in self.iterate(split.native) if keep(i)]

    async def update_where(self, node: Node, values: dict[str, Any]) -> int:
        """Per matching item, an update conditioned on the filter (``F`` expressions:
        every match's result checked first, ``ValidationError`` and nothing written
        when one is out of its bounds; each write checks them again)."""
        if has_expr(values):
            names = self.core.key_names
            split = self.core.split(node)
            keep = compile_local(split.local)
            keys = []
            async for i in self.iterate(split.native):
                if keep(i):
                    resolve(self.core.meta, values, i)  # raises when a result is out
                    keys.append(tuple(getattr(i, n) for n in names))
        else:
            keys = await self._keys(node)
        if len(keys) > 1 and sets_unique(self.core.meta, {
                n: v for n, v in values.items() if not isinstance(v, F)}):
            # the first update would take the value, the second fail: refused up front
            raise unique_for_many(self.core.meta, values)
        if keys and touches_unique(self.core.meta, values):
            if len(keys) > 1:
                await self._unique_precheck(keys, values)
            return await self._update_where_tx(keys, values, node)
        n = 0
        for key in keys:
            if await self.update(key, values, node) is not None:
                n += 1
        return n

    def tx_chunk(self, values: dict[str, Any]) -> int:
        """How many matches of an ``update_where`` of ``values`` one TransactWriteItems
        holds (100 actions: per match, its item and, per unique set the changes touch,
        the old uniqueness record deleted and the new one put): 33 for one set."""
        core = self.core
        sets = sum(1 for a in core.unique if any(n in values for n in core.unique_names[a]))
        return max(1, 100 // (1 + 2 * sets))

    async def _update_where_tx(self, keys: list[tuple[Any, ...]], values: dict[str, Any],
                               node: Node) -> int:
        """``update_where`` moving unique values: the item updates and the uniqueness
        records' puts and deletes in one TransactWriteItems per ``tx_chunk`` matches,
        each item written on condition it is as read (and still matches ``node``).

        A chunk is all or nothing: a ``Conflict`` (a tuple another item holds, also one
        taken by a writer since the pre-check) writes none of it. Across chunks (more
        than ``tx_chunk`` matches) the pre-check covers every match before the first
        write, but a writer taking a tuple between two chunks' transactions makes the
        later one fail with the earlier ones written. A match that stops matching (or
        is deleted) before its chunk is written is left out, as elsewhere."""
        meta = self.core.meta
        size = self.tx_chunk(values)
        n = 0
        for start in range(0, len(keys), size):
            chunk = keys[start:start + size]
            for _ in range(RETRIES):
                if not chunk:
                    break
                edits = [PreparedEdit("update", k, values, node, i)
                         for i, k in enumerate(chunk)]
                outcomes = await self._apply_atomic(edits)
                bad = next(((i, o) for i, o in enumerate(outcomes)
                            if not o[0] and o[2] is not None), None)
                if bad is None:
                    n += len(chunk)
                    break
                i, (_, _, code, detail) = bad
                if code == DUPLICATE_KEY:
                    raise Conflict(detail or f"{meta.name}: a unique value exists already")
                if code == INVALID:  # an F result out of its bounds: the read says which
                    raw = await self._get_raw(chunk[i])
                    if raw is not None:
                        resolve(meta, values, self.core.build(raw))  # raises when out
                    continue
                # missing, or no longer matching: not one of the matches any more
                chunk = chunk[:i] + chunk[i + 1:]
            else:
                raise BackendError(f"update_where on {self.core.table}: the items kept "
                                   "changing")
        return n

    async def _unique_precheck(self, keys: list[tuple[Any, ...]],
                               values: dict[str, Any]) -> None:
        """``Conflict`` before ``update_where`` writes anything when changes to part of a
        unique set would give two matches one tuple, or one a tuple another item holds
        (the per-item transactions stay the guard against a writer coming between)."""
        core = self.core
        items = [i for i in await self.get_many(keys) if i is not None]
        owners = {core.key_str(tuple(getattr(i, n) for n in core.key_names)) for i in items}
        for sid in core.unique:
            if not any(n in values for n in core.unique_names[sid]):
                continue
            seen: set[str] = set()
            for i in items:
                new = core.unique_of(sid, {**i.__dict__, **resolve(core.meta, values, i)})
                if new is None:
                    continue
                k = core.unique_key(sid, new)
                text = k[AUX_KEY]["S"]
                if text in seen:
                    raise Conflict(f"{core.meta.name}: update_where would give several items "
                                   f"{core.unique_shown(sid, new)}")
                seen.add(text)
                r = await self._call("get_item", {"TableName": core.aux_table, "Key": k,
                                                  "ConsistentRead": True})
                owner = r.get("Item", {}).get("owner", {}).get("S")
                if owner is not None and owner not in owners:
                    raise Conflict(self._conflict_text(
                        dict(zip(core.unique_names[sid], new, strict=True)), sid))

    async def delete_where(self, node: Node) -> int:
        """Per matching item, a delete conditioned on the filter (everything: BatchWriteItem)."""
        core = self.core
        if node == EVERYTHING and not core.unique:
            keys = [core.key_av(k) for k in await self._keys(node)]
            await self._batch_write(core.table, [{"DeleteRequest": {"Key": k}} for k in keys])
            return len(keys)
        n = 0
        for key in await self._keys(node):
            if await self.delete(key, node):
                n += 1
        return n

    # batches --------------------------------------------------------------------------
    async def apply(self, edits: list[PreparedEdit], atomic: bool) -> list[Outcome]:
        """Apply edits in order; atomic: one TransactWriteItems (at most 100 writes)."""
        await self._ensure()
        if atomic:
            return await self._apply_atomic(edits)
        out: list[Outcome] = []
        meta = self.core.meta
        for e in edits:
            try:
                if e.kind == "create":
                    out.append(ok(await self.insert(e.values)))
                elif e.kind == "upsert":
                    out.append(ok(await self.upsert(e.values)))
                elif e.kind == "update":
                    out.append(await self._update_edit(e))
                elif await self.delete(e.key, None):
                    out.append(ok(None))
                else:
                    out.append(missing(key_dict(meta, e.key)))
            except Conflict as exc:
                out.append(duplicate(exc))
            except ValidationError as exc:  # an F result outside its bounds
                out.append(invalid(exc))
        return out

    async def _update_edit(self, e: PreparedEdit) -> Outcome:
        """An update edit: ok, or why not (a refused write reads the item to tell)."""
        for _ in range(RETRIES):
            item = await self.update(e.key, e.values, e.precondition)
            if item is not None:
                return ok(item)
            raw = await self._get_raw(e.key)
            why = refusal(self.core.meta, e.key, None if raw is None else self.core.build(raw),
                          e.precondition)
            if why is not None:
                return why
        raise BackendError(f"update on {self.core.table}: the item kept changing under the check")

    async def _apply_atomic(self, edits: list[PreparedEdit]) -> list[Outcome]:
        core = self.core
        if self._tx is False:
            raise UnsupportedOperation(NO_TX.format(what="atomic edit_batch"))
        edits = [PreparedEdit(e.kind, e.key, dict(e.values), e.precondition, e.index)
                 for e in edits]
        for e in edits:
            if e.kind == "create":
                if core.seq is not None and e.values.get(core.seq) is None:
                    e.values[core.seq] = await self._next_seq()
                e.key = tuple(e.values.get(n) for n in core.key_names)
        keys = list(dict.fromkeys(e.key for e in edits))
        for _ in range(RETRIES):
            raws: dict[tuple[Any, ...], dict[str, Any]] = {}
            for start in range(0, len(keys), 100):
                for raw in await self._batch_get([core.key_av(k) for k in keys[start:start + 100]]):
                    raws[core.key_of_raw(raw)] = raw
            sim = simulate(core.meta, edits, _reader(core, raws), _same_key, core.key_str,
                           names=list(core.codecs))
            if sim.failed is not None:
                return sim.outcomes  # an edit failed: nothing is written
            state: dict[tuple[Any, ...], dict[str, Any] | None] = sim.final  # type: ignore[assignment]
            last: dict[tuple[Any, ...], int] = sim.last  # type: ignore[assignment]
            try:
                tx, uniq_puts = self._atomic_items(state, raws, last)
            except _SameValue as dup:
                return failed_at(len(edits), dup.index, duplicate(
                    f"{core.meta.name}: two items of the batch have "
                    f"{core.unique_shown(dup.attr, dup.value)}"))
            if len(tx) > 100:
                raise UnsupportedOperation(
                    f"atomic edit_batch needs {len(tx)} writes; DynamoDB transactions hold "
                    "at most 100")
            codes = await self._transact(tx, "atomic edit_batch")
            if codes is None:
                return sim.outcomes
            for i, (a, value, key) in uniq_puts.items():
                if i < len(codes) and codes[i] == "ConditionalCheckFailed":
                    idx = last[key]
                    return failed_at(len(edits), idx, duplicate(
                        f"{core.meta.name}: an item with {core.unique_shown(a, value)} "
                        "exists already"))
            await self.conn.sleep(0.01)  # changed since read: plan again
        raise BackendError(f"atomic edit_batch on {core.table}: items kept changing")

    def _atomic_items(self, state: dict[tuple[Any, ...], dict[str, Any] | None],
                      raws: dict[tuple[Any, ...], dict[str, Any]],
                      last: dict[tuple[Any, ...], int]
                      ) -> tuple[list[dict[str, Any]], dict[int, Any]]:
        core = self.core
        names = list(core.codecs)
        tx: list[dict[str, Any]] = []
        for key, fin in state.items():
            orig = raws.get(key)
            ex = Expr()
            cond = core.same_values_cond(orig, names, ex)
            if fin is None and orig is None:
                tx.append({"ConditionCheck": {"TableName": core.table, "Key": core.key_av(key),
                                              "ConditionExpression": cond, **ex.params()}})
            elif fin is None:
                tx.append({"Delete": {"TableName": core.table, "Key": core.key_av(key),
                                      "ConditionExpression": cond, **ex.params()}})
            else:
                tx.append({"Put": {"TableName": core.table, "Item": core.encode_item(fin),
                                   "ConditionExpression": cond, **ex.params()}})
        # unique records: net moves of (attr, value) between owners
        uniq_puts: dict[int, Any] = {}
        for a in core.unique:
            moves: dict[Any, list[Any]] = {}  # canonical -> [value, old owner, new owner]
            for key, fin in state.items():
                old = core.unique_of_raw(a, raws.get(key))
                new = None if fin is None else core.unique_of(a, fin)
                oc = None if old is None else core.unique_key(a, old)[AUX_KEY]["S"]
                nc = None if new is None else core.unique_key(a, new)[AUX_KEY]["S"]
                if oc == nc:
                    continue
                if oc is not None:
                    moves.setdefault(oc, [old, None, None])[1] = key
                if nc is not None:
                    slot = moves.setdefault(nc, [new, None, None])
                    if slot[2] is not None:
                        raise _SameValue(max(last[slot[2]], last[key]), a, new)
                    slot[2] = key
            for _c, (value, old_owner, new_owner) in moves.items():
                if new_owner is None:
                    tx.append({"Delete": self._uniq_delete(a, value, core.key_str(old_owner))})
                    continue
                prev = None if old_owner is None else core.key_str(old_owner)
                uniq_puts[len(tx)] = (a, value, new_owner)
                tx.append({"Put": self._uniq_put(a, value, core.key_str(new_owner), prev)})
        return tx, uniq_puts


class _SameValue(Exception):
    """Two items of an atomic batch would end with the same unique value."""

    def __init__(self, index: int, attr: str, value: Any) -> None:
        super().__init__(attr)
        self.index, self.attr, self.value = index, attr, value


def _probe_value(key_type: str) -> dict[str, Any]:
    return {"N": "0"} if key_type == "N" else (
        {"B": b"\x00probe"} if key_type == "B" else {"S": "\x00probe"})


def _enough(out: list[Any], limit: int, tie: str | None) -> bool:
    if tie is None:
        return len(out) >= limit
    return len(out) > limit and getattr(out[-1], tie) != getattr(out[limit - 1], tie)


def _same_key(parts: tuple[Any, ...]) -> Any:
    return parts


def _reader(core: DynamoCore, raws: dict[tuple[Any, ...], dict[str, Any]]) -> Any:
    """The stored values of each key read before a batch (None: no item)."""
    names = set(core.codecs)

    def read(key: Any) -> dict[str, Any] | None:
        raw = raws.get(key)
        return None if raw is None else {
            n: v for n, v in core.build(raw).__dict__.items() if n in names}
    return read

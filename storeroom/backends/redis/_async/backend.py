"""``AsyncRedisBackend``: items as JSON strings, indexes as score-0 sorted sets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as redis_client
from redis.exceptions import NoScriptError, RedisError

from ....errors import BackendError, Conflict, ValidationError
from ....observe import OBSERVERS, Site, async_observed
from ....query.ast import EVERYTHING, NOTHING, And, Cond, Node, Not, Or, conds, fold
from ....query.evaluate import compile_local, sort_items
from ....query.order import Order
from ....query.plan import Query
from ....store.aggregate import Accumulator, AggSpec
from ....store.fexpr import has_expr, resolve
from ....store.plan import Split
from ....store.protocol import FexprUse
from ....store.types import PreparedEdit
from ...batch import NOT_APPLIED, failed_at
from ...bookkeeping import new_secret, secret_bytes
from ...common import Outcome, duplicate, invalid, key_dict, missing, ok, precondition_failed
from ...evolution import UniqueScan
from ..core import (
    CREATE_LUA,
    CREATE_SHA,
    FEXPR_LUA,
    FEXPR_RETRIES,
    FEXPR_SHA,
    LUA,
    LUA_SHA,
    MAX_RETRIES,
    SMALL_SET,
    Program,
    RedisCore,
    Segment,
    lex_hi,
    lex_lo,
    too_busy,
)

CHUNK = 500
#: the MGETs of chunks sent in one pipeline by ``iterate`` (at most CHUNK x PIPELINED
#: items held at once)
PIPELINED = 8


def _wrap(exc: Exception, what: str) -> BackendError:
    return BackendError(f"{what}: {type(exc).__name__}: {exc}")


class AsyncRedisBackend:
    """Store operations of one model on Redis (``redis.asyncio``)."""

    max_local_sort = 100_000

    def __init__(self, core: RedisCore, client: Any) -> None:
        self.core = core
        self.r = client
        _instrument(client, Site("redis", collection=core.base))
        self.store_meta = core.store_meta
        self._name = core.meta.name
        self._secret: bytes | None = None

    def split(self, node: Node) -> Split:
        """Conditions on indexed attributes and the key run on the sorted sets."""
        return self.core.split(node)

    def can_order(self, order: Order) -> bool:
        """One indexed attribute then the key, or the key alone (None last)."""
        return self.core.can_order(order)

    async def create_tables(self) -> None:
        """Load the write script, and build the index structures the model declares that
        are not built over the stored items yet (an index or a unique set added since
        they were written): the items are re-indexed in batches of ``CHUNK``; a unique
        set they already break is a ``Conflict`` naming the shared values, with nothing
        of it written. Structures of indexes the model no longer declares are deleted
        (writers no longer maintain them); items are never touched. Idempotent."""
        core = self.core
        try:
            await self.r.script_load(LUA)
            built = {m.decode() for m in await self.r.hkeys(core.schema_key)}
            declared = core.structures()
            todo = {m for m in declared if m not in built}
            gone = sorted(built - set(declared))
            if todo and await self.r.zcard(core.keys_zset):
                await self._reindex(todo)
            if todo:
                await self.r.hset(core.schema_key, mapping=dict.fromkeys(sorted(todo), "1"))
            if gone:
                await self.r.delete(*[k for m in gone for k in core.dropped_keys(m)])
                await self.r.hdel(core.schema_key, *gone)
        except RedisError as exc:
            raise _wrap(exc, f"prepare {self._name}") from exc

    async def _batches(self) -> AsyncIterator[list[tuple[bytes, bytes, dict[str, Any]]]]:
        """The stored items as ``(enc(key), JSON, values)``, ``CHUNK`` at a time (key
        order; each batch after the last key of the one before, so writes meanwhile
        shift none)."""
        core = self.core
        lo = b"-"
        while True:
            kbs: list[bytes] = await self.r.zrangebylex(core.keys_zset, lo, b"+", 0, CHUNK)
            if not kbs:
                return
            lo = b"(" + kbs[-1]
            raws = await self._mget([core.item_key_of_kenc(kb) for kb in kbs])
            # an item deleted meanwhile has no entry to build
            yield [(kb, raw, core.values(raw)) for kb, raw in zip(kbs, raws, strict=True)
                   if raw is not None]

    async def _reindex(self, todo: set[str]) -> None:
        """Build the structures ``todo`` over the stored items. Each item's entries are
        written by one run of the write script guarded by the item's JSON as read (a
        pipeline of them per batch): an item that a writer changed meanwhile (the
        writer maintained the entries of its new values) is read again and indexed
        from what it holds now, and a deleted one is left out, so that no entry of a
        value the item no longer holds is ever written. A unique value taken meanwhile
        by another item is a ``Conflict``."""
        core = self.core
        uq = [sid for sid in core.uq if f"uq:{sid}" in todo]
        if uq:  # a first pass: stored items breaking an added unique set write nothing
            scans = [UniqueScan(core.meta, core.uq_names[sid]) for sid in uq]
            async for batch in self._batches():
                for _kb, _raw, values in batch:
                    for scan in scans:
                        scan.add(core.keystr(core.key_of(values)), values)
            for scan in scans:
                if (err := scan.error()) is not None:
                    raise err
        async for batch in self._batches():
            for _ in range(MAX_RETRIES):
                if not batch:
                    break
                programs = [self._index_program(todo, kb, raw, values)
                            for kb, raw, values in batch]
                pipe = self.r.pipeline(transaction=False)
                for p in programs:
                    pipe.evalsha(LUA_SHA, *p.args())
                codes = await pipe.execute()
                again: list[bytes] = []
                for (kb, _raw, _values), p, code in zip(batch, programs, codes, strict=True):
                    if code == 1:  # the item changed (or was deleted) since it was read
                        again.append(kb)
                    elif code:
                        sid, shown = p.info[int(code) - 1]
                        raise Conflict(f"{self._name}: cannot make "
                                       f"{', '.join(core.uq_names[sid])} unique: {shown} "
                                       "is taken by another item (written meanwhile)")
                raws = await self._mget([core.item_key_of_kenc(kb) for kb in again])
                batch = [(kb, raw, core.values(raw)) for kb, raw in zip(again, raws,
                                                                         strict=True)
                         if raw is not None]
            if batch:
                raise BackendError(f"{self._name}: items kept changing while their index "
                                   f"entries were built ({len(batch)} left); run "
                                   "create_tables() again")

    def _index_program(self, todo: set[str], kb: bytes, raw: bytes,
                       values: dict[str, Any]) -> Program:
        """The write-script run that writes one item's entries of the structures
        ``todo`` while the item still holds ``raw``."""
        core = self.core
        p = Program()
        p.holds(core.item_key_of_kenc(kb), raw, ("item", ""))
        for key, member, owner in core.index_entries(todo, values, kb):
            if owner is None:
                p.write("zadd", key, member)
            else:
                sid = next(i for i, hk in core.uq.items() if hk == key)
                p.free(key, member, [owner], (sid, core.uq_shown(sid, values)))
                p.write("hset", key, member, owner)
        return p

    async def close(self) -> None:
        """Close the client and its connection pool."""
        await self.r.aclose()

    async def cursor_secret(self) -> bytes:
        """The cursor secret of the store's key prefix (``{prefix}:#secret``): created
        once, race-free, with ``SET NX``; cached by this backend."""
        if self._secret is None:
            key = self.core.secret_key
            try:
                raw = await self.r.get(key)
                if raw is None:
                    await self.r.set(key, new_secret(), nx=True)
                    raw = await self.r.get(key)
            except RedisError as exc:
                raise _wrap(exc, f"cursor secret of {self._name}") from exc
            if raw is None:
                raise BackendError(f"{key}: no cursor secret (was it deleted meanwhile?)")
            self._secret = secret_bytes(raw)
        return self._secret

    # plumbing ----------------------------------------------------------------------------
    async def _run(self, p: Program) -> int:
        return int(await self._script(LUA_SHA, LUA, p.args()))

    async def _script(self, sha: str, lua: str, args: list[Any]) -> Any:
        """Run a Lua script by its digest, sending its text when the server lacks it."""
        try:
            return await self.r.evalsha(sha, *args)
        except NoScriptError:
            return await self.r.eval(lua, *args)

    async def _mget(self, keys: list[str]) -> list[Any]:
        if not keys:
            return []
        values: list[Any] = await self.r.mget(keys)
        return values

    # single items --------------------------------------------------------------------------
    async def get(self, key: tuple[Any, ...]) -> Any:
        """The item at key, or None (one GET)."""
        try:
            raw = await self.r.get(self.core.item_key(key))
        except RedisError as exc:
            raise _wrap(exc, f"read {self._name}") from exc
        return None if raw is None else self.core.build(raw)

    async def get_many(self, keys: list[tuple[Any, ...]]) -> list[Any]:
        """Items aligned with keys (one MGET)."""
        core = self.core
        try:
            raws = await self._mget([core.item_key(k) for k in keys])
        except RedisError as exc:
            raise _wrap(exc, f"read {self._name}") from exc
        build = core.build
        return [None if r is None else build(r) for r in raws]

    async def _next_seq(self, n: int) -> int:
        try:
            return int(await self.r.incrby(self.core.seq_key, n)) - n + 1
        except RedisError as exc:
            raise _wrap(exc, f"create {self._name}") from exc

    async def insert(self, values: dict[str, Any]) -> Any:
        """Create; Conflict on a duplicate key or unique value (one script run)."""
        core = self.core
        seq = core.seq
        if seq is not None:
            if seq.name not in values:
                values[seq.name] = await self._next_seq(1)
            else:  # an explicit value also moves the counter: the general program
                p, ks = core.create_program(values)
                try:
                    g = await self._run(p)
                except RedisError as exc:
                    raise _wrap(exc, f"create {self._name}") from exc
                if g:
                    _, err = core.guard_failure(p, g)
                    raise err if err is not None else core.key_conflict(ks)
                return core.meta.build(values)
        args, ks, taken = core.create_args(values)
        try:
            code = await self._script(CREATE_SHA, CREATE_LUA, args)
        except RedisError as exc:
            raise _wrap(exc, f"create {self._name}") from exc
        if code:
            raise core.create_failure(int(code), ks, taken)
        return core.meta.build(values)

    async def _write(self, edits: list[PreparedEdit], keys: list[str], what: str
                     ) -> list[Outcome]:
        """Read the items, simulate the edits, write their net effect guarded by what was
        read; on a concurrent change, again (``F`` expressions: as often as the store
        retries a guarded write, since every concurrent increment changes the item)."""
        core = self.core
        tries = FEXPR_RETRIES if any(has_expr(e.values) for e in edits) else MAX_RETRIES
        for _ in range(tries):
            try:
                raws = await self._mget([f"{core.base}:{k}" for k in keys])
            except RedisError as exc:
                raise _wrap(exc, f"{what} {self._name}") from exc
            plan = core.plan(edits, dict(zip(keys, raws, strict=True)))
            if plan.failed or plan.program is None:
                return plan.outcomes
            try:
                g = await self._run(plan.program)
            except RedisError as exc:
                raise _wrap(exc, f"{what} {self._name}") from exc
            if not g:
                return plan.outcomes
            kind, err = core.guard_failure(plan.program, g)
            if kind == "conflict":
                assert err is not None
                info = plan.program.info[g - 1]
                pos = plan.setters.get((info[1], info[3]), 0)
                return failed_at(len(edits), pos, duplicate(err))
        raise too_busy(f"{what} {self._name}")

    def _keystrs(self, edits: list[PreparedEdit]) -> list[str]:
        core = self.core
        out: dict[str, None] = {}
        for e in edits:
            key = core.key_of(e.values) if e.kind == "create" else e.key
            out[core.keystr(tuple(key))] = None
        return list(out)

    def native_fexpr(self, values: dict[str, Any], pre: Node | None, use: FexprUse) -> bool:
        """``update``: True when one script run evaluates these ``F`` expressions
        (``RedisCore.native_fexpr``); others the store writes guarded by the values
        read. Batches and ``update_where``: always True. A non-atomic batch writes each
        such update as ``update`` does. An atomic batch of updates only and
        ``update_where`` are one ``FEXPR_LUA`` run (no read before it) when every
        update is ``RedisCore.native_fexpr`` (int targets, no indexed or unique
        attribute changed) and its precondition or filter is one ``lua_pred`` compiles;
        the rest computes the results from the items read (the batch simulation,
        ``RedisCore.plan``, keeps the indexes and unique records) and writes everything
        in one script guarded by the JSON read, again on a concurrent change."""
        return use != "update" or self.core.native_fexpr(values, pre)

    async def update(self, key: tuple[Any, ...], values: dict[str, Any], pre: Node | None) -> Any:
        """Apply changes (read, check precondition, guarded write); None if missing.
        ``F`` expressions (``native_fexpr``): one script run evaluates and writes them."""
        if has_expr(values):
            return await self._update_fexpr(key, values, pre)
        e = PreparedEdit("update", key, values, pre, 0)
        (o,) = await self._write([e], self._keystrs([e]), "update")
        if not o[0] and o[2] == "duplicate_key":
            raise Conflict(o[3])
        return o[1]

    async def _update_fexpr(self, key: tuple[Any, ...], values: dict[str, Any],
                            pre: Node | None) -> Any:
        """An update with ``F`` expressions (``native_fexpr``): one ``FEXPR_LUA`` run
        (the precondition checked in it when ``lua_pred`` compiles it); otherwise (or
        with a value beyond 2^53), read, checked, resolved here and written guarded by
        the JSON read."""
        core = self.core
        pred = core.lua_pred(pre)
        if pred is not None:
            args = core.fexpr_args("a", [(key, values, pred)])
            try:
                r = await self._script(FEXPR_SHA, FEXPR_LUA, args)
            except RedisError as exc:
                raise _wrap(exc, f"update {self._name}") from exc
            code = int(r[0])
            if code == 0:
                return core.build(r[2])
            if code in (1, 4):  # missing, or the precondition does not hold
                return None
            if code == 2:  # a result out of bounds: the error names it (nothing written)
                resolve(core.meta, values, core.values(r[2]))
        keep = None if pre is None else compile_local(pre)
        for _ in range(MAX_RETRIES):
            try:
                (raw,) = await self._mget([core.item_key(key)])
            except RedisError as exc:
                raise _wrap(exc, f"update {self._name}") from exc
            if raw is None or (keep is not None and not keep(core.build(raw))):
                return None
            e = PreparedEdit("update", key, resolve(core.meta, values, core.values(raw)),
                             None, 0)
            plan = core.plan([e], {core.keystr(key): raw})
            if plan.failed or plan.program is None:
                return plan.outcomes[0][1]
            try:
                g = await self._run(plan.program)
            except RedisError as exc:
                raise _wrap(exc, f"update {self._name}") from exc
            if not g:
                return plan.outcomes[0][1]
        raise too_busy(f"update {self._name}")

    async def upsert(self, values: dict[str, Any]) -> Any:
        """Create or fully update the item at the key: read, then one guarded script
        writes it (again when the item changed in between); Conflict on a unique value."""
        e = PreparedEdit("upsert", self.core.key_of(values), values, None, 0)
        (o,) = await self._write([e], self._keystrs([e]), "upsert")
        if not o[0]:
            raise Conflict(o[3] or "upsert refused")
        return o[1]

    async def delete(self, key: tuple[Any, ...], pre: Node | None) -> bool:
        """Delete; False when missing or the precondition fails."""
        e = PreparedEdit("delete", key, {}, pre, 0)
        (o,) = await self._write([e], self._keystrs([e]), "delete")
        return bool(o[0])

    # scans ----------------------------------------------------------------------------------
    async def _range(self, zkey: str, lo: bytes | None, hi: bytes | None, desc: bool,
                     num: int | None = None) -> list[bytes]:
        found: list[bytes]
        if desc:
            if num is None:
                found = await self.r.zrevrangebylex(zkey, lex_hi(hi), lex_lo(lo))
            else:
                found = await self.r.zrevrangebylex(zkey, lex_hi(hi), lex_lo(lo), 0, num)
        elif num is None:
            found = await self.r.zrangebylex(zkey, lex_lo(lo), lex_hi(hi))
        else:
            found = await self.r.zrangebylex(zkey, lex_lo(lo), lex_hi(hi), 0, num)
        return found

    async def _scan(self, segs: list[Segment], need: int | None, keep: Any) -> list[bytes]:
        """Encoded keys from the segments in order, at most ``need``, kept by ``keep``."""
        core = self.core
        out: list[bytes] = []
        chunk = CHUNK if need is None else max(min(need + 1, CHUNK), 16)
        for seg in segs:
            lo, hi = seg.lo, seg.hi
            group: list[bytes] = []
            gval = b""
            while True:
                ms = await self._range(seg.zkey, lo, hi, seg.desc, chunk)
                for m in ms:
                    kb = core.member_kenc(seg, m)
                    if seg.grouped:
                        assert seg.skip is not None
                        v = m[:seg.skip(m, 0)]
                        if v != gval:
                            out.extend(k for k in reversed(group) if keep is None or keep(k))
                            group = []
                            gval = v
                            if need is not None and len(out) >= need:
                                return out[:need]
                        group.append(kb)
                    elif keep is None or keep(kb):
                        out.append(kb)
                        if need is not None and len(out) >= need:
                            return out
                if len(ms) < chunk:
                    break
                if seg.desc:
                    hi = ms[-1]
                else:
                    lo = ms[-1] + b"\x00"
                chunk = min(chunk * 2, 5000)
            if group:
                out.extend(k for k in reversed(group) if keep is None or keep(k))
                if need is not None and len(out) >= need:
                    return out[:need]
        return out

    async def _keyset(self, node: Node) -> set[bytes]:
        """The encoded keys matching an all-native filter, from the sorted sets alone."""
        core = self.core
        if node == EVERYTHING:
            return set(await self._range(core.keys_zset, None, None, False))
        if node == NOTHING:
            return set()
        leaves = list(dict.fromkeys(conds(node)))
        need_all = _has_not(node) or any(not core.is_range_leaf(c) for c in leaves)
        pipe = self.r.pipeline(transaction=False)
        plan: list[tuple[Cond, str | None, Any, int, bool]] = []
        zkey: str
        for c in leaves:
            if not core.is_range_leaf(c):
                plan.append((c, None, None, 0, False))
                continue
            if core.is_big_in(c):  # the whole sorted set, members picked here
                zkey, pick = core.big_in_members(c)
                pipe.zrange(zkey, 0, -1)
                plan.append((c, zkey, pick, -1, False))
                continue
            zkey, ivs, nullkey, skip = core.leaf_intervals(c)
            for lo, hi in ivs:
                pipe.zrangebylex(zkey, lex_lo(lo), lex_hi(hi))
            if nullkey is not None:
                pipe.zrange(nullkey, 0, -1)
            plan.append((c, zkey, skip, len(ivs), nullkey is not None))
        if need_all:
            pipe.zrange(core.keys_zset, 0, -1)
        res = await pipe.execute()
        every: set[bytes] = set(res[-1]) if need_all else set()
        sets: dict[Cond, set[bytes]] = {}
        i = 0
        for c, zk, skip, n, nul in plan:
            if zk is None:
                if c.op == "isnull" and c.attr in core.key_names:
                    sets[c] = set() if c.value else set(every)
                else:
                    keep = core.local_key_filter(c)
                    sets[c] = {k for k in every if keep(k)}
                continue
            if n < 0:
                sets[c] = skip(res[i])
                i += 1
                continue
            s: set[bytes] = set()
            for ms in res[i:i + n]:
                if skip is None:
                    s.update(ms)
                else:
                    s.update(m[skip(m, 0):] for m in ms)
            i += n
            if nul:
                s.update(res[i])
                i += 1
            sets[c] = s
        return _combine(node, sets, every)

    async def _fetch(self, kbs: list[bytes], node: Node, keep: Any = None) -> list[Any]:
        """The items of encoded keys (MGET), still matching ``node`` (``keep``: its
        compiled predicate, when the caller has it)."""
        core = self.core
        raws = await self._mget([core.item_key_of_kenc(k) for k in kbs])
        build = core.build
        items = [build(r) for r in raws if r is not None]
        if node != EVERYTHING:
            keep = keep or compile_local(node)
            items = [i for i in items if keep(i)]
        return items

    async def find(self, query: Query) -> list[Any]:
        """Matching items in order after the cursor position: a lex range scan of a sorted
        set from that position (ZRANGEBYLEX), that stops at ``limit``."""
        try:
            return await self._find(query)
        except RedisError as exc:
            raise _wrap(exc, f"search {self._name}") from exc

    async def _find(self, query: Query) -> list[Any]:
        core = self.core
        node, order, limit = query.node, query.order, query.limit
        if node == NOTHING:
            return []
        d = core.driver(order)
        if d is None:
            after = compile_local(query.keyset())
            items = [i async for i in self.iterate(node) if after(i)]
            return sort_items(items, order or ())[:limit]
        ivs, null_ok, rest = core.drive_split(d, node)
        keep = None
        if rest != EVERYTHING:
            ks = await self._keyset(rest)
            if len(ks) <= SMALL_SET:
                items = await self._fetch(sorted(ks), query.where())
                if order:
                    items = sort_items(items, order)
                return items if limit is None else items[:limit]
            keep = ks.__contains__
        # the ranges start at the cursor position: nothing before it is read
        segs = core.segments(d, ivs, null_ok, query.after)
        kbs = await self._scan(segs, limit, keep)
        return await self._fetch(kbs, node)

    async def iterate(self, node: Node) -> AsyncIterator[Any]:
        """Matching items in no particular order, fetched in chunks."""
        core = self.core
        try:
            if node == NOTHING:
                return
            build = core.build
            if node == EVERYTHING:
                # the key range of a chunk, then its values together with the key range of
                # the next chunk (one pipeline): a round trip per chunk, plus one
                ks = await self._range(core.keys_zset, None, None, False, CHUNK)
                while len(ks) == CHUNK:
                    pipe = self.r.pipeline(transaction=False)
                    pipe.mget([core.item_key_of_kenc(k) for k in ks])
                    pipe.zrangebylex(core.keys_zset, lex_lo(ks[-1] + b"\x00"), lex_hi(None),
                                     0, CHUNK)
                    raws, ks = await pipe.execute()
                    for r in raws:
                        if r is not None:
                            yield build(r)
                for item in await self._fetch(ks, EVERYTHING):
                    yield item
                return
            kbs = sorted(await self._keyset(node))
            keep = compile_local(node)
            # the values of up to PIPELINED chunks per round trip (one MGET each)
            step = CHUNK * PIPELINED
            for start in range(0, len(kbs), step):
                group = kbs[start:start + step]
                pipe = self.r.pipeline(transaction=False)
                for at in range(0, len(group), CHUNK):
                    pipe.mget([core.item_key_of_kenc(k) for k in group[at:at + CHUNK]])
                for raws in await pipe.execute():
                    for r in raws:
                        if r is not None:
                            item = build(r)
                            if keep(item):
                                yield item
        except RedisError as exc:
            raise _wrap(exc, f"search {self._name}") from exc

    async def aggregate(self, node: Node, specs: tuple[AggSpec, ...]) -> dict[str, Any]:
        """Evaluated here over the matching items (no native aggregates)."""
        acc = Accumulator(specs)
        async for item in self.iterate(node):
            acc.add(item)
        return acc.result()

    async def count(self, node: Node) -> int:
        """How many match: ZCARD / ZLEXCOUNT for one condition, else sets of keys."""
        core = self.core
        try:
            if node == EVERYTHING:
                return int(await self.r.zcard(core.keys_zset))
            if node == NOTHING:
                return 0
            if isinstance(node, Cond) and core.is_range_leaf(node) and not core.is_big_in(node):
                zkey, ivs, nullkey, _ = core.leaf_intervals(node)
                pipe = self.r.pipeline(transaction=False)
                for lo, hi in ivs:
                    pipe.zlexcount(zkey, lex_lo(lo), lex_hi(hi))
                if nullkey is not None:
                    pipe.zcard(nullkey)
                return sum(int(n) for n in await pipe.execute())
            return len(await self._keyset(node))
        except RedisError as exc:
            raise _wrap(exc, f"count {self._name}") from exc

    async def _matching_keys(self, node: Node) -> list[tuple[Any, ...]]:
        core = self.core
        if node == EVERYTHING:
            kbs = await self._range(core.keys_zset, None, None, False)
        else:
            kbs = sorted(await self._keyset(node))
        return [core.kdec(k) for k in kbs]

    async def _where(self, node: Node, kind: str, values: dict[str, Any]) -> int:
        what = "update" if kind == "update" else "delete"
        try:
            # candidates from the sorted sets; the whole filter is checked on the items read
            keys = await self._matching_keys(self.core.split(node).native)
        except RedisError as exc:
            raise _wrap(exc, f"{what} {self._name}") from exc
        if not keys:
            return 0
        if kind == "update" and has_expr(values):
            n = await self._where_lua(node, keys, values)
            if n is not None:
                return n
        edits = [PreparedEdit(kind, k, values, node, i) for i, k in enumerate(keys)]
        for _ in range(FEXPR_RETRIES if has_expr(values) else MAX_RETRIES):
            outs = await self._write_each(edits, what)
            if outs is not None:
                return sum(1 for o in outs if o[0])
        raise too_busy(f"{what} {self._name}")

    async def _where_lua(self, node: Node, keys: list[tuple[Any, ...]],
                         values: dict[str, Any]) -> int | None:
        """``update_where`` of ``F`` expressions as one ``FEXPR_LUA`` run: each
        candidate read, checked against the filter and written inside it; None when the
        changes or the filter are not for Lua (``native_fexpr``) and the guarded path
        must write them. ValidationError (nothing written) for a result out of bounds."""
        core = self.core
        pred = core.lua_pred(node) if core.native_fexpr(values, None) else None
        if pred is None:
            return None
        args = core.fexpr_args("w", [(k, values, pred) for k in keys])
        try:
            r = await self._script(FEXPR_SHA, FEXPR_LUA, args)
        except RedisError as exc:
            raise _wrap(exc, f"update {self._name}") from exc
        code = int(r[0])
        if code == 0:
            return int(r[1])
        if code == 2:  # the error names the result out of bounds
            resolve(core.meta, values, core.values(r[2]))
        return None

    async def _apply_lua(self, edits: list[PreparedEdit]) -> list[Outcome] | None:
        """An atomic batch of ``F`` updates as one ``FEXPR_LUA`` run (all or
        nothing, each update seeing the ones before it); None when it is not one
        (``native_fexpr``) and the guarded path must write it."""
        core = self.core
        if not all(e.kind == "update" for e in edits) or \
                not any(has_expr(e.values) for e in edits):
            return None
        todo = []
        for e in edits:
            pred = core.lua_pred(e.precondition)
            if pred is None or not core.native_fexpr(e.values, None):
                return None
            todo.append((e.key, e.values, pred))
        try:
            r = await self._script(FEXPR_SHA, FEXPR_LUA,
                                   core.fexpr_args("a", todo))
        except RedisError as exc:
            raise _wrap(exc, f"apply {self._name}") from exc
        code = int(r[0])
        if code == 3:
            return None
        build = core.build
        if code == 0:
            return [ok(build(d)) for d in r[2:]]
        pos = int(r[1]) - 1
        out: list[Outcome] = [ok(build(d)) for d in r[3:]]
        e = edits[pos]
        if code == 1:
            out.append(missing(key_dict(core.meta, e.key)))
        elif code == 4:
            out.append(precondition_failed(key_dict(core.meta, e.key)))
        else:
            try:
                resolve(core.meta, e.values, core.values(r[2]))
            except ValidationError as exc:
                out.append(invalid(exc))
            else:  # Lua saw a bound Python does not (nothing was written): guarded path
                return None
        return out + [NOT_APPLIED] * (len(edits) - len(out))

    async def _write_each(self, edits: list[PreparedEdit], what: str) -> list[Outcome] | None:
        """Edits each applied if its precondition holds, all in one guarded program;
        Conflict on a unique value; None when something changed meanwhile."""
        core = self.core
        keys = self._keystrs(edits)
        try:
            raws = await self._mget([f"{core.base}:{k}" for k in keys])
        except RedisError as exc:
            raise _wrap(exc, f"{what} {self._name}") from exc
        initial = dict(zip(keys, raws, strict=True))
        build = core.build
        live = []
        for e, k in zip(edits, keys, strict=True):
            raw = initial[k]
            if raw is not None and compile_local(e.precondition)(build(raw)):
                # F results from the item read (ValidationError: nothing written); the
                # program is guarded by that JSON
                values = resolve(core.meta, e.values, core.values(raw)) \
                    if has_expr(e.values) else e.values
                live.append(PreparedEdit(e.kind, e.key, values, None, e.index))
        if not live:
            return []
        plan = core.plan(live, initial)
        if plan.failed:
            bad = next(o for o in plan.outcomes if not o[0] and o[2])
            raise Conflict(bad[3])
        if plan.program is None:
            return plan.outcomes
        try:
            g = await self._run(plan.program)
        except RedisError as exc:
            raise _wrap(exc, f"{what} {self._name}") from exc
        if not g:
            return plan.outcomes
        kind, err = core.guard_failure(plan.program, g)
        if err is not None:
            raise err
        return None

    async def update_where(self, node: Node, values: dict[str, Any]) -> int:
        """Apply changes to every match, all in one guarded write."""
        return await self._where(node, "update", values)

    async def delete_where(self, node: Node) -> int:
        """Delete every match, all in one guarded write."""
        return await self._where(node, "delete", {})

    # batches ------------------------------------------------------------------------------
    async def apply(self, edits: list[PreparedEdit], atomic: bool) -> list[Outcome]:
        """Atomic: simulate all, one guarded script writes everything or nothing.
        Otherwise each edit on its own (creates pipelined in one round trip)."""
        core = self.core
        seq = core.seq
        if seq is not None:
            fresh = [e for e in edits if e.kind == "create" and seq.name not in e.values]
            if fresh:
                start = await self._next_seq(len(fresh))
                for i, e in enumerate(fresh):
                    e.values[seq.name] = start + i
                    e.key = core.key_of(e.values)
        if atomic:
            done = await self._apply_lua(edits)
            if done is not None:
                return done
            return await self._write(edits, self._keystrs(edits), "apply")
        if all(e.kind == "create" for e in edits):
            return await self._create_many(edits)
        out: list[Outcome] = []
        for e in edits:
            if e.kind == "update" and e.precondition is None and has_expr(e.values) and \
                    core.native_fexpr(e.values, None):
                out.append(await self._fexpr_edit(e))
            else:
                out.extend(await self._write([e], self._keystrs([e]), "apply"))
        return out

    async def _fexpr_edit(self, e: PreparedEdit) -> Outcome:
        """An ``F`` update of a non-atomic batch: one script run, as ``update``."""
        try:
            item = await self._update_fexpr(e.key, e.values, None)
        except ValidationError as exc:
            return invalid(exc)
        return ok(item) if item is not None else missing(key_dict(self.core.meta, e.key))

    async def _create_many(self, edits: list[PreparedEdit]) -> list[Outcome]:
        """Independent creates, pipelined: one round trip."""
        core = self.core
        if core.seq is not None:
            progs = [core.create_program(e.values) for e in edits]
            script, sha = LUA, LUA_SHA
            calls = [p.args() for p, _ in progs]
        else:
            fast = [core.create_args(e.values) for e in edits]
            script, sha = CREATE_LUA, CREATE_SHA
            calls = [a for a, _, _ in fast]
        try:
            await self.r.script_load(script)
            pipe = self.r.pipeline(transaction=False)
            for args in calls:
                pipe.evalsha(sha, *args)
            res = await pipe.execute(raise_on_error=False)
        except RedisError as exc:
            raise _wrap(exc, f"create {self._name}") from exc
        out: list[Outcome] = []
        build = core.meta.build
        for i, (e, g) in enumerate(zip(edits, res, strict=True)):
            if isinstance(g, Exception):
                raise _wrap(g, f"create {self._name}") from g
            if not g:
                out.append((True, build(dict(e.values)), None, None))
            elif core.seq is not None:
                p, ks = progs[i]
                _, err = core.guard_failure(p, int(g))
                out.append(duplicate(err if err is not None else core.key_conflict(ks)))
            else:
                _, ks, taken = fast[i]
                out.append(duplicate(core.create_failure(int(g), ks, taken)))
        return out


def _has_not(node: Node) -> bool:
    stack = [node]
    while stack:
        n = stack.pop()
        t = type(n)
        if t is Not:
            return True
        if t is And or t is Or:
            stack.extend(n.items)  # type: ignore[attr-defined]
    return False


def _combine(node: Node, sets: dict[Cond, set[bytes]], every: set[bytes]) -> set[bytes]:
    """The keys matching ``node``, from the keys of each of its conditions (any depth)."""
    def combine(n: Node, parts: list[set[bytes]]) -> set[bytes]:
        t = type(n)
        if t is Not:
            return every - parts[0]
        if t is And:
            if not parts:
                return set(every)
            parts.sort(key=len)
            out = set(parts[0])
            for s in parts[1:]:
                out &= s
            return out
        out = set()
        for s in parts:
            out |= s
        return out
    return fold(node, sets.__getitem__, combine)


__all__ = ["AsyncRedisBackend", "redis_client"]


def _rows(result: Any) -> int | None:
    if result is None:
        return 0
    if isinstance(result, list):
        return len(result)
    if isinstance(result, (bytes, str)):
        return 1
    return None


def _instrument(client: Any, site: Site) -> None:
    """Route the client's commands and pipelines through the observer seam.

    The lowest I/O point redis-py offers: every command method calls
    ``execute_command`` and a pipeline sends its stack in ``execute``. With nothing
    observing, the wrapper returns the original call's result (a coroutine on async
    clients) after one context-variable read.
    """
    orig = client.execute_command

    def execute_command(*args: Any, **options: Any) -> Any:
        if not OBSERVERS.get():
            return orig(*args, **options)
        name = str(args[0]) if args else "?"
        return async_observed(site, name, args[1:], lambda: orig(*args, **options), _rows)

    client.execute_command = execute_command
    make_pipeline = client.pipeline

    def pipeline(*args: Any, **kw: Any) -> Any:
        pipe = make_pipeline(*args, **kw)
        run = pipe.execute

        def execute(*a: Any, **k: Any) -> Any:
            if not OBSERVERS.get():
                return run(*a, **k)
            cmds = [c[0] for c in pipe.command_stack]
            name = "PIPELINE " + " ".join(sorted({str(c[0]) for c in cmds}))
            return async_observed(site, name, [c[1:] for c in cmds],
                                  lambda: run(*a, **k), _rows)

        pipe.execute = execute
        return pipe

    client.pipeline = pipeline

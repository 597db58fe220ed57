"""storeroom on Redis vs raw redis-py, same server, same run.

    STOREROOM_TEST_REDIS_URL=redis://127.0.0.1:63799/0 .venv/bin/python bench/redis_bench.py [N]

Raw redis-py does the least a hand-written data layer would: ``SET key json NX`` to
create (and, in the "raw + index" row, the same SET plus the sorted-set entries in one
MULTI/EXEC pipeline) and ``GET`` + ``json.loads`` to read. storeroom validates the item,
writes it with its index entries in one Lua script run (one round trip), and reads with
one GET into a typed object. Prints a table; µs per operation, best of 3 rounds.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis
import redis.asyncio as aredis

from storeroom import Index, field, stored
from storeroom.store.open import open_async_store, open_store

URL = os.environ.get("STOREROOM_TEST_REDIS_URL", "redis://127.0.0.1:63799/0")
N = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
ROUNDS = 5


@stored(key="id", indexes=[Index("owner")], table="bench_tasks")
class Task:
    id: str
    owner: str
    title: str = field(max_length=200)
    done: bool = False
    priority: int = 0
    created_at: datetime = datetime(2024, 1, 1, tzinfo=UTC)


def items(tag: str) -> list[Task]:
    now = datetime.now(UTC)
    return [Task(id=f"{tag}{i}", owner=f"user{i % 50}", title=f"task number {i}",
                 priority=i % 5, created_at=now) for i in range(N)]


def raw_doc(t: Task) -> dict[str, Any]:
    return {"id": t.id, "owner": t.owner, "title": t.title, "done": t.done,
            "priority": t.priority, "created_at": t.created_at.isoformat()}


def run_sync(prefix: str) -> dict[str, float]:
    r = redis.from_url(URL)
    store = open_store(Task, f"{URL}?prefix={prefix}s")
    out: dict[str, float] = {}
    try:
        def raw_create(rnd: int) -> float:
            docs = [(f"{prefix}raw:{t.id}", raw_doc(t)) for t in items(f"a{rnd}-")]
            t0 = time.perf_counter()
            for k, d in docs:
                r.set(k, json.dumps(d), nx=True)
            return time.perf_counter() - t0

        def raw_create_ix(rnd: int) -> float:
            docs = [(f"{prefix}rawix:{t.id}", t.id, t.owner, raw_doc(t))
                    for t in items(f"b{rnd}-")]
            t0 = time.perf_counter()
            for k, i, o, d in docs:
                p = r.pipeline(transaction=True)
                p.set(k, json.dumps(d), nx=True)
                p.zadd(f"{prefix}rawix:#keys", {i: 0})
                p.zadd(f"{prefix}rawix:#owner", {f"{o}\x00{i}": 0})
                p.execute()
            return time.perf_counter() - t0

        def sr_create(rnd: int) -> float:
            ts = items(f"c{rnd}-")
            t0 = time.perf_counter()
            for t in ts:
                store.create(t)
            return time.perf_counter() - t0

        ids = [t.id for t in items("a0-")]

        def raw_get(rnd: int) -> float:
            t0 = time.perf_counter()
            for i in ids:
                json.loads(r.get(f"{prefix}raw:{i}"))
            return time.perf_counter() - t0

        sids = [t.id for t in items("c0-")]

        def sr_get(rnd: int) -> float:
            t0 = time.perf_counter()
            for i in sids:
                store.read(i)
            return time.perf_counter() - t0

        # rounds interleave raw and storeroom so that load on the machine hits both alike
        fns = {"create raw": raw_create, "create raw+index": raw_create_ix,
               "create storeroom": sr_create}
        for rnd in range(ROUNDS):
            for name, fn in fns.items():
                out[name] = min(out.get(name, 1e9), fn(rnd))
        for rnd in range(ROUNDS):
            for name, fn in {"get raw": raw_get, "get storeroom": sr_get}.items():
                out[name] = min(out.get(name, 1e9), fn(rnd))
        assert store.read(sids[0]) is not None
    finally:
        store.close()
        r.close()
    return out


async def run_async(prefix: str) -> dict[str, float]:
    r = aredis.from_url(URL)
    store = open_async_store(Task, f"{URL}?prefix={prefix}a")
    out: dict[str, float] = {}
    try:
        async def timed(coro_fn: Callable[[], Any]) -> float:
            t0 = time.perf_counter()
            await coro_fn()
            return time.perf_counter() - t0


        async def raw_create(rnd: int) -> None:
            for t in items(f"a{rnd}-"):
                await r.set(f"{prefix}araw:{t.id}", json.dumps(raw_doc(t)), nx=True)

        async def sr_create(rnd: int) -> None:
            for t in items(f"c{rnd}-"):
                await store.create(t)

        async def raw_get(rnd: int) -> None:
            for i in range(N):
                json.loads(await r.get(f"{prefix}araw:a0-{i}"))

        async def sr_get(rnd: int) -> None:
            for i in range(N):
                await store.read(f"c0-{i}")

        for group in ({"create raw": raw_create, "create storeroom": sr_create},
                      {"get raw": raw_get, "get storeroom": sr_get}):
            for rnd in range(ROUNDS):
                for name, fn in group.items():
                    took = await timed(lambda fn=fn, rnd=rnd: fn(rnd))
                    out[name] = min(out.get(name, 1e9), took)
    finally:
        await store.close()
        await r.aclose()
    return out


def cleanup(prefix: str) -> None:
    r = redis.from_url(URL)
    try:
        keys = list(r.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 1000):
            r.delete(*keys[start:start + 1000])
    finally:
        r.close()


def main() -> None:
    prefix = f"bench-{uuid.uuid4().hex[:8]}-"
    try:
        s = run_sync(prefix)
        a = asyncio.run(run_async(prefix))
    finally:
        cleanup(prefix)
    print(f"Redis at {URL}, {N} operations per round, best of {ROUNDS} (µs per op)\n")
    print(f"{'operation':<10} {'mode':<6} {'raw redis-py':>13} {'storeroom':>10} {'ratio':>6}")
    for mode, res in (("sync", s), ("async", a)):
        for op in ("get", "create"):
            raw, ours = res[f"{op} raw"] / N * 1e6, res[f"{op} storeroom"] / N * 1e6
            print(f"{op:<10} {mode:<6} {raw:>13.1f} {ours:>10.1f} {ours / raw:>6.2f}")
    ix = s["create raw+index"] / N * 1e6
    print(f"\nsync raw create with the same index entries (SET NX + 2 ZADD in MULTI/EXEC): "
          f"{ix:.1f} µs; storeroom/that = {s['create storeroom'] / s['create raw+index']:.2f}")


if __name__ == "__main__":
    main()

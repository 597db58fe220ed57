"""Benchmark the context layer against bare SQLAlchemy Core, side by side in one run.

Run: ``python bench/context_bench.py [--quick]``. Not part of the test suite.

What is measured (µs per operation, best of several rounds, cases interleaved):

* empty context: ``with dm.context(): pass`` (and with ``meta=``), against a bare loop.
* read + update: a context that selects one row and updates it in a 10k-row SQLite
  table through ``ctx.engines.db`` (one transaction, committed at the end), against
  ``with engine.begin() as conn:`` running the same prebuilt Core statements on the
  **same engine** (same pool, same SQLite set-up: WAL, ``synchronous=NORMAL`` unless
  ``--synchronous FULL``, storeroom's durable default, explicit ``BEGIN IMMEDIATE``). A
  vanilla ``create_engine`` (no storeroom set-up) is shown for reference.
* DAL call through two method middleware: ``ctx.dal.svc.method(x)`` inside one open
  context, against the same two middleware functions composed by hand around the
  method (and, for reference, the bare method call).
* the async flavor of read + update: ``AsyncDataManager`` against ``AsyncEngine.begin()``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from sqlalchemy import (  # noqa: E402
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    insert,
    select,
    update,
)

from storeroom import stored  # noqa: E402
from storeroom.context import AsyncDataManager, DataManager, Service  # noqa: E402


@stored(key="id", table="items")
class ItemRow:
    """The benchmark table as a stored model, for the ``ctx.store`` case."""

    id: int
    name: str
    counter: int

ROWS = 10_000
metadata = MetaData()
items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(50)),
    Column("counter", Integer),
)
READ = select(items.c.id, items.c.name, items.c.counter).where(items.c.id == bindparam("rid"))
UPDATE = update(items).where(items.c.id == bindparam("rid")).values(counter=items.c.counter + 1)


def best_us(fn: Callable[[int], None], n: int, rounds: int) -> float:
    """Best per-op time in µs of ``rounds`` runs of ``fn(n)``."""
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        fn(n)
        best = min(best, (time.perf_counter_ns() - t0) / n / 1000)
    return best


async def abest_us(fn: Callable[[int], Awaitable[None]], n: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        await fn(n)
        best = min(best, (time.perf_counter_ns() - t0) / n / 1000)
    return best


class Items(Service):
    def bump(self, x: int) -> int:
        return x + 1


def passthrough_a(request: Any, call_next: Callable[[Any], Any]) -> Any:
    return call_next(request)


def passthrough_b(request: Any, call_next: Callable[[Any], Any]) -> Any:
    return call_next(request)


def setup_db(url: str) -> None:
    engine = create_engine(url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(items), [{"id": i, "name": f"item {i}", "counter": 0} for i in range(ROWS)])
    engine.dispose()


def run_sync(url: str, n: int, rounds: int) -> list[tuple[str, float, float]]:
    dm = DataManager()
    dm.add_engine("db", url)
    dm.register_services(items=Items())
    dm.register_method_middleware(passthrough_a, passthrough_b)
    dm.register_models(ItemRow)
    engine = dm.get_engine("db")
    vanilla = create_engine(url.split("?", 1)[0])  # SQLAlchemy takes no PRAGMA options

    def empty_bare(k: int) -> None:
        for _ in range(k):
            pass

    def empty_ctx(k: int) -> None:
        context = dm.context
        for _ in range(k):
            with context():
                pass

    def empty_ctx_meta(k: int) -> None:
        context = dm.context
        for i in range(k):
            with context(meta={"user": i}):
                pass

    def rw_bare(k: int, eng: Any = engine) -> None:
        for i in range(k):
            rid = i % ROWS
            with eng.begin() as conn:
                conn.execute(READ, {"rid": rid}).one()
                conn.execute(UPDATE, {"rid": rid})

    def rw_vanilla(k: int) -> None:
        rw_bare(k, vanilla)

    def rw_ctx(k: int) -> None:
        context = dm.context
        for i in range(k):
            rid = i % ROWS
            with context() as ctx:
                conn = ctx.engines.db
                conn.execute(READ, {"rid": rid}).one()
                conn.execute(UPDATE, {"rid": rid})

    def rw_store(k: int) -> None:
        context = dm.context
        for i in range(k):
            rid = i % ROWS
            with context() as ctx:
                s = ctx.store(ItemRow)
                row = s.read(rid)
                s.update(rid, counter=row.counter + 1)

    service = dm.get_service("items")
    assert service is not None
    bump = service.bump  # type: ignore[attr-defined]

    def call_direct(k: int) -> None:
        for i in range(k):
            bump(i)

    class Req:
        __slots__ = ("args",)

        def __init__(self, args: tuple[Any, ...]) -> None:
            self.args = args

    def inner(request: Any) -> Any:
        return passthrough_b(request, lambda r: bump(*r.args))

    def call_bare(k: int) -> None:  # the same two middleware, composed by hand
        for i in range(k):
            passthrough_a(Req((i,)), inner)

    def call_dal(k: int) -> None:
        with dm.context() as ctx:
            dal = ctx.dal
            for i in range(k):
                dal.items.bump(i)

    # warm up (compiled-statement cache, pool)
    rw_bare(200)
    rw_ctx(200)
    rw_vanilla(200)
    rw_store(200)
    results = []
    dal = "dal call, 2 middleware"
    rows = {"empty": (empty_bare, empty_ctx, n * 20), "empty+meta": (empty_bare, empty_ctx_meta, n * 20),
            "read+update": (rw_bare, rw_ctx, n),
            "store read+update (ctx.store)": (rw_bare, rw_store, n),
            dal: (call_bare, call_dal, n * 20)}  # fmt: skip
    timings: dict[str, list[float]] = {k: [float("inf"), float("inf")] for k in rows}
    for _ in range(rounds):  # interleave the cases so drift hits both sides alike
        for name, (bare, ctx, k) in rows.items():
            timings[name][0] = min(timings[name][0], best_us(bare, k, 1))
            timings[name][1] = min(timings[name][1], best_us(ctx, k, 1))
    vanilla_us = best_us(rw_vanilla, max(n // 4, 50), 3)
    direct_us = best_us(call_direct, n * 20, rounds)
    for name, (b, c) in timings.items():
        results.append((f"sync {name}", b, c))
    results.append(("sync read+update, vanilla engine (ref)", vanilla_us, timings["read+update"][1]))
    results.append(("sync dal call vs direct method call (ref)", direct_us, timings[dal][1]))
    assert engine.pool.checkedout() == 0
    dm.close()
    vanilla.dispose()
    return results


async def run_async(url: str, n: int, rounds: int) -> list[tuple[str, float, float]]:
    async with AsyncDataManager() as dm:
        dm.add_engine("db", url)
        engine = dm.get_engine("db")

        async def rw_bare(k: int) -> None:
            for i in range(k):
                rid = i % ROWS
                async with engine.begin() as conn:
                    (await conn.execute(READ, {"rid": rid})).one()
                    await conn.execute(UPDATE, {"rid": rid})

        async def rw_ctx(k: int) -> None:
            context = dm.context
            for i in range(k):
                rid = i % ROWS
                async with context() as ctx:
                    conn = await ctx.engines.db
                    (await conn.execute(READ, {"rid": rid})).one()
                    await conn.execute(UPDATE, {"rid": rid})

        async def empty_bare(k: int) -> None:
            for _ in range(k):
                pass

        async def empty_ctx(k: int) -> None:
            context = dm.context
            for _ in range(k):
                async with context():
                    pass

        await rw_bare(100)
        await rw_ctx(100)
        t = {"empty": [float("inf")] * 2, "read+update": [float("inf")] * 2}
        for _ in range(rounds):
            t["empty"][0] = min(t["empty"][0], await abest_us(empty_bare, n * 20, 1))
            t["empty"][1] = min(t["empty"][1], await abest_us(empty_ctx, n * 20, 1))
            t["read+update"][0] = min(t["read+update"][0], await abest_us(rw_bare, n, 1))
            t["read+update"][1] = min(t["read+update"][1], await abest_us(rw_ctx, n, 1))
        return [(f"async {k}", v[0], v[1]) for k, v in t.items()]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer operations and rounds")
    parser.add_argument("--synchronous", default="NORMAL", choices=["NORMAL", "FULL"],
                        help="PRAGMA synchronous of the engine both sides share")
    args = parser.parse_args(argv)
    n, rounds = (300, 3) if args.quick else (2000, 7)
    tmp = tempfile.mkdtemp(prefix="ctxbench")
    try:
        path = os.path.join(tmp, "bench.db")
        setup_db(f"sqlite:///{path}")
        url = f"sqlite:///{path}?synchronous={args.synchronous}"
        results = run_sync(url, n, rounds)
        results += asyncio.run(run_async(url, max(n // 4, 50), rounds))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"Python {sys.version.split()[0]}, SQLite table of {ROWS} rows, {n} ops x {rounds} rounds,"
          f" WAL + synchronous={args.synchronous}")
    print(f"{'case':44} {'bare µs':>10} {'storeroom µs':>13} {'ratio':>7}")
    for name, bare, ours in results:
        ratio = ours / bare if bare > 0.05 else float("nan")
        print(f"{name:44} {bare:10.2f} {ours:13.2f} {ratio:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

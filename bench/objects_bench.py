#!/usr/bin/env python3
"""The query set's overhead: ``Task.objects.filter(owner=o)[:20]`` against
``ctx.store(Task).search(owner=o, limit=20)``, in a sync and an async context, on SQLite.

    python bench/objects_bench.py [--rows 5000] [--calls 500] [--rounds 7] [--quick]

Both sides run the same calls inside one open context (the identity map and the
transaction alike), alternated call by call and timed in CPU time of this process (SQLite
runs in it; on a shared machine wall time mostly measures the neighbours). Printed: µs
per call of each side (best round) and the median over rounds of the query set's time ÷
the store's (the target is at most 1.15x). The results of both sides are compared first,
so neither can do less.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from storeroom import Index, stored  # noqa: E402

N_OWNERS = 50


@stored(key="id", indexes=[Index("owner")], table="ob_task")
class ObTask:
    """The benchmark's model."""

    id: int
    owner: str
    title: str
    priority: int = 0


def seed(url: str, rows: int) -> None:
    from storeroom import Create, open_store
    with open_store(ObTask, url) as s:
        s.create_tables()
        for at in range(0, rows, 500):
            s.edit_batch([Create(ObTask(id=i, owner=f"u{i % N_OWNERS}", title=f"t{i}",
                                        priority=i % 6))
                          for i in range(at, min(rows, at + 500))])


def clock() -> float:
    """CPU time of this process: SQLite runs in it, so this is the whole cost of a call,
    and other processes on a shared machine do not add to it."""
    return time.process_time()


def summary(store: list[float], objects: list[float], calls: int) -> dict[str, float]:
    """µs per call (best round) of each side, and the median over rounds of the
    query set's time ÷ the store's (rounds alternate call by call, so a round's ratio
    compares the same moments of the machine)."""
    return {"store": min(store) / calls, "objects": min(objects) / calls,
            "ratio": statistics.median(o / s for o, s in zip(objects, store, strict=True))}


def run_sync(url: str, calls: int, rounds: int) -> dict[str, float]:
    from storeroom.context import DataManager
    dm = DataManager()
    dm.add_engine("main", url, default=True)
    dm.register_models(ObTask)
    owners = [f"u{i % N_OWNERS}" for i in range(calls)]
    rounds_s: list[float] = []
    rounds_o: list[float] = []
    try:
        with dm.context() as ctx:
            store = ctx.store(ObTask)
            objects = ObTask.objects  # type: ignore[attr-defined]
            a = [store.search(owner=o, limit=20).items for o in owners[:N_OWNERS]]
            b = [list(objects.filter(owner=o)[:20]) for o in owners[:N_OWNERS]]
            assert a == b, "the query set and the store disagree"
            for _ in range(rounds):
                ts = to = 0.0
                for o in owners:  # alternated call by call: both see the same machine
                    t0 = clock()
                    store.search(owner=o, limit=20).items  # noqa: B018
                    t1 = clock()
                    list(ObTask.objects.filter(owner=o)[:20])  # type: ignore[attr-defined]
                    to += clock() - t1
                    ts += t1 - t0
                rounds_s.append(ts)
                rounds_o.append(to)
    finally:
        dm.close()
    return summary(rounds_s, rounds_o, calls)


async def run_async(url: str, calls: int, rounds: int) -> dict[str, float]:
    from storeroom.context import AsyncDataManager
    dm = AsyncDataManager()
    dm.add_engine("main", url, default=True)
    dm.register_models(ObTask)
    owners = [f"u{i % N_OWNERS}" for i in range(calls)]
    rounds_s: list[float] = []
    rounds_o: list[float] = []
    try:
        async with dm.context() as ctx:
            store = ctx.store(ObTask)
            a = [(await store.search(owner=o, limit=20)).items for o in owners[:N_OWNERS]]
            b = [await ObTask.objects.filter(owner=o)[:20]  # type: ignore[attr-defined]
                 for o in owners[:N_OWNERS]]
            assert a == b, "the query set and the store disagree"
            for _ in range(rounds):
                ts = to = 0.0
                for o in owners:
                    t0 = clock()
                    (await store.search(owner=o, limit=20)).items  # noqa: B018
                    t1 = clock()
                    await ObTask.objects.filter(owner=o)[:20]  # type: ignore[attr-defined]
                    to += clock() - t1
                    ts += t1 - t0
                rounds_s.append(ts)
                rounds_o.append(to)
    finally:
        await dm.close()
    return summary(rounds_s, rounds_o, calls)


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=25)
    ap.add_argument("--quick", action="store_true", help="200 rows, 50 calls, 2 rounds")
    args = ap.parse_args(argv)
    if args.quick:
        args.rows, args.calls, args.rounds = 200, 50, 2
    work = tempfile.mkdtemp(prefix="storeroom-objbench-")
    url = f"sqlite:///{os.path.join(work, 'objects.sqlite')}?synchronous=NORMAL"
    out: dict[str, dict[str, float]] = {}
    try:
        seed(url, args.rows)
        out["sync"] = run_sync(url, args.calls, args.rounds)
        out["async"] = asyncio.run(run_async(url, args.calls, args.rounds))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"SQLite, {args.rows} rows, page of 20 by owner, median ratio of {args.rounds} rounds of "
          f"{args.calls} calls alternated in one context; CPU time\n")
    print("| context | store.search µs (best) | objects.filter()[:20] µs (best) | objects ÷ store (median) |")
    print("|---|---:|---:|---:|")
    for mode, r in out.items():
        print(f"| {mode} | {r['store'] * 1e6:.1f} | {r['objects'] * 1e6:.1f} | "
              f"{r['ratio']:.3f}x |")
    return out


if __name__ == "__main__":
    main()

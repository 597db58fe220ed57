"""The observer seam's cost on the hot path: point reads on SQLite and memory.

``python bench/observe_bench.py`` prints ops/s of ``store.read`` with nothing observing
and with a ``QueryLog`` open. Run it once more with ``PYTHONPATH`` pointing at a
checkout from before the seam (``--baseline``: no QueryLog there) to see what the
seam costs when off: one context-variable read per round trip.
"""

from __future__ import annotations

import sys
import tempfile
import time
from typing import Any


def _rate(fn: Any, n: int) -> float:
    best = 0.0
    for _ in range(5):  # best of 5: the machine is shared
        t0 = time.perf_counter()
        for i in range(n):
            fn(i % 100)
        best = max(best, n / (time.perf_counter() - t0))
    return best


def main(argv: list[str]) -> None:
    import storeroom
    from storeroom import open_store, stored

    @stored(table="bench_item")
    class Item:
        id: int
        name: str = ""

    baseline = "--baseline" in argv or not hasattr(storeroom, "QueryLog")
    n = 20_000
    with tempfile.TemporaryDirectory() as tmp:
        for url in (f"sqlite:///{tmp}/b.db", "memory://observe-bench"):
            s = open_store(Item, url)
            s.create_tables()
            for i in range(100):
                s.create(Item(id=i, name=f"n{i}"))
            off = _rate(s.read, n)
            line = f"{url.split(':')[0]:7} read  observer off: {off:10,.0f} ops/s"
            if not baseline:
                with storeroom.QueryLog() as log:
                    on = _rate(s.read, n)
                line += f"   QueryLog on: {on:10,.0f} ops/s ({len(log.records):,} records)"
            else:
                line += "   (baseline: no observer seam)"
            print(line)
            s.close()
    if not baseline:
        # the seam's own cost, free of the noise of a shared machine: the check every
        # round trip makes when nothing observes
        import timeit

        from storeroom.observe import OBSERVERS
        per = min(timeit.repeat("if not get(): pass", globals={"get": OBSERVERS.get},
                                number=1_000_000, repeat=5))
        print(f"observer-off check: {per * 1e3:.1f} ns per round trip "
              f"(one context-variable read)")


if __name__ == "__main__":
    main(sys.argv[1:])

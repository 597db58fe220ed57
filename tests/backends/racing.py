"""Running store calls at once, for the contract suite's race tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any


async def together(store_factory: Any, *calls: Callable[[], Awaitable[Any]]) -> list[Any]:
    """Run ``calls`` at once (threads for sync stores, tasks for async ones); each
    result is the call's return value or the exception it raised."""
    if store_factory.is_async:
        return list(await asyncio.gather(*(c() for c in calls), return_exceptions=True))
    barrier = threading.Barrier(len(calls), timeout=30)
    out: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = asyncio.run(calls[i]())  # the S adapter over a sync store
        except Exception as exc:  # reported below, as gather does
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a racing call did not finish"
    return out

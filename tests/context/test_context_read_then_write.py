"""Issue 8.3: SQLite contexts that read, then write, never fail with "database is locked"
while the wait for the lock stays below ``busy_timeout``.

A deferred transaction that already read cannot wait for the write lock (SQLite returns
SQLITE_BUSY at once, so ``busy_timeout`` never helped: 200 concurrent async contexts
raised 7,651 such errors). Contexts on a writable SQLite engine now begin ``BEGIN
IMMEDIATE`` (``transaction_mode``, as Rails 8 and Django 5.1 do): the wait happens at
BEGIN, where the busy timeout applies, and read-then-write is serialized (no lost
update). The processes-and-threads variant is in tests/backends/test_sqlite_concurrency.py.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from storeroom import stored
from storeroom.context import AsyncDataManager, DataManager

PATIENT = "busy_timeout=60000&synchronous=NORMAL"


@stored(key="name")
class Tally:
    name: str
    n: int = 0


async def test_two_hundred_async_contexts_read_then_write(tmp_path: Path) -> None:
    async with AsyncDataManager() as dm:
        dm.add_engine("db", f"sqlite:///{tmp_path}/tally.db?{PATIENT}", pool_size=20,
                      max_overflow=0, pool_timeout=120)
        dm.register_models(Tally)
        async with dm.context() as ctx:
            await ctx.store(Tally).create(Tally(name="t"))

        async def bump() -> None:
            async with dm.context() as ctx:
                store = ctx.store(Tally)
                item = await store.read("t")
                await asyncio.sleep(0)  # let the others in between the read and the write
                await store.update("t", n=item.n + 1)

        results = await asyncio.gather(*[bump() for _ in range(200)], return_exceptions=True)
        assert [repr(r) for r in results if isinstance(r, BaseException)] == []
        async with dm.context() as ctx:
            assert (await ctx.store(Tally).read("t")).n == 200


def test_threads_read_then_write(tmp_path: Path) -> None:
    errors: list[str] = []
    with DataManager() as dm:
        dm.add_engine("db", f"sqlite:///{tmp_path}/tally.db?{PATIENT}", pool_size=8,
                      max_overflow=0, pool_timeout=120)
        dm.register_models(Tally)
        with dm.context() as ctx:
            ctx.store(Tally).create(Tally(name="t"))
        barrier = threading.Barrier(8)

        def work() -> None:
            barrier.wait()
            for _ in range(25):
                try:
                    with dm.context() as ctx:
                        store = ctx.store(Tally)
                        store.update("t", n=store.read("t").n + 1)
                except BaseException as exc:  # noqa: BLE001 - reported by the test
                    errors.append(f"{type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=work) for _ in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert errors == []
        with dm.context() as ctx:
            assert ctx.store(Tally).read("t").n == 200

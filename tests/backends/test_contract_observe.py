"""The observer seam on every backend, sync and async: ``QueryLog`` sees each round trip
of the current thread / task (and of tasks started inside it), never another's."""

from __future__ import annotations

import asyncio
import threading

from storeroom import QueryLog, QueryRecord, stored

SYSTEMS = {"memory": "memory", "sqlite": "sqlite", "postgres": "postgresql",
           "mysql": "mysql", "mariadb": "mysql", "dynamodb": "aws.dynamodb",
           "mongodb": "mongodb", "redis": "redis"}


@stored
class Gadget:
    id: int
    name: str = ""


def _system(spec_id: str) -> str:
    for k, v in SYSTEMS.items():
        if spec_id.startswith(k):
            return v
    return spec_id


async def test_create_read_search_are_recorded(store_factory):
    s = store_factory(Gadget)
    await s.create(Gadget(id=0))  # tables / scripts / secrets exist before the log opens
    async with QueryLog() as log:
        await s.create(Gadget(id=1, name="a"))
        got = await s.read(1)
        page = await s.search()
    assert got == Gadget(id=1, name="a") and len(page.items) == 2
    recs = log.records
    # at least one round trip per operation; each a QueryRecord with sane fields
    assert len(recs) >= 3, recs
    assert len(recs) <= 12, [r.statement for r in recs]
    system = _system(store_factory.spec.id)
    for r in recs:
        assert isinstance(r, QueryRecord)
        assert r.backend == system
        assert r.engine is None
        assert isinstance(r.statement, str) and r.statement
        assert 0 <= r.duration_s < 30
        assert r.rows is None or r.rows >= 0
    # a read of one item that exists reports one row somewhere
    assert any(r.rows == 1 for r in recs)
    if system == "memory":
        assert [r.statement for r in recs] == ["insert", "get", "find"]


async def test_nested_logs_both_record_and_closed_logs_stop(store_factory):
    s = store_factory(Gadget)
    await s.create(Gadget(id=0))
    with QueryLog() as outer:
        with QueryLog() as inner:
            await s.read(0)
        n_inner = len(inner.records)
        await s.read(0)
    assert n_inner >= 1
    assert len(outer.records) >= 2 * n_inner
    await s.read(0)
    assert len(inner.records) == n_inner


async def test_other_threads_and_tasks_are_not_seen_children_are(store_factory):
    s = store_factory(Gadget)
    await s.create(Gadget(id=0))
    if store_factory.is_async:
        started = asyncio.Event()
        outside_done = asyncio.Event()

        async def outsider() -> None:  # a task started before the log: not its context
            await started.wait()
            await s.read(0)
            outside_done.set()

        t = asyncio.create_task(outsider())
        async with QueryLog() as log:
            started.set()
            await outside_done.wait()
            assert log.records == []
            await asyncio.create_task(s.read(0))  # a task started inside inherits the log
            assert len(log.records) >= 1
        await t
    else:
        with QueryLog() as log:
            th = threading.Thread(target=lambda: s.store.read(0))
            th.start()
            th.join()
            assert log.records == []
            s.store.read(0)
            assert len(log.records) >= 1

"""Observer-seam gaps closed: a context's savepoints, the lazy DDL of every backend, and
a MongoDB client the user passes in are all recorded as the rest of the round trips."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from storeroom import QueryLog, stored
from storeroom.context import AsyncDataManager, DataManager


@stored
class Part:
    id: int
    name: str = ""


def _words(log: QueryLog, backend: str = "sqlite") -> list[str]:
    # the statements' leading keywords, savepoint names left out (SQLAlchemy picks them)
    out = []
    for r in log.records:
        if r.backend != backend:
            continue
        words = r.statement.split()
        if "SAVEPOINT" in words:
            words = words[:words.index("SAVEPOINT") + 1]
        out.append(" ".join(words[:3] if words[0] in ("RELEASE", "ROLLBACK") else words[:1]))
    return out


@pytest.fixture
def dm(tmp_path: Path) -> Iterator[DataManager]:
    dm = DataManager()
    dm.add_engine("primary", f"sqlite:///{tmp_path}/sp.db")
    dm.register_models(Part)
    with dm.context() as ctx:  # the table made before any log opens
        ctx.store(Part).create(Part(id=0))
    yield dm
    dm.close()


# ---- 1. ctx.savepoint() ---------------------------------------------------------------

def test_a_context_savepoint_is_recorded_released_and_rolled_back(dm: DataManager) -> None:
    with QueryLog() as log, dm.context() as ctx:
        ctx.store(Part).create(Part(id=1))
        with ctx.savepoint():
            ctx.store(Part).create(Part(id=2))
        with pytest.raises(RuntimeError), ctx.savepoint():
            ctx.store(Part).create(Part(id=3))
            raise RuntimeError("undo the savepoint's work")
    assert _words(log) == ["BEGIN", "INSERT", "SAVEPOINT", "INSERT", "RELEASE SAVEPOINT",
                           "SAVEPOINT", "INSERT", "ROLLBACK TO SAVEPOINT", "COMMIT"], \
        log.statements()
    sp = [r for r in log.records if "SAVEPOINT" in r.statement]
    assert {r.engine for r in sp} == {"primary"} and all(r.error is None for r in sp)
    # each RELEASE / ROLLBACK TO names the savepoint that was opened
    opened = [r.statement.split()[-1] for r in sp if r.statement.startswith("SAVEPOINT")]
    closed = [r.statement.split()[-1] for r in sp if not r.statement.startswith("SAVEPOINT")]
    assert opened == closed and opened[0].startswith("sa_savepoint"), sp
    with dm.context() as ctx:
        assert [p.id for p in ctx.store(Part).search_all()] == [0, 1, 2]


def test_an_engine_opened_inside_a_savepoint_records_its_savepoint(dm: DataManager) -> None:
    with QueryLog() as log, dm.context() as ctx:
        with ctx.savepoint():  # no engine open yet: it joins when it opens
            ctx.store(Part).read(0)
    assert _words(log) == ["BEGIN", "SAVEPOINT", "SELECT", "RELEASE SAVEPOINT", "COMMIT"], \
        log.statements()


async def test_async_context_savepoint_is_recorded(tmp_path: Path) -> None:
    async with AsyncDataManager() as adm:
        adm.add_engine("primary", f"sqlite:///{tmp_path}/asp.db")
        adm.register_models(Part)
        async with adm.context() as ctx:
            await ctx.store(Part).create(Part(id=0))
        async with QueryLog() as log:
            async with adm.context() as ctx:
                async with ctx.savepoint():
                    await ctx.store(Part).create(Part(id=1))
                with pytest.raises(RuntimeError):
                    async with ctx.savepoint():
                        await ctx.store(Part).create(Part(id=2))
                        raise RuntimeError("undo")
    assert _words(log) == ["BEGIN", "SAVEPOINT", "INSERT", "RELEASE SAVEPOINT",
                           "SAVEPOINT", "INSERT", "ROLLBACK TO SAVEPOINT", "COMMIT"], \
        log.statements()

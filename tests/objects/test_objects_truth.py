"""``bool(qs)`` and ``len(qs)``: the Django habits ``if qs:`` / ``len(qs)``.

A sync set is evaluated once (one data statement, counted with ``QueryLog`` on SQLite)
and keeps its rows for ``if qs:``, ``len(qs)``, ``list(qs)`` and ``for x in qs``; an
async set refuses both with a ``TypeError`` naming the awaited method to use.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from storeroom import QueryLog, stored
from storeroom.context import AsyncDataManager, DataManager

CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "PRAGMA", "SET")


@stored(key="id", table="truth_rows")
class TruthRow:
    id: int
    n: int = 0


def _data(log: QueryLog) -> list[str]:
    return [s for s in log.statements() if s.split(None, 1)[0].upper() not in CONTROL]


def _manager(tmp_path: Path) -> DataManager:
    dm = DataManager()
    dm.add_engine("main", f"sqlite:///{tmp_path / 'truth.sqlite'}")
    dm.register_models(TruthRow)
    with dm.context():
        TruthRow.objects.bulk_create([TruthRow(id=i, n=i % 3) for i in range(7)])
    return dm


def test_a_sync_set_is_evaluated_once_for_bool_len_and_iteration(tmp_path: Path) -> None:
    dm = _manager(tmp_path)
    with dm.context():
        TruthRow.objects.count()  # the store's first use (its table check) is not counted
        qs = TruthRow.objects.filter(n=1).order_by("id")
        with QueryLog() as log:
            assert qs
            assert len(qs) == 2
            assert [r.id for r in qs] == [1, 4]
            assert [r.id for r in list(qs)] == [1, 4]  # list() asks len() first: cached
        assert len(_data(log)) == 1, log.statements()
        # the rows are the set's: a write after the evaluation is not seen by it, but a
        # new set (chained, or Model.objects again) and the terminal methods ask again
        TruthRow.objects.create(id=10, n=1)
        with QueryLog() as log:
            assert len(qs) == 2
        assert _data(log) == []
        assert len(qs.all()) == 3 and qs.count() == 3
        assert len(TruthRow.objects.filter(n=1)) == 3
    dm.close()


def test_empty_sets_sliced_sets_and_values(tmp_path: Path) -> None:
    dm = _manager(tmp_path)
    with dm.context():
        qs = TruthRow.objects.order_by("id")
        assert not TruthRow.objects.filter(n=5)
        assert len(TruthRow.objects.filter(n=5)) == 0
        with QueryLog() as log:
            assert not qs.none() and len(qs.none()) == 0
        assert _data(log) == []  # none() asks the store nothing
        assert len(qs[2:5]) == 3 and qs[2:5] and len(qs[5:]) == 2
        # an empty slice is empty for bool, len, exists and count alike (exists() of
        # qs[:0] used to read the first item and say True)
        for empty in (qs[:0], qs[5:5], qs[9:]):
            assert not empty and len(empty) == 0
            assert empty.exists() is False and empty.count() == 0
        assert len(qs.values("n")) == 7
        assert len(qs.values_list("n", flat=True).distinct()) == 3
        assert bool(qs.values_list("id", flat=True).filter(id=3))
    dm.close()


def test_an_async_set_refuses_bool_and_len_naming_the_fix(tmp_path: Path) -> None:
    async def main() -> None:
        adm = AsyncDataManager()
        adm.add_engine("main", "memory://")
        adm.register_models(TruthRow)
        async with adm.context():
            await TruthRow.objects.create(id=1)
            qs = TruthRow.objects.filter(n=0)
            with pytest.raises(TypeError, match=r"await qs\.exists\(\)"):
                bool(qs)
            with pytest.raises(TypeError, match=r"await qs\.exists\(\)"):
                if qs:  # the Django habit
                    pass
            with pytest.raises(TypeError, match=r"await qs\.count\(\)"):
                len(qs)
            # the fixes, and the async ways of evaluating it, still work
            assert await qs.exists() and await qs.count() == 1
            assert len(await qs) == 1 and [r.id async for r in qs] == [1]
        await adm.close()
    asyncio.run(main())

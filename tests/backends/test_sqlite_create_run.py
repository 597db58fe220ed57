"""SQLite's run of creates (``create_run``): a batch of plain Creates written by one
INSERT and one executemany whose rows take the keys following the first, which holds
only while nothing else inserts into the table in between; checked by the last key,
else the run is rolled back and the batch applied the general way, one by one."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from storeroom import Create, QueryLog, generated, open_async_store, open_store, stored


@stored(key="id")
class Note:
    id: int = generated.sequence()
    label: str = ""


# after each insert of a note, one more row: the keys of a run are then not consecutive
SHADOW = ("CREATE TRIGGER shadow AFTER INSERT ON note WHEN NEW.label != 'shadow' "
          "BEGIN INSERT INTO note (label) VALUES ('shadow'); END")


def _add_shadow(path: Path) -> None:
    c = sqlite3.connect(path)
    try:
        c.execute(SHADOW)
        c.commit()
    finally:
        c.close()


def _labels(n: int) -> list[str]:
    return [f"n{i}" for i in range(n)]


def _statements(log: QueryLog) -> list[str]:
    return [r.statement.split()[0].upper() for r in log.records]


@pytest.mark.parametrize("shadowed", [False, True])
def test_items_of_a_run_carry_the_keys_their_rows_took(tmp_path: Path, shadowed: bool) -> None:
    path = tmp_path / "t.db"
    s = open_store(Note, f"sqlite:///{path}")
    try:
        s.create(Note(label="first"))  # the table exists before the trigger is added
        if shadowed:
            _add_shadow(path)
        with QueryLog() as log:
            out = s.edit_batch([Create(Note(label=x)) for x in _labels(5)])
        assert [r.ok for r in out] == [True] * 5
        assert [r.item.label for r in out] == _labels(5)
        for r in out:
            assert s.read(r.item.id) == r.item
        if shadowed:  # one by one after the run rolled back: a key each, a shadow between
            ids = [r.item.id for r in out]
            assert ids == list(range(ids[0], ids[0] + 10, 2))
            assert s.count(label="shadow") == 5
        else:  # the run: the first INSERT alone, the rest in one executemany
            assert _statements(log).count("INSERT") == 2
            assert s.count() == 6
    finally:
        s.close()


@pytest.mark.parametrize("shadowed", [False, True])
async def test_async_items_of_a_run_carry_the_keys_their_rows_took(tmp_path: Path,
                                                                    shadowed: bool) -> None:
    path = tmp_path / "t.db"
    s = open_async_store(Note, f"sqlite:///{path}")
    try:
        await s.create(Note(label="first"))
        if shadowed:
            _add_shadow(path)
        out = await s.edit_batch([Create(Note(label=x)) for x in _labels(5)])
        assert [r.ok for r in out] == [True] * 5
        assert [r.item.label for r in out] == _labels(5)
        for r in out:
            assert await s.read(r.item.id) == r.item
        assert await s.count(label="shadow") == (5 if shadowed else 0)
    finally:
        await s.close()


# racing: runs of creates from processes and threads, each with its own store, single
# creates between them; every run's keys are those its rows took ---------------------------
PROCS, THREADS, BATCHES, SIZE = 4, 3, 6, 40
PATIENT = "busy_timeout=60000&synchronous=NORMAL"


def _create_runs(url: str, who: str) -> list[str]:
    """Runs of creates with single creates between them; the problems found (a failed
    edit, an item unlike the row read back), each ``key label`` written last."""
    problems = []
    with open_store(Note, url) as s:
        for b in range(BATCHES):
            out = s.edit_batch([Create(Note(label=f"{who}-{b}-{i}")) for i in range(SIZE)])
            s.create(Note(label=f"{who}-{b}-single"))
            for r in out:
                if not r.ok or s.read(r.item.id) != r.item:
                    problems.append(f"{who}: {r}")
    return problems


def _in_process(url: str, who: str, queue: Any) -> None:
    queue.put(_create_runs(url, who))


def test_runs_of_creates_race_from_processes_and_threads(tmp_path: Path) -> None:
    import multiprocessing as mp
    import threading
    url = f"sqlite:///{tmp_path}/race.db?{PATIENT}"
    with open_store(Note, url) as s:
        s.create(Note(label="first"))
    ctx = mp.get_context("fork")
    queue = ctx.SimpleQueue()
    procs = [ctx.Process(target=_in_process, args=(url, f"p{p}", queue)) for p in range(PROCS)]
    found: list[str] = []
    threads = [threading.Thread(target=lambda t=t: found.extend(_create_runs(url, f"t{t}")))
               for t in range(THREADS)]
    for p in procs:
        p.start()
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    for _ in procs:
        found.extend(queue.get())
    assert found == []
    with open_store(Note, url) as s:
        every = s.search_all()
        labels = sorted(n.label for n in every)
    writers = [f"p{p}" for p in range(PROCS)] + [f"t{t}" for t in range(THREADS)]
    assert labels == sorted(["first"] + [f"{w}-{b}-{i}" for w in writers
                                         for b in range(BATCHES)
                                         for i in [*range(SIZE), "single"]])

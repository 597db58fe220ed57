"""The items SQL reads build from their rows (the generated ``build_rows`` and
``build``): every row once, in order, observed or not; and a stored value that does not
convert (text another program wrote where a date belongs) is storeroom's typed error
with the converter's as its cause, on a search, a page and a read, sync and async."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from storeroom import QueryLog, generated, open_async_store, open_store, stored
from storeroom.errors import BackendError


@stored(key="id")
class Tick:
    id: int = generated.sequence()
    n: int = 0
    at: datetime | None = None


# the rows of a search, around a driver's usual fetch sizes
ITEMS_CHUNK = 256
COUNTS = [0, 1, ITEMS_CHUNK - 1, ITEMS_CHUNK, ITEMS_CHUNK + 1, 2 * ITEMS_CHUNK + 3]


def _fill(path: Path, n: int) -> None:
    s = open_store(Tick, f"sqlite:///{path}")
    try:
        s.create_tables()
        c = sqlite3.connect(path)
        c.executemany("INSERT INTO tick (n) VALUES (?)", [(i,) for i in range(n)])
        c.commit()
        c.close()
    finally:
        s.close()


@pytest.mark.parametrize("observed", [False, True])
@pytest.mark.parametrize("n", COUNTS)
def test_every_row_once_in_order(tmp_path: Path, n: int, observed: bool) -> None:
    path = tmp_path / "t.db"
    _fill(path, n)
    s = open_store(Tick, f"sqlite:///{path}")
    a = open_async_store(Tick, f"sqlite:///{path}")

    async def read_async() -> list[int]:
        try:
            return [t.n async for t in a.search_all(order_by="id")]
        finally:
            await a.close()
    try:
        if observed:  # an observed search reads its rows as one list: the same items
            with QueryLog():
                got = [t.n for t in s.search_all(order_by="id")]
        else:
            got = [t.n for t in s.search_all(order_by="id")]
    finally:
        s.close()
    assert got == list(range(n))
    assert asyncio.run(read_async()) == list(range(n))


def test_a_value_that_does_not_convert_is_a_backend_error(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    _fill(path, ITEMS_CHUNK + 5)
    c = sqlite3.connect(path)
    c.execute("UPDATE tick SET at = 'not a date' WHERE id = ?", (ITEMS_CHUNK + 2,))
    c.commit()
    c.close()
    s = open_store(Tick, f"sqlite:///{path}")
    a = open_async_store(Tick, f"sqlite:///{path}")
    try:
        with pytest.raises(BackendError) as err:
            list(s.search_all())
        assert isinstance(err.value.__cause__, ValueError)
        with pytest.raises(BackendError) as err:
            s.search(n=ITEMS_CHUNK + 1)
        assert isinstance(err.value.__cause__, ValueError)
        with pytest.raises(BackendError) as err:  # one row's builder as well
            s.read(ITEMS_CHUNK + 2)
        assert isinstance(err.value.__cause__, ValueError)
        assert s.read(1).n == 0  # the other rows read

        async def search_async() -> None:
            try:
                with pytest.raises(BackendError) as aerr:
                    [t async for t in a.search_all()]
                assert isinstance(aerr.value.__cause__, ValueError)
            finally:
                await a.close()
        asyncio.run(search_async())
    finally:
        s.close()

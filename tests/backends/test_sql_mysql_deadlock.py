"""MariaDB: a store's statement in autocommit mode that InnoDB picks as a deadlock's
victim ran as its own transaction, of which nothing was applied: the store runs it again
(``_execute``) instead of handing out a ``BackendError`` ("Deadlock found … try
restarting transaction"). Inside a transaction the error still reaches the caller.

The deadlock is made on purpose: another connection holds a new row of a unique value
in an open transaction, the store's create of the same value waits on it, and the other
connection then inserts into the gap the waiting create guards — InnoDB rolls back the
lighter transaction, the create."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import pymysql
import pytest

from storeroom import field, open_async_store, open_store, stored
from storeroom.backends.sql import testing
from storeroom.errors import Conflict
from tests.servers import skip_or_fail


@stored
class Code:
    id: int
    code: str = field(unique=True)


def _url() -> str:
    reason = testing.unavailable_reason("mysql")
    if reason is not None:
        skip_or_fail(f"mysql: {reason}")
    return testing.fresh_url("mysql", f"t{uuid.uuid4().hex}")


def _other(url: str) -> Any:
    """A second connection (PyMySQL) to the store's database, in a transaction holding a
    new row of code 'k'."""
    parts = urlsplit(url)
    conn = pymysql.connect(host=parts.hostname, port=parts.port, user=parts.username or "root",
                           password=parts.password or "", database=parts.path.lstrip("/"),
                           autocommit=True)
    cur = conn.cursor()
    cur.execute("BEGIN")
    cur.execute("INSERT INTO code (id, code) VALUES (5, 'k')")
    return conn


def _deadlock_then_commit(conn: Any) -> None:
    """Once the store's create waits on the row: the insert that closes the cycle, then
    the commit that lets the create's second run finish."""
    time.sleep(0.5)
    cur = conn.cursor()
    cur.execute("INSERT INTO code (id, code) VALUES (4, 'j')")
    cur.execute("COMMIT")
    conn.close()


def test_sync_create_chosen_as_deadlock_victim_runs_again() -> None:
    url = _url()
    s = open_store(Code, url)
    try:
        for i, c in ((1, "a"), (10, "m"), (20, "z")):
            s.create(Code(id=i, code=c))
        other = _other(url)
        t = threading.Thread(target=_deadlock_then_commit, args=(other,))
        t.start()
        try:
            # run again after the deadlock, it waits for the other's commit and then
            # finds the code taken: the error of a taken code, not of the deadlock
            with pytest.raises(Conflict):
                s.create(Code(id=6, code="k"))
        finally:
            t.join(timeout=30)
        assert sorted(i.code for i in s.search_all()) == ["a", "j", "k", "m", "z"]
        s.create(Code(id=7, code="l"))  # the store's connection is fine
    finally:
        s.close()


def test_async_create_chosen_as_deadlock_victim_runs_again() -> None:
    url = _url()

    async def main() -> None:
        s = open_async_store(Code, url)
        try:
            for i, c in ((1, "a"), (10, "m"), (20, "z")):
                await s.create(Code(id=i, code=c))
            other = _other(url)
            t = threading.Thread(target=_deadlock_then_commit, args=(other,))
            t.start()
            try:
                with pytest.raises(Conflict):
                    await s.create(Code(id=6, code="k"))
            finally:
                t.join(timeout=30)
            assert sorted([i.code async for i in s.search_all()]) == ["a", "j", "k", "m", "z"]
        finally:
            await s.close()
    asyncio.run(main())

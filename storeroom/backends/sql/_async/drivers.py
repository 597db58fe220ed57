"""Driver connections of the server dialects: PostgreSQL (psycopg 3) and MySQL/MariaDB
(PyMySQL, and its asyncio port for async code).

``AsyncDriver`` runs statements with ``conn.execute`` as sqlite3 and psycopg allow;
these subclasses cover what differs. A standalone store's connection runs in
autocommit mode, so a single statement commits by itself and ``begin`` issues ``BEGIN``
explicitly (savepoints inside it keep working). A connection lent by a context stays
in the transaction the context opened.
"""

from __future__ import annotations

from asyncio import sleep
from typing import Any

from ....errors import BackendError
from ....observe import OBSERVERS, async_observed
from .driver import AsyncDriver, _int, _one_rows

IS_ASYNC = True

# MySQL client errors that mean the connection is gone
# (2006 server has gone away, 2013 lost connection, 2014/2045/2055 broken protocol state,
# 1927 connection killed, 4031 disconnected by the server for inactivity)
_MYSQL_GONE = frozenset({2006, 2013, 2014, 2045, 2055, 1927, 4031})

# MySQL's "Deadlock found when trying to get lock; try restarting transaction": InnoDB
# rolled the victim's transaction back. A statement in autocommit mode was its own
# transaction, so it is run again (``_execute``), at most this many times more, after a
# pause that doubles (run again at once, it can meet the same cycle before the other
# transaction has moved on); inside a transaction the whole transaction is gone and the
# error goes to the caller.
_MYSQL_DEADLOCK = 1213
_DEADLOCK_RETRIES = 5
_DEADLOCK_PAUSE_S = 0.005

# the longest multi-row INSERT ``insert_rows`` sends, in characters (at most 1 MB in
# UTF-8, far below the server's max_allowed_packet)
_MAX_STMT = 256_000


class AsyncPgDriver(AsyncDriver):
    """A psycopg ``(Async)Connection``."""

    __slots__ = ()
    system = "postgresql"

    # Rows come back in PostgreSQL's binary format: the server sends int8, float8,
    # bool, numeric, timestamptz, uuid and bytea without formatting them as text and
    # psycopg reads them without parsing (float8 text both ways is the costliest); the
    # values psycopg returns are the same in either format.
    async def one(self, sql: str, params: Any) -> Any:
        """The first row, or None."""
        if OBSERVERS.get():
            return await async_observed(self._site(), sql, params,
                                        lambda: self.one(sql, params), _one_rows)
        cur = await self.c.execute(sql, params, binary=True)
        return await cur.fetchone()

    async def all(self, sql: str, params: Any) -> list[Any]:
        """All rows."""
        if OBSERVERS.get():
            return await async_observed(self._site(), sql, params,
                                        lambda: self.all(sql, params), len)
        cur = await self.c.execute(sql, params, binary=True)
        rows: list[Any] = await cur.fetchall()
        return rows

    async def many(self, sql: str, rows: list[Any]) -> None:
        """Execute once per row of parameters (psycopg pipelines them: one round trip)."""
        if OBSERVERS.get():
            return await async_observed(self._site(), sql, rows,
                                        lambda: self.many(sql, rows), None)
        async with self.c.cursor() as cur:
            await cur.executemany(sql, rows)

    async def copy(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """``COPY ... FROM STDIN`` of these rows: one statement, the rows streamed."""
        if OBSERVERS.get():
            return await async_observed(self._site(), sql, rows,
                                        lambda: self.copy(sql, rows), None)
        async with self.c.cursor() as cur:
            async with cur.copy(sql) as cp:
                for r in rows:
                    await cp.write_row(r)

    async def pin(self) -> None:
        """Prepare a connection a store keeps for itself: autocommit, explicit BEGIN; the
        session's time zone UTC, so that psycopg returns ``timestamptz`` values in UTC
        (storeroom's own) instead of converting each from the server's zone and back
        (storeroom's SQL never depends on the session's zone)."""
        if not self.c.autocommit:
            await self.c.rollback()  # end SQLAlchemy's implicit transaction, if any
            await self.c.set_autocommit(True)
        if self.c.info.parameter_status("TimeZone") != "UTC":
            await self.c.execute("SET TIME ZONE 'UTC'")

    async def unpin(self) -> None:
        """Give the connection back to SQLAlchemy's pool as it was."""
        if not self.broken() and self.c.autocommit:
            await self.c.execute("RESET TIME ZONE")
            await self.c.set_autocommit(False)

    def broken(self) -> bool:
        """True when the connection can no longer be used."""
        return bool(self.c.closed or self.c.broken)


class AsyncMysqlDriver(AsyncDriver):
    """A pymysql / aiomysql connection (no ``conn.execute``: statements run on cursors)."""

    __slots__ = ()
    system = "mysql"

    async def one(self, sql: str, params: Any) -> Any:
        """The first row, or None."""
        if OBSERVERS.get():
            return await async_observed(self._site(), sql, params,
                                        lambda: self.one(sql, params), _one_rows)
        cur = await self.c.cursor()
        try:
            await self._execute(cur, sql, params)
            return await cur.fetchone()
        finally:
            await cur.close()

    async def all(self, sql: str, params: Any) -> list[Any]:
        """All rows."""
        if OBSERVERS.get():
            return await async_observed(self._site(), sql, params,
                                        lambda: self.all(sql, params), len)
        cur = await self.c.cursor()
        try:
            await self._execute(cur, sql, params)
            return list(await cur.fetchall())
        finally:
            await cur.close()

    async def run(self, sql: str, params: Any) -> int:
        """Execute; the number of rows matched (SQLAlchemy connects with FOUND_ROWS)."""
        if OBSERVERS.get():
            return await async_observed(self._site(), sql, params,
                                        lambda: self.run(sql, params), _int)
        cur = await self.c.cursor()
        try:
            await self._execute(cur, sql, params)
            count: int = cur.rowcount
            return count
        finally:
            await cur.close()

    async def insert_id(self, sql: str, params: Any) -> Any:
        """Execute an INSERT; the AUTO_INCREMENT value it generated."""
        if OBSERVERS.get():
            return await async_observed(self._site(), sql, params,
                                        lambda: self.insert_id(sql, params), _one_rows)
        cur = await self.c.cursor()
        try:
            await self._execute(cur, sql, params)
            return cur.lastrowid
        finally:
            await cur.close()

    async def _execute(self, cur: Any, sql: str, params: Any) -> None:
        """``cur.execute``, run again when InnoDB chose this autocommit statement as a
        deadlock's victim (nothing of it was applied: see ``_MYSQL_DEADLOCK``)."""
        tries = 0
        while True:
            try:
                await cur.execute(sql, params)
                return
            except Exception as exc:
                if (self.in_tx or tries >= _DEADLOCK_RETRIES
                        or _mysql_code(exc) != _MYSQL_DEADLOCK):
                    raise
                await sleep(_DEADLOCK_PAUSE_S * 2 ** tries)
                tries += 1

    async def many(self, sql: str, rows: list[Any]) -> None:
        """Execute once per row (pymysql rewrites an INSERT into one multi-row INSERT)."""
        if OBSERVERS.get():
            return await async_observed(self._site(), sql, rows,
                                        lambda: self.many(sql, rows), None)
        cur = await self.c.cursor()
        try:
            await cur.executemany(sql, rows)
        finally:
            await cur.close()

    async def insert_rows(self, head: str, one: str, rows: list[tuple[Any, ...]]
                          ) -> list[tuple[int, int]]:
        """Multi-row INSERTs ``head one, one, ...`` of these rows, each up to
        ``_MAX_STMT`` characters (as PyMySQL's executemany splits them, with the same
        escaping); each statement's first AUTO_INCREMENT value and its row count."""
        cur = await self.c.cursor()
        try:
            out: list[tuple[int, int]] = []
            mogrify = cur.mogrify
            parts: list[str] = []
            size = len(head)
            for r in rows:
                v = mogrify(one, r)
                if parts and size + len(v) + 1 > _MAX_STMT:
                    out.append(await self._insert_run(cur, head + ",".join(parts),
                                                      len(parts)))
                    parts, size = [], len(head)
                parts.append(v)
                size += len(v) + 1
            if parts:
                out.append(await self._insert_run(cur, head + ",".join(parts), len(parts)))
            return out
        finally:
            await cur.close()

    async def _insert_run(self, cur: Any, sql: str, n: int) -> tuple[int, int]:
        if OBSERVERS.get():
            return await async_observed(self._site(), sql, None,
                                        lambda: self._insert_run(cur, sql, n), _second)
        await cur.execute(sql)
        if cur.rowcount != n:
            raise BackendError(f"a multi-row INSERT of {n} rows inserted {cur.rowcount}")
        # a multi-row INSERT's insert id is the value generated for its first row
        return int(cur.lastrowid), n

    async def _sql(self, sql: str) -> None:
        if OBSERVERS.get():
            return await async_observed(self._site(), sql, None, lambda: self._sql(sql))
        cur = await self.c.cursor()
        try:
            await cur.execute(sql)
        finally:
            await cur.close()

    async def begin(self) -> str | None:
        """Open a transaction, or a savepoint inside the open one; the savepoint's name."""
        if self.in_tx:
            self._sp += 1
            name = f"sr_{self._sp}"
            await self._sql(f"SAVEPOINT {name}")
            return name
        await self._sql(self.begin_sql)
        self.in_tx = True
        return None

    async def commit(self, savepoint: str | None) -> None:
        """Commit what ``begin`` opened."""
        if savepoint is not None:
            await self._sql(f"RELEASE SAVEPOINT {savepoint}")
            return
        self.in_tx = False
        await self._sql("COMMIT")

    async def rollback(self, savepoint: str | None) -> None:
        """Roll back what ``begin`` opened."""
        if savepoint is not None:
            await self._sql(f"ROLLBACK TO SAVEPOINT {savepoint}")
            await self._sql(f"RELEASE SAVEPOINT {savepoint}")
            return
        self.in_tx = False
        await self._sql("ROLLBACK")

    async def pin(self) -> None:
        """Prepare a connection a store keeps for itself: autocommit, explicit BEGIN."""
        await self.c.rollback()
        await self.c.autocommit(True)

    async def unpin(self) -> None:
        """Give the connection back to SQLAlchemy's pool as it was."""
        if not self.broken():
            await self.c.autocommit(False)

    def broken(self) -> bool:
        """True when the connection can no longer be used."""
        return bool(getattr(self.c, "_sock", None) is None and
                    getattr(self.c, "_writer", None) is None)


def _second(got: tuple[int, int]) -> int:
    return got[1]


def driver_class(dialect: str) -> type[AsyncDriver]:
    """The driver class for a SQLAlchemy dialect name."""
    if dialect == "postgresql":
        return AsyncPgDriver
    if dialect in ("mysql", "mariadb"):
        return AsyncMysqlDriver
    if dialect == "sqlite" and IS_ASYNC:
        # statements on the event loop when they cannot wait (sqlite_loop); the sync
        # store calls sqlite3 directly already
        from ..sqlite_loop import loop_driver_class
        cls: type[AsyncDriver] = loop_driver_class()
        return cls
    return AsyncDriver


def make_driver(dbapi_conn: Any, dialect: str, in_tx: bool = False,
                begin_sql: str = "BEGIN", info: Any = None) -> AsyncDriver:
    """A driver over a DB-API connection of a dialect (``in_tx``: a transaction is open).

    For a connection lent by a context (its transaction open, managed by SQLAlchemy);
    ``begin_sql`` opens the store's own transactions in an ``autocommit=True`` context;
    ``info``: the pool's record of the connection (``PoolProxiedConnection.info``).
    """
    return driver_class(dialect)(dbapi_conn, in_tx, begin_sql, None, info)


def _mysql_code(exc: BaseException) -> int | None:
    """The MySQL error code of a PyMySQL error (``(code, message)``), else None."""
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def is_connection_lost(exc: BaseException) -> bool:
    """True when a driver error means the connection is gone (not a bad statement)."""
    names = {c.__name__ for c in type(exc).__mro__}
    if "OperationalError" in names or "InterfaceError" in names:
        code = _mysql_code(exc)
        if code is not None:  # pymysql: (code, message)
            return code in _MYSQL_GONE
        mod = type(exc).__module__
        if mod.startswith("psycopg"):
            # psycopg: OperationalError is connection-level unless it carries a SQLSTATE
            # of a statement (e.g. 57014 query canceled, 40P01 deadlock)
            state = getattr(getattr(exc, "diag", None), "sqlstate", None)
            return state is None or state.startswith(("08", "57P"))
        return "InterfaceError" in names
    return False

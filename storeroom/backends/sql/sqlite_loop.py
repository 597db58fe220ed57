"""The async SQLite driver: a statement runs on the event loop when SQLite cannot make it
wait, on the connection's thread when it could.

aiosqlite runs every call (``execute``, then ``fetchone``) on the connection's own
thread: each is a thread hop of 100-300 µs, against 4-10 µs for the statement itself.
This driver calls the stdlib ``sqlite3`` connection behind aiosqlite directly instead:

- In WAL mode (and on an in-memory database, which no other connection shares) a
  statement waits for nothing but the write lock, and only when it starts a write
  transaction: a connection a store keeps for itself runs with ``busy_timeout=0``, so a
  statement that would wait fails at once with ``SQLITE_BUSY`` instead, and is run again
  on the connection's thread with the engine's real busy timeout. Such a statement did
  nothing (SQLite takes the write lock before it changes anything), so running it again
  is what SQLite's busy handler would have done. The event loop never waits on a lock.
- A connection lent by a context keeps the busy timeout SQLAlchemy uses on it: inside
  a transaction that holds the write lock already (``BEGIN IMMEDIATE`` / ``EXCLUSIVE``,
  the default) nothing can wait, and its statements run inline as they are; otherwise
  (an ``autocommit=True`` context, a read-only engine's deferred transaction) each
  statement run inline is framed by ``PRAGMA busy_timeout=0`` and back, with the same
  fallback to the thread.
- ``synchronous=FULL`` (storeroom's default) fsyncs the WAL at every commit: 4 ms on this
  project's reference machine, far more than a thread hop. A statement that commits (a
  write outside a transaction, ``COMMIT``) then runs on the thread, so that the loop
  does not stall for the disk; with ``NORMAL`` / ``OFF`` a commit only writes to the OS
  cache and runs inline. (A WAL auto-checkpoint, once per 1000 pages written, runs in
  the committing statement: with ``NORMAL`` it may run inline; it never waits on a lock.)
- A read runs inline for at most ``READ_BUDGET_S``: a progress handler interrupts a
  longer one (an unindexed count or sort of a large table), and it runs again on the
  thread (a SELECT interrupted changed nothing, and leaves the transaction as it was);
  rows already fetched by then stay, and the thread fetches the rest from the same
  cursor. So a long query costs the loop one budget, not its whole run.
- Other journal modes (rollback journals lock the whole file, readers wait for
  writers): every statement runs on the thread, one hop per statement.

The connection is used from two threads (``check_same_thread=False``, storeroom's
engines set it): a per-connection ``threading.Lock`` (in SQLAlchemy's connection record
``info``, see ``engines.SqliteConnectionInfo``) keeps the loop and the thread off it at
the same time; the loop only ever tries it without waiting, and hops to the thread
(queued behind whatever holds it) when it is taken. SQLAlchemy's own calls on the
connection (a context's BEGIN, COMMIT, DDL) go through aiosqlite's queue without it: they
are awaited by the same task, never concurrently with this driver's. A call on the
thread whose task is cancelled goes on there; the connection is then discarded
(``broken``), as a BEGIN that still succeeds would leave a transaction nobody ends. A
context's BEGIN runs on the loop too (``engines._begin_on_loop``). There is no sync
twin: the sync store calls sqlite3 directly already.
"""

from __future__ import annotations

import sqlite3
from time import perf_counter
from typing import Any

from ...observe import OBSERVERS, async_observed
from ._async.driver import AsyncDriver, _int, _one_rows
from .engines import SQLITE_INFO, SqliteConnectionInfo

_SQLITE_BUSY = 5
_SQLITE_INTERRUPT = 9
READ_BUDGET_S = 0.01
"""How long a read may run on the event loop before it goes on on the thread."""
_CHUNK = 256  # rows fetched between two looks at the clock
_STEPS = 1000  # SQLite VM instructions between two calls of the progress handler
_HOP = object()  # "not run inline: hop to the thread"
_LOCKING_BEGINS = ("BEGIN IMMEDIATE", "BEGIN EXCLUSIVE")
_READS: dict[str, bool] = {}  # statement -> is a SELECT (cannot commit anything)


def _reads(sql: str) -> bool:
    r = _READS.get(sql)
    if r is None:
        if len(_READS) > 4096:  # statements are compiled once per store: a bound, not a cache
            _READS.clear()
        r = _READS[sql] = sql.lstrip()[:6].upper() == "SELECT"
    return r


def is_busy(exc: BaseException) -> bool:
    """True for sqlite3's SQLITE_BUSY (any extended code): the statement would have waited."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF == _SQLITE_BUSY
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def _one(db: sqlite3.Connection, sql: str, params: Any) -> Any:
    return db.execute(sql, params).fetchone()


def _all(db: sqlite3.Connection, sql: str, params: Any) -> Any:
    return db.execute(sql, params).fetchall()


class _Partial:
    """Rows an inline read fetched before its budget ran out, and its open cursor."""

    __slots__ = ("rows", "cur")

    def __init__(self, rows: list[Any], cur: sqlite3.Cursor) -> None:
        self.rows = rows
        self.cur = cur


def _all_chunked(db: sqlite3.Connection, sql: str, params: Any, until: float) -> Any:
    """All rows, or (past ``until``, at a chunk's end) a ``_Partial`` to finish elsewhere."""
    cur = db.execute(sql, params)
    rows = cur.fetchmany(_CHUNK)
    if len(rows) < _CHUNK:
        return rows
    while perf_counter() < until:
        more = cur.fetchmany(_CHUNK)
        rows += more
        if len(more) < _CHUNK:
            return rows
    return _Partial(rows, cur)


def _rest(db: sqlite3.Connection, sql: str, part: Any) -> Any:
    part.rows += part.cur.fetchall()
    return part.rows


def _run(db: sqlite3.Connection, sql: str, params: Any) -> Any:
    return db.execute(sql, params).rowcount


def _many(db: sqlite3.Connection, sql: str, rows: Any) -> Any:
    db.executemany(sql, rows)


def _insert_id(db: sqlite3.Connection, sql: str, params: Any) -> Any:
    return db.execute(sql, params).lastrowid


def _bare(db: sqlite3.Connection, sql: str, params: Any) -> Any:
    db.execute(sql)


class AsyncSqliteDriver(AsyncDriver):
    """An aiosqlite connection driven through its ``sqlite3`` connection (module docs)."""

    __slots__ = ("aio", "db", "info", "pinned", "held", "lost")

    def __init__(self, conn: Any, in_tx: bool = False, begin_sql: str = "BEGIN",
                 sa: Any = None, info: Any = None) -> None:
        super().__init__(conn, in_tx, begin_sql, sa)
        self.aio = conn  # the aiosqlite.Connection: its thread, for what may wait
        self.db: sqlite3.Connection = conn._connection
        state = info.get(SQLITE_INFO) if info is not None else None
        self.info: SqliteConnectionInfo | None = (
            state if isinstance(state, SqliteConnectionInfo) else None)
        self.pinned = False  # busy_timeout=0 while the store keeps the connection
        # a transaction that holds the write lock is open: nothing it runs can wait (WAL)
        self.held = in_tx and begin_sql in _LOCKING_BEGINS
        self.lost = False  # a call on the thread was cancelled: its outcome is unknown

    # where a statement runs ----------------------------------------------------------
    def _now(self, fn: Any, sql: str, params: Any, commits: bool) -> Any:
        """Run ``fn`` inline when it cannot wait; ``_HOP`` when it must go to the thread."""
        info = self.info
        if info is None or not info.inline or (commits and info.syncs):
            return _HOP
        if self.pinned or self.held:  # no busy_timeout toggle: ``_inline``'s short path
            lock = info.lock
            if not lock.acquire(False):
                return _HOP
            try:
                return fn(self.db, sql, params)
            except sqlite3.OperationalError as exc:
                # SQLITE_BUSY with busy_timeout=0: it would have waited, and did nothing
                if not (self.pinned and is_busy(exc)):
                    raise
            finally:
                lock.release()
            return _HOP
        return self._inline(info, fn, sql, params, False)

    def _read_now(self, fn: Any, sql: str, params: Any) -> Any:
        """``_now`` for a SELECT, interrupted past ``READ_BUDGET_S`` (then ``_HOP``);
        ``fn`` None: all rows, fetched by chunks (past the budget: a ``_Partial``)."""
        info = self.info
        if info is None or not info.inline:
            return _HOP
        return self._inline(info, fn, sql, params, True)

    def _inline(self, info: SqliteConnectionInfo, fn: Any, sql: str, params: Any,
                read: bool) -> Any:
        lock = info.lock
        if not lock.acquire(False):  # the thread is on the connection: queue behind it
            return _HOP
        db = self.db
        # a store's connection has busy_timeout=0 already; in a transaction holding the
        # write lock nothing waits; else (a context's connection outside such a
        # transaction) busy_timeout=0 for this statement: two PRAGMAs, not a hop
        toggle = not (self.pinned or self.held)
        now = 0.0
        try:
            if read:
                if not info.watched:
                    db.set_progress_handler(_watch(info), _STEPS)
                    info.watched = True
                now = perf_counter()
                info.deadline = now + 2 * READ_BUDGET_S  # the hard stop, past a chunk's end
            if toggle:
                db.execute("PRAGMA busy_timeout=0")
            try:
                if fn is None:
                    return _all_chunked(db, sql, params, now + READ_BUDGET_S)
                return fn(db, sql, params)
            finally:
                if toggle:
                    db.execute(f"PRAGMA busy_timeout={info.busy_ms}")
        except sqlite3.OperationalError as exc:
            code = getattr(exc, "sqlite_errorcode", None)
            interrupted = read and code == _SQLITE_INTERRUPT and info.deadline != 0.0
            # SQLITE_BUSY with busy_timeout=0: it would have waited, and did nothing
            if not (interrupted or ((self.pinned or toggle) and is_busy(exc))):
                raise
        finally:
            info.deadline = 0.0
            lock.release()
        return _HOP

    async def _hop(self, fn: Any, sql: str, params: Any) -> Any:
        """Run ``fn`` on the connection's thread (waiting there as long as the engine's
        busy timeout says)."""
        try:
            return await self.aio._execute(self._on_thread, fn, sql, params)
        except BaseException as exc:
            if not isinstance(exc, Exception):
                # cancelled: the statement goes on on the thread (a BEGIN may yet open a
                # transaction nobody will end), so the connection is not used again
                self.lost = True
            raise

    def broken(self) -> bool:
        """True once a call on the thread was cancelled (the store discards the connection)."""
        return self.lost

    def _on_thread(self, fn: Any, sql: str, params: Any) -> Any:
        db = self.db
        info = self.info
        if info is None:
            return fn(db, sql, params)
        with info.lock:
            if not self.pinned:
                return fn(db, sql, params)
            db.execute(f"PRAGMA busy_timeout={info.busy_ms}")
            try:
                return fn(db, sql, params)
            finally:
                db.execute("PRAGMA busy_timeout=0")

    async def _do(self, fn: Any, sql: str, params: Any, commits: bool) -> Any:
        r = self._now(fn, sql, params, commits)
        if r is _HOP:
            r = await self._hop(fn, sql, params)
        return r

    # the driver calls ----------------------------------------------------------------
    async def one(self, sql: str, params: Any) -> Any:
        """The first row, or None."""
        if OBSERVERS.get():
            return await async_observed(self._site(), sql, params,
                                        lambda: self.one(sql, params), _one_rows)
        if _reads(sql):
            info = self.info
            if info is not None and info.watched and (self.pinned or self.held) \
                    and info.lock.acquire(False):
                # the hot path of a read by key: ``_inline`` for a read on a connection
                # that needs no busy_timeout toggle, without its layers of calls
                try:
                    info.deadline = perf_counter() + 2 * READ_BUDGET_S
                    return self.db.execute(sql, params).fetchone()
                except sqlite3.OperationalError as exc:
                    # past the budget, or SQLITE_BUSY with busy_timeout=0 (a WAL
                    # reader can meet one, e.g. during a checkpoint's restart): it did
                    # nothing, and runs again on the thread
                    if getattr(exc, "sqlite_errorcode", None) != _SQLITE_INTERRUPT \
                            and not (self.pinned and is_busy(exc)):
                        raise
                    r = _HOP
                finally:
                    info.deadline = 0.0
                    info.lock.release()
            else:
                r = self._read_now(_one, sql, params)
        else:
            r = self._now(_one, sql, params, not self.in_tx)
        if r is _HOP:
            r = await self._hop(_one, sql, params)
        return r

    async def all(self, sql: str, params: Any) -> list[Any]:
        """All rows."""
        if OBSERVERS.get():
            return await async_observed(self._site(), sql, params,
                                        lambda: self.all(sql, params), len)
        if _reads(sql):
            r = self._read_now(None, sql, params)
            if type(r) is _Partial:  # past the budget: the thread fetches the rest
                r = await self._hop(_rest, sql, r)
        else:
            r = self._now(_all, sql, params, not self.in_tx)
        if r is _HOP:
            r = await self._hop(_all, sql, params)
        rows: list[Any] = r
        return rows

    async def run(self, sql: str, params: Any) -> int:
        """Execute; the number of rows changed."""
        if OBSERVERS.get():
            return await async_observed(self._site(), sql, params,
                                        lambda: self.run(sql, params), _int)
        r = self._now(_run, sql, params, not self.in_tx and not _reads(sql))
        if r is _HOP:
            r = await self._hop(_run, sql, params)
        count: int = r
        return count

    async def many(self, sql: str, rows: list[Any]) -> None:
        """Execute once per row of parameters."""
        if OBSERVERS.get():
            return await async_observed(self._site(), sql, rows,
                                        lambda: self.many(sql, rows), None)
        await self._do(_many, sql, rows, not self.in_tx)

    async def insert_id(self, sql: str, params: Any) -> Any:
        """Execute an INSERT; the autoincrement value it generated."""
        if OBSERVERS.get():
            return await async_observed(self._site(), sql, params,
                                        lambda: self.insert_id(sql, params), _one_rows)
        return await self._do(_insert_id, sql, params, not self.in_tx)

    async def pin(self) -> None:
        """Keep the connection for the store: ``busy_timeout=0``, so that a statement run
        inline fails at once instead of waiting (then it is run again on the thread)."""
        info = self.info
        if info is None or not info.inline or self.pinned:
            return
        if not self._busy_now(info, 0):
            await self.aio._execute(self._set_busy, 0)
        self.pinned = True

    async def unpin(self) -> None:
        """Give the connection back to SQLAlchemy's pool with its real busy timeout."""
        info = self.info
        if info is None or not self.pinned:
            return
        self.pinned = False
        if not self._busy_now(info, info.busy_ms):
            await self.aio._execute(self._set_busy, info.busy_ms)

    def _busy_now(self, info: SqliteConnectionInfo, ms: int) -> bool:
        """Set the busy timeout on the loop (a connection setting: it waits for nothing)
        unless the thread is on the connection (False: then the caller hops)."""
        if not info.lock.acquire(False):
            return False
        try:
            self.db.execute(f"PRAGMA busy_timeout={ms}")
        finally:
            info.lock.release()
        return True

    def _set_busy(self, ms: int) -> None:
        info = self.info
        assert info is not None
        with info.lock:
            self.db.execute(f"PRAGMA busy_timeout={ms}")

    async def begin(self) -> str | None:
        """Open a transaction, or a savepoint inside the open one; the savepoint's name."""
        if OBSERVERS.get():
            sql = f"SAVEPOINT sr_{self._sp + 1}" if self.in_tx else self.begin_sql
            return await async_observed(self._site(), sql, None, self.begin)
        if self.in_tx:
            self._sp += 1
            name = f"sr_{self._sp}"
            await self._do(_bare, f"SAVEPOINT {name}", None, False)
            return name
        await self._do(_bare, self.begin_sql, None, False)
        self.in_tx = True
        self.held = self.begin_sql in _LOCKING_BEGINS
        return None

    async def commit(self, savepoint: str | None) -> None:
        """Commit what ``begin`` opened (``COMMIT`` on the thread when it fsyncs)."""
        if OBSERVERS.get():
            sql = f"RELEASE SAVEPOINT {savepoint}" if savepoint else "COMMIT"
            return await async_observed(self._site(), sql, None,
                                        lambda: self.commit(savepoint))
        if savepoint is not None:
            await self._do(_bare, f"RELEASE SAVEPOINT {savepoint}", None, False)
            return
        self.in_tx = False
        try:
            await self._do(_bare, "COMMIT", None, True)
        finally:
            self.held = False

    async def rollback(self, savepoint: str | None) -> None:
        """Roll back what ``begin`` opened."""
        if OBSERVERS.get():
            sql = f"ROLLBACK TO SAVEPOINT {savepoint}" if savepoint else "ROLLBACK"
            return await async_observed(self._site(), sql, None,
                                        lambda: self.rollback(savepoint))
        if savepoint is not None:
            await self._do(_bare, f"ROLLBACK TO SAVEPOINT {savepoint}", None, False)
            await self._do(_bare, f"RELEASE SAVEPOINT {savepoint}", None, False)
            return
        self.in_tx = False
        try:
            await self._do(_bare, "ROLLBACK", None, False)
        finally:
            self.held = False


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _wanted(cores: list[Any]) -> list[tuple[str, set[tuple[tuple[str, ...], bool]]]] | None:
    """The tables of ``cores`` with their indexes as ``create_missing`` compares them
    (columns in order, uniqueness); None when one is outside what it compares that way
    (a schema-qualified table, an index over an expression)."""
    out = []
    for core in cores:
        for table in core.metadata.sorted_tables:
            if table.schema is not None:
                return None
            ixs = set()
            for ix in table.indexes:
                if len(ix.expressions) != len(ix.columns):
                    return None
                ixs.add((tuple(c.name for c in ix.columns), bool(ix.unique)))
            out.append((table.name, ixs))
    return out


def _present(db: sqlite3.Connection, wanted: list[tuple[str, set[Any]]]) -> bool:
    """True when every table of ``wanted`` exists with its indexes (on the thread)."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for name, ixs in wanted:
        if name not in tables:
            return False
        if not ixs:
            continue
        have = set()
        # as SQLAlchemy's get_indexes: the automatic indexes of UNIQUE / PRIMARY KEY
        # constraints do not count
        for row in db.execute(f"PRAGMA main.index_list({_quoted(name)})").fetchall():
            ix_name, unique = row[1], row[2]
            if str(ix_name).startswith("sqlite_autoindex"):
                continue
            cols = tuple(r[2] for r in db.execute(f"PRAGMA main.index_info({_quoted(ix_name)})"))
            have.add((cols, bool(unique)))
        if not ixs <= have:
            return False
    return True


async def tables_present(conn: Any, cores: list[Any]) -> bool:
    """True when the tables of ``cores`` and their indexes exist already on the
    database of ``conn`` (an async SQLAlchemy connection to SQLite): then
    ``ddl.create_all`` would create nothing, and need not run.

    One call on the connection's thread, instead of SQLAlchemy's reflection through
    aiosqlite (three thread hops a statement) in a transaction of its own that takes
    the write lock (BEGIN IMMEDIATE, COMMIT): the first use of every async store paid
    a dozen hops for it. It only reads (on the thread, so that a read waiting for a
    lock in a rollback-journal database does not wait on the loop); False (create as
    before) when anything is missing or the check cannot tell.
    """
    wanted = _wanted(cores)
    if wanted is None:
        return False
    raw = await conn.get_raw_connection()
    aio = raw.driver_connection
    db = getattr(aio, "_connection", None)
    run = getattr(aio, "_execute", None)
    if not isinstance(db, sqlite3.Connection) or not callable(run):
        return False
    info = raw.info.get(SQLITE_INFO)
    lock = info.lock if isinstance(info, SqliteConnectionInfo) else None

    def check(db: sqlite3.Connection) -> bool:
        if lock is None:
            return _present(db, wanted)
        with lock:
            return _present(db, wanted)

    present: bool = await run(check, db)
    return present


def tables_present_sync(conn: Any, cores: list[Any]) -> bool:
    """``tables_present`` of a sync SQLAlchemy connection to SQLite: read on the caller's
    thread (the connection's own busy timeout applies); False (create as before) when
    anything is missing or the check cannot tell, a read refused by a lock included."""
    wanted = _wanted(cores)
    if wanted is None:
        return False
    db = getattr(conn.connection, "driver_connection", None)
    if not isinstance(db, sqlite3.Connection):
        return False
    try:
        return _present(db, wanted)
    except sqlite3.Error:
        return False  # e.g. locked: create_all decides, under the DDL lock


def _watch(info: SqliteConnectionInfo) -> Any:
    """The connection's progress handler: true (interrupt) once a read running on the
    event loop is past its deadline; statements on the thread have none."""
    def check() -> bool:
        deadline = info.deadline
        return deadline != 0.0 and perf_counter() > deadline
    return check


def loop_driver_class() -> Any:
    """The async SQLite driver class: ``AsyncSqliteDriver`` when aiosqlite exposes what it
    needs (its ``sqlite3`` connection and its thread), else the plain aiosqlite driver."""
    try:
        import aiosqlite
    except ImportError:  # pragma: no cover - the async SQLite engine needs it anyway
        return AsyncDriver
    conn = aiosqlite.Connection
    if callable(getattr(conn, "_execute", None)):
        return AsyncSqliteDriver
    return AsyncDriver  # pragma: no cover - another aiosqlite: one hop per call

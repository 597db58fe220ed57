"""SQLAlchemy engines from storeroom URLs, set up the way storeroom needs them.

SQLite: the driver runs in autocommit mode and storeroom (or SQLAlchemy's ``begin``
event) emits ``BEGIN`` itself, the documented recipe that makes SAVEPOINT and
transactional DDL work; WAL, a busy timeout and storeroom's SQL functions are set on
every new connection. ``docs/sql.md`` documents the URL options and what each gives.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
import weakref
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url

from ..drivers import require_module
from .dialects import register_sqlite_functions

# synchronous=FULL: in WAL mode every commit fsyncs the WAL, so an acknowledged commit
# survives a power loss (SQLite's own default; NORMAL is the documented opt-in)
SQLITE_DEFAULT_PRAGMAS = {"busy_timeout": "5000", "journal_mode": "WAL", "synchronous": "FULL",
                          "foreign_keys": "ON"}

# the values each SQLite URL option accepts (they are interpolated into PRAGMA / BEGIN)
_SQLITE_CHOICES = {
    "journal_mode": ("DELETE", "TRUNCATE", "PERSIST", "MEMORY", "WAL", "OFF"),
    "synchronous": ("OFF", "NORMAL", "FULL", "EXTRA", "0", "1", "2", "3"),
    "foreign_keys": ("ON", "OFF", "1", "0", "TRUE", "FALSE"),
    "transaction_mode": ("DEFERRED", "IMMEDIATE", "EXCLUSIVE"),
}
SQLITE_OPTIONS = (*_SQLITE_CHOICES, "busy_timeout")
"""The storeroom options a SQLite URL (or ``add_engine`` / ``open_store`` keyword) takes."""

DEFAULT_TRANSACTION_MODE = "IMMEDIATE"

AUTOCOMMIT_OPTION = "storeroom_autocommit"
"""Execution option on the connections of an ``autocommit=True`` context: no BEGIN."""

BEGIN_OPTION = "storeroom_begin"
FOREIGN_KEYS_OPTION = "storeroom_foreign_keys"
"""Execution option of a SQLite engine: False when its FOREIGN KEYs are off
(``foreign_keys=OFF``), so that storeroom checks references itself there."""
"""Engine execution option: the statement that opens a transaction (SQLite:
``BEGIN IMMEDIATE`` by default, see ``transaction_mode``; elsewhere ``BEGIN``)."""


SQLITE_INFO = "storeroom_sqlite"
"""Key of ``SqliteConnectionInfo`` in a SQLite connection's pool record ``info``."""


class SqliteConnectionInfo:
    """What the async SQLite driver (``sql.sqlite_loop``) must know of one connection.

    ``inline``: no statement can wait on another connection's lock except to start a
    write (WAL mode, or an in-memory database no other connection shares); ``syncs``:
    a commit fsyncs (``synchronous=FULL``/``EXTRA`` on a file); ``busy_ms``: the
    engine's busy timeout; ``lock``: held by whichever thread is using the connection;
    ``deadline``: when a read running on the event loop is interrupted (0: never), by
    the progress handler the async driver installs once (``watched``).
    """

    __slots__ = ("inline", "syncs", "busy_ms", "lock", "deadline", "watched")

    def __init__(self, inline: bool, syncs: bool, busy_ms: int) -> None:
        self.inline = inline
        self.syncs = syncs
        self.busy_ms = busy_ms
        self.lock = threading.Lock()
        self.deadline = 0.0
        self.watched = False


# an async engine's connection info by aiosqlite connection (the dialect's commit and
# rollback see only the DB-API connection, not its pool record)
_ASYNC_INFO: weakref.WeakKeyDictionary[Any, SqliteConnectionInfo] = weakref.WeakKeyDictionary()


def begin_statement(engine_or_conn: Any) -> str:
    """The statement storeroom opens a transaction with on this engine or connection."""
    sync = getattr(engine_or_conn, "sync_connection", None) or getattr(
        engine_or_conn, "sync_engine", engine_or_conn)  # behind an async engine/connection
    statement: str = sync.get_execution_options().get(BEGIN_OPTION, "BEGIN")
    return statement


def is_sql_url(url: str) -> bool:
    """True for URLs of the SQL backends (SQLite, PostgreSQL, MySQL/MariaDB)."""
    return dialect_name(url) in ("sqlite", "postgresql", "mysql")


def dialect_name(url: str) -> str:
    """``sqlite`` / ``postgresql`` / ``mysql`` for a storeroom or SQLAlchemy URL."""
    scheme = urlsplit(url).scheme.lower().split("+", 1)[0]
    return {"postgres": "postgresql", "mariadb": "mysql"}.get(scheme, scheme)


def sqlite_option(name: str, value: Any) -> str:
    """A SQLite URL option's value, checked (``ValueError`` naming what it accepts)."""
    text = str(value).strip().upper()
    if name == "busy_timeout":
        try:
            ms = int(text)
        except ValueError:
            ms = -1
        if ms < 0:
            raise ValueError(f"SQLite busy_timeout must be milliseconds (an int >= 0), "
                             f"not {value!r}")
        return str(ms)
    choices = _SQLITE_CHOICES[name]
    if text not in choices:
        raise ValueError(f"SQLite {name} must be one of {', '.join(choices)}, not {value!r}")
    return text


def sqlalchemy_url(url: str, *, is_async: bool) -> tuple[str, dict[str, str]]:
    """The SQLAlchemy URL with the right driver, and storeroom's own options taken out."""
    u = make_url(url)
    name = dialect_name(url)
    query = dict(u.query)
    ours: dict[str, str] = {}
    if name == "sqlite":
        for k in list(query):
            if k in SQLITE_OPTIONS:
                ours[k] = sqlite_option(k, query.pop(k))
        driver = "aiosqlite" if is_async else "pysqlite"
    elif name == "postgresql":
        driver = "psycopg"
    elif name == "mysql":
        driver = "aiomysql" if is_async else "pymysql"
        query.setdefault("charset", "utf8mb4")
    else:
        raise ValueError(f"not a SQL URL: {url!r}")
    if "+" in u.drivername:  # an explicit driver is the user's choice
        driver = u.drivername.split("+", 1)[1]
    u = u.set(drivername=f"{name}+{driver}", query=query)
    return u.render_as_string(hide_password=False), ours


def configure_sqlite(engine: Any, options: dict[str, str], read_only: bool = False) -> None:
    """Autocommit driver + explicit BEGIN, pragmas and functions on every connection.

    ``options``: checked SQLite URL options (pragmas and ``transaction_mode``). A
    transaction begins ``BEGIN IMMEDIATE`` by default: it takes the write lock when it
    starts, waiting up to ``busy_timeout`` for it, instead of failing at once with
    "database is locked" when a transaction that already read tries to write. A
    read-only engine begins ``BEGIN`` (deferred: it never takes the write lock) and its
    connections also get ``PRAGMA query_only`` as a second line of defence behind the
    context layer's guard. In-memory databases keep their journal mode (WAL needs a file).
    """
    sync_engine = getattr(engine, "sync_engine", engine)
    settings = {**SQLITE_DEFAULT_PRAGMAS, **options}
    mode = settings.pop("transaction_mode", DEFAULT_TRANSACTION_MODE)
    memory = sync_engine.url.database in (None, "", ":memory:")
    if memory:
        settings.pop("journal_mode", None)
    if sys.platform == "darwin" and settings["synchronous"] in ("FULL", "EXTRA", "2", "3"):
        settings["fullfsync"] = "ON"  # macOS: fsync alone does not reach the disk
    if read_only:
        settings["query_only"] = "ON"
        mode = "DEFERRED"
    begin = "BEGIN" if mode == "DEFERRED" else f"BEGIN {mode}"
    sync_engine.update_execution_options(**{
        BEGIN_OPTION: begin,
        FOREIGN_KEYS_OPTION: str(settings.get("foreign_keys", "ON")).upper() in ("ON", "1", "TRUE")})

    journal = settings.pop("journal_mode", None)
    wait_s = int(settings["busy_timeout"]) / 1000

    def _setup(db: Any) -> str:
        # on a sqlite3 connection (or, without aiosqlite's thread, the async adapter):
        # the pragmas and storeroom's functions; the journal mode SQLite is in
        db.isolation_level = None
        cur = db.cursor()
        try:
            # the busy timeout first (a journal mode switch waits as long), the journal
            # mode before query_only (a read-only engine may open a new file first)
            cur.execute(f"PRAGMA busy_timeout={settings['busy_timeout']}")
            if journal is not None:
                set_journal_mode(cur, journal, wait_s)
            for k, v in settings.items():
                cur.execute(f"PRAGMA {k}={v}")
            # what the async driver may run on the event loop (the mode SQLite is in,
            # not the one asked for: a memory database stays in "memory")
            cur.execute("PRAGMA journal_mode")
            current = str(cur.fetchone()[0]).lower()
        finally:
            cur.close()
        register_sqlite_functions(db)
        return current

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        aio = getattr(dbapi_conn, "driver_connection", None)
        if aio is None or isinstance(aio, sqlite3.Connection):
            current = _setup(dbapi_conn)
        else:
            current = _setup_on_thread(aio, dbapi_conn, _setup)
        info = record.info[SQLITE_INFO] = SqliteConnectionInfo(
            inline=memory or current == "wal",
            syncs=not memory and settings["synchronous"] in ("FULL", "EXTRA", "2", "3"),
            busy_ms=int(settings["busy_timeout"]))
        if aio is not None and not isinstance(aio, sqlite3.Connection):
            _ASYNC_INFO[aio] = info

    if sync_engine is not engine:  # an async engine: its commits and rollbacks, too
        _end_on_loop(sync_engine.dialect)

    @event.listens_for(sync_engine, "reset")
    def _on_reset(dbapi_conn: Any, record: Any, reset_state: Any) -> None:
        # the pool's reset (its own is off: pool_reset_on_return=None, see
        # create_sql_engine) rolls back only a connection that is in a transaction: a
        # context's connection, committed, goes back without aiosqlite's thread hop
        if getattr(reset_state, "terminate_only", False):
            return  # the connection is being closed
        db = getattr(getattr(dbapi_conn, "driver_connection", None), "_connection", dbapi_conn)
        if isinstance(db, sqlite3.Connection) and not db.in_transaction:
            return
        dbapi_conn.rollback()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn._execution_options
        if options.get(AUTOCOMMIT_OPTION):
            return
        # a connection may begin otherwise than its engine (storeroom's DDL: IMMEDIATE)
        statement = options.get(BEGIN_OPTION, begin)
        if not _begin_on_loop(conn, statement):
            conn.exec_driver_sql(statement)


def _setup_on_thread(aio: Any, adapter: Any, setup: Any) -> str:
    """``setup`` of a new aiosqlite connection in one call on its thread.

    Through SQLAlchemy's adapter each statement of it is three thread hops (cursor,
    execute, fetch) and each function one: a dozen hops of 100-300 µs on the first
    use of every connection. Here it runs on the ``sqlite3`` connection, on
    aiosqlite's own thread (the connect event runs in SQLAlchemy's greenlet, which
    awaits it): one hop, and a journal mode switch that has to wait for its lock waits
    there, not on the event loop. An aiosqlite without that thread's queue (or
    without its ``sqlite3`` connection) gets the adapter's statements."""
    db = getattr(aio, "_connection", None)
    run = getattr(aio, "_execute", None)
    if not isinstance(db, sqlite3.Connection) or not callable(run):
        return str(setup(adapter))
    from sqlalchemy import util
    wait = getattr(util, "await_", None) or util.await_only  # (2.0 has only the old name)
    return str(wait(run(setup, db)))


def _end_on_loop(dialect: Any) -> None:
    """An async SQLite engine's COMMIT and ROLLBACK on the event loop when they do not
    wait: on this engine's own dialect instance, its ``do_commit`` / ``do_rollback`` run
    the statement on the ``sqlite3`` connection instead of through aiosqlite's thread
    (a hop at the end of every context). Neither waits for a lock in WAL mode; a COMMIT
    that fsyncs (``synchronous=FULL``) still goes to the thread, as in ``sqlite_loop``.
    """
    plain_commit = dialect.do_commit
    plain_rollback = dialect.do_rollback

    def end(dbapi_conn: Any, statement: str, commits: bool) -> bool:
        aio = getattr(dbapi_conn, "driver_connection", None)
        info = _ASYNC_INFO.get(aio) if aio is not None else None
        if info is None or not info.inline or (commits and info.syncs):
            return False
        db = getattr(aio, "_connection", None)
        if not isinstance(db, sqlite3.Connection) or not info.lock.acquire(False):
            return False
        try:
            if db.in_transaction:
                db.execute(statement)
        finally:
            info.lock.release()
        return True

    def do_commit(dbapi_conn: Any) -> None:
        if not end(dbapi_conn, "COMMIT", True):
            plain_commit(dbapi_conn)

    def do_rollback(dbapi_conn: Any) -> None:
        if not end(dbapi_conn, "ROLLBACK", False):
            plain_rollback(dbapi_conn)

    dialect.do_commit = do_commit
    dialect.do_rollback = do_rollback


def _begin_on_loop(conn: Any, statement: str) -> bool:
    """An async SQLite connection's BEGIN run on the event loop, when it does not wait.

    Through aiosqlite a BEGIN is three thread hops (cursor, execute, close), most of a
    small context's cost. On a connection whose statements may run inline (see
    ``sql.sqlite_loop``) it runs on the ``sqlite3`` connection with ``busy_timeout=0``:
    when another connection holds the write lock it fails at once having done nothing,
    and the caller runs it the usual way, waiting on the connection's thread. False when
    it did not run (then the caller runs it); a sync engine's connection never does.
    """
    fairy = conn.connection
    info = fairy.info.get(SQLITE_INFO)
    aio = getattr(fairy.dbapi_connection, "driver_connection", None)  # aiosqlite's
    db = getattr(aio, "_connection", None)
    if info is None or not info.inline or aio is db or not isinstance(db, sqlite3.Connection):
        return False
    lock = info.lock
    if not lock.acquire(False):  # the connection's thread is using it
        return False
    try:
        db.execute("PRAGMA busy_timeout=0")
        try:
            db.execute(statement)
        except sqlite3.OperationalError as exc:
            code = getattr(exc, "sqlite_errorcode", None)
            if isinstance(code, int) and code & 0xFF == 5:  # SQLITE_BUSY: it would wait
                return False
            raise
        finally:
            db.execute(f"PRAGMA busy_timeout={info.busy_ms}")
    finally:
        lock.release()
    return True


def set_journal_mode(cur: Any, mode: str, wait_s: float) -> None:
    """``PRAGMA journal_mode=mode`` on a new connection, waiting up to ``wait_s`` seconds.

    Switching a database to WAL needs an exclusive lock, and SQLite answers "database is
    locked" at once, without its busy handler, when other connections open the new file
    at the same moment; so it is retried here with a short backoff (a file already in
    the mode is left alone: WAL is persistent). In an async engine this runs in the
    connect event, where a retry's sleep briefly blocks the loop: only the first
    connections to a new file ever retry.
    """
    deadline = time.monotonic() + wait_s
    delay = 0.001
    while True:
        try:
            cur.execute("PRAGMA journal_mode")  # (an async driver's cursor returns no cursor)
            current = cur.fetchone()[0]
            if str(current).upper() != mode:
                cur.execute(f"PRAGMA journal_mode={mode}")
            return
        except Exception as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _patch_aiomysql() -> None:
    """aiomysql 0.3 escapes bytes with ``pymysql.converters.escape_bytes_prefixed``, which
    PyMySQL >= 1.1.1 replaced by a placeholder string (PyMySQL issue #1274): every bytes
    parameter then fails with "'str' object is not callable". Put the real escaper back."""
    try:
        import aiomysql.connection as amc
        from pymysql.converters import escape_bytes
    except ImportError:
        return
    if not callable(getattr(amc, "escape_bytes_prefixed", None)):
        amc.escape_bytes_prefixed = escape_bytes


def configure_mysql(engine: Any) -> None:
    """Session settings on every new MySQL/MariaDB connection."""
    sync_engine = getattr(engine, "sync_engine", engine)

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        cur = dbapi_conn.cursor()
        # ORDER BY compares only the first max_sort_length bytes of TEXT/BLOB values
        # (default 1024): 64 KiB, with a sort buffer large enough for such keys (larger
        # values give "Out of sort memory"). Values equal in their first 64 KiB may sort
        # out of order: docs/backends.md, Backend limits.
        cur.execute("SET SESSION max_sort_length = 65536, sort_buffer_size = 8388608")
        cur.close()


def create_sql_engine(url: Any, *, is_async: bool, read_only: bool = False,
                      **options: Any) -> Any:
    """A SQLAlchemy Engine (or AsyncEngine) for a storeroom URL, set up for storeroom.

    SQLite's options (``SQLITE_OPTIONS``: ``journal_mode``, ``synchronous``,
    ``busy_timeout`` in milliseconds, ``foreign_keys``, ``transaction_mode``) may be given
    in the URL or as keywords (a keyword wins); other options go to SQLAlchemy's
    ``create_engine``.
    """
    if not isinstance(url, str):
        url = url.render_as_string(hide_password=False)
    sa_url, ours = sqlalchemy_url(url, is_async=is_async)
    driver = make_url(sa_url).drivername.partition("+")[2]
    require_module(driver, f"a {dialect_name(url)} engine{' (async)' if is_async else ''}")
    name = dialect_name(url)
    if name == "sqlite":
        for k in SQLITE_OPTIONS:
            if k in options:
                ours[k] = sqlite_option(k, options.pop(k))
    kw: dict[str, Any] = dict(options)
    if name == "sqlite":
        database = make_url(sa_url).database
        if not database or database == ":memory:":
            kw.setdefault("poolclass", sa.pool.StaticPool)
        kw.setdefault("connect_args", {}).setdefault("check_same_thread", False)
        # configure_sqlite's reset event rolls back what is open, and only that
        kw.setdefault("pool_reset_on_return", None)
    else:
        kw.setdefault("pool_pre_ping", True)
    if is_async:
        from sqlalchemy.ext.asyncio import create_async_engine
        engine: Any = create_async_engine(sa_url, **kw)
    else:
        engine = sa.create_engine(sa_url, **kw)
    if name == "sqlite":
        configure_sqlite(engine, ours, read_only)
        if is_async:
            # the async driver's module now, not on the engine's first statement: its
            # import (compiling it, without bytecode files) was in the first call's time
            from . import sqlite_loop  # noqa: F401
    elif name == "mysql":
        if is_async:
            _patch_aiomysql()
        configure_mysql(engine)
    return engine

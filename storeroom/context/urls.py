"""Database URLs: the driver a flavor uses, and whether two URLs name one database."""

from __future__ import annotations

import os

from sqlalchemy.engine import URL, make_url

_SYNC_DRIVERS = {"postgresql": "psycopg", "postgres": "psycopg", "mysql": "pymysql", "mariadb": "pymysql"}
_ASYNC_DRIVERS = {
    "sqlite": "aiosqlite",
    "postgresql": "psycopg",
    "postgres": "psycopg",
    "mysql": "aiomysql",
    "mariadb": "aiomysql",
}
_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433, "oracle": 1521}


def driver_url(url: str | URL, is_async: bool) -> URL:
    """``url`` with the driver storeroom uses for the flavor when it names none.

    ``sqlite:///x.db`` stays for sync and becomes ``sqlite+aiosqlite:///x.db``
    for async; ``postgresql://`` uses psycopg (3) in both; ``mysql://`` uses
    pymysql / aiomysql. An explicit driver (``postgresql+asyncpg://``) is kept.
    """
    u = make_url(url)
    if "+" in u.drivername:
        return u
    backend = u.drivername
    drivers = _ASYNC_DRIVERS if is_async else _SYNC_DRIVERS
    driver = drivers.get(backend)
    if backend == "postgres":
        backend = "postgresql"
    return u.set(drivername=f"{backend}+{driver}") if driver else u.set(drivername=backend)


def backend_name(url: str | URL) -> str:
    """The dialect of ``url`` without its driver (``"postgresql"``, ``"sqlite"``)."""
    name = make_url(url).get_backend_name()
    return "postgresql" if name == "postgres" else name


def database_identity(url: str | URL) -> tuple[str, str, int | None, str] | None:
    """(dialect, host, port, database) naming the database ``url`` points at.

    Credentials, driver and query options do not count. A SQLite file is
    named by its absolute path. ``None`` for an in-memory SQLite database,
    which no other engine can share.
    """
    u = make_url(url)
    backend = backend_name(u)
    database = u.database or ""
    if backend == "sqlite":
        if database in ("", ":memory:") or database.startswith("file::memory:"):
            return None
        if database.startswith("file:"):
            database = database[5:].split("?", 1)[0]
        return (backend, "", None, os.path.realpath(os.path.abspath(database)))
    host = (u.host or "localhost").lower()
    if host in ("127.0.0.1", "::1"):
        host = "localhost"
    port = u.port if u.port is not None else _DEFAULT_PORTS.get(backend)
    return (backend, host, port, database)


def same_database(a: str | URL, b: str | URL) -> bool:
    """Whether ``a`` and ``b`` name the same database (dialect, host, port, database)."""
    ia = database_identity(a)
    return ia is not None and ia == database_identity(b)

"""Helpers for tests that need a PostgreSQL or MySQL/MariaDB server (the contract suite).

URLs come from ``STOREROOM_TEST_PG_URL`` and ``STOREROOM_TEST_MYSQL_URL`` (defaults: the
loopback servers of ``.ci/services.sh``). Each test gets a namespace of its own: a
PostgreSQL schema (selected with libpq's ``options=-csearch_path=...``) or a MySQL
database. They are dropped when the process exits.
"""

from __future__ import annotations

import atexit
import os
import re
import socket
from urllib.parse import quote, urlsplit, urlunsplit

DEFAULT_URLS = {"postgres": "postgresql://postgres@127.0.0.1:54329/test",
                "mysql": "mysql://root@127.0.0.1:33069/test"}
ENV = {"postgres": "STOREROOM_TEST_PG_URL", "mysql": "STOREROOM_TEST_MYSQL_URL"}
_created: list[tuple[str, str]] = []


def base_url(server: str) -> str:
    """The test server's URL (``server``: "postgres" or "mysql")."""
    return os.environ.get(ENV[server]) or DEFAULT_URLS[server]


def _name(name: str) -> str:
    name = re.sub(r"[^a-z0-9_]", "_", name.lower())[:60]
    return name if name[:1].isalpha() else "t" + name[:59]


def _admin(server: str) -> object:
    parts = urlsplit(base_url(server))
    if server == "postgres":
        import psycopg
        return psycopg.connect(urlunsplit(("postgresql", parts.netloc, parts.path, "", "")),
                               autocommit=True, connect_timeout=5)
    import pymysql
    return pymysql.connect(host=parts.hostname or "127.0.0.1", port=parts.port or 3306,
                           user=parts.username or "root", password=parts.password or "",
                           autocommit=True, connect_timeout=5)


def fresh_url(server: str, name: str) -> str:
    """A URL of the test server whose tables live in a new, empty namespace ``name``."""
    name = _name(name)
    parts = urlsplit(base_url(server))
    conn = _admin(server)
    try:
        if server == "postgres":
            conn.execute(f'CREATE SCHEMA "{name}"')  # type: ignore[attr-defined]
            query = "&".join(q for q in (parts.query, "options=" +
                                         quote(f"-csearch_path={name}")) if q)
            url = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
        else:
            with conn.cursor() as cur:  # type: ignore[attr-defined]
                cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
            url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    finally:
        conn.close()  # type: ignore[attr-defined]
    if not _created:
        atexit.register(drop_all)
    _created.append((server, name))
    return url


def drop_all() -> None:
    """Drop every namespace ``fresh_url`` created in this process."""
    for server in {s for s, _ in _created}:
        try:
            conn = _admin(server)
        except Exception:  # noqa: S112 - the server is gone: nothing to clean
            continue
        try:
            for s, name in _created:
                if s != server:
                    continue
                if server == "postgres":
                    conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')  # type: ignore[attr-defined]
                else:
                    with conn.cursor() as cur:  # type: ignore[attr-defined]
                        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            conn.close()  # type: ignore[attr-defined]
    _created.clear()


def unavailable_reason(server: str) -> str | None:
    """None when the test server accepts connections, else why not."""
    module = "psycopg" if server == "postgres" else "pymysql"
    try:
        __import__(module)
    except ImportError as exc:
        return f"{module} is not installed: {exc}"
    parts = urlsplit(base_url(server))
    host, port = parts.hostname or "127.0.0.1", parts.port
    if host not in ("127.0.0.1", "localhost") or port is None:
        return f"the {server} test server must be on 127.0.0.1 with a port, not {host!r}"
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return None
    except OSError as exc:
        return f"no {server} server at {host}:{port} ({exc}); start one with " \
               f"`bash .ci/services.sh start {server.replace('mysql', 'mariadb')}` " \
               f"or set {ENV[server]}"

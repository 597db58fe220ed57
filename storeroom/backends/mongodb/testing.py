"""Helpers for tests that need a MongoDB-compatible server (the contract suite uses them).

The server's URL is ``STOREROOM_TEST_MONGO_URL`` (default: the loopback SecantusDB of
``.ci/services.sh``); each test gets a database of its own.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit, urlunsplit

DEFAULT_TEST_URL = "mongodb://127.0.0.1:27099/?directConnection=true"


def base_url() -> str:
    """The test server's URL."""
    return os.environ.get("STOREROOM_TEST_MONGO_URL") or DEFAULT_TEST_URL


def fresh_url(name: str) -> str:
    """The test server's URL with the database ``name`` (fresh for one test)."""
    parts = urlsplit(base_url())
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def unavailable_reason() -> str | None:
    """None when the test server accepts connections, else why not."""
    try:
        import pymongo  # noqa: F401
    except ImportError as exc:
        return f"pymongo is not installed: {exc}"
    parts = urlsplit(base_url())
    host, port = parts.hostname or "127.0.0.1", parts.port or 27017
    if host not in ("127.0.0.1", "localhost"):
        return f"the MongoDB test server must be on loopback, not {host!r}"
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return None
    except OSError as exc:
        return f"no MongoDB-compatible server at {host}:{port} ({exc}); start one with " \
               "`bash .ci/services.sh start mongodb` or set STOREROOM_TEST_MONGO_URL"

"""Helpers for tests: a Redis URL with a fresh key prefix per test."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

ENV = "STOREROOM_TEST_REDIS_URL"


def base_url() -> str | None:
    """The test server's URL from ``STOREROOM_TEST_REDIS_URL``."""
    return os.environ.get(ENV) or None


def fresh_url(name: str) -> str:
    """The test server's URL with a key prefix private to ``name``."""
    url = base_url() or "redis://127.0.0.1:63799/0"
    sep = "&" if urlsplit(url).query else "?"
    return f"{url}{sep}prefix=test-{name}"


def unavailable_reason() -> str | None:
    """None when the Redis test server answers on loopback, else why not."""
    url = base_url()
    if url is None:
        return f"{ENV} is not set (run ./scripts/test)"
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost") or parts.port is None:
        return f"{ENV}={url!r} must name 127.0.0.1 and a port"
    try:
        with socket.create_connection(("127.0.0.1", parts.port), timeout=0.5):
            return None
    except OSError:
        return f"redis not answering at 127.0.0.1:{parts.port}"

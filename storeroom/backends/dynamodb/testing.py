"""Helpers for tests: a DynamoDB URL whose tables are private to one test.

``dynamodb`` reads ``STOREROOM_TEST_DYNAMODB_URL`` (dynalite: strict, no transactions),
``dynamodb_tx`` reads ``STOREROOM_TEST_DYNAMODB_TX_URL`` (moto_server: transactions).
"""

from __future__ import annotations

import os
import socket
from urllib.parse import parse_qs, urlsplit

ENV = {"dynamodb": "STOREROOM_TEST_DYNAMODB_URL", "dynamodb_tx": "STOREROOM_TEST_DYNAMODB_TX_URL"}
DEFAULT = {"dynamodb": "dynamodb://?endpoint_url=http://127.0.0.1:45679&region=us-east-1",
           "dynamodb_tx": "dynamodb://?endpoint_url=http://127.0.0.1:45680&region=us-east-1"}


def base_url(server: str = "dynamodb") -> str | None:
    """The test endpoint's URL from the environment."""
    return os.environ.get(ENV[server]) or None


def fresh_url(server: str, name: str) -> str:
    """The test endpoint's URL with a table prefix private to ``name``."""
    url = base_url(server) or DEFAULT[server]
    sep = "&" if urlsplit(url).query else "?"
    return f"{url}{sep}table_prefix={name}_"


def unavailable_reason(server: str = "dynamodb") -> str | None:
    """None when the test endpoint answers on loopback, else why not."""
    url = base_url(server)
    if url is None:
        return f"{ENV[server]} is not set (run ./scripts/test)"
    endpoint = parse_qs(urlsplit(url).query).get("endpoint_url", [""])[0]
    parts = urlsplit(endpoint)
    if parts.hostname not in ("127.0.0.1", "localhost") or parts.port is None:
        return f"{ENV[server]}={url!r} must have an endpoint_url on 127.0.0.1 with a port"
    try:
        with socket.create_connection(("127.0.0.1", parts.port), timeout=0.5):
            return None
    except OSError:
        return f"{server} not answering at 127.0.0.1:{parts.port}"

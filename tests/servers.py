"""Where the test database servers are, and whether they answer.

``scripts/test`` starts throwaway servers on 127.0.0.1 (``.ci/services.sh``) and
exports one URL per server; this module is the only place tests read them::

    from tests.servers import require

    @pytest.fixture
    def pg_url() -> str:
        return require("postgres")      # the URL, or skip (locally) / fail (in CI)

Names, the environment variable each is read from, and what ``scripts/test`` exports:

- ``postgres``    ``STOREROOM_TEST_PG_URL``          postgresql://postgres@127.0.0.1:54329/test
- ``mysql``       ``STOREROOM_TEST_MYSQL_URL``       mysql://root@127.0.0.1:33069/test (MariaDB)
- ``redis``       ``STOREROOM_TEST_REDIS_URL``       redis://127.0.0.1:63799/0
- ``dynamodb``    ``STOREROOM_TEST_DYNAMODB_URL``    dynamodb://?endpoint_url=http://127.0.0.1:45679&region=us-east-1
  (dynalite: strict like DynamoDB, but no TransactWriteItems / TTL / PartiQL)
- ``dynamodb_tx`` ``STOREROOM_TEST_DYNAMODB_TX_URL`` the same on port 45680
  (moto_server: has transactions; use it for ``atomic=True`` batches)
- ``mongodb``     ``STOREROOM_TEST_MONGO_URL``       mongodb://127.0.0.1:27099/?directConnection=true
  (SecantusDB, a MongoDB wire-protocol emulator, not a real mongod)

Aliases: ``pg``/``postgresql`` -> postgres, ``mariadb`` -> mysql, ``mongo`` -> mongodb,
``moto`` -> dynamodb_tx. An unknown name raises ``KeyError``.

- ``server_url(name)``: the URL from the environment, or ``None`` when it is not set.
- ``available(name)``: the URL is set, names 127.0.0.1 (or localhost), and a TCP
  connection to its port succeeds within 0.5 s. Nothing but loopback is ever contacted.
  The answer is cached per process.
- ``require(name)``: the URL when available. Otherwise ``pytest.skip`` with the reason,
  except when ``CI=true`` is set: then ``pytest.fail``, so a server that did not
  start fails the build instead of silently skipping its tests.

Import it as ``tests.servers`` (``scripts/test`` runs ``python -m pytest`` from the
repository root, which puts the root on ``sys.path``). A test may also use the URL
without checking (e.g. to test connection errors);
``scripts/test --no-services`` runs with none of the servers started.
"""

from __future__ import annotations

import os
import socket
from functools import cache
from typing import NoReturn
from urllib.parse import parse_qs, urlsplit

__all__ = ["ENV_VARS", "available", "require", "server_url"]

#: server name -> the environment variable holding its URL
ENV_VARS: dict[str, str] = {
    "postgres": "STOREROOM_TEST_PG_URL",
    "mysql": "STOREROOM_TEST_MYSQL_URL",
    "redis": "STOREROOM_TEST_REDIS_URL",
    "dynamodb": "STOREROOM_TEST_DYNAMODB_URL",
    "dynamodb_tx": "STOREROOM_TEST_DYNAMODB_TX_URL",
    "mongodb": "STOREROOM_TEST_MONGO_URL",
}
_ALIASES = {
    "pg": "postgres",
    "postgresql": "postgres",
    "mariadb": "mysql",
    "mongo": "mongodb",
    "moto": "dynamodb_tx",
}
_LOOPBACK = {"127.0.0.1", "localhost"}


def _name(name: str) -> str:
    name = _ALIASES.get(name, name)
    if name not in ENV_VARS:
        raise KeyError(f"unknown test server {name!r}; known: {', '.join(ENV_VARS)}")
    return name


def server_url(name: str) -> str | None:
    """The URL of test server ``name`` from its environment variable, or ``None``."""
    return os.environ.get(ENV_VARS[_name(name)]) or None


def _host_port(url: str) -> tuple[str | None, int | None]:
    """Host and port a URL points at; for ``dynamodb://`` they are in ``endpoint_url``."""
    parts = urlsplit(url)
    if parts.scheme == "dynamodb":
        endpoint = parse_qs(parts.query).get("endpoint_url", [""])[0]
        parts = urlsplit(endpoint)
    try:
        return parts.hostname, parts.port
    except ValueError:  # a malformed port
        return parts.hostname, None


@cache
def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _why_not(name: str) -> str | None:
    """``None`` when the server is available, else the reason it is not."""
    var = ENV_VARS[name]
    url = server_url(name)
    if url is None:
        return f"{name} test server not configured: {var} is not set (run ./scripts/test)"
    host, port = _host_port(url)
    if host not in _LOOPBACK or port is None:
        return f"{name} test server {var}={url!r} must name 127.0.0.1 and a port"
    if not _reachable("127.0.0.1", port):
        return f"{name} test server not answering at 127.0.0.1:{port} ({var})"
    return None


def available(name: str) -> bool:
    """Whether test server ``name`` is configured on loopback and accepts a TCP connection."""
    return _why_not(_name(name)) is None


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test because a server is missing; with ``CI=true`` fail it instead."""
    import pytest  # here, so that the module imports without pytest too

    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} [CI=true: a missing server is an error]", pytrace=False)
    pytest.skip(reason)


def require(name: str) -> str:
    """The URL of test server ``name``; skip the test if it is not available.

    With ``CI=true`` in the environment the test fails instead of skipping.
    """
    name = _name(name)
    reason = _why_not(name)
    if reason is None:
        url = server_url(name)
        assert url is not None
        return url
    skip_or_fail(reason)

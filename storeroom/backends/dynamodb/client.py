"""DynamoDB clients: ``AsyncDynamoClient`` on aioboto3, ``DynamoClient`` on boto3.

Both open their client on first use and offer ``sleep`` (for retry backoff), so that the
backend's I/O code is written once (async) and its sync twin generated.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from ...observe import OBSERVERS, Site, async_observed, autoconfigure, observed

# One session per process: a session caches the parsed service model, so that opening a
# client takes milliseconds instead of a few hundred (sessions are not thread-safe:
# clients are created under a lock).
_SESSIONS: dict[str, Any] = {}
_SESSION_LOCK = threading.Lock()


def _session(kind: str) -> Any:
    s = _SESSIONS.get(kind)
    if s is None:
        if kind == "aio":
            import aioboto3
            s = aioboto3.Session()
        else:
            import boto3
            s = boto3.session.Session()
        _SESSIONS[kind] = s
    return s


class AsyncDynamoClient:
    """An aiobotocore DynamoDB client, opened on first use."""

    def __init__(self, kwargs: dict[str, Any]) -> None:
        self.kwargs = kwargs
        self._ctx: Any = None
        self._client: Any = None

    async def get(self) -> Any:
        """The client (opened now if needed)."""
        if self._client is None:
            with _SESSION_LOCK:
                ctx = _session("aio").client("dynamodb", **self.kwargs)
            client = await ctx.__aenter__()
            if self._client is not None:  # another task opened one meanwhile
                await ctx.__aexit__(None, None, None)
            else:
                _instrument(client, True)
                self._ctx, self._client = ctx, client
        return self._client

    async def close(self) -> None:
        """Close the client (a later call opens a new one)."""
        ctx, self._ctx, self._client = self._ctx, None, None
        if ctx is not None:
            await ctx.__aexit__(None, None, None)

    async def sleep(self, seconds: float) -> None:
        """Wait (retry backoff)."""
        await asyncio.sleep(seconds)


class DynamoClient:
    """A boto3 DynamoDB client, opened on first use."""

    def __init__(self, kwargs: dict[str, Any]) -> None:
        self.kwargs = kwargs
        self._client: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        """The client (opened now if needed)."""
        if self._client is None:
            with self._lock, _SESSION_LOCK:
                if self._client is None:
                    client = _session("sync").client("dynamodb", **self.kwargs)
                    _instrument(client, False)
                    self._client = client
        return self._client

    def close(self) -> None:
        """Close the client (a later call opens a new one)."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def sleep(self, seconds: float) -> None:
        """Wait (retry backoff)."""
        time.sleep(seconds)


_SITE = Site("dynamodb")


def _rows(result: Any) -> int | None:
    if not isinstance(result, dict):
        return None
    if "Count" in result:
        return int(result["Count"])
    if "Item" in result:
        return 1
    if "Responses" in result:
        r = result["Responses"]
        return sum(len(v) for v in r.values()) if isinstance(r, dict) else len(r)
    if "Attributes" in result:
        return 1
    return None


def _item_rows(result: Any) -> int:
    return 1 if isinstance(result, dict) and "Item" in result else 0


def _instrument(client: Any, is_async: bool) -> None:
    """Route every operation of a botocore client through the observer seam.

    Every generated client method calls ``_make_api_call(operation, params)``: the lowest
    point that still knows the operation. With nothing observing, the wrapper returns
    the original call's result (a coroutine on aiobotocore) after one context-variable
    read.
    """
    autoconfigure()
    orig = client._make_api_call
    run = async_observed if is_async else observed

    def _make_api_call(operation: str, params: dict[str, Any]) -> Any:
        if not OBSERVERS.get():
            return orig(operation, params)
        table = params.get("TableName") if isinstance(params, dict) else None
        rows = _item_rows if operation == "GetItem" else _rows
        return run(_SITE, operation, params, lambda: orig(operation, params), rows, table)

    client._make_api_call = _make_api_call

"""DynamoDB clients: ``AsyncDynamoClient`` on aioboto3, ``DynamoClient`` on boto3.

Both open their client on first use and offer ``sleep`` (for retry backoff), so that the
backend's I/O code is written once (async) and its sync twin generated.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

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
                    self._client = _session("sync").client("dynamodb", **self.kwargs)
        return self._client

    def close(self) -> None:
        """Close the client (a later call opens a new one)."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def sleep(self, seconds: float) -> None:
        """Wait (retry backoff)."""
        time.sleep(seconds)

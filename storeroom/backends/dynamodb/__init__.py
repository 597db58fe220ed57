"""DynamoDB backend (boto3 / aioboto3): one table per store, indexes as GSIs.

URL: ``dynamodb://?endpoint_url=http://127.0.0.1:8000&region=us-east-1`` with optional
``table_prefix=``, ``aws_access_key_id=``, ``aws_secret_access_key=``,
``transactions=auto|on|off`` (auto: probe the endpoint on first use),
``max_local_sort=`` (default 10000) and ``consistent_read=true|false``.
Options passed to ``open_store`` override the URL; ``table=`` names the table.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ...model.stored import meta_of
from ._async.backend import AsyncDynamoBackend
from ._sync.backend import DynamoBackend
from .client import AsyncDynamoClient, DynamoClient
from .core import NATIVE_OPS, DynamoCore

_LOOPBACK = ("127.0.0.1", "localhost", "[::1]", "::1")


def _flag(text: Any) -> bool | None:
    t = str(text).lower()
    if t in ("auto", ""):
        return None
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"dynamodb: expected on/off/auto, got {text!r}")


def client_kwargs(url: str, options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(boto3 client keyword arguments, remaining store options) for a URL and options."""
    parts = urlsplit(url)
    opts: dict[str, Any] = dict(parse_qsl(parts.query))
    opts.update(options)
    endpoint = opts.pop("endpoint_url", None)
    region = (opts.pop("region", None) or opts.pop("region_name", None) or parts.hostname
              or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
              or "us-east-1")
    kw: dict[str, Any] = {"region_name": region}
    key_id = opts.pop("aws_access_key_id", None)
    secret = opts.pop("aws_secret_access_key", None)
    if endpoint:
        kw["endpoint_url"] = endpoint
        host = urlsplit(endpoint).hostname or ""
        if host in _LOOPBACK:
            # a local endpoint: never let botocore probe the instance metadata service
            os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
            if not key_id and not os.environ.get("AWS_ACCESS_KEY_ID"):
                key_id, secret = "storeroom", "storeroom"
    if key_id:
        kw["aws_access_key_id"] = key_id
        kw["aws_secret_access_key"] = secret or ""
    if "config" in opts:
        kw["config"] = opts.pop("config")
    return kw, opts


def backend_for_url(model: type, url: str, *, is_async: bool, table: str | None = None,
                    **options: Any) -> Any:
    """A store backend on the DynamoDB endpoint of ``url``."""
    meta = meta_of(model)
    kw, opts = client_kwargs(url, options)
    prefix = str(opts.pop("table_prefix", ""))
    tx = _flag(opts.pop("transactions", "auto"))
    bound = opts.pop("max_local_sort", 10_000)
    consistent = _flag(opts.pop("consistent_read", "true"))
    if opts:
        raise ValueError(f"dynamodb: unknown options {sorted(opts)} in {url!r}")
    core = DynamoCore(meta, prefix + (table or meta.name),
                      max_local_sort=None if bound in (None, "", "none") else int(bound),
                      consistent=consistent is not False)
    if is_async:
        return AsyncDynamoBackend(core, AsyncDynamoClient(kw), tx)
    return DynamoBackend(core, DynamoClient(kw), tx)


__all__ = ["AsyncDynamoBackend", "DynamoBackend", "DynamoCore", "backend_for_url",
           "client_kwargs", "NATIVE_OPS"]

"""Redis backend: an item per JSON string, indexes as score-0 sorted sets (lex order)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ...model.stored import meta_of
from ._async.backend import AsyncRedisBackend
from ._sync.backend import RedisBackend
from .core import NATIVE_OPS, RedisCore


def _split_url(url: str, options: dict[str, Any]) -> tuple[str, str]:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = options.pop("prefix", None)
    rest = []
    for k, v in query:
        if k == "prefix":
            prefix = prefix or v
        else:
            rest.append((k, v))
    clean = urlunsplit(parts._replace(query=urlencode(rest)))
    return clean, prefix or "storeroom"


def backend_for_url(model: type, url: str, *, is_async: bool, table: str | None = None,
                    **options: Any) -> Any:
    """A backend on ``redis://host:port/db?prefix=name`` (prefix default ``storeroom``).

    Other options go to ``redis.from_url``. No I/O happens until first use.
    """
    clean, prefix = _split_url(url, options)
    core = RedisCore(meta_of(model), prefix, table)
    options.setdefault("decode_responses", False)
    if is_async:
        import redis.asyncio as aredis
        return AsyncRedisBackend(core, aredis.from_url(clean, **options))
    import redis
    return RedisBackend(core, redis.from_url(clean, **options))


__all__ = ["AsyncRedisBackend", "RedisBackend", "RedisCore", "NATIVE_OPS", "backend_for_url"]

"""Every backend class held to its protocol (and each store to ``StoreLike``), checked by mypy (``mypy storeroom``).

Nothing here runs: the assignments exist for the type checker, so that a backend whose
methods drift from :class:`~storeroom.store.protocol.Backend` /
:class:`~storeroom.store.protocol.AsyncBackend` fails ``scripts/test`` where it is
declared, not in a store at run time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..context._async.store_engine import AsyncUnitBackend
    from ..context._sync.store_engine import UnitBackend
    from ..store._async.store import AsyncStore
    from ..store._sync.store import Store
    from ..store.protocol import (
        AsyncBackend,
        AsyncStoreLike,
        AsyncTransactionalBackend,
        Backend,
        StoreLike,
        TransactionalBackend,
    )
    from .dynamodb import AsyncDynamoBackend, DynamoBackend
    from .memory import AsyncMemoryBackend, MemoryBackend
    from .mongodb import AsyncMongoBackend, MongoBackend
    from .redis import AsyncRedisBackend, RedisBackend
    from .sql import AsyncSqlBackend, SqlBackend

    SYNC: tuple[type[Backend[Any]], ...] = (
        MemoryBackend, SqlBackend, DynamoBackend, MongoBackend, RedisBackend, UnitBackend)
    ASYNC: tuple[type[AsyncBackend[Any]], ...] = (
        AsyncMemoryBackend, AsyncSqlBackend, AsyncDynamoBackend, AsyncMongoBackend,
        AsyncRedisBackend, AsyncUnitBackend)
    # the backends a context's unit of work begins transactions on
    SYNC_TX: tuple[type[TransactionalBackend[Any]], ...] = (MemoryBackend, MongoBackend)
    ASYNC_TX: tuple[type[AsyncTransactionalBackend[Any]], ...] = (
        AsyncMemoryBackend, AsyncMongoBackend)
    # the stores themselves offer the surface every wrapper of a store offers too
    STORES: tuple[type[StoreLike[Any]], ...] = (Store,)
    ASYNC_STORES: tuple[type[AsyncStoreLike[Any]], ...] = (AsyncStore,)

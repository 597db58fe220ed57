"""MongoDB backend on pymongo (``MongoClient`` / ``AsyncMongoClient``).

``mongodb://host:port/dbname?...``: the database is the URL's path (default
``storeroom``); the collection is the model's table name (or ``table=``). See
``core.py`` for how documents, values, filters and orderings are mapped.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ...model.stored import meta_of
from ._async.backend import AsyncMongoBackend
from ._sync.backend import MongoBackend
from .core import MongoCore
from .observe import CommandObserver, watch_client

DEFAULT_DATABASE = "storeroom"


def database_name(url: str) -> str:
    """The database named by a URL's path, or ``storeroom``."""
    path = urlsplit(url).path.strip("/")
    return path or DEFAULT_DATABASE


def backend_for_url(model: type, url: str, *, is_async: bool, table: str | None = None,
                    client: Any = None, transactions: bool | None = None,
                    **options: Any) -> Any:
    """A store backend for ``model`` in a MongoDB database.

    ``client``: an existing ``MongoClient`` / ``AsyncMongoClient`` to use (not closed by
    the store; storeroom's command listener is added to it, see ``watch_client``); otherwise one is opened from ``url`` with ``options`` (pymongo client
    keyword arguments, e.g. ``event_listeners``) and closed with the store.
    ``transactions=False`` declares that the server runs no multi-document transactions
    (atomic batches then raise ``UnsupportedOperation``); by default that is asked of the
    server at first use, and ``StoreMeta`` declares them.
    """
    core = MongoCore(meta_of(model), table, transactions=transactions is not False)
    own = client is None
    if client is None:
        # the observer seam: pymongo's command monitoring sees every command it sends
        options = {**options, "event_listeners": [*options.get("event_listeners", ()),
                                                  CommandObserver()]}
        if is_async:
            from pymongo import AsyncMongoClient
            client = AsyncMongoClient(url, **options)
        else:
            from pymongo import MongoClient
            client = MongoClient(url, **options)
    else:
        watch_client(client)  # the observer seam: a user's client is observed as ours
    cls = AsyncMongoBackend if is_async else MongoBackend
    return cls(core, client, database_name(url), own_client=own, transactions=transactions)


__all__ = ["AsyncMongoBackend", "MongoBackend", "MongoCore", "backend_for_url",
           "database_name", "CommandObserver", "watch_client"]

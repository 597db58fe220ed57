"""Store engines: the non-SQL engines of a data manager (memory, MongoDB, Redis, DynamoDB).

``dm.add_engine("m", "memory://app")`` returns an :class:`AsyncStoreEngine`. It opens
one backend per model, shared by every context (and by ``engine.store(Model)``). In a
context, :class:`AsyncStoreUnit` is the engine's part of the unit of work: on a
backend that declares ``StoreMeta.transactions`` it begins one transaction at the
first operation (``backend.begin()``) and runs each store's operations in it
(``backend.bind(tx)``); the context commits or rolls it back with its SQL engines.
On a backend without transactions (Redis, DynamoDB) writes apply at once.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ...backends.registry import make_backend
from ...errors import UnsupportedOperation
from ...observe import ENGINE, OBSERVERS
from ...query.cursor import CursorKeys
from ...store._async.store import AsyncStore

IS_ASYNC = True


def _hide_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class AsyncStoreEngine:
    """A named non-SQL engine: what ``dm.add_engine(name, url)`` returns for such a URL.

    ``name``, ``url`` and ``backend`` (``"memory"``, ``"mongodb"``, ``"redis"``,
    ``"dynamodb"``) name it. It opens one backend per model on first use, shared by
    every context; the backends of a MongoDB engine share one client, so one
    transaction covers all of its models. ``engine.store(Model)`` is the standalone
    store of ``Model`` on the engine (outside any context: its writes apply at once).
    ``options`` go to every store opened (as ``open_store(model, url, **options)``).
    """

    __slots__ = ("name", "url", "backend", "_options", "_backends", "_stores", "_prepared",
                 "_lock", "_secret")

    def __init__(self, name: str, url: str, options: dict[str, Any], *,
                 secret: CursorKeys | None = None) -> None:
        self.name = name
        self._secret = secret  # the data manager's cursor keys (None: the database's)
        self.url = url
        scheme = urlsplit(url).scheme.lower().split("+", 1)[0]
        self.backend = {"rediss": "redis"}.get(scheme, scheme)
        self._options = options
        self._backends: dict[type, Any] = {}
        self._stores: dict[type, AsyncStore[Any]] = {}
        self._prepared: set[type] = set()
        self._lock = threading.Lock()  # contexts in several threads open backends once

    def backend_for(self, model: type) -> Any:
        """The shared backend of ``model`` on this engine (opened once; no I/O here)."""
        backend = self._backends.get(model)
        if backend is None:
            with self._lock:
                backend = self._backends.get(model)
                if backend is None:
                    options = self._options
                    if self._backends:
                        first = next(iter(self._backends.values()))
                        share = getattr(first, "shared_options", None)
                        if share is not None:
                            options = {**options, **share()}
                    backend = make_backend(model, self.url, is_async=IS_ASYNC, **options)
                    self._backends[model] = backend
        return backend

    def store(self, model: type) -> AsyncStore[Any]:
        """The standalone store of ``model`` on this engine (memoized).

        Outside any context: writes through it apply at once. Use ``ctx.store(Model)``
        for a store in a context's unit of work. Do not close it: it holds the
        engine's shared backend, which ``dm.close()`` closes.
        """
        store = self._stores.get(model)
        if store is None:
            store = self._stores[model] = AsyncStore(model, self.backend_for(model),
                                                      secret=self._secret)
        return store

    async def prepare(self, models: list[type]) -> None:
        """Create the tables of ``models`` that this engine did not create yet.

        A context calls it before it begins a transaction on the engine: a MongoDB
        transaction cannot use a collection created after it began.
        """
        for model in models:
            if model not in self._prepared:
                await self.backend_for(model).create_tables()
                self._prepared.add(model)

    async def close(self) -> None:
        """Close the engine's backends (the first opened, which owns a shared client, last)."""
        backends = list(self._backends.values())
        self._backends.clear()
        self._stores.clear()
        self._prepared.clear()
        for backend in reversed(backends):
            await backend.close()

    def postfork(self) -> None:
        """Forget the backends without closing them (they belong to the parent process)."""
        self._backends.clear()
        self._stores.clear()
        self._prepared.clear()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {_hide_password(self.url)}>"


class AsyncStoreUnit:
    """A store engine's part of one context's unit of work (``ctx.engines[name]``).

    ``transaction`` is the backend's transaction once a store operation began it
    (``None`` before, in an ``autocommit=True`` context, and on an engine whose
    backend has no transactions). On MongoDB, ``transaction.session`` is the pymongo
    ``ClientSession`` to run raw operations in the same transaction.
    """

    __slots__ = ("name", "transaction", "_engines", "_autocommit", "_views")

    def __init__(self, engines: Any, name: str, autocommit: bool) -> None:
        self.name = name
        self.transaction: Any = None
        self._engines = engines
        self._autocommit = autocommit
        self._views: dict[Any, Any] = {}  # engine backend -> the one this context runs

    async def backend(self, shared: Any) -> Any:
        """``shared`` (an engine backend) as it runs in this context: bound to the
        transaction, or itself when the engine writes at once."""
        view = self._views.get(shared)
        if view is None:
            if self._autocommit or not shared.store_meta.transactions:
                view = shared
            else:
                tx = self.transaction
                if tx is None:
                    tx = await self._begin(shared)
                view = await shared.bind(tx)
            # another task of this context may have bound it meanwhile: keep one
            view = self._views.setdefault(shared, view)
        return view

    async def _begin(self, shared: Any) -> Any:
        engines = self._engines
        dm = engines._ctx._dm
        await engines._topology.get(self.name).engine.prepare(dm._models_on(self.name))
        tx = await shared.begin()
        if self.transaction is not None:  # another task of this context began one meanwhile
            await tx.rollback()
            return self.transaction
        self.transaction = tx
        try:
            # the savepoints this context is inside cover the new transaction too
            for savepoint in engines._savepoints or ():
                await savepoint._join(self.name, self)
        except BaseException:
            self.transaction = None
            await tx.rollback()
            raise
        return tx

    # what the context's unit of work calls (as on a SQLAlchemy connection) ----------
    async def commit(self) -> None:
        """Commit the transaction (if one began)."""
        tx = self.transaction
        if tx is not None:
            if not OBSERVERS.get():
                await tx.commit()
                return
            token = ENGINE.set(self.name)  # its records (MongoDB's commitTransaction) name us
            try:
                await tx.commit()
            finally:
                ENGINE.reset(token)

    async def rollback(self) -> None:
        """Roll the transaction back (if one began)."""
        tx = self.transaction
        if tx is not None:
            if not OBSERVERS.get():
                await tx.rollback()
                return
            token = ENGINE.set(self.name)
            try:
                await tx.rollback()
            finally:
                ENGINE.reset(token)

    async def close(self) -> None:
        """Nothing to close: the engine's backends live as long as the data manager."""
        self._views = {}

    async def begin_nested(self) -> Any:
        """A savepoint of the transaction; ``None`` when none began (one that begins
        later joins the savepoints then; an engine that writes at once never does)."""
        if self.transaction is None:
            return None
        return await self.transaction.begin_nested()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} transaction={self.transaction!r}>"


class AsyncUnitBackend:
    """The backend of ``ctx.store(Model)`` on a store engine.

    Each operation asks the context for the engine's unit of work
    (``ctx.engines._store_backend``): the first one opens the engine in the context
    (and begins its transaction); writes mark the context as having written.
    """

    __slots__ = ("_engines", "_name", "_shared", "store_meta", "max_local_sort")
    # the engine owns the shared backend and the context its unit of work: a bound
    # store holds nothing of its own, so one collected unclosed must not warn
    holds_connections = False

    def __init__(self, engines: Any, name: str, shared: Any) -> None:
        self._engines = engines
        self._name = name
        self._shared = shared
        self.store_meta = shared.store_meta
        self.max_local_sort = getattr(shared, "max_local_sort", None)

    def _b(self, write: bool) -> Any:
        return self._engines._store_backend(self._name, self._shared, write)

    async def begin(self) -> Any:
        """``UnsupportedOperation``: the context owns the transaction (as on SQL)."""
        raise UnsupportedOperation(
            f"{self.store_meta.backend}: a store of a context runs in the context's unit "
            "of work; use ctx.savepoint() to nest one")

    async def _op(self, write: bool, op: str, *args: Any) -> Any:
        # one operation in the unit of work; while something observes, the records of
        # its round trips name this engine (the observer seam's QueryRecord.engine)
        if not OBSERVERS.get():
            return await getattr(await self._b(write), op)(*args)
        token = ENGINE.set(self._name)
        try:
            return await getattr(await self._b(write), op)(*args)
        finally:
            ENGINE.reset(token)

    def split(self, node: Any) -> Any:
        """As the engine's backend."""
        return self._shared.split(node)

    def can_order(self, order: Any) -> bool:
        """As the engine's backend."""
        return bool(self._shared.can_order(order))

    def native_fexpr(self, values: dict[str, Any], pre: Any, use: Any) -> bool:
        """As the engine's backend (its unit-of-work twin evaluates what it does)."""
        return bool(self._shared.native_fexpr(values, pre, use))

    async def create_tables(self) -> None:
        """Create the table (outside the context's transaction)."""
        await self._shared.create_tables()

    async def close(self) -> None:
        """Nothing to close: the engine's backends live as long as the data manager."""

    async def cursor_secret(self) -> bytes:
        """As the engine's backend (a bound store signs with the data manager's keys,
        so this is asked only by code holding the backend itself)."""
        secret: bytes = await self._shared.cursor_secret()
        return secret

    async def insert(self, values: dict[str, Any]) -> Any:
        """In the context's unit of work."""
        return await self._op(True, "insert", values)

    async def upsert(self, values: dict[str, Any]) -> Any:
        """In the context's unit of work."""
        return await self._op(True, "upsert", values)

    async def get(self, key: tuple[Any, ...]) -> Any:
        """In the context's unit of work."""
        return await self._op(False, "get", key)

    async def get_many(self, keys: list[tuple[Any, ...]]) -> list[Any]:
        """In the context's unit of work."""
        return await self._op(False, "get_many", keys)  # type: ignore[no-any-return]

    async def update(self, key: tuple[Any, ...], values: dict[str, Any], pre: Any) -> Any:
        """In the context's unit of work."""
        return await self._op(True, "update", key, values, pre)

    async def delete(self, key: tuple[Any, ...], pre: Any) -> bool:
        """In the context's unit of work."""
        return bool(await self._op(True, "delete", key, pre))

    async def find(self, query: Any) -> list[Any]:
        """In the context's unit of work."""
        return await self._op(False, "find", query)  # type: ignore[no-any-return]

    async def iterate(self, node: Any) -> AsyncIterator[Any]:
        """In the context's unit of work."""
        if not OBSERVERS.get():
            backend = await self._b(False)
            async for item in backend.iterate(node):
                yield item
            return
        # observed: the engine is named around each step only (a generator must not
        # leave the context variable set in its caller's context between items)
        token = ENGINE.set(self._name)
        try:
            it = (await self._b(False)).iterate(node).__aiter__()
        finally:
            ENGINE.reset(token)
        while True:
            token = ENGINE.set(self._name)
            try:
                item = await it.__anext__()
            except StopAsyncIteration:
                return
            finally:
                ENGINE.reset(token)
            yield item

    async def count(self, node: Any) -> int:
        """In the context's unit of work."""
        return int(await self._op(False, "count", node))

    async def aggregate(self, node: Any, specs: Any) -> dict[str, Any]:
        """In the context's unit of work."""
        return dict(await self._op(False, "aggregate", node, specs))

    async def update_where(self, node: Any, values: dict[str, Any]) -> int:
        """In the context's unit of work."""
        return int(await self._op(True, "update_where", node, values))

    async def delete_where(self, node: Any) -> int:
        """In the context's unit of work."""
        return int(await self._op(True, "delete_where", node))

    async def apply(self, edits: list[Any], atomic: bool) -> list[Any]:
        """In the context's unit of work."""
        return await self._op(True, "apply", edits, atomic)  # type: ignore[no-any-return]

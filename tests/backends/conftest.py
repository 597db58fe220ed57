"""The contract suite runs on every backend, each both sync and async.

``BACKENDS`` lists the backends. A later backend adds one ``BackendSpec``: its id, how to
build a fresh URL for one test, and a check that says whether it can run here. When the
environment variable ``CI`` is ``true`` an unavailable backend FAILS its tests instead of
skipping them, so a broken CI service cannot go unnoticed.

Tests are written once, as ``async def``, against :class:`S`: a thin adapter whose
methods are awaitable in both modes. In sync mode it calls the sync ``Store`` directly
(no event loop is involved in the store); in async mode it awaits the ``AsyncStore``.
"""

from __future__ import annotations

import importlib
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from storeroom import AsyncStore, open_async_store, open_store
from tests.servers import skip_or_fail


@dataclass(frozen=True)
class BackendSpec:
    """One backend of the contract suite.

    ``url_factory(tmp_path, name)`` gives a URL private to one test (``name`` is unique
    per test). ``available()`` returns None when the backend can run here, else the
    reason it cannot (missing driver, server not reachable).
    """

    id: str
    url_factory: Callable[[Path, str], str]
    available: Callable[[], str | None]
    server: bool = False
    # documented limits of the backend, each refused with a typed error instead of being
    # stored altered: "nul_text" (a NUL character in a str value, e.g. PostgreSQL),
    # "inf_float" (an infinite float, MySQL/MariaDB), "dynamodb_numbers" (a Decimal of more
    # than 38 significant digits or beyond 1E-130 .. 1E+126 in magnitude, DynamoDB)
    limits: frozenset[str] = frozenset()


def _dynamodb_number(d: Decimal) -> bool:
    """True when DynamoDB can hold ``d`` (38 significant digits, 1E-130 <= |d| < 1E+126)."""
    digits = "".join(map(str, d.as_tuple().digits)).strip("0")
    return not digits or (len(digits) <= 38
                          and Decimal("1E-130") <= d.copy_abs() < Decimal("1E+126"))


def _always() -> str | None:
    return None


def _module_available(module: str) -> Callable[[], str | None]:
    def check() -> str | None:
        try:
            importlib.import_module(module)
        except ImportError as exc:  # the backend is still being written
            return f"cannot import {module}: {exc}"
        return None
    return check


BACKENDS: list[BackendSpec] = [
    BackendSpec("memory", lambda tmp, name: f"memory://{name}", _always),
    BackendSpec("sqlite", lambda tmp, name: f"sqlite:///{tmp}/{name}.db",
                _module_available("storeroom.backends.sql")),
    # PostgreSQL / MariaDB on loopback (STOREROOM_TEST_PG_URL / STOREROOM_TEST_MYSQL_URL):
    # a schema / database per test
    *[BackendSpec(server,
                  lambda tmp, name, server=server: importlib.import_module(
                      "storeroom.backends.sql.testing").fresh_url(server, name),
                  lambda server=server: _module_available("storeroom.backends.sql.testing")()
                  or importlib.import_module("storeroom.backends.sql.testing"
                                             ).unavailable_reason(server),
                  server=True,
                  limits=frozenset({"postgres": {"nul_text"}, "mysql": {"inf_float"}}[server]))
      for server in ("postgres", "mysql")],
    # MongoDB (SecantusDB on loopback, STOREROOM_TEST_MONGO_URL): a database per test
    BackendSpec("mongodb",
                lambda tmp, name: importlib.import_module(
                    "storeroom.backends.mongodb.testing").fresh_url(name),
                lambda: _module_available("storeroom.backends.mongodb.testing")() or
                importlib.import_module("storeroom.backends.mongodb.testing"
                                        ).unavailable_reason(),
                server=True),
    # Redis on loopback (STOREROOM_TEST_REDIS_URL): a key prefix per test
    BackendSpec("redis",
                lambda tmp, name: importlib.import_module(
                    "storeroom.backends.redis.testing").fresh_url(name),
                lambda: _module_available("storeroom.backends.redis.testing")() or
                importlib.import_module("storeroom.backends.redis.testing"
                                        ).unavailable_reason(),
                server=True),
    # DynamoDB on loopback: dynalite (STOREROOM_TEST_DYNAMODB_URL, no transactions) and
    # moto_server (STOREROOM_TEST_DYNAMODB_TX_URL); a table prefix per test
    *[BackendSpec(server.replace("dynamodb_tx", "dynamodb-moto"),
                  lambda tmp, name, server=server: importlib.import_module(
                      "storeroom.backends.dynamodb.testing").fresh_url(server, name),
                  lambda server=server: _module_available("storeroom.backends.dynamodb.testing")()
                  or importlib.import_module("storeroom.backends.dynamodb.testing"
                                             ).unavailable_reason(server),
                  server=True,
                  # dynalite has no TransactWriteItems: unique attributes need them
                  limits=frozenset({"no_transactions", "dynamodb_numbers"})
                  if server == "dynamodb" else frozenset({"dynamodb_numbers"}))
      for server in ("dynamodb", "dynamodb_tx")],
]

MODES = ["sync", "async"]

# STOREROOM_TEST_BACKENDS=memory,sqlite runs the suite on those backends only
_ONLY = {b.strip() for b in os.environ.get("STOREROOM_TEST_BACKENDS", "").split(",") if b.strip()}
if _ONLY:
    _unknown = _ONLY - {b.id for b in BACKENDS}
    if _unknown:
        raise ValueError(f"STOREROOM_TEST_BACKENDS names unknown backends: {sorted(_unknown)}")
    BACKENDS = [b for b in BACKENDS if b.id in _ONLY]


def unavailable(spec_id: str, reason: str) -> None:
    """Skip (locally) or fail (in CI) a test whose backend cannot run."""
    skip_or_fail(f"backend {spec_id!r} unavailable: {reason}")


class S:
    """A store whose actions are awaitable whether it is a ``Store`` or an ``AsyncStore``."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.is_async: bool = isinstance(store, AsyncStore)

    async def _call(self, method: str, /, *args: Any, **kw: Any) -> Any:
        result = getattr(self.store, method)(*args, **kw)
        if self.is_async:
            result = await result
        return result

    @property
    def meta(self) -> Any:
        return self.store.meta

    def key_str(self, item_or_key: Any) -> str:
        return self.store.key_str(item_or_key)

    def parse_key(self, text: str) -> Any:
        return self.store.parse_key(text)

    async def create(self, item: Any) -> Any:
        return await self._call("create", item)

    async def read(self, key: Any) -> Any:
        return await self._call("read", key)

    async def update(self, item_or_key: Any, /, **kw: Any) -> Any:
        return await self._call("update", item_or_key, **kw)

    async def delete(self, key: Any, /, **kw: Any) -> bool:
        return await self._call("delete", key, **kw)

    async def search(self, *args: Any, **kw: Any) -> Any:
        return await self._call("search", *args, **kw)

    async def search_all(self, *args: Any, **kw: Any) -> list[Any]:
        it = self.store.search_all(*args, **kw)
        if self.is_async:
            return [x async for x in it]
        return list(it)

    async def count(self, *args: Any, **kw: Any) -> int:
        return await self._call("count", *args, **kw)

    async def read_batch(self, keys: Any) -> list[Any]:
        return await self._call("read_batch", keys)

    async def edit_batch(self, edits: Any, **kw: Any) -> list[Any]:
        return await self._call("edit_batch", edits, **kw)

    async def update_where(self, *args: Any, **kw: Any) -> int:
        return await self._call("update_where", *args, **kw)

    async def delete_where(self, *args: Any, **kw: Any) -> int:
        return await self._call("delete_where", *args, **kw)

    async def close(self) -> None:
        await self._call("close")

    async def all(self) -> list[Any]:
        """Every item, in key order."""
        return await self.search_all()


class StoreFactory:
    """``await`` nothing: ``factory(Model)`` opens a store of ``Model`` for this test."""

    def __init__(self, spec: BackendSpec, mode: str, url: str) -> None:
        self.spec = spec
        self.mode = mode
        self.url = url
        self.opened: list[Any] = []

    @property
    def is_async(self) -> bool:
        return self.mode == "async"

    def refuses(self, value: Any) -> bool:
        """True when this backend documents that it refuses ``value`` (see ``limits``)."""
        limits = self.spec.limits
        if "nul_text" in limits and isinstance(value, str) and "\x00" in value:
            return True
        if "inf_float" in limits and isinstance(value, float) and value - value != 0.0:
            return True
        return "dynamodb_numbers" in limits and isinstance(value, Decimal) and not (
            _dynamodb_number(value))

    def raw(self, model: type, **options: Any) -> Any:
        """An unwrapped ``Store`` / ``AsyncStore`` (closed at teardown)."""
        opener = open_async_store if self.is_async else open_store
        try:
            store = opener(model, self.url, **options)
        except (ImportError, ValueError) as exc:
            unavailable(self.spec.id, f"{type(exc).__name__}: {exc}")
        self.opened.append(store)
        return store

    def __call__(self, model: type, **options: Any) -> S:
        return S(self.raw(model, **options))

    async def close_all(self) -> None:
        for store in reversed(self.opened):
            result = store.close()
            if self.is_async:
                await result


# Servers that run the same backend code as another one in the list: tests marked
# ``one_server_per_backend`` (sizes and depths of the backend's sans-I/O compilers, whose
# result cannot depend on which server answers) are deselected on them to keep the suite
# fast. moto_server is in the list for DynamoDB transactions; dynalite runs the same code.
SAME_CODE_AS = {"dynamodb-moto": "dynamodb"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect ``one_server_per_backend`` tests on the servers of ``SAME_CODE_AS``."""
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        spec = getattr(getattr(item, "callspec", None), "params", {}).get("backend")
        if (item.get_closest_marker("one_server_per_backend") is not None
                and getattr(spec, "id", None) in SAME_CODE_AS):
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture(params=BACKENDS, ids=[b.id for b in BACKENDS])
def backend(request: pytest.FixtureRequest) -> BackendSpec:
    spec: BackendSpec = request.param
    reason = spec.available()
    if reason is not None:
        unavailable(spec.id, reason)
    return spec


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def store_factory(backend: BackendSpec, mode: str, tmp_path: Path):
    factory = StoreFactory(backend, mode, backend.url_factory(tmp_path, f"t{uuid.uuid4().hex}"))
    yield factory
    await factory.close_all()

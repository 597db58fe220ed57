"""The context layer: ``DataManager`` / ``AsyncDataManager``, contexts, DAL, services, engines.

An application has one data manager per process and runs each request or
task in a context::

    dm = DataManager()
    dm.add_engine("writer", "sqlite:///app.db", default=True)
    dm.register_services(tasks=TaskService())
    with dm.context(meta={"user": "bob"}) as ctx:
        ctx.dal.tasks.mine()

See ``docs/context.md``.
"""

from __future__ import annotations

from ..errors import (
    AlreadyExists,
    DalMethodError,
    MiddlewareSetupError,
    NotFound,
    ReadOnlyError,
    ResourceSetupError,
)
from ._async.context import AsyncContext
from ._async.dal import DAL as AsyncDAL
from ._async.engines import AsyncEngines
from ._async.engines import Savepoint as AsyncSavepoint
from ._async.manager import AsyncDataManager
from ._async.store_engine import AsyncStoreEngine, AsyncStoreUnit
from ._sync.context import Context
from ._sync.dal import DAL
from ._sync.engines import Engines, Savepoint
from ._sync.manager import DataManager
from ._sync.store_engine import StoreEngine, StoreUnit
from .meta import Meta
from .request import MethodRequest
from .service import Service
from .urls import same_database

__all__ = [
    "AlreadyExists",
    "AsyncContext",
    "AsyncDAL",
    "AsyncDataManager",
    "AsyncEngines",
    "AsyncSavepoint",
    "AsyncStoreEngine",
    "AsyncStoreUnit",
    "Context",
    "DAL",
    "DalMethodError",
    "DataManager",
    "Engines",
    "Meta",
    "MethodRequest",
    "MiddlewareSetupError",
    "NotFound",
    "ReadOnlyError",
    "ResourceSetupError",
    "Savepoint",
    "Service",
    "StoreEngine",
    "StoreUnit",
    "same_database",
]

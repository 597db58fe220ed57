"""storeroom: one persistence layer for Python.

Define data once as ``@stored`` classes; reach it through one Store interface on
SQLite, PostgreSQL, MySQL/MariaDB, DynamoDB, MongoDB, Redis or memory.
"""

from . import errors
from .errors import (
    AlreadyExists,
    BatchError,
    Conflict,
    DalMethodError,
    InvalidCursor,
    InvalidFilter,
    LazyLoadBlocked,
    MiddlewareSetupError,
    MultipleFound,
    NotAuthorized,
    NotFound,
    ReadOnlyError,
    ResourceSetupError,
    StoreroomError,
    UnsupportedOperation,
    ValidationError,
)
from .model import UNDEFINED, Index, KeyConfig, Many, Ref, field, generated, is_loaded, stored
from .observe import QueryLog, QueryRecord
from .query import Q, attr, matches
from .store import (
    AsyncStore,
    Create,
    Delete,
    EditResult,
    F,
    Page,
    Store,
    StoreMeta,
    Update,
    Upsert,
    open_async_store,
    open_store,
)
from .store.aggregate import Avg, Count, Max, Min, Sum

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # the context layer is imported on first use, keeping ``import storeroom`` light
    if name in ("DataManager", "AsyncDataManager", "Service", "Meta"):
        from . import context
        return getattr(context, name)
    raise AttributeError(f"module 'storeroom' has no attribute {name!r}")


__all__ = [
    "errors", "AlreadyExists", "BatchError", "Conflict", "DalMethodError", "InvalidCursor",
    "InvalidFilter", "LazyLoadBlocked", "MiddlewareSetupError", "MultipleFound", "NotAuthorized", "NotFound", "ReadOnlyError",
    "ResourceSetupError", "StoreroomError", "UnsupportedOperation", "ValidationError",
    "QueryLog", "QueryRecord", "UNDEFINED", "Index", "KeyConfig", "Many", "Ref", "is_loaded", "field", "generated", "stored", "Q", "attr", "matches",
    "AsyncStore", "Create", "Delete", "EditResult", "F", "Page", "Store", "StoreMeta", "Update",
    "Upsert", "Count", "Sum", "Min", "Max", "Avg", "open_async_store", "open_store", "DataManager", "AsyncDataManager", "Service", "Meta",
]

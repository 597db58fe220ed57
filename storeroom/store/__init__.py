"""The Store contract: the eight actions, pages, batches, and opening stores by URL."""

from ._async.store import AsyncStore
from ._sync.store import Store
from .aggregate import Avg, Count, Max, Min, Sum
from .fexpr import F
from .open import make_backend, open_async_store, open_store
from .types import Create, Delete, EditResult, Page, StoreMeta, Update, Upsert

__all__ = ["Count", "Sum", "Min", "Max", "Avg", "F", "AsyncStore", "Store", "open_store", "open_async_store", "make_backend", "Create",
           "Delete", "EditResult", "Page", "StoreMeta", "Update", "Upsert"]

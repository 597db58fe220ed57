"""``storeroom.safe``: a private, durable, dict-like store per module.

>>> from storeroom.safe import module_safe
>>> safe = module_safe()              # doctest: +SKIP
>>> safe["foo"] = {(None,): [1, "bar"]}  # doctest: +SKIP

See ``docs/safe.md``.
"""

from storeroom.safe.errors import (
    DiskFullError,
    SafeBusyError,
    SafeError,
    TransactionClosedError,
    UnpicklableError,
)
from storeroom.safe.locate import module_safe, safe_dir, safe_path
from storeroom.safe.safe import Safe
from storeroom.safe.transaction import Transaction

__all__ = [
    "Safe",
    "Transaction",
    "module_safe",
    "safe_dir",
    "safe_path",
    "SafeError",
    "DiskFullError",
    "SafeBusyError",
    "UnpicklableError",
    "TransactionClosedError",
]

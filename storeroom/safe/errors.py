"""The errors a safe raises. Every one subclasses :class:`storeroom.errors.StoreroomError`."""

from __future__ import annotations

from storeroom.errors import StoreroomError


class SafeError(StoreroomError):
    """Base class of the safe's errors; also raised for a damaged or unreadable safe file."""


class DiskFullError(SafeError):
    """Free disk space is under the safe's ``min_free_bytes`` floor; nothing was written."""


class SafeBusyError(SafeError):
    """The safe stayed locked by other threads or processes for longer than its ``timeout``."""


class UnpicklableError(SafeError, TypeError):
    """A value cannot be pickled, so it cannot be stored; nothing was written."""


class TransactionClosedError(SafeError):
    """A transaction object was used after its ``with`` block ended."""


__all__ = [
    "SafeError",
    "DiskFullError",
    "SafeBusyError",
    "UnpicklableError",
    "TransactionClosedError",
]

"""The typed errors of storeroom. Every one subclasses :class:`StoreroomError`."""

from __future__ import annotations

from typing import Any


class StoreroomError(Exception):
    """Base class of every error storeroom raises on purpose."""


class ValidationError(StoreroomError, ValueError):
    """Bad input: ``.errors`` lists dicts with ``field``, ``value``, ``rule`` and ``message``."""

    def __init__(self, errors: list[dict[str, Any]] | str, *, model: str | None = None) -> None:
        if isinstance(errors, str):
            errors = [{"field": None, "value": None, "rule": "invalid", "message": errors}]
        self.errors: list[dict[str, Any]] = list(errors)
        self.model = model
        parts = []
        for e in self.errors:
            where = f"{e['field']}: " if e.get("field") else ""
            parts.append(f"{where}{e['message']}")
        prefix = f"invalid {model}: " if model else ""
        super().__init__(prefix + "; ".join(parts))

    @classmethod
    def one(cls, field: str | None, value: Any, rule: str, message: str, *, model: str | None = None) -> ValidationError:
        """Build an error with a single entry."""
        return cls([{"field": field, "value": value, "rule": rule, "message": message}], model=model)


class Conflict(StoreroomError):
    """A write would duplicate a key or a unique attribute."""


class NotFound(StoreroomError):
    """Something an operation needs does not exist."""


class InvalidFilter(StoreroomError, ValueError):
    """A filter or ordering names an unknown attribute or operator, or a value of the wrong type."""


class InvalidCursor(StoreroomError, ValueError):
    """A pagination cursor was forged, or belongs to another store, filter or ordering."""


class NotAuthorized(StoreroomError):
    """The current user may not do this."""


class ReadOnlyError(StoreroomError):
    """A write was attempted through a read-only engine or store."""


class UnsupportedOperation(StoreroomError):
    """The backend cannot do what was asked (and cannot do it correctly locally either)."""


class BatchError(StoreroomError):
    """An atomic batch failed; ``.results`` holds one ``EditResult`` per edit."""

    def __init__(self, message: str, results: list[Any]) -> None:
        super().__init__(message)
        self.results = results


class AlreadyExists(StoreroomError):
    """A name is already registered."""


class DalMethodError(StoreroomError, AttributeError):
    """A DAL path names no service method."""


class MiddlewareSetupError(StoreroomError):
    """A context middleware did not yield."""


class ResourceSetupError(StoreroomError):
    """A resource generator did not yield."""


class MultipleFound(StoreroomError):
    """``Model.objects.get(...)`` matched more than one item."""


class NoActiveContext(StoreroomError, RuntimeError, AttributeError):
    """``Model.objects`` read outside an active context.

    A ``RuntimeError``; also an ``AttributeError``, because outside a context the
    attribute is absent: ``hasattr(Model, "objects")`` is False there and ``help``,
    ``inspect`` and doc tools that walk a model's attributes do not crash on it."""


class BackendError(StoreroomError):
    """A backend failed in a way storeroom cannot classify (connection loss, server error).

    The driver's exception is kept as ``__cause__``.
    """


class StoreClosed(StoreroomError):
    """A store was used after ``close()``; the message names the store."""


class MissingDriver(StoreroomError, ModuleNotFoundError):
    """The driver a store URL needs is not installed; the message names the extra to install
    (``pip install 'storeroom[postgres]'``)."""


class ModelConfigError(StoreroomError, TypeError):
    """A ``@stored`` declaration is invalid, or an annotation cannot be resolved when the
    model is configured; ``.model`` and ``.attribute`` name where (when known)."""

    def __init__(self, message: str, *, model: str | None = None,
                 attribute: str | None = None) -> None:
        super().__init__(message)
        self.model = model
        self.attribute = attribute


class LazyLoadBlocked(StoreroomError):
    """An attribute that is not loaded was accessed where no hidden I/O may happen: a
    stub's non-key attribute or an unloaded ``Many``. The message names the path and the
    fix (``prefetch_related`` / ``select_related``, or ``store.load``)."""


__all__ = [
    "LazyLoadBlocked",
    "StoreroomError",
    "ValidationError",
    "Conflict",
    "NotFound",
    "InvalidFilter",
    "InvalidCursor",
    "NotAuthorized",
    "ReadOnlyError",
    "UnsupportedOperation",
    "BatchError",
    "AlreadyExists",
    "MultipleFound",
    "DalMethodError",
    "MiddlewareSetupError",
    "ResourceSetupError",
    "BackendError",
    "StoreClosed",
    "MissingDriver",
    "ModelConfigError",
]

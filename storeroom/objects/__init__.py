"""``Model.objects``: lazy, chainable, immutable query sets over a context's stores.

Every ``@stored`` class has ``objects`` (installed by the model registry); inside an
active context it is a :class:`QuerySet` (sync context) or :class:`AsyncQuerySet` (async
context) over ``ctx.store(Model)``. See ``docs/queryset.md``.
"""

from __future__ import annotations

from typing import Any

from ..context._async.context import AsyncContext
from ..context.current import CURRENT
from ._async.queryset import AsyncQuerySet
from ._sync.queryset import QuerySet
from .plan import QueryState

_EMPTY = QueryState()


def objects_for(model: type) -> Any:
    """The query set of ``model`` in the current context.

    ``RuntimeError`` outside an active context; ``LookupError`` when ``model`` is not
    registered with the context's data manager.
    """
    ctx = CURRENT.get()
    if ctx is None:
        raise RuntimeError(f"{model.__name__}.objects needs an active context: use "
                           "`with dm.context():` (or `async with adm.context():`) first")
    store = ctx.store(model)  # LookupError for a model the data manager does not know
    if isinstance(ctx, AsyncContext):
        return AsyncQuerySet(model, ctx, _EMPTY, store)
    return QuerySet(model, ctx, _EMPTY, store)


__all__ = ["AsyncQuerySet", "QuerySet", "objects_for"]

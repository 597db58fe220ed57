"""``Model.objects``: lazy, chainable, immutable query sets over a context's stores.

Every ``@stored`` class has ``objects`` (installed by the model registry); inside an
active context it is a :class:`QuerySet` (sync context) or :class:`AsyncQuerySet` (async
context) over ``ctx.store(Model)``. See ``docs/queryset.md``.
"""

from __future__ import annotations

from typing import Any

from ..context._async.context import AsyncContext
from ..context.current import CURRENT
from ..errors import NoActiveContext
from ._async.queryset import AsyncQuerySet
from ._sync.queryset import QuerySet
from .plan import QueryState

_EMPTY = QueryState()
_new = object.__new__


def objects_for(model: type) -> Any:
    """The query set of ``model`` in the current context.

    ``NoActiveContext`` (a ``RuntimeError`` and an ``AttributeError``) outside an
    active context; ``LookupError`` when ``model`` is not
    registered with the context's data manager.
    """
    ctx = CURRENT.get()
    if ctx is None:
        raise NoActiveContext(f"{model.__name__}.objects needs an active context: use "
                           "`with dm.context():` (or `async with adm.context():`) first")
    # the context's memo of its stores first (this runs on every ``Model.objects``)
    stores = getattr(ctx, "_stores", None)
    store = stores.get(model) if stores is not None else None
    if store is None:
        store = ctx.store(model)  # LookupError for a model the data manager does not know
    qs: Any = _new(AsyncQuerySet if isinstance(ctx, AsyncContext) else QuerySet)
    qs._model, qs._ctx, qs._state, qs._default, qs._cache = model, ctx, _EMPTY, store, None
    return qs


__all__ = ["AsyncQuerySet", "QuerySet", "objects_for"]

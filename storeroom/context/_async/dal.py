"""The DAL of a context: ``ctx.dal.service.method(...)`` through the method middleware."""

from __future__ import annotations

from inspect import isawaitable
from typing import Any

from ...errors import DalMethodError
from ..registry import Registry
from ..request import MethodRequest
from ..service import Service
from ..states import ACTIVE, EXITING

IS_ASYNC = True


async def call_method(request: MethodRequest) -> Any:
    """The innermost handler: call the resolved service method with the request's arguments."""
    result = request.method(*request.args, **request.kwargs)
    if IS_ASYNC and isawaitable(result):
        return await result
    return result


class DAL:
    """``ctx.dal``: the services of the data manager, as seen from one context.

    ``ctx.dal.tasks.sub.method(...)`` and ``ctx.dal["tasks.sub.method"](...)``
    call a service method through every method middleware; an unknown path
    raises ``DalMethodError``. Calls are awaited in the async flavor.

    A resolved name is cached on the instance (the DAL lives as long as its
    context), so repeated calls skip the lookup.
    """

    def __init__(self, ctx: Any, registry: Registry) -> None:
        self._ctx = ctx
        self._registry = registry

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        node = _node(self._ctx, self._registry, (name,))
        self.__dict__[name] = node
        return node

    def __getitem__(self, dotted: str) -> DalMethod:
        path = tuple(dotted.split("."))
        if path and path[0] == "dal":
            path = path[1:]
        target = self._registry.resolve(path)
        if isinstance(target, Service):
            raise DalMethodError(f"DAL path {dotted!r} names a service, not a method")
        return DalMethod(self._ctx, self._registry, path, target)

    def __repr__(self) -> str:
        return f"<DAL services={sorted(self._registry.services)}>"


def _node(ctx: Any, registry: Registry, path: tuple[str, ...]) -> Any:
    target = registry.resolve(path)
    if isinstance(target, Service):
        return ServiceNode(ctx, registry, path)
    return DalMethod(ctx, registry, path, target)


class ServiceNode:
    """A service reached through the DAL; its attributes are sub-services and methods.

    Resolved names are cached on the instance, as on :class:`DAL`.
    """

    def __init__(self, ctx: Any, registry: Registry, path: tuple[str, ...]) -> None:
        self._ctx = ctx
        self._registry = registry
        self._path = path

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        node = _node(self._ctx, self._registry, self._path + (name,))
        self.__dict__[name] = node
        return node

    def __repr__(self) -> str:
        return f"<DAL service {'.'.join(self._path)}>"


class DalMethod:
    """A service method reached through the DAL; calling it runs the method middleware."""

    __slots__ = ("_ctx", "_registry", "path", "_method")

    def __init__(self, ctx: Any, registry: Registry, path: tuple[str, ...], method: Any) -> None:
        self._ctx = ctx
        self._registry = registry
        self.path = path
        self._method = method

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        ctx = self._ctx
        state = ctx._state
        if state != ACTIVE and state != EXITING:
            raise RuntimeError(
                f"DAL call {'.'.join(self.path)} outside an active context (the context is {ctx.state})"
            )
        return self._registry.chain(MethodRequest(ctx, self.path, args, kwargs, self._method))

    def __repr__(self) -> str:
        return f"<DAL method {'.'.join(self.path)}>"

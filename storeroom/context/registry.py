"""``Registry``: the services, resources and middleware of one data manager."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ..errors import AlreadyExists, DalMethodError
from .request import MethodRequest, build_chain
from .service import Service, _check_service

RESERVED_NAMES = frozenset(
    {
        "dal",
        "meta",
        "engines",
        "store",
        "savepoint",
        "on_commit",
        "parent",
        "data_manager",
        "autocommit",
        "resource_exit_errors",
        "state",
        "opened_resources",
    }
)
"""Attribute names of a context; a resource cannot use them."""


SERVICE_API = frozenset(name for name in vars(Service) if not name.startswith("_"))
"""The methods every service inherits (registration, set-up); never reachable through the DAL."""


def generator_kind(obj: Any) -> str | None:
    """``"sync"`` for a generator callable, ``"async"`` for an async one, else ``None``.

    Functions, bound methods, ``functools.partial`` objects and instances whose
    ``__call__`` is a generator function all count.
    """
    for candidate in (obj, getattr(obj, "__call__", None)):  # noqa: B004
        if candidate is None:
            continue
        if inspect.isgeneratorfunction(candidate):
            return "sync"
        if inspect.isasyncgenfunction(candidate):
            return "async"
    return None


def check_generator_callable(kind: str, name: str, obj: Any, allow_async: bool) -> None:
    """Refuse anything but a generator callable (or an async one when ``allow_async``)."""
    found = generator_kind(obj)
    if found == "sync" or (found == "async" and allow_async):
        return
    if found == "async":
        raise TypeError(
            f"{kind} {name} is an async generator function; register it with an "
            f"AsyncDataManager, or make it a plain generator function"
        )
    accepted = "a generator function or an async generator function" if allow_async else (
        "a generator function"
    )
    raise TypeError(
        f"{kind} {name} must be {accepted} called with the context "
        f"(def {kind.split()[-1]}(ctx): set up; yield value; tear down), got {obj!r}"
    )


class Registry:
    """What a data manager knows: services, resources, context and method middleware.

    ``terminal`` is the innermost DAL handler (it calls ``request.method``); the
    composed chain of method middleware around it is rebuilt on registration.
    """

    __slots__ = (
        "allow_async",
        "services",
        "resources",
        "context_middleware",
        "method_middleware",
        "chain",
        "_terminal",
        "_paths",
    )

    def __init__(self, terminal: Callable[[MethodRequest], Any], async_generators: bool) -> None:
        self.allow_async = async_generators
        self.services: dict[str, Service] = {}
        self.resources: dict[str, Callable[..., Any]] = {}
        self.context_middleware: tuple[Callable[..., Any], ...] = ()
        self.method_middleware: tuple[Callable[..., Any], ...] = ()
        self._terminal = terminal
        self.chain: Callable[[MethodRequest], Any] = terminal
        self._paths: dict[tuple[str, ...], Any] = {}

    # services -----------------------------------------------------------
    def add_services(self, owner: Any, services: dict[str, Service]) -> None:
        """Register top-level services; ``AlreadyExists`` when a name is taken."""
        for name, service in services.items():
            _check_service(name, service)
            if name in self.services:
                raise AlreadyExists(f"service {name!r} is already registered")
        for name, service in services.items():
            service.setup(owner)
            self.services[name] = service

    def replace_service(self, owner: Any, name: str, service: Service) -> Service:
        """Put ``service`` under ``name`` whether or not one is there."""
        _check_service(name, service)
        service.setup(owner)
        self.services[name] = service
        self.forget_paths()
        return service

    def forget_paths(self) -> None:
        """Drop the cache of resolved DAL paths (after a replacement)."""
        self._paths = {}

    def resolve(self, path: tuple[str, ...]) -> Any:
        """The service or bound method at ``path``; ``DalMethodError`` when there is none."""
        found = self._paths.get(path)
        if found is not None:
            return found
        if not path:
            raise DalMethodError("an empty DAL path names nothing")
        node: Any = self.services.get(path[0])
        if node is None:
            raise DalMethodError(f"no service {path[0]!r} in the DAL (path {'.'.join(path)!r})")
        for i, name in enumerate(path[1:], start=1):
            if not isinstance(node, Service):
                raise DalMethodError(
                    f"{'.'.join(path[:i])!r} is a method, it has no {name!r} (path {'.'.join(path)!r})"
                )
            child = node.get_service(name)
            if child is not None:
                node = child
                continue
            hidden = name.startswith("_") or name in SERVICE_API
            attr = None if hidden else getattr(node, name, None)
            if attr is None or not callable(attr) or isinstance(attr, type):
                raise DalMethodError(
                    f"service {'.'.join(path[:i])!r} has no method or service {name!r}"
                    f" (path {'.'.join(path)!r})"
                )
            node = attr
        self._paths[path] = node
        return node

    # resources ----------------------------------------------------------
    def add_resources(self, resources: dict[str, Any], replace: bool = False) -> None:
        """Register generator callables as lazily opened resources."""
        for name, factory in resources.items():
            if not name.isidentifier() or name.startswith("_"):
                raise ValueError(f"resource name {name!r} must be an identifier not starting with '_'")
            if name in RESERVED_NAMES:
                raise ValueError(f"resource name {name!r} is reserved (a context attribute)")
            check_generator_callable("resource", repr(name), factory, self.allow_async)
            if not replace and name in self.resources:
                raise AlreadyExists(f"resource {name!r} is already registered")
        self.resources.update(resources)

    # middleware ---------------------------------------------------------
    def add_context_middleware(self, middleware: tuple[Any, ...]) -> None:
        """Append context middleware (generator callables), in order."""
        for mw in middleware:
            check_generator_callable("context middleware", repr(mw), mw, self.allow_async)
            if mw in self.context_middleware:
                raise AlreadyExists(f"context middleware {mw!r} is already registered")
        self.context_middleware = self.context_middleware + tuple(middleware)

    def add_method_middleware(self, middleware: tuple[Any, ...]) -> None:
        """Append method middleware ``mw(request, call_next)``; the first registered is outermost."""
        for mw in middleware:
            if not callable(mw):
                raise TypeError(f"method middleware must be callable (request, call_next), got {mw!r}")
            if mw in self.method_middleware:
                raise AlreadyExists(f"method middleware {mw!r} is already registered")
        self.method_middleware = self.method_middleware + tuple(middleware)
        self.chain = build_chain(self.method_middleware, self._terminal)

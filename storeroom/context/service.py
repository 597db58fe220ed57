"""``Service``: business logic and data access, reached through the DAL."""

from __future__ import annotations

from typing import Any

from ..errors import AlreadyExists


class Service:
    """Base class of services.

    Register instances with ``dm.register_services(name=Service())``; nest them
    with ``parent.register_services(child=Child())`` (returns ``parent``, so it
    chains, at any depth). Inside a method, ``self._ctx`` is the active context,
    ``self._dal`` its DAL and ``self._data_manager`` the manager.

    Conventions: a method that reads one object returns ``None`` when it is
    missing; a method that needs a parent object raises ``NotFound`` when the
    parent is missing.
    """

    _data_manager: Any = None
    _services: dict[str, Service]

    def __init__(self) -> None:
        self._services = {}

    def _children(self) -> dict[str, Service]:
        try:
            return self._services
        except AttributeError:  # a subclass that did not call super().__init__()
            self._services = {}
            return self._services

    def register_services(self, **services: Service) -> Service:
        """Nest ``services`` under this one; ``AlreadyExists`` for a name already taken."""
        children = self._children()
        for name, service in services.items():
            _check_service(name, service)
            if name in children:
                raise AlreadyExists(f"service {name!r} is already registered under {self!r}")
        for name, service in services.items():
            children[name] = service
            if self._data_manager is not None:
                service.setup(self._data_manager)
        return self

    def replace_service(self, name: str, service: Service) -> Service:
        """Put ``service`` under ``name``, replacing any; returns ``service``."""
        _check_service(name, service)
        self._children()[name] = service
        if self._data_manager is not None:
            service.setup(self._data_manager)
            self._data_manager._registry.forget_paths()
        return service

    def setup(self, data_manager: Any) -> None:
        """Attach this service (and its children) to ``data_manager``; called on registration."""
        self._data_manager = data_manager
        for child in self._children().values():
            child.setup(data_manager)

    def get_service(self, name: str) -> Service | None:
        """The child service called ``name``, or ``None``."""
        return self._children().get(name)

    @property
    def _ctx(self) -> Any:
        """The active context (``RuntimeError`` when none is active)."""
        dm = self._data_manager
        if dm is None:
            raise RuntimeError(f"{type(self).__name__} is not registered with a DataManager")
        return dm.require_active_context()

    @property
    def _dal(self) -> Any:
        """The active context's DAL."""
        return self._ctx.dal

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


def _check_service(name: str, service: Any) -> None:
    if not isinstance(service, Service):
        raise TypeError(f"service {name!r} must be a Service instance, got {service!r}")
    if not name.isidentifier() or name.startswith("_"):
        raise ValueError(f"service name {name!r} must be an identifier not starting with '_'")

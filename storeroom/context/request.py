"""``MethodRequest``: what a method middleware sees of one DAL call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class MethodRequest:
    """One DAL call on its way through the method middleware.

    ``ctx`` is the context, ``path`` the tuple of names (``("tasks", "mine")``),
    ``args`` and ``kwargs`` the call's arguments. ``method`` is the resolved
    service method the innermost handler calls with ``args`` and ``kwargs``; a
    middleware may replace ``args``/``kwargs`` (they are plain attributes).
    """

    __slots__ = ("ctx", "path", "args", "kwargs", "method")

    def __init__(
        self,
        ctx: Any,
        path: tuple[str, ...],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        method: Callable[..., Any],
    ) -> None:
        self.ctx = ctx
        self.path = path
        self.args = args
        self.kwargs = kwargs
        self.method = method

    @property
    def dotted(self) -> str:
        """The path as one string: ``"tasks.mine"``."""
        return ".".join(self.path)

    def __repr__(self) -> str:
        return f"<MethodRequest {self.dotted} args={self.args!r} kwargs={self.kwargs!r}>"


def build_chain(
    middleware: tuple[Callable[..., Any], ...], terminal: Callable[[MethodRequest], Any]
) -> Callable[[MethodRequest], Any]:
    """Compose ``mw(request, call_next)`` callables around ``terminal``; the first is outermost."""
    handler = terminal
    for mw in reversed(middleware):
        handler = _link(mw, handler)
    return handler


def _link(
    mw: Callable[..., Any], call_next: Callable[[MethodRequest], Any]
) -> Callable[[MethodRequest], Any]:
    def handler(request: MethodRequest) -> Any:
        return mw(request, call_next)

    return handler

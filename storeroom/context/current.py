"""The process-wide "current context": the innermost context entered in this thread or
asyncio task, whatever data manager made it (``Model.objects`` finds its store here).

Each data manager also keeps its own active context (``dm.get_active_context()``); this
one variable answers "which context is running now" without knowing the manager. It is
set when a context is entered and reset when it exits, so a nested context restores the
outer one.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

CURRENT: ContextVar[Any] = ContextVar("storeroom_current_context", default=None)


def current_context() -> Any:
    """The innermost active context (sync or async) of this thread / task, or None."""
    return CURRENT.get()


__all__ = ["CURRENT", "current_context"]

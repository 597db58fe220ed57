"""MongoDB on the observer seam: pymongo's command monitoring sees every command sent.

A ``CommandObserver`` is registered on every client a store opens. Its ``started``
hook reads the context variable once and returns when nothing observes; otherwise it
remembers the command until ``succeeded`` / ``failed`` hand one ``QueryRecord`` to the
observers the command started under (pymongo calls the hooks in the thread / task that
sends the command).
"""

from __future__ import annotations

from typing import Any

from pymongo import monitoring

from ...observe import ENGINE, OBSERVERS, QueryRecord, Site, autoconfigure, emit

_SITE = Site("mongodb")


def _rows(reply: Any) -> int | None:
    if not isinstance(reply, dict):
        return None
    cursor = reply.get("cursor")
    if isinstance(cursor, dict):
        batch = cursor.get("firstBatch", cursor.get("nextBatch"))
        if isinstance(batch, list):
            return len(batch)
    n = reply.get("n")
    return int(n) if isinstance(n, int) else None


class CommandObserver(monitoring.CommandListener):
    """pymongo command listener feeding ``storeroom.observe`` (QueryLog, loggers, spans)."""

    def __init__(self) -> None:
        autoconfigure()
        self._pending: dict[Any, tuple[Any, str, Any, str | None, str | None]] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        """Remember the command when something observes this context."""
        logs = OBSERVERS.get()
        if not logs:
            return
        name = event.command_name
        coll = event.command.get(name)
        self._pending[(event.connection_id, event.request_id)] = (
            logs, name, event.command, coll if isinstance(coll, str) else None,
            ENGINE.get())

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Record the command with its reply's row count."""
        p = self._pending.pop((event.connection_id, event.request_id), None)
        if p is not None:
            emit(p[0], QueryRecord(_SITE.backend, p[4], p[1], p[2],
                                   event.duration_micros / 1e6, _rows(event.reply), p[3]))

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Record the failed command."""
        p = self._pending.pop((event.connection_id, event.request_id), None)
        if p is not None:
            emit(p[0], QueryRecord(_SITE.backend, p[4], p[1], p[2],
                                   event.duration_micros / 1e6, None, p[3],
                                   type(event.failure).__name__ if not isinstance(
                                       event.failure, dict) else "CommandFailure"))

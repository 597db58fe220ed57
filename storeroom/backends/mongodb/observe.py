"""MongoDB on the observer seam: pymongo's command monitoring sees every command sent.

A ``CommandObserver`` is registered on every client a store opens, and added to a
client the user passes in (``watch_client``). Its ``started``
hook reads the context variable once and returns when nothing observes; otherwise it
remembers the command until ``succeeded`` / ``failed`` hand one ``QueryRecord`` to the
observers the command started under (pymongo calls the hooks in the thread / task that
sends the command).
"""

from __future__ import annotations

import threading
import warnings
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


_WATCH_LOCK = threading.Lock()


def watch_client(client: Any) -> None:
    """Add a ``CommandObserver`` to ``client`` (a user's ``MongoClient`` /
    ``AsyncMongoClient``) unless it has one: every command a store sends through it is
    then recorded as through a client storeroom opened.

    pymongo takes listeners only when a client is made (``event_listeners=``), and its
    global ``monitoring.register`` reaches only clients made later: the observer is
    appended to the listener set the client and its pools share, which pymongo reads on
    every command. The user's own commands through that client are recorded too while a
    ``QueryLog`` is open (or the global loggers / tracing are on), as storeroom's are.
    A pymongo whose listener set is laid out otherwise gets a warning, not an error.
    """
    with _WATCH_LOCK:
        try:
            listeners = client.options.pool_options._event_listeners
            if any(isinstance(lst, CommandObserver) for lst in listeners.event_listeners()):
                return
            commands = listeners._EventListeners__command_listeners
            if not isinstance(commands, list):
                raise TypeError(type(commands).__name__)
        except (AttributeError, TypeError) as exc:
            warnings.warn(f"storeroom cannot observe this pymongo client's commands "
                          f"({type(exc).__name__}: {exc}); pass event_listeners="
                          f"[storeroom.backends.mongodb.CommandObserver()] when making it",
                          RuntimeWarning, stacklevel=3)
            return
        commands.append(CommandObserver())
        # read by pymongo on every command (whether to build the events at all)
        listeners._EventListeners__enabled_for_commands = True

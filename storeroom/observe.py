"""The observer seam: every round trip of every backend, seen by QueryLog, loggers and tracing.

Each backend's lowest I/O point (the SQL driver, the DynamoDB / MongoDB / Redis client
calls, the memory backend's store operations) starts with ``if not OBSERVERS.get():``
and takes its plain path: one context-variable read when nothing observes. Otherwise
it calls ``observed`` / ``async_observed`` here, which times the call and hands one
``QueryRecord`` to the open ``QueryLog``s of the current context and to the global
observers (``configure``: the ``storeroom.<backend>`` loggers, OpenTelemetry spans).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["QueryLog", "QueryRecord", "configure", "OBSERVERS", "ENGINE"]

# Global observers (logging, tracing). The context variable's default IS this list:
# empty (falsy) while nothing is configured, so the hot path's one ``get`` decides.
_GLOBAL: list[Callable[[QueryRecord, Any], None]] = []

#: The open QueryLogs of the current context (a tuple), or ``_GLOBAL`` when none is open.
OBSERVERS: ContextVar[Any] = ContextVar("storeroom_observers", default=_GLOBAL)

#: The DataManager engine a store engine's operation runs on (``ctx.store(Model)`` on a
#: memory, DynamoDB, MongoDB or Redis engine), for records whose Site names none. Set
#: only while something observes (the bound store checks ``OBSERVERS`` first), read only
#: when a record is made: no cost on the plain path.
ENGINE: ContextVar[str | None] = ContextVar("storeroom_engine", default=None)

#: db.system.name per storeroom backend / SQL dialect (OpenTelemetry semantic conventions)
SYSTEMS = {"sqlite": "sqlite", "postgresql": "postgresql", "mysql": "mysql",
           "mariadb": "mysql", "dynamodb": "aws.dynamodb", "mongodb": "mongodb",
           "redis": "redis", "memory": "memory"}


@dataclass(frozen=True, slots=True)
class QueryRecord:
    """One round trip: which backend, the statement and its parameters, time and rows.

    ``backend`` is the db system (``sqlite``, ``postgresql``, ``mysql``, ``aws.dynamodb``,
    ``mongodb``, ``redis``, ``memory``); ``engine`` the DataManager engine name (None
    outside a context); ``statement`` the SQL text, DynamoDB operation, MongoDB command,
    Redis command or memory store operation; ``rows`` rows returned or affected (None
    when unknown); ``collection`` the table / collection / key prefix when known.
    """

    backend: str
    engine: str | None
    statement: str
    params: Any
    duration_s: float
    rows: int | None
    collection: str | None = None
    error: str | None = None


class QueryLog:
    """Records every round trip any store makes in this thread / task while open.

    ``with QueryLog() as log:`` (or ``async with``); tasks started inside inherit it
    (context variables). Nested logs both record. ``log.records`` is a list of
    ``QueryRecord``.
    """

    def __init__(self) -> None:
        self.records: list[QueryRecord] = []
        self._token: Any = None

    def __enter__(self) -> QueryLog:
        current = OBSERVERS.get()
        logs = () if current is _GLOBAL else current
        self._token = OBSERVERS.set((*logs, self))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        token, self._token = self._token, None
        if token is not None:
            try:
                OBSERVERS.reset(token)
            except ValueError:  # exited in another context (a task): drop ourselves there
                current = OBSERVERS.get()
                if current is not _GLOBAL:
                    rest = tuple(lg for lg in current if lg is not self)
                    OBSERVERS.set(rest if rest else _GLOBAL)

    async def __aenter__(self) -> QueryLog:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.__exit__(exc_type, exc, tb)

    def statements(self) -> list[str]:
        """The statements recorded, in order (handy in tests)."""
        return [r.statement for r in self.records]

    def __len__(self) -> int:
        return len(self.records)


class Site:
    """What a backend knows about where its round trips go (built once per store/connection)."""

    __slots__ = ("backend", "engine", "collection")

    def __init__(self, backend: str, engine: str | None = None,
                 collection: str | None = None) -> None:
        autoconfigure()
        self.backend = SYSTEMS.get(backend, backend)
        self.engine = engine
        self.collection = collection


def _count(result: Any, rows: Callable[[Any], int | None] | None) -> int | None:
    if rows is None:
        return None
    try:
        return rows(result)
    except Exception:  # a count must never break the call it describes
        return None


def _name(statement_of: Callable[[Any], str], result: Any, default: str) -> str:
    try:
        return statement_of(result)
    except Exception:  # naming must never break the call it describes
        return default


def _emit(logs: Any, rec: QueryRecord, result: Any) -> None:
    if logs is not _GLOBAL:
        for log in logs:
            log.records.append(rec)
    for obs in _GLOBAL:
        try:
            obs(rec, result)
        except Exception:  # noqa: S112 - an observer must never break a store call
            logging.getLogger("storeroom").exception("observer failed")


def emit(logs: Any, rec: QueryRecord) -> None:
    """Hand a record made elsewhere (a driver's own event hooks) to ``logs`` (what
    ``OBSERVERS.get()`` returned when the round trip started) and the global observers."""
    _emit(logs, rec, None)


def _done(logs: Any, site: Site, engine: str | None, statement: str, params: Any,
          t0: float, collection: str | None, result: Any,
          rows: Callable[[Any], int | None] | None, error: BaseException | None) -> None:
    """Record one finished round trip (``error`` set when it raised)."""
    elapsed = time.perf_counter() - t0
    if error is not None:
        _emit(logs, QueryRecord(site.backend, engine, statement, params, elapsed, None,
                                collection or site.collection, type(error).__name__), None)
    else:
        _emit(logs, QueryRecord(site.backend, engine, statement, params, elapsed,
                                _count(result, rows), collection or site.collection), result)


def observed(site: Site, statement: str, params: Any, call: Callable[[], T],
             rows: Callable[[T], int | None] | None = None,
             collection: str | None = None,
             statement_of: Callable[[T], str] | None = None) -> T:
    """Run ``call()`` (one round trip) with the observers of this context seeing it.

    ``statement_of(result)``, when given, names a call that succeeded (a statement only
    known once it ran, as a savepoint whose name the driver layer picks).
    """
    logs = OBSERVERS.get()
    engine = site.engine or ENGINE.get()
    token = OBSERVERS.set(())  # the call's own nested checks take the plain path
    t0 = time.perf_counter()
    try:
        result = call()
    except BaseException as e:
        OBSERVERS.reset(token)
        _done(logs, site, engine, statement, params, t0, collection, None, rows, e)
        raise
    OBSERVERS.reset(token)
    if statement_of is not None:
        statement = _name(statement_of, result, statement)
    _done(logs, site, engine, statement, params, t0, collection, result, rows, None)
    return result


async def async_observed(site: Site, statement: str, params: Any,
                         call: Callable[[], Awaitable[T]],
                         rows: Callable[[T], int | None] | None = None,
                         collection: str | None = None,
                         statement_of: Callable[[T], str] | None = None) -> T:
    """``observed`` for a coroutine round trip."""
    logs = OBSERVERS.get()
    engine = site.engine or ENGINE.get()
    token = OBSERVERS.set(())
    t0 = time.perf_counter()
    try:
        result = await call()
    except BaseException as e:
        OBSERVERS.reset(token)
        _done(logs, site, engine, statement, params, t0, collection, None, rows, e)
        raise
    OBSERVERS.reset(token)
    if statement_of is not None:
        statement = _name(statement_of, result, statement)
    _done(logs, site, engine, statement, params, t0, collection, result, rows, None)
    return result


# ---- global observers: loggers and OpenTelemetry ------------------------------------

_LOGGER_NAMES = {"sqlite": "sql", "postgresql": "sql", "mysql": "sql",
                 "aws.dynamodb": "dynamodb", "mongodb": "mongodb", "redis": "redis",
                 "memory": "memory"}


class _LogObserver:
    def __init__(self, params: bool) -> None:
        self.params = params
        self.loggers = {b: logging.getLogger(f"storeroom.{n}") for b, n in _LOGGER_NAMES.items()}

    def __call__(self, rec: QueryRecord, result: Any) -> None:
        log = self.loggers.get(rec.backend) or logging.getLogger("storeroom")
        if not log.isEnabledFor(logging.DEBUG):
            return
        where = f"[{rec.engine}] " if rec.engine else ""
        tail = f" rows={rec.rows}" if rec.rows is not None else ""
        if rec.error:
            tail += f" error={rec.error}"
        if self.params:
            log.debug("%s%s params=%r (%.3f ms%s)", where, rec.statement, rec.params,
                      rec.duration_s * 1e3, tail)
        else:
            log.debug("%s%s (%.3f ms%s)", where, rec.statement, rec.duration_s * 1e3, tail)


class _TraceObserver:
    def __init__(self, query_text: bool) -> None:
        from opentelemetry import trace
        self.trace = trace
        self.query_text = query_text

    def __call__(self, rec: QueryRecord, result: Any) -> None:
        tracer = self.trace.get_tracer("storeroom")
        op = rec.statement.split(None, 1)[0] if rec.statement else ""
        name = f"{op} {rec.collection}" if rec.collection else (op or rec.backend)
        end = time.time_ns()
        start = end - int(rec.duration_s * 1e9)
        attrs: dict[str, Any] = {"db.system.name": rec.backend, "db.operation.name": op}
        if rec.collection:
            attrs["db.collection.name"] = rec.collection
        if rec.rows is not None:
            attrs["db.response.returned_rows"] = rec.rows
        if rec.engine:
            attrs["storeroom.engine"] = rec.engine
        if self.query_text:
            attrs["db.query.text"] = rec.statement
        if rec.error:
            attrs["error.type"] = rec.error
        span = tracer.start_span(name, kind=self.trace.SpanKind.CLIENT, attributes=attrs,
                                 start_time=start)
        if rec.error:
            span.set_status(self.trace.Status(self.trace.StatusCode.ERROR))
        span.end(end_time=end)


def configure(*, logging: bool | None = None, log_params: bool = False,
              tracing: bool | None = None, trace_query_text: bool = False) -> None:
    """Turn the global observers on or off (they see every round trip in every context).

    ``logging=True``: every statement goes to the ``storeroom.sql`` / ``storeroom.dynamodb``
    / ``storeroom.mongodb`` / ``storeroom.redis`` / ``storeroom.memory`` logger at DEBUG;
    parameters are hidden unless ``log_params=True``. ``tracing=True``: one OpenTelemetry
    CLIENT span per round trip through ``opentelemetry-api`` (the global tracer provider;
    requires the ``storeroom[otel]`` extra); ``db.query.text`` only with
    ``trace_query_text=True``. ``None`` leaves that observer as it is.
    """
    global _explicit_logging, _explicit_tracing
    if logging is not None:
        _explicit_logging = True
        _GLOBAL[:] = [o for o in _GLOBAL if not isinstance(o, _LogObserver)]
        if logging:
            _GLOBAL.append(_LogObserver(log_params))
    if tracing is not None:
        _explicit_tracing = True
        _GLOBAL[:] = [o for o in _GLOBAL if not isinstance(o, _TraceObserver)]
        if tracing:
            _GLOBAL.append(_TraceObserver(trace_query_text))


_explicit_logging = False
_explicit_tracing = False


def autoconfigure() -> None:
    """What a backend calls when it opens (never per round trip): unless ``configure``
    decided, turn statement logging on when the ``storeroom.*`` loggers are enabled for
    DEBUG, and tracing on when ``opentelemetry-api`` is imported and a tracer provider
    is set."""
    global _explicit_logging, _explicit_tracing
    if not _explicit_logging and logging.getLogger("storeroom.sql").isEnabledFor(
            logging.DEBUG):
        _explicit_logging = True  # decided once; configure() can still change it
        _GLOBAL.append(_LogObserver(False))
    if not _explicit_tracing:
        trace = sys.modules.get("opentelemetry.trace")
        if trace is not None and not isinstance(
                trace.get_tracer_provider(),
                (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
            _explicit_tracing = True
            _GLOBAL.append(_TraceObserver(False))

"""The observer seam beyond the contract suite: transaction control, engines, loggers,
OpenTelemetry spans (the SDK's in-memory exporter), and observers that fail."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from storeroom import BatchError, Conflict, Create, QueryLog, observe, open_store, stored
from storeroom.context import DataManager


@stored
class Widget:
    id: int
    name: str = ""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[object]:
    s = open_store(Widget, f"sqlite:///{tmp_path}/w.db")
    s.create(Widget(id=0))
    yield s
    s.close()


@pytest.fixture
def global_observers() -> Iterator[None]:
    yield
    observe.configure(logging=False, tracing=False)


def test_transaction_control_is_recorded(store):
    with QueryLog() as log:
        store.edit_batch([Create(Widget(id=1)), Create(Widget(id=2))], atomic=True)
    stmts = [s.split()[0] for s in log.statements()]
    assert stmts[0] == "BEGIN" and stmts[-1] == "COMMIT", stmts
    assert "INSERT" in stmts
    with QueryLog() as log:
        with pytest.raises((BatchError, Conflict)):
            store.edit_batch([Create(Widget(id=3)), Create(Widget(id=1))], atomic=True)
    assert "ROLLBACK" in [s.split()[0] for s in log.statements()], log.statements()
    assert store.read(3) is None


def test_failed_statement_is_recorded_with_its_error(store):
    with QueryLog() as log:
        with pytest.raises(Conflict):
            store.create(Widget(id=0))
    assert any(r.error for r in log.records)


def test_engine_name_in_a_context(tmp_path: Path):
    dm = DataManager()
    dm.add_engine("primary", f"sqlite:///{tmp_path}/c.db")
    dm.register_models(Widget)
    with dm.context() as ctx:
        ctx.store(Widget).create(Widget(id=1))
        with QueryLog() as log:
            assert ctx.store(Widget).read(1) == Widget(id=1)
    assert log.records and {r.engine for r in log.records} == {"primary"}


def test_statements_logged_at_debug_params_hidden_unless_asked(store, caplog,
                                                               global_observers):
    caplog.set_level(logging.DEBUG, logger="storeroom")
    store.read(0)
    assert not [r for r in caplog.records if r.name == "storeroom.sql"]  # not configured
    observe.configure(logging=True)
    store.read(0)
    logged = [r.getMessage() for r in caplog.records if r.name == "storeroom.sql"]
    assert len(logged) == 1 and "SELECT" in logged[0] and "params" not in logged[0]
    caplog.clear()
    observe.configure(logging=True, log_params=True)
    store.read(0)
    logged = [r.getMessage() for r in caplog.records if r.name == "storeroom.sql"]
    assert len(logged) == 1 and "params=(0,)" in logged[0]


_EXPORTER: list[object] = []


def _exporter() -> object:
    """One in-memory exporter on the process's tracer provider (settable only once)."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    if not _EXPORTER:
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        _EXPORTER.append(exporter)
    exporter = _EXPORTER[0]
    exporter.clear()  # type: ignore[attr-defined]
    return exporter


def test_opentelemetry_spans(store, global_observers):
    exporter: Any = _exporter()
    observe.configure(tracing=True)
    assert store.read(0) == Widget(id=0)
    spans = exporter.get_finished_spans()
    assert len(spans) == 1
    a = spans[0].attributes
    assert a["db.system.name"] == "sqlite"
    assert a["db.operation.name"] == "SELECT"
    assert a["db.response.returned_rows"] == 1
    assert "db.query.text" not in a
    exporter.clear()
    observe.configure(tracing=True, trace_query_text=True)
    store.read(0)
    (span,) = exporter.get_finished_spans()
    assert "SELECT" in span.attributes["db.query.text"]


def test_tracing_turns_itself_on_when_a_provider_is_set(tmp_path: Path, global_observers):
    exporter: Any = _exporter()
    observe._explicit_tracing = False  # as in a fresh process: configure() never called
    s = open_store(Widget, "memory://otel-auto")  # a store opened after the provider
    try:
        s.read(5)
    finally:
        s.close()
    (span,) = exporter.get_finished_spans()
    assert span.attributes["db.system.name"] == "memory"
    assert span.attributes["db.operation.name"] == "get"
    assert span.attributes["db.collection.name"] == "widget"


def test_a_failing_observer_never_breaks_the_store(store, global_observers):
    def boom(rec, result):
        raise RuntimeError("observer bug")

    observe._GLOBAL.append(boom)
    try:
        assert store.read(0) == Widget(id=0)
    finally:
        observe._GLOBAL.remove(boom)

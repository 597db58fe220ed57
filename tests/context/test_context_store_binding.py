"""``register_models`` and ``ctx.store(Model)``: the contract with storeroom.context.binding."""

from __future__ import annotations

from typing import Any

import pytest

from storeroom.context import AsyncDataManager, DataManager, binding


class Task:
    """A stand-in model (the binding only passes it through)."""


class Note:
    """Another stand-in model."""


@pytest.fixture
def fake_binding(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any, Any, str]]:
    calls: list[tuple[str, Any, Any, str]] = []

    def bind_store(model: Any, ctx: Any, engine_name: str) -> Any:
        calls.append(("sync", model, ctx, engine_name))
        return object()

    def bind_async_store(model: Any, ctx: Any, engine_name: str) -> Any:
        calls.append(("async", model, ctx, engine_name))
        return object()

    monkeypatch.setattr(binding, "bind_store", bind_store)
    monkeypatch.setattr(binding, "bind_async_store", bind_async_store)
    return calls


def test_store_binds_through_the_binding_module(fake_binding: list[Any]) -> None:
    dm = DataManager()
    dm.add_engine("main", "sqlite://")
    dm.add_engine("logs", "sqlite://")
    dm.register_models(Task)
    dm.register_models(Note, engine="logs")
    with pytest.raises(KeyError):
        dm.register_models(Note, engine="nope")
    with dm.context() as ctx:
        store = ctx.store(Task)
        assert ctx.store(Task) is store  # memoized per context
        ctx.store(Note)
        with pytest.raises(LookupError, match="register_models"):
            ctx.store(int)
    assert fake_binding == [("sync", Task, ctx, "main"), ("sync", Note, ctx, "logs")]
    assert ctx.engines.status == {"main": "init", "logs": "init"}  # binding opens nothing


def test_models_registered_before_any_engine_use_the_default(fake_binding: list[Any]) -> None:
    dm = DataManager()
    dm.register_models(Task)
    dm.add_engine("late", "sqlite://")
    with dm.context() as ctx:
        ctx.store(Task)
    assert fake_binding[0][3] == "late"


async def test_async_store_binding(fake_binding: list[Any]) -> None:
    async with AsyncDataManager() as dm:
        dm.add_engine("main", "sqlite://")
        dm.register_models(Task)
        async with dm.context() as ctx:
            ctx.store(Task)
    assert fake_binding == [("async", Task, ctx, "main")]


def test_real_binding_exists() -> None:
    assert callable(binding.bind_store) and callable(binding.bind_async_store)

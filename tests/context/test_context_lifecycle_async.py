"""The context lifecycle matrix (async): the same guarantees with async generators."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from storeroom.context import (
    AsyncContext,
    AsyncDataManager,
    MiddlewareSetupError,
    ResourceSetupError,
)


class Boom(Exception):
    """The error a body raises."""


class Other(Exception):
    """The error a middleware replaces it with."""


def make_mw(log: list[str], name: str, on_error: str = "reraise") -> Callable[[Any], Any]:
    async def mw(ctx: AsyncContext) -> AsyncIterator[None]:
        log.append(f"{name} setup")
        try:
            yield
        except BaseException as exc:
            log.append(f"{name} saw {type(exc).__name__}")
            if on_error == "suppress":
                return
            if on_error == "replace":
                raise Other(name) from exc
            raise
        log.append(f"{name} teardown")

    return mw


def make_res(log: list[str], name: str) -> Callable[[Any], Any]:
    async def res(ctx: AsyncContext) -> AsyncIterator[str]:
        log.append(f"{name} open")
        try:
            yield f"value of {name}"
        except BaseException as exc:
            log.append(f"{name} saw {type(exc).__name__}")
            raise
        log.append(f"{name} close")

    return res


def sync_res(log: list[str], name: str) -> Callable[[Any], Iterator[str]]:
    def res(ctx: AsyncContext) -> Iterator[str]:
        log.append(f"{name} open")
        try:
            yield f"value of {name}"
        except BaseException as exc:
            log.append(f"{name} saw {type(exc).__name__}")
            raise
        log.append(f"{name} close")

    return res


def build(log: list[str], mw1: str = "reraise", mw2: str = "reraise") -> AsyncDataManager:
    dm = AsyncDataManager()
    dm.register_context_middleware(make_mw(log, "mw1", mw1), make_mw(log, "mw2", mw2))
    dm.register_resources(r1=make_res(log, "r1"), r2=sync_res(log, "r2"))
    return dm


async def test_order_two_middleware_two_resources() -> None:
    log: list[str] = []
    dm = build(log)
    async with dm.context() as ctx:
        log.append("body")
        assert await ctx.r1 == "value of r1"
        assert await ctx.r2 == "value of r2"
        assert await ctx.r1 == "value of r1"
    assert log == [
        "mw1 setup", "mw2 setup", "body", "r1 open", "r2 open",
        "mw2 teardown", "mw1 teardown", "r2 close", "r1 close",
    ]  # fmt: skip


async def test_body_error_order() -> None:
    log: list[str] = []
    dm = build(log)
    with pytest.raises(Boom):
        async with dm.context() as ctx:
            await ctx.r1
            await ctx.r2
            raise Boom()
    assert log == [
        "mw1 setup", "mw2 setup", "r1 open", "r2 open",
        "mw2 saw Boom", "mw1 saw Boom", "r2 saw Boom", "r1 saw Boom",
    ]  # fmt: skip
    assert ctx.resource_exit_errors == []


async def test_suppression_really_suppresses() -> None:
    log: list[str] = []
    dm = build(log, mw2="suppress")
    async with dm.context() as ctx:
        await ctx.r1
        raise Boom()
    log.append("after")
    assert log == [
        "mw1 setup", "mw2 setup", "r1 open", "mw2 saw Boom", "mw1 teardown", "r1 close", "after",
    ]  # fmt: skip


async def test_replacement() -> None:
    log: list[str] = []
    dm = build(log, mw2="replace")
    with pytest.raises(Other):
        async with dm.context() as ctx:
            await ctx.r2
            raise Boom()
    assert log[-3:] == ["mw2 saw Boom", "mw1 saw Other", "r2 saw Other"]


async def test_middleware_never_yields() -> None:
    log: list[str] = []

    async def lazy(ctx: AsyncContext) -> AsyncIterator[None]:
        return
        yield  # pragma: no cover

    dm = AsyncDataManager()
    dm.register_context_middleware(make_mw(log, "mw1"), lazy)
    with pytest.raises(MiddlewareSetupError):
        async with dm.context():
            pass  # pragma: no cover
    assert log == ["mw1 setup", "mw1 saw MiddlewareSetupError"]
    assert dm.get_active_context() is None


async def test_middleware_yields_twice() -> None:
    async def twice(ctx: AsyncContext) -> AsyncIterator[None]:
        yield
        yield

    dm = AsyncDataManager()
    dm.register_context_middleware(twice)
    with pytest.raises(RuntimeError, match="more than once"):
        async with dm.context():
            pass


async def test_resource_never_yields() -> None:
    async def empty(ctx: AsyncContext) -> AsyncIterator[None]:
        return
        yield  # pragma: no cover

    dm = AsyncDataManager()
    dm.register_resources(empty=empty)
    with pytest.raises(ResourceSetupError):
        async with dm.context() as ctx:
            await ctx.empty


async def test_resource_exit_errors_and_yield_twice() -> None:
    async def bad(ctx: AsyncContext) -> AsyncIterator[int]:
        yield 1
        raise Other("close")

    def twice(ctx: AsyncContext) -> Iterator[int]:
        yield 1
        yield 2

    dm = AsyncDataManager()
    dm.register_resources(bad=bad, twice=twice)
    async with dm.context() as ctx:
        await ctx.bad
        await ctx.twice
    assert [type(e) for e in ctx.resource_exit_errors] == [RuntimeError, Other]


async def test_resource_after_end_and_unknown() -> None:
    log: list[str] = []
    dm = build(log)
    async with dm.context() as ctx:
        await ctx.r1
        with pytest.raises(AttributeError, match="missing"):
            ctx.missing  # noqa: B018
    with pytest.raises(RuntimeError):
        await ctx.r1


async def test_concurrent_first_use_opens_one_value() -> None:
    import asyncio

    log: list[str] = []

    async def slow(ctx: AsyncContext) -> AsyncIterator[object]:
        log.append("open")
        await asyncio.sleep(0.01)
        yield object()
        log.append("close")

    dm = AsyncDataManager()
    dm.register_resources(slow=slow)
    async with dm.context() as ctx:
        a, b = await asyncio.gather(ctx.slow, ctx.slow)
        assert a is b
    assert log.count("close") == log.count("open")  # the loser was closed again
    assert ctx.resource_exit_errors == []


async def test_entered_once() -> None:
    dm = AsyncDataManager()
    ctx = dm.context()
    async with ctx:
        pass
    with pytest.raises(RuntimeError):
        async with ctx:
            pass  # pragma: no cover

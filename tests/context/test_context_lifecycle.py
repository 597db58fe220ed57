"""The context lifecycle matrix (sync): order, errors, suppression, replacement, setup failures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from storeroom.context import Context, DataManager, MiddlewareSetupError, ResourceSetupError


class Boom(Exception):
    """The error a body raises."""


class Other(Exception):
    """The error a middleware replaces it with."""


def make_mw(log: list[str], name: str, on_error: str = "reraise") -> Callable[[Any], Iterator[None]]:
    """A middleware logging setup/teardown; on an error it re-raises, suppresses or replaces."""

    def mw(ctx: Context) -> Iterator[None]:
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


def make_res(log: list[str], name: str) -> Callable[[Any], Iterator[str]]:
    """A resource logging setup and teardown (and any error thrown into it)."""

    def res(ctx: Context) -> Iterator[str]:
        log.append(f"{name} open")
        try:
            yield f"value of {name}"
        except BaseException as exc:
            log.append(f"{name} saw {type(exc).__name__}")
            raise
        log.append(f"{name} close")

    return res


def build(log: list[str], mw1: str = "reraise", mw2: str = "reraise") -> DataManager:
    dm = DataManager()
    dm.register_context_middleware(make_mw(log, "mw1", mw1), make_mw(log, "mw2", mw2))
    dm.register_resources(r1=make_res(log, "r1"), r2=make_res(log, "r2"))
    return dm


def test_order_two_middleware_two_resources() -> None:
    log: list[str] = []
    dm = build(log)
    with dm.context() as ctx:
        log.append("body")
        assert ctx.r1 == "value of r1"
        assert ctx.r2 == "value of r2"
        assert ctx.r1 == "value of r1"  # memoized: opened once
    assert log == [
        "mw1 setup", "mw2 setup", "body", "r1 open", "r2 open",
        "mw2 teardown", "mw1 teardown", "r2 close", "r1 close",
    ]  # fmt: skip
    assert ctx.resource_exit_errors == []


def test_resources_close_in_reverse_order_of_opening() -> None:
    log: list[str] = []
    dm = build(log)
    with dm.context() as ctx:
        ctx.r2  # noqa: B018
        ctx.r1  # noqa: B018
    assert log[-2:] == ["r1 close", "r2 close"]
    assert ctx.opened_resources == ("r2", "r1")


def test_unused_resources_never_open() -> None:
    log: list[str] = []
    dm = build(log)
    with dm.context() as ctx:
        assert "r1" not in ctx
    assert log == ["mw1 setup", "mw2 setup", "mw2 teardown", "mw1 teardown"]


def test_body_error_goes_inner_middleware_first_then_resources() -> None:
    log: list[str] = []
    dm = build(log)
    with pytest.raises(Boom):
        with dm.context() as ctx:
            ctx.r1  # noqa: B018
            ctx.r2  # noqa: B018
            raise Boom()
    assert log == [
        "mw1 setup", "mw2 setup", "r1 open", "r2 open",
        "mw2 saw Boom", "mw1 saw Boom", "r2 saw Boom", "r1 saw Boom",
    ]  # fmt: skip
    assert ctx.resource_exit_errors == []  # re-raising the thrown error is not an exit error


def test_inner_middleware_suppresses_really() -> None:
    log: list[str] = []
    dm = build(log, mw2="suppress")
    with dm.context() as ctx:
        ctx.r1  # noqa: B018
        raise Boom()
    log.append("after")
    assert log == [
        "mw1 setup", "mw2 setup", "r1 open", "mw2 saw Boom", "mw1 teardown", "r1 close", "after",
    ]  # fmt: skip


def test_outer_middleware_suppresses() -> None:
    log: list[str] = []
    dm = build(log, mw1="suppress")
    with dm.context():
        raise Boom()
    assert log == ["mw1 setup", "mw2 setup", "mw2 saw Boom", "mw1 saw Boom"]


def test_middleware_replaces_error() -> None:
    log: list[str] = []
    dm = build(log, mw2="replace")
    with pytest.raises(Other) as info:
        with dm.context() as ctx:
            ctx.r1  # noqa: B018
            raise Boom()
    assert isinstance(info.value.__cause__, Boom)
    assert log == [
        "mw1 setup", "mw2 setup", "r1 open", "mw2 saw Boom", "mw1 saw Other", "r1 saw Other",
    ]  # fmt: skip


def test_middleware_teardown_error_without_body_error() -> None:
    log: list[str] = []

    def failing(ctx: Context) -> Iterator[None]:
        yield
        raise Other("teardown")

    dm = DataManager()
    dm.register_context_middleware(make_mw(log, "mw1"), failing)
    dm.register_resources(r1=make_res(log, "r1"))
    with pytest.raises(Other):
        with dm.context() as ctx:
            ctx.r1  # noqa: B018
    assert log == ["mw1 setup", "r1 open", "mw1 saw Other", "r1 saw Other"]


def test_middleware_that_never_yields() -> None:
    log: list[str] = []

    def lazy(ctx: Context) -> Iterator[None]:
        log.append("lazy ran")
        return
        yield  # pragma: no cover

    dm = DataManager()
    dm.register_context_middleware(make_mw(log, "mw1"), lazy)
    with pytest.raises(MiddlewareSetupError):
        with dm.context():
            log.append("body")  # pragma: no cover
    assert log == ["mw1 setup", "lazy ran", "mw1 saw MiddlewareSetupError"]
    assert dm.get_active_context() is None


def test_middleware_setup_error_tears_down_earlier_ones() -> None:
    log: list[str] = []

    def broken(ctx: Context) -> Iterator[None]:
        raise Other("setup")
        yield  # pragma: no cover

    dm = DataManager()
    dm.register_context_middleware(make_mw(log, "mw1"), broken, make_mw(log, "mw3"))
    with pytest.raises(Other):
        with dm.context():
            log.append("body")  # pragma: no cover
    assert log == ["mw1 setup", "mw1 saw Other"]
    assert dm.get_active_context() is None


def test_middleware_setup_error_suppressed_by_earlier_one_still_raises() -> None:
    log: list[str] = []

    def broken(ctx: Context) -> Iterator[None]:
        raise Other("setup")
        yield  # pragma: no cover

    dm = DataManager()
    dm.register_context_middleware(make_mw(log, "mw1", "suppress"), broken)
    with pytest.raises(Other):
        with dm.context():
            log.append("body")  # pragma: no cover
    assert "body" not in log


def test_middleware_that_yields_twice() -> None:
    def twice(ctx: Context) -> Iterator[None]:
        yield
        yield

    dm = DataManager()
    dm.register_context_middleware(twice)
    with pytest.raises(RuntimeError, match="more than once"):
        with dm.context():
            pass


def test_resource_that_never_yields() -> None:
    log: list[str] = []

    def empty(ctx: Context) -> Iterator[None]:
        return
        yield  # pragma: no cover

    dm = build(log)
    dm.register_resources(empty=empty)
    with pytest.raises(ResourceSetupError, match="empty"):
        with dm.context() as ctx:
            ctx.empty  # noqa: B018
    assert "mw2 saw ResourceSetupError" in log and "mw1 saw ResourceSetupError" in log


def test_resource_setup_error_is_an_in_context_error() -> None:
    log: list[str] = []

    def broken(ctx: Context) -> Iterator[None]:
        raise Boom()
        yield  # pragma: no cover

    dm = build(log, mw1="suppress")
    dm.register_resources(broken=broken)
    with dm.context() as ctx:
        ctx.broken  # noqa: B018
    assert "mw1 saw Boom" in log


def test_resource_teardown_errors_are_collected_not_raised() -> None:
    log: list[str] = []

    def bad(ctx: Context) -> Iterator[int]:
        yield 1
        raise Other("close failed")

    dm = build(log)
    dm.register_resources(bad=bad)
    with dm.context() as ctx:
        ctx.r1  # noqa: B018
        ctx.bad  # noqa: B018
        ctx.r2  # noqa: B018
    assert [type(e) for e in ctx.resource_exit_errors] == [Other]
    assert log[-2:] == ["r2 close", "r1 close"]  # the others still closed


def test_resource_teardown_error_during_body_error() -> None:
    def bad(ctx: Context) -> Iterator[int]:
        try:
            yield 1
        finally:
            raise Other("close failed")

    dm = DataManager()
    dm.register_resources(bad=bad)
    with pytest.raises(Boom):
        with dm.context() as ctx:
            ctx.bad  # noqa: B018
            raise Boom()
    assert [type(e) for e in ctx.resource_exit_errors] == [Other]


def test_resource_cannot_suppress() -> None:
    def swallow(ctx: Context) -> Iterator[int]:
        try:
            yield 1
        except Boom:
            pass

    dm = DataManager()
    dm.register_resources(swallow=swallow)
    with pytest.raises(Boom):
        with dm.context() as ctx:
            ctx.swallow  # noqa: B018
            raise Boom()
    assert ctx.resource_exit_errors == []


def test_resource_that_yields_twice_is_an_exit_error() -> None:
    def twice(ctx: Context) -> Iterator[int]:
        yield 1
        yield 2

    dm = DataManager()
    dm.register_resources(twice=twice)
    with dm.context() as ctx:
        assert ctx.twice == 1
    (error,) = ctx.resource_exit_errors
    assert isinstance(error, RuntimeError) and "twice" in str(error)


def test_resource_after_context_ended() -> None:
    log: list[str] = []
    dm = build(log)
    with dm.context() as ctx:
        ctx.r1  # noqa: B018
    with pytest.raises(RuntimeError):
        ctx.r1  # memoized, but the context is over  # noqa: B018
    with pytest.raises(RuntimeError):
        ctx.r2  # never opened  # noqa: B018


def test_resource_before_context_entered() -> None:
    log: list[str] = []
    dm = build(log)
    ctx = dm.context()
    with pytest.raises(RuntimeError):
        ctx.r1  # noqa: B018


def test_unknown_resource_names_it() -> None:
    dm = DataManager()
    with dm.context() as ctx:
        with pytest.raises(AttributeError, match="nope"):
            ctx.nope  # noqa: B018


def test_resource_gets_the_context() -> None:
    def who(ctx: Context) -> Iterator[str]:
        yield ctx.meta.user

    dm = DataManager()
    dm.register_resources(who=who)
    with dm.context(meta={"user": "ann"}) as ctx:
        assert ctx.who == "ann"


def test_middleware_can_use_resources_and_dal_during_setup_and_teardown() -> None:
    log: list[str] = []

    def mw(ctx: Context) -> Iterator[None]:
        log.append(ctx.r1)
        yield
        log.append(ctx.r2)

    dm = DataManager()
    dm.register_resources(r1=make_res(log, "r1"), r2=make_res(log, "r2"))
    dm.register_context_middleware(mw)
    with dm.context():
        pass
    assert log == ["r1 open", "value of r1", "r2 open", "value of r2", "r2 close", "r1 close"]


def test_context_can_be_entered_once() -> None:
    dm = DataManager()
    ctx = dm.context()
    with ctx:
        with pytest.raises(RuntimeError):
            ctx.__enter__()
    with pytest.raises(RuntimeError):
        with ctx:
            pass  # pragma: no cover


def test_state_names() -> None:
    dm = DataManager()
    ctx = dm.context()
    assert ctx.state == "new"
    with ctx:
        assert ctx.state == "active"
    assert ctx.state == "ended"

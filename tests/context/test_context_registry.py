"""Registration, Meta, services, the DAL and method middleware."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from storeroom.context import (
    AlreadyExists,
    AsyncDataManager,
    DalMethodError,
    DataManager,
    Meta,
    MethodRequest,
    Service,
)
from storeroom.errors import NotFound


class Users(Service):
    def me(self) -> Any:
        return self._ctx.meta.user

    def echo(self, *args: Any, **kwargs: Any) -> Any:
        return args, kwargs

    def via_dal(self) -> Any:
        return self._dal.users.me()

    def manager(self) -> Any:
        return self._data_manager


class Inner(Service):
    def deep(self) -> str:
        return "deep"

    def parent_required(self, parent: Any) -> Any:
        if parent is None:
            raise NotFound("parent is missing")
        return None


def gen_res(ctx: Any) -> Iterator[int]:
    yield 1


# Meta --------------------------------------------------------------------
def test_meta_is_read_only() -> None:
    meta = Meta({"user": "bob", "empty": "", "zero": 0})
    assert meta.user == "bob" and meta["user"] == "bob"
    assert meta.missing is None
    assert meta.get("missing", 3) == 3
    assert meta.require("user") == "bob"
    assert meta.require("zero") == 0
    for key in ("missing", "empty"):
        with pytest.raises(ValueError, match=key):
            meta.require(key)
    with pytest.raises(AttributeError):
        meta.user = "eve"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del meta.user
    assert dict(meta) == {"user": "bob", "empty": "", "zero": 0}
    assert "user" in meta and len(meta) == 3


def test_meta_is_a_copy_of_the_mapping() -> None:
    dm = DataManager()
    data = {"user": "bob"}
    with dm.context(meta=data) as ctx:
        data["user"] = "eve"
        assert ctx.meta.user == "bob"
        with pytest.raises(AttributeError):
            ctx.meta.user = "eve"
        with pytest.raises(AttributeError):
            ctx.meta = Meta()  # type: ignore[misc]
    with dm.context() as ctx:
        assert ctx.meta.user is None


# registration ------------------------------------------------------------
def test_register_twice_is_already_exists() -> None:
    dm = DataManager()
    dm.register_services(users=Users())
    dm.register_resources(res=gen_res)
    with pytest.raises(AlreadyExists):
        dm.register_services(users=Users())
    with pytest.raises(AlreadyExists):
        dm.register_resources(res=gen_res)
    users = Users()
    with pytest.raises(AlreadyExists):
        users.register_services(inner=Inner()).register_services(inner=Inner())


def test_replace_service_and_resource() -> None:
    class Users2(Users):
        def me(self) -> Any:
            return "replaced"

    def other(ctx: Any) -> Iterator[int]:
        yield 2

    dm = DataManager()
    dm.register_services(users=Users())
    dm.register_resources(res=gen_res)
    with dm.context() as ctx:
        assert ctx.dal.users.me() is None
    dm.replace_service("users", Users2())
    dm.replace_resource("res", other)
    with dm.context(meta={"user": "x"}) as ctx:
        assert ctx.dal.users.me() == "replaced"
        assert ctx.res == 2


def test_resources_must_be_generator_callables() -> None:
    dm = DataManager()

    class CallableGen:
        def __call__(self, ctx: Any) -> Iterator[int]:
            yield 1

    dm.register_resources(a=CallableGen())
    import functools

    def param(ctx: Any, n: int) -> Iterator[int]:
        yield n

    dm.register_resources(b=functools.partial(param, n=5))
    for bad in (object(), lambda ctx: 1, "x", 3):
        with pytest.raises(TypeError, match="generator function"):
            dm.register_resources(c=bad)

    async def agen(ctx: Any) -> AsyncIterator[int]:
        yield 1

    with pytest.raises(TypeError, match="AsyncDataManager"):
        dm.register_resources(d=agen)
    with pytest.raises(TypeError):
        dm.register_context_middleware(lambda ctx: None)
    with pytest.raises(TypeError):
        dm.register_method_middleware("not callable")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reserved"):
        dm.register_resources(meta=gen_res)
    with dm.context() as ctx:
        assert ctx.a == 1 and ctx.b == 5

    adm = AsyncDataManager()
    adm.register_resources(d=agen, e=gen_res)
    adm.register_context_middleware(agen)
    with pytest.raises(TypeError):
        adm.register_resources(f=lambda ctx: 1)


def test_services_must_be_services() -> None:
    dm = DataManager()
    with pytest.raises(TypeError):
        dm.register_services(x=object())  # type: ignore[arg-type]


# DAL ---------------------------------------------------------------------
def test_dal_paths_nested_services_and_service_attributes() -> None:
    dm = DataManager()
    users = Users().register_services(inner=Inner().register_services(deeper=Inner()))
    dm.register_services(users=users)
    with dm.context(meta={"user": "bob"}) as ctx:
        assert ctx.dal.users.me() == "bob"
        assert ctx.dal["users.me"]() == "bob"
        assert ctx.dal["dal.users.inner.deeper.deep"]() == "deep"
        assert ctx.dal.users.inner.deeper.deep() == "deep"
        assert ctx.dal.users.via_dal() == "bob"
        assert ctx.dal.users.manager() is dm
        assert ctx.dal.users.echo(1, a=2) == ((1,), {"a": 2})
        assert ctx.dal.users.inner.parent_required(object()) is None
        with pytest.raises(NotFound):
            ctx.dal.users.inner.parent_required(None)
        bad_paths = ("nope.x", "users.nope", "users.me.more", "users._ctx", "users", "users.setup",
                     "users.register_services", "")  # fmt: skip
        for bad in bad_paths:
            with pytest.raises(DalMethodError):
                ctx.dal[bad]()
        with pytest.raises(DalMethodError):
            ctx.dal.users.nope()
        with pytest.raises(DalMethodError):
            ctx.dal.nope  # noqa: B018
        assert isinstance(DalMethodError(), AttributeError)


def test_service_registered_after_parent_gets_the_manager() -> None:
    dm = DataManager()
    users = Users()
    dm.register_services(users=users)
    users.register_services(late=Inner())
    with dm.context():
        assert dm.get_service("users") is users
        assert users.get_service("late")._data_manager is dm  # type: ignore[union-attr]


def test_dal_outside_context_is_runtime_error() -> None:
    dm = DataManager()
    dm.register_services(users=Users())
    with dm.dal() as dal:
        me = dal.users.me
        assert me() is None
    with pytest.raises(RuntimeError):
        me()
    with pytest.raises(RuntimeError):
        Users().me()  # not registered
    ctx = dm.context()
    with pytest.raises(RuntimeError):
        ctx.dal.users.me()


def test_active_context_nesting() -> None:
    dm = DataManager()
    assert dm.get_active_context() is None
    with pytest.raises(RuntimeError):
        dm.require_active_context()
    with dm.context(meta={"n": 1}) as outer:
        assert dm.require_active_context() is outer
        with dm.context(meta={"n": 2}) as inner:
            assert dm.get_active_context() is inner
            assert inner.parent is outer
            assert inner.meta.n == 2
        assert dm.get_active_context() is outer
    assert dm.get_active_context() is None


def test_two_managers_have_separate_active_contexts() -> None:
    a, b = DataManager(), DataManager()
    with a.context() as ctx:
        assert a.get_active_context() is ctx
        assert b.get_active_context() is None


def test_active_context_is_per_thread() -> None:
    dm = DataManager()
    seen: list[Any] = []
    with dm.context():
        t = threading.Thread(target=lambda: seen.append(dm.get_active_context()))
        t.start()
        t.join()
    assert seen == [None]


# method middleware -------------------------------------------------------
def test_method_middleware_order_veto_and_result() -> None:
    log: list[str] = []

    def outer(request: MethodRequest, call_next: Callable[[MethodRequest], Any]) -> Any:
        log.append(f"outer {request.dotted} {request.args} {request.kwargs}")
        assert request.ctx is dm.get_active_context()
        result = call_next(request)
        log.append("outer done")
        return result

    def inner(request: MethodRequest, call_next: Callable[[MethodRequest], Any]) -> Any:
        log.append(f"inner {request.path}")
        if request.kwargs.get("veto"):
            raise PermissionError("vetoed")
        return ("wrapped", call_next(request))

    dm = DataManager()
    dm.register_services(users=Users())
    dm.register_method_middleware(outer, inner)
    with dm.context() as ctx:
        assert ctx.dal.users.echo(1) == ("wrapped", ((1,), {}))
        with pytest.raises(PermissionError):
            ctx.dal.users.echo(veto=True)
    assert log == [
        "outer users.echo (1,) {}", "inner ('users', 'echo')", "outer done",
        "outer users.echo () {'veto': True}", "inner ('users', 'echo')",
    ]  # fmt: skip


def test_method_middleware_can_rewrite_arguments() -> None:
    def rewrite(request: MethodRequest, call_next: Callable[[MethodRequest], Any]) -> Any:
        request.args = ("rewritten",)
        return call_next(request)

    dm = DataManager()
    dm.register_services(users=Users())
    dm.register_method_middleware(rewrite)
    with dm.context() as ctx:
        assert ctx.dal.users.echo("original") == (("rewritten",), {})


# async DAL ---------------------------------------------------------------
class AsyncUsers(Service):
    async def me(self) -> Any:
        await asyncio.sleep(0)
        return self._ctx.meta.user

    def plain(self) -> str:
        return "plain"


async def test_async_dal_and_middleware() -> None:
    log: list[str] = []

    async def outer(request: MethodRequest, call_next: Any) -> Any:
        log.append("outer")
        return ("outer", await call_next(request))

    async def inner(request: MethodRequest, call_next: Any) -> Any:
        log.append("inner")
        if request.kwargs.get("veto"):
            raise PermissionError
        return await call_next(request)

    dm = AsyncDataManager()
    dm.register_services(users=AsyncUsers())
    dm.register_method_middleware(outer, inner)
    async with dm.dal(meta={"user": "amy"}) as dal:
        assert await dal.users.me() == ("outer", "amy")
        assert await dal["users.plain"]() == ("outer", "plain")
        with pytest.raises(DalMethodError):
            dal.users.nope  # noqa: B018
        me = dal.users.me
    assert log == ["outer", "inner", "outer", "inner"]
    with pytest.raises(RuntimeError):
        await me()


async def test_async_contexts_in_tasks_are_isolated() -> None:
    dm = AsyncDataManager()
    dm.register_services(users=AsyncUsers())
    async with dm.context(meta={"user": "outer"}):

        async def task() -> Any:
            assert dm.get_active_context().meta.user == "outer"  # type: ignore[union-attr]
            async with dm.context(meta={"user": "inner"}) as ctx:
                await asyncio.sleep(0)
                return await ctx.dal.users.me()

        assert await asyncio.gather(task(), task()) == ["inner", "inner"]
        assert dm.require_active_context().meta.user == "outer"

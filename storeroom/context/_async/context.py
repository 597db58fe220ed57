"""``AsyncContext``: one request or task: meta, DAL, lazy resources, engines, unit of work."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ...errors import MiddlewareSetupError, ResourceSetupError
from ...store.identity import IdentityMap
from .. import binding
from ..current import CURRENT
from ..meta import EMPTY_META, Meta
from ..states import ACTIVE, CLOSING, ENDED, EXITING, NAMES, NEW
from .dal import DAL
from .engines import AsyncEngines, Savepoint
from .steps import DONE, advance, finish, resolve

IS_ASYNC = True


def lazy_mode(lazy: str | None, is_async: bool) -> str:
    """The lazy mode of a new context: ``lazy``, checked, or the default (``"peers"`` for
    a sync context, ``"raise"`` for an async one, which never does hidden I/O)."""
    if lazy is None:
        return "raise" if is_async else "peers"
    if is_async and lazy != "raise":
        raise ValueError(f"an async context accepts only lazy='raise' (async code never "
                         f"does hidden I/O: use prefetch_related or await store.load), "
                         f"got {lazy!r}")
    if lazy not in ("peers", "one", "raise"):
        raise ValueError(f"lazy is 'peers', 'one' or 'raise', got {lazy!r}")
    return lazy


class AsyncContext:
    """The state of one request or task; create it with ``dm.context(meta=...)``.

    Use it once, as ``async with dm.context() as ctx:``. Inside, ``ctx.meta`` is
    the read-only meta, ``ctx.dal`` the services, ``await ctx.<resource>`` a
    lazily opened resource, ``ctx.engines`` the named database connections and
    ``ctx.store(Model)`` a store bound to this context's transaction.

    Lifecycle: context middleware set up in registration order before the
    body and torn down in reverse after it (an error of the body is thrown
    into the innermost first, then outward; a middleware may replace or
    suppress it); then every opened engine commits (the body and middleware
    ended cleanly) or rolls back, ``on_commit`` callbacks run after a commit,
    and the resources opened during the context close in reverse order of
    opening (the error, if any, thrown into each; their own errors land in
    ``resource_exit_errors`` and never escape).
    """

    __slots__ = (
        "_dm",
        "_registry",
        "_meta",
        "_autocommit",
        "_parent",
        "_state",
        "_token",
        "_ctoken",
        "_mw_gens",
        "_resources",
        "_res_gens",
        "_engines",
        "_dal",
        "_exit_errors",
        "_on_commit",
        "_stores",
        "_identity",
        "_lazy",
        "__weakref__",
    )

    def __init__(
        self, data_manager: Any, meta: Mapping[str, Any] | None = None, autocommit: bool = False,
        lazy: str | None = None,
    ) -> None:
        self._dm = data_manager
        self._registry = data_manager._registry
        self._meta: Meta = (
            meta if isinstance(meta, Meta) else (Meta(meta) if meta else EMPTY_META)
        )
        self._autocommit = autocommit
        self._parent: AsyncContext | None = None
        self._state = NEW
        self._token: Any = None
        self._ctoken: Any = None
        self._mw_gens: list[Any] | None = None
        self._resources: dict[str, Any] | None = None
        self._res_gens: dict[str, Any] | None = None
        self._engines: AsyncEngines | None = None
        self._dal: DAL | None = None
        self._exit_errors: list[BaseException] | None = None
        self._on_commit: list[Callable[[], Any]] | None = None
        self._stores: dict[Any, Any] | None = None
        self._identity: IdentityMap | None = None
        self._lazy: str = lazy_mode(lazy, IS_ASYNC)

    # public attributes --------------------------------------------------
    @property
    def meta(self) -> Meta:
        """The read-only meta given to ``dm.context(meta=...)``."""
        return self._meta

    @property
    def lazy(self) -> str:
        """What reading a relation that is not loaded does: ``"peers"``, ``"one"`` or
        ``"raise"`` (``dm.context(lazy=...)``; see ``storeroom.relations.lazy``)."""
        return self._lazy

    @property
    def autocommit(self) -> bool:
        """Whether each statement commits on its own (``dm.context(autocommit=True)``)."""
        return self._autocommit

    @property
    def parent(self) -> AsyncContext | None:
        """The context that was active when this one was entered, or ``None``."""
        return self._parent

    @property
    def data_manager(self) -> Any:
        """The data manager that made this context."""
        return self._dm

    @property
    def state(self) -> str:
        """``new``, ``active``, ``exiting``, ``closing`` or ``ended``."""
        return NAMES[self._state]

    @property
    def dal(self) -> DAL:
        """The DAL: ``ctx.dal.service.method(...)``."""
        dal = self._dal
        if dal is None:
            dal = self._dal = DAL(self, self._registry)
        return dal

    @property
    def engines(self) -> AsyncEngines:
        """The named engines: ``await ctx.engines.get(name)``; see :class:`AsyncEngines`."""
        engines = self._engines
        if engines is None:
            engines = self._engines = AsyncEngines(self, self._dm._topology)
        return engines

    @property
    def resource_exit_errors(self) -> list[BaseException]:
        """The errors resources raised while closing (collected, never raised)."""
        if self._exit_errors is None:
            self._exit_errors = []
        return self._exit_errors

    @property
    def opened_resources(self) -> tuple[str, ...]:
        """The names of the resources opened so far, in order of opening."""
        return tuple(self._resources or ())

    def __contains__(self, name: str) -> bool:
        """Whether resource ``name`` is open in this context."""
        return self._resources is not None and name in self._resources

    # resources ----------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        factory = self._registry.resources.get(name)
        if factory is None:
            known = ", ".join(sorted(self._registry.resources)) or "none"
            raise AttributeError(f"context has no resource {name!r} (resources: {known})")
        return self._resource(name, factory)

    async def _resource(self, name: str, factory: Callable[..., Any]) -> Any:
        resources = self._resources
        if resources is not None and name in resources:
            if self._state == ENDED:
                raise RuntimeError(f"resource {name!r} used after its context ended")
            return resources[name]
        state = self._state
        if state != ACTIVE and state != EXITING:
            raise RuntimeError(f"resource {name!r} used outside an active context ({self.state})")
        gen = factory(self)
        value = await advance(gen)
        if value is DONE:
            raise ResourceSetupError(f"resource {name!r} did not yield ({factory!r})")
        resources = self._resources
        if resources is None:
            resources = self._resources = {}
            self._res_gens = {}
        elif name in resources:  # another task of this context opened it meanwhile
            error = await finish(gen, None, f"resource {name!r}")
            if error is not None:
                self.resource_exit_errors.append(error)
            return resources[name]
        resources[name] = value
        self._res_gens[name] = gen  # type: ignore[index]
        return value

    # stores and transactions -------------------------------------------
    @property
    def identity_map(self) -> IdentityMap:
        """This context's identity map: one object per key and model for every store
        of the context (``ctx.store(Model)``, ``Model.objects``), made on first use.

        ``ctx.identity_map.clear()`` forgets every mapped object (the next reads give
        fresh ones); a rolled-back ``ctx.savepoint()`` does that too.
        """
        found = self._identity
        if found is None:
            found = self._identity = IdentityMap(track_peers=self._lazy == "peers")
        return found

    def store(self, model: type, engine: str | None = None) -> Any:
        """The store of ``model`` bound to this context (memoized per context).

        ``model`` must be registered with ``dm.register_models`` (``LookupError``
        otherwise); the store takes its connections from ``ctx.engines.connection_for``,
        on the model's engine or on ``engine`` when given.
        """
        stores = self._stores
        memo: Any = model if engine is None else (model, engine)
        if stores is not None:
            found = stores.get(memo)
            if found is not None:
                return found
        engine_name = self._dm._engine_for_model(model)
        if engine is not None:
            engine_name = self._dm._topology.get(engine).name
        # looked up at call time: the binding module's functions are the seam to the store
        bind = binding.bind_async_store if IS_ASYNC else binding.bind_store
        bound: Any = bind(model, self, engine_name)
        if self._stores is None:
            self._stores = {}
        self._stores[memo] = bound
        return bound

    def savepoint(self, engine: str | None = None) -> Savepoint:
        """``async with ctx.savepoint():`` nests a savepoint on every open engine (or one).

        An error inside rolls back only the work done inside, then propagates;
        engines first opened inside join the savepoint.
        """
        return self.engines.savepoint(engine)

    def on_commit(self, fn: Callable[[], Any]) -> None:
        """Run ``fn()`` after this context committed (never when it rolled back).

        Callbacks run in registration order after every engine committed, before
        resources close; their errors propagate from the context.
        """
        if self._on_commit is None:
            self._on_commit = [fn]
        else:
            self._on_commit.append(fn)

    # lifecycle ----------------------------------------------------------
    async def __aenter__(self) -> AsyncContext:
        if self._state != NEW:
            raise RuntimeError("a context can be entered only once; make a new one with dm.context()")
        var = self._dm._active
        self._parent = var.get()
        self._token = var.set(self)
        self._ctoken = CURRENT.set(self)
        self._state = ACTIVE
        middleware = self._registry.context_middleware
        if middleware:
            await self._setup_middleware(middleware)
        return self

    async def _setup_middleware(self, middleware: tuple[Any, ...]) -> None:
        gens: list[Any] = []
        self._mw_gens = gens
        for factory in middleware:
            try:
                gen = factory(self)
                value = await advance(gen)
                if value is DONE:
                    raise MiddlewareSetupError(f"context middleware {factory!r} did not yield")
            except BaseException as exc:
                error = await self._teardown(exc)
                raise error if error is not None else exc  # noqa: B904
            gens.append(gen)

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if self._state != ACTIVE:
            raise RuntimeError(f"cannot exit a context that is {self.state}")
        if exc_type is not None and exc is None:
            exc = exc_type()
        error = await self._teardown(exc)
        if error is None:
            return exc is not None
        if error is exc:
            return False
        raise error

    async def _teardown(self, exc: BaseException | None) -> BaseException | None:
        """Tear everything down after the body ended with ``exc``; the error that escapes."""
        self._state = EXITING
        error = exc
        gens = self._mw_gens
        if gens:
            self._mw_gens = None
            while gens:
                error = await finish(gens.pop(), error, "context middleware")
        committed = exc is None and error is None
        if self._engines is not None:
            failure = await self._engines._finish(committed)
            if failure is not None:
                committed = False
                if error is None:
                    error = failure
                else:
                    self.resource_exit_errors.append(failure)
        callbacks = self._on_commit
        if callbacks is not None:
            self._on_commit = None
            if committed:
                for fn in callbacks:
                    try:
                        await resolve(fn())
                    except BaseException as failure:  # noqa: BLE001
                        if error is None:
                            error = failure
        self._state = CLOSING
        res_gens = self._res_gens
        if res_gens:
            for name in reversed(list(res_gens)):
                result = await finish(res_gens[name], error, f"resource {name!r}")
                if result is not None and result is not error:
                    self.resource_exit_errors.append(result)
            self._res_gens = None
        self._state = ENDED
        try:
            self._dm._active.reset(self._token)
        except ValueError:  # exited in another thread or task than it was entered in
            pass
        self._token = None
        try:
            CURRENT.reset(self._ctoken)
        except ValueError:  # as above
            pass
        self._ctoken = None
        return error

    def __repr__(self) -> str:
        return f"<AsyncContext {self.state} meta={self.meta.to_dict()!r}>"

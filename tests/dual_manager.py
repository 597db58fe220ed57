"""One DataManager adapter for tests that run sync and async alike: contexts and
savepoints are entered the same way (``async with``) in both flavors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from storeroom.context import AsyncDataManager, DataManager


class DualManager:
    """A data manager of either flavor over one engine ``main`` at ``url``."""

    def __init__(self, is_async: bool, url: str, models: Iterable[type],
                 **options: Any) -> None:
        self.is_async = is_async
        self.url = url
        self.dm: Any = AsyncDataManager() if is_async else DataManager()
        self.engine = self.dm.add_engine("main", url, **options)
        self.dm.register_models(*models)

    @asynccontextmanager
    async def context(self, **kw: Any) -> AsyncIterator[Any]:
        if self.is_async:
            async with self.dm.context(**kw) as ctx:
                yield ctx
        else:
            with self.dm.context(**kw) as ctx:
                yield ctx

    @asynccontextmanager
    async def savepoint(self, ctx: Any) -> AsyncIterator[None]:
        if self.is_async:
            async with ctx.savepoint():
                yield
        else:
            with ctx.savepoint():
                yield

    async def close(self) -> None:
        if self.is_async:
            await self.dm.close()
        else:
            self.dm.close()

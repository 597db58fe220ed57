"""Every store URL works through ``DataManager.add_engine`` and ``ctx.store`` too.

SQL URLs become SQLAlchemy engines whose stores join the context's transaction (a
context that raises leaves nothing behind); memory, DynamoDB, MongoDB and Redis URLs
become store engines shared by contexts.
"""

from __future__ import annotations

from contract_models import Task

from storeroom.context import AsyncDataManager, DataManager


async def test_add_engine_url_serves_ctx_store(store_factory):
    url = store_factory.url
    sql = url.split(":", 1)[0].split("+", 1)[0] in ("sqlite", "postgresql", "mysql")
    task = Task(id="t1", owner="ann", title="through a context")
    if store_factory.is_async:
        adm = AsyncDataManager()
        adm.add_engine("main", url, default=True)
        adm.register_models(Task)
        try:
            async with adm.context() as ctx:
                created = await ctx.store(Task).create(task)
            async with adm.context() as ctx:
                assert await ctx.store(Task).read("t1") == created
                assert await ctx.store(Task).count(owner="ann") == 1
            if sql:  # the unit of work: an error in the context rolls its writes back
                try:
                    async with adm.context() as ctx:
                        await ctx.store(Task).create(Task(id="t2", owner="bob", title="x"))
                        raise RuntimeError("boom")
                except RuntimeError:
                    pass
                async with adm.context() as ctx:
                    assert await ctx.store(Task).read("t2") is None
        finally:
            await adm.close()
        return
    dm = DataManager()
    dm.add_engine("main", url, default=True)
    dm.register_models(Task)
    try:
        with dm.context() as ctx:
            created = ctx.store(Task).create(task)
        with dm.context() as ctx:
            assert ctx.store(Task).read("t1") == created
            assert ctx.store(Task).count(owner="ann") == 1
        if sql:
            try:
                with dm.context() as ctx:
                    ctx.store(Task).create(Task(id="t2", owner="bob", title="x"))
                    raise RuntimeError("boom")
            except RuntimeError:
                pass
            with dm.context() as ctx:
                assert ctx.store(Task).read("t2") is None
    finally:
        dm.close()

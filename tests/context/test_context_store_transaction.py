"""``ctx.store(M).transaction()`` inside a context is refused with ``UnsupportedOperation``
on every engine kind (the context owns the transaction), never a bare AttributeError."""

from __future__ import annotations

import pytest

from storeroom import UnsupportedOperation, stored
from storeroom.context import AsyncDataManager, DataManager


@stored
class Ledger:
    id: str


@pytest.mark.parametrize("url", ["memory://", "sqlite:///{tmp}/l.db"])
def test_store_transaction_in_a_context_is_unsupported(tmp_path, url):
    dm = DataManager()
    dm.add_engine("main", url.format(tmp=tmp_path), default=True)
    dm.register_models(Ledger)
    try:
        with dm.context() as ctx:
            s = ctx.store(Ledger)
            with pytest.raises(UnsupportedOperation, match="savepoint"):
                with s.transaction():
                    pass
            s.create(Ledger(id="a"))  # the context goes on
        with dm.context() as ctx:
            assert ctx.store(Ledger).read("a") is not None
    finally:
        dm.close()


@pytest.mark.parametrize("url", ["memory://", "sqlite:///{tmp}/l.db"])
async def test_async_store_transaction_in_a_context_is_unsupported(tmp_path, url):
    dm = AsyncDataManager()
    dm.add_engine("main", url.format(tmp=tmp_path), default=True)
    dm.register_models(Ledger)
    try:
        async with dm.context() as ctx:
            with pytest.raises(UnsupportedOperation, match="savepoint"):
                async with ctx.store(Ledger).transaction():
                    pass
    finally:
        await dm.close()

"""Contract: the fast paths of loading relations through a context's identity map.

A JOIN's joined objects are attached to the rows' items before the map sees them; the
map then re-attaches only what it changed. These pin the case where a row's item was
mapped before (it keeps its own object, which must get the joined Ref) while the joined
objects were not.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storeroom import is_loaded
from tests.backends.conftest import BACKENDS, MODES, S, unavailable
from tests.backends.test_contract_loading import Aisle, Crate, D, _seed

#: the backends whose select_related is a JOIN (``find_joined``)
SQL_BACKENDS = [b for b in BACKENDS if b.id in ("sqlite", "postgres", "mysql")]


@pytest.fixture(params=[(b, m) for b in SQL_BACKENDS for m in MODES],
                ids=[f"{b.id}-{m}" for b in SQL_BACKENDS for m in MODES])
async def d(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[D]:
    spec, mode = request.param
    reason = spec.available()
    if reason is not None:
        unavailable(spec.id, reason)
    manager = D(mode == "async", spec.url_factory(tmp_path, f"rp{uuid.uuid4().hex}"))
    yield manager
    await manager.close()


async def test_joined_ref_reaches_an_item_mapped_before(d: D) -> None:
    async with d.context() as ctx:
        await _seed(ctx)
    async with d.context() as ctx:
        crates = S(ctx.store(Crate))
        before = await crates.read(4)  # mapped; its aisle is not (nor touched)
        got = (await crates.search(order_by="id", select_related="aisle")).items
        assert got[4] is before
        kept = got[1].aisle
    # outside the context, no map or lazy load can find it: the Ref holds the object
    assert is_loaded(before, "aisle") and before.aisle is kept
    assert type(kept) is Aisle and kept.name == "a1"

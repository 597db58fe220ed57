"""Relations inside a context: a store from ``ctx.store`` checks references and runs
``on_delete`` through the context's own stores of the related models (its connections,
its unit of work, its identity map), on every backend a context runs on, sync and async."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storeroom import Conflict, Many, Ref, ValidationError, field, stored
from tests.backends.conftest import BACKENDS, MODES, SAME_CODE_AS, BackendSpec, unavailable
from tests.context.test_identity_map import S
from tests.dual_manager import DualManager

CTX_BACKENDS = [b for b in BACKENDS if b.id not in SAME_CODE_AS]


@stored(key="id")
class Shelf:
    id: str
    name: str = ""
    books: Many[Book] = field(reverse="shelf")


@stored(key="id")
class Book:
    id: str
    title: str = ""
    shelf: Ref[Shelf] = field(on_delete="block")


class D(DualManager):
    def __init__(self, is_async: bool, url: str) -> None:
        try:
            super().__init__(is_async, url, (Shelf, Book))
        except (ImportError, ValueError) as exc:
            unavailable(url.split(":", 1)[0], f"{type(exc).__name__}: {exc}")


@pytest.fixture(params=CTX_BACKENDS, ids=[b.id for b in CTX_BACKENDS])
def backend(request: pytest.FixtureRequest) -> BackendSpec:
    spec: BackendSpec = request.param
    reason = spec.available()
    if reason is not None:
        unavailable(spec.id, reason)
    return spec


@pytest.fixture(params=MODES)
async def d(request: pytest.FixtureRequest, backend: BackendSpec,
            tmp_path: Path) -> AsyncIterator[D]:
    manager = D(request.param == "async", backend.url_factory(tmp_path,
                                                               f"r{uuid.uuid4().hex}"))
    yield manager
    await manager.close()


async def test_a_context_store_checks_references_and_blocks_deletes(d: D) -> None:
    async with d.context() as ctx:
        shelves, books = S(ctx.store(Shelf)), S(ctx.store(Book))
        await shelves.create(Shelf(id="s1", name="fiction"))
        # the reference check reads the shelf through the context's store of Shelf
        await books.create(Book(id="b1", title="t", shelf="s1"))
        with pytest.raises(ValidationError) as info:
            await books.create(Book(id="b2", shelf="nowhere"))
        assert info.value.errors[0]["rule"] == "reference"
    async with d.context() as ctx:
        shelves, books = S(ctx.store(Shelf)), S(ctx.store(Book))
        assert (await books.read("b1")).shelf_id == "s1"
        with pytest.raises(Conflict):
            await shelves.delete("s1")
        await books.delete("b1")
        await shelves.delete("s1")
        assert await shelves.read("s1") is None


async def test_a_shelf_created_earlier_in_the_same_context_is_seen(d: D) -> None:
    # the related store is the context's: on SQL it shares the uncommitted transaction
    async with d.context() as ctx:
        await S(ctx.store(Shelf)).create(Shelf(id="s2"))
        await S(ctx.store(Book)).create(Book(id="b3", shelf="s2"))
    async with d.context() as ctx:
        assert [b.id for b in await S(ctx.store(Book)).all()] == ["b3"]

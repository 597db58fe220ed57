"""Contract: ``@stored`` schema options on every backend, sync and async —
``unique_together`` (``Conflict``, nothing written; a tuple holding None never
conflicts) and ``checks`` (``ValidationError`` whose rule is the check's name, nothing
written). DESIGN.md "Schema, raw SQL and migrations"."""

from __future__ import annotations

from typing import Any

import pytest

from storeroom import (
    BatchError,
    Conflict,
    Create,
    Delete,
    Update,
    Upsert,
    stored,
)
from tests.backends.test_contract_precond import _persist, _race


@stored(unique_together=[("owner", "title")])
class Doc:
    id: str
    owner: str | None = None
    title: str = ""
    n: int = 0


def _no_unique(store_factory: Any) -> bool:
    """dynalite has no transactions: unique sets are refused there (test_contract)."""
    return "no_transactions" in store_factory.spec.limits


async def test_unique_together_on_create_upsert_and_delete(store_factory) -> None:  # noqa: ANN001
    if _no_unique(store_factory):
        return
    s = store_factory(Doc)
    a = await s.create(Doc(id="a", owner="ann", title="x"))
    await s.create(Doc(id="b", owner="ann", title="y"))  # another title
    await s.create(Doc(id="c", owner="bob", title="x"))  # another owner
    with pytest.raises(Conflict, match="owner='ann', title='x'"):
        await s.create(Doc(id="d", owner="ann", title="x"))
    with pytest.raises(Conflict):
        await s._call("upsert", Doc(id="d", owner="ann", title="x"))
    with pytest.raises(Conflict):
        await s._call("upsert", Doc(id="b", owner="ann", title="x"))  # an existing item moves into it
    # a tuple holding None is never constrained (SQL's rule)
    await s.create(Doc(id="n1", owner=None, title="x"))
    await s.create(Doc(id="n2", owner=None, title="x"))
    assert await s.count() == 5 and await s.read("d") is None
    assert (await s.read("b")).title == "y"
    assert (await s._call("upsert", Doc(id="a", owner="ann", title="x", n=1))).n == 1  # its own
    assert await s.delete("a")
    await s.create(Doc(id="d", owner="ann", title="x"))  # the tuple is free again
    assert (await s.read("d")).owner == "ann" and a.id == "a"


async def test_unique_together_on_updates(store_factory) -> None:  # noqa: ANN001
    if _no_unique(store_factory):
        return
    s = store_factory(Doc)
    await s.create(Doc(id="a", owner="ann", title="x"))
    await s.create(Doc(id="b", owner="ann", title="y"))
    await s.create(Doc(id="c", owner="bob", title="x"))
    before = await s.all()
    with pytest.raises(Conflict):
        await s.update("b", title="x")  # one attribute of the set moves into a taken tuple
    with pytest.raises(Conflict):
        await s.update("c", owner="ann")  # the other one
    with pytest.raises(Conflict):  # part of the set, on several items: nothing written
        await s.update_where(owner="ann", changes={"title": "z"})
    with pytest.raises(Conflict):
        await s.update_where(id="c", changes={"owner": "ann"})
    assert await s.all() == before
    assert (await s.update("a", n=5)).n == 5  # not touching the set
    assert (await s.update("b", title="z")).title == "z"  # a free tuple
    await s.create(Doc(id="d", owner="ann", title="y"))  # the tuple b left
    assert await s.update_where(owner="bob", changes={"owner": None}) == 1  # to None: free
    await s.create(Doc(id="e", owner="bob", title="x"))


async def test_unique_together_in_batches(store_factory) -> None:  # noqa: ANN001
    if _no_unique(store_factory):
        return
    s = store_factory(Doc)
    await s.create(Doc(id="a", owner="ann", title="x"))
    await s.create(Doc(id="b", owner="ann", title="y"))
    before = await s.all()
    if s.meta.atomic_batch:
        for edits in ([Create(Doc(id="c", owner="bob", title="x")),
                       Update("b", title="x")],
                      [Create(Doc(id="c", owner="cy", title="q")),
                       Create(Doc(id="d", owner="cy", title="q"))],
                      [Upsert(Doc(id="c", owner="ann", title="x"))]):
            with pytest.raises(BatchError):
                await s.edit_batch(edits, atomic=True)
            assert await s.all() == before
        # a tuple freed earlier in the batch is taken later in it
        out = await s.edit_batch([Update("a", title="z"),
                                  Create(Doc(id="c", owner="ann", title="x"))], atomic=True)
        assert all(r.ok for r in out)
        out = await s.edit_batch([Delete("c"), Update("b", title="x")], atomic=True)
        assert all(r.ok for r in out)
    out = await s.edit_batch([Create(Doc(id="e", owner="ann", title="x")),
                              Create(Doc(id="f", owner="ann", title="w"))])
    assert [r.ok for r in out] == [False, True] and out[0].code == "duplicate_key"


async def test_unique_together_race_one_creator_wins(store_factory) -> None:  # noqa: ANN001
    """Two writers create the same tuple under different keys at once: exactly one wins."""
    if _no_unique(store_factory):
        return

    async def worker(s: Any, i: int, step: Any) -> list[bool]:
        won = []
        for r in range(3):
            await step()
            try:
                await _persist(store_factory, s.create,
                               Doc(id=f"r{r}w{i}", owner="race", title=str(r)))
                won.append(True)
            except Conflict:
                won.append(False)
        return won

    results = await _race(store_factory, Doc, worker)
    assert all(a != b for a, b in zip(*results, strict=True)), results
    s = store_factory(Doc)
    assert await s.count(owner="race") == 3

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
    F,
    Q,
    Update,
    Upsert,
    ValidationError,
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


@stored(checks={"positive": Q(priority__gte=0),
                "bounded": Q(priority__lte=10) | Q(big=True)})
class Job:
    id: str
    priority: int = 0
    big: bool = False
    note: str = ""


def _rule(exc: pytest.ExceptionInfo[ValidationError]) -> str:
    return exc.value.errors[0]["rule"]


# the store front's code: dynalite runs it as moto_server would
@pytest.mark.one_server_per_backend
async def test_checks_refuse_creates_upserts_and_updates(store_factory) -> None:  # noqa: ANN001
    s = store_factory(Job)
    await s.create(Job(id="a", priority=3))
    await s.create(Job(id="b", priority=50, big=True))
    with pytest.raises(ValidationError) as e:
        await s.create(Job(id="c", priority=-1))
    assert _rule(e) == "positive"
    with pytest.raises(ValidationError) as e:
        await s._call("upsert", Job(id="a", priority=11))
    assert _rule(e) == "bounded"
    with pytest.raises(ValidationError) as e:
        await s.update("a", priority=-2)  # the changes alone fail it
    assert _rule(e) == "positive"
    with pytest.raises(ValidationError) as e:
        await s.update("b", big=False)  # fails with the stored priority (50)
    assert _rule(e) == "bounded"
    with pytest.raises(ValidationError) as e:
        await s.update("a", priority=F("priority") - 4)  # the result fails it
    assert _rule(e) == "positive"
    assert [(j.id, j.priority, j.big) for j in await s.all()] == [("a", 3, False),
                                                                  ("b", 50, True)]
    assert (await s.update("b", priority=20)).priority == 20  # big: allowed
    assert (await s.update("a", note="x")).note == "x"
    assert (await s.update("a", priority=F("priority") + 1)).priority == 4
    assert await s.update("zz", priority=1) is None  # missing: None as ever
    assert await s.update("a", precondition=Q(note="no"), priority=5) is None


# the store front's code: dynalite runs it as moto_server would
@pytest.mark.one_server_per_backend
async def test_checks_in_update_where_and_batches(store_factory) -> None:  # noqa: ANN001
    s = store_factory(Job)
    await s.create(Job(id="a", priority=3))
    await s.create(Job(id="b", priority=9))
    await s.create(Job(id="c", priority=50, big=True))
    before = await s.all()
    with pytest.raises(ValidationError) as e:  # c passes (big), a and b would not
        await s.update_where(changes={"priority": 12})
    assert _rule(e) == "bounded"
    with pytest.raises(ValidationError) as e:
        await s.update_where(priority__lt=10, changes={"priority": F("priority") + 5})
    assert _rule(e) == "bounded"  # b's result, 14
    assert await s.all() == before
    assert await s.update_where(big=True, changes={"priority": 12}) == 1
    assert await s.update_where(priority__lt=10, changes={"priority": F("priority") - 3}) == 2
    assert [j.priority for j in await s.all()] == [0, 6, 12]
    out = await s.edit_batch([Create(Job(id="d", priority=-5)), Update("a", priority=2),
                              Update("c", big=False)])
    assert [r.ok for r in out] == [False, True, False]
    assert [r.code for r in out] == ["invalid", None, "invalid"]
    if s.meta.atomic_batch:
        after = await s.all()
        for edits in ([Update("a", priority=4), Update("b", priority=F("priority") + 9)],
                      [Upsert(Job(id="e", priority=-1))],
                      [Update("c", priority=5), Update("c", big=False, priority=11)]):
            with pytest.raises(BatchError) as be:
                await s.edit_batch(edits, atomic=True)
            assert "invalid" in {r.code for r in be.value.results}
            assert await s.all() == after


async def test_checks_race_two_updates_never_store_a_failing_item(store_factory) -> None:  # noqa: ANN001
    """Each update alone passes the checks, both together would not: whatever the
    interleaving, the stored item passes them (the loser gets ValidationError)."""
    if store_factory.spec.id == "dynamodb-moto":
        return  # moto checks conditions without a lock (test_contract_precond._racy_server)
    rounds = 3
    s0 = store_factory(Job)
    for r in range(rounds):
        await s0.create(Job(id=f"r{r}", priority=5, big=True))

    async def worker(s: Any, i: int, step: Any) -> list[bool]:
        won = []
        for r in range(rounds):
            await step()
            try:
                if i == 0:
                    await _persist(store_factory, s.update, f"r{r}", big=False)
                else:
                    await _persist(store_factory, s.update, f"r{r}", priority=50)
                won.append(True)
            except ValidationError:
                won.append(False)
        return won

    results = await _race(store_factory, Job, worker)
    for r in range(rounds):
        j = await s0.read(f"r{r}")
        assert j.priority <= 10 or j.big, (j, results)
        assert results[0][r] != results[1][r], results

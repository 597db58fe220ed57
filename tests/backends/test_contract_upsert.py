"""Contract: ``store.upsert(item)`` and the ``Upsert(item)`` edit, on every backend."""

from __future__ import annotations

import pytest

from storeroom import Conflict, Create, Upsert, ValidationError
from tests.backends.contract_models import Counter, Note, Task, User
from tests.backends.test_contract_precond import _race


async def _upsert(s, item):  # noqa: ANN001, ANN202 - the adapter has no upsert of its own
    return await s._call("upsert", item)


async def test_upsert_creates_then_fully_updates(store_factory) -> None:  # noqa: ANN001
    s = store_factory(Task)
    first = await _upsert(s, Task(id="t1", owner="ann", title="a", priority=3, tags=["x"]))
    assert await s.read("t1") == first
    again = await _upsert(s, Task(id="t1", owner="bob", title="b"))
    # a full write: what the item leaves at its defaults is stored as the defaults
    assert (again.owner, again.title, again.priority, again.tags) == ("bob", "b", 0, [])
    assert again.created_at == first.created_at  # kept
    assert again.updated_at >= first.updated_at
    assert await s.read("t1") == again
    assert await s.count() == 1


async def test_upsert_generated_key_and_validation(store_factory) -> None:  # noqa: ANN001
    s = store_factory(Task)
    made = await _upsert(s, Task(owner="ann", title="x"))
    assert made.id and await s.read(made.id) == made
    with pytest.raises(ValidationError):
        await _upsert(s, Task(id="t2", owner="ann", title="x", priority=9))
    assert await s.read("t2") is None
    c = store_factory(Counter)
    n1, n2 = await _upsert(c, Counter(label="a")), await _upsert(c, Counter(label="b"))
    assert n2.id > n1.id
    assert (await _upsert(c, Counter(id=n1.id, label="z"))).label == "z"
    assert await c.count() == 2


def _no_unique(store_factory) -> bool:  # noqa: ANN001
    """On a server without transactions (dynalite) unique attributes are refused."""
    return "no_transactions" in store_factory.spec.limits


async def test_upsert_composite_key(store_factory) -> None:  # noqa: ANN001
    n = store_factory(Note)
    await _upsert(n, Note(owner="a", num=1, text="x"))
    await _upsert(n, Note(owner="a", num=1, text="y"))
    await _upsert(n, Note(owner="a", num=2))
    assert [(i.num, i.text) for i in await n.all()] == [(1, "y"), (2, "")]
    out = await n.edit_batch([Upsert(Note(owner="a", num=2, text="z")),
                              Upsert(Note(owner="b", num=1, text="w")),
                              Upsert(Note(owner="a", num=2, text="v"))])
    assert [r.ok for r in out] == [True, True, True] and out[2].item.text == "v"
    assert sorted((i.owner, i.num, i.text) for i in await n.all()) == [
        ("a", 1, "y"), ("a", 2, "v"), ("b", 1, "w")]
    if n.meta.atomic_batch:
        out = await n.edit_batch([Upsert(Note(owner="a", num=1, text="q")),
                                  Upsert(Note(owner="c", num=1))], atomic=True)
        assert all(r.ok for r in out) and out[0].item.text == "q"
        assert await n.count() == 4


async def test_upsert_unique(store_factory) -> None:  # noqa: ANN001
    if _no_unique(store_factory):
        return  # (test_contract covers the refusal)
    s = store_factory(User)
    await s.create(User(id="u1", email="a@x"))
    await _upsert(s, User(id="u2", email="b@x"))
    with pytest.raises(Conflict):
        await _upsert(s, User(id="u2", email="a@x"))  # another item's unique value
    with pytest.raises(Conflict):
        await _upsert(s, User(id="u3", email="a@x"))
    assert (await s.read("u2")).email == "b@x" and await s.read("u3") is None
    assert (await s.read("u1")).email == "a@x"
    assert (await _upsert(s, User(id="u1", email="a@x", name="n"))).name == "n"


async def test_upsert_edit_unique_in_batches(store_factory) -> None:  # noqa: ANN001
    if _no_unique(store_factory):
        return
    s = store_factory(User)
    await s.create(User(id="u1", email="a@x"))
    out = await s.edit_batch([Upsert(User(id="u1", email="a2@x")),
                              Upsert(User(id="u2", email="b@x"))])
    assert [r.ok for r in out] == [True, True] and out[0].item.email == "a2@x"
    out = await s.edit_batch([Upsert(User(id="u3", email="b@x"))])
    assert not out[0].ok and out[0].code == "duplicate_key"
    if s.meta.atomic_batch:
        out = await s.edit_batch([Upsert(User(id="u1", email="c@x")),
                                  Create(User(id="u4", email="d@x"))], atomic=True)
        assert all(r.ok for r in out)
        with pytest.raises(Exception) as info:  # noqa: PT011 - BatchError
            await s.edit_batch([Upsert(User(id="u1", email="e@x")),
                                Create(User(id="u2", email="f@x"))], atomic=True)
        assert [r.ok for r in info.value.results] == [False, False]
        assert (await s.read("u1")).email == "c@x"
    assert await s.read("u3") is None


async def test_upsert_race_never_conflicts(store_factory) -> None:  # noqa: ANN001
    """Upserts of one key at once never raise Conflict; the last one written wins."""
    model = Note if _no_unique(store_factory) else User

    def item(i: int, j: int):  # noqa: ANN202
        if model is Note:
            return Note(owner="r", num=1, text=f"{i}.{j}")
        return User(id="r", email=f"w{i}.{j}@x", name=f"{i}.{j}")

    async def worker(store, i, step):  # noqa: ANN001, ANN202
        await step()
        for j in range(3):
            await _upsert(store, item(i, j))

    await _race(store_factory, model, worker, workers=4)
    s = store_factory(model)
    (final,) = await s.all()
    written = {f"{i}.{j}" for i in range(4) for j in range(3)}
    if model is Note:
        assert final.text in written
    else:
        assert final.name in written and final.email == f"w{final.name}@x"

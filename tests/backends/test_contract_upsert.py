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


async def test_upsert_unique_and_composite_key(store_factory) -> None:  # noqa: ANN001
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
    n = store_factory(Note)
    await _upsert(n, Note(owner="a", num=1, text="x"))
    await _upsert(n, Note(owner="a", num=1, text="y"))
    assert [i.text for i in await n.all()] == ["y"]


async def test_upsert_edit_in_batches(store_factory) -> None:  # noqa: ANN001
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
    async def worker(store, i, step):  # noqa: ANN001, ANN202
        await step()
        for j in range(3):
            await _upsert(store, User(id="r", email=f"w{i}@x", name=f"{i}.{j}"))

    await _race(store_factory, User, worker, workers=4)
    final = await store_factory(User).read("r")
    assert final.name in {f"{i}.{j}" for i in range(4) for j in range(3)}
    assert final.email == f"w{final.name.split('.')[0]}@x"

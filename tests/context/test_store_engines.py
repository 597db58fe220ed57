"""Non-SQL engines (``memory://``, ``mongodb://``, ``redis://``, ``dynamodb://``) are engines.

``add_engine`` returns a ``StoreEngine``; the engine is listed in ``engine_names``,
has a role, can be the default, shows in ``ctx.engines.status``; a memory engine's
writes join the context's unit of work (all or nothing at its end, read-your-writes
inside, invisible to other contexts until committed).
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from storeroom import AlreadyExists, Conflict, field, generated, stored
from storeroom.context import (
    AsyncDataManager,
    AsyncStoreEngine,
    DataManager,
    StoreEngine,
)


@stored
class Note:
    id: int
    text: str


@stored
class Tag:
    id: int
    name: str


@stored
class Counter:
    id: int = generated.sequence()
    label: str = ""


@stored
class Handle:
    id: int
    nick: str = field(unique=True)


def mem_url() -> str:
    return f"memory://{uuid.uuid4().hex}"


@pytest.fixture
def dm():
    manager = DataManager()
    yield manager
    manager.close()


# the engine is a real engine of the topology -----------------------------------------


def test_add_engine_returns_a_store_engine_that_is_listed(dm, tmp_path):
    url = mem_url()
    engine = dm.add_engine("m", url)
    assert isinstance(engine, StoreEngine)
    assert engine.name == "m" and engine.url == url and engine.backend == "memory"
    assert dm.get_engine("m") is engine
    dm.add_engine("sql", f"sqlite:///{tmp_path}/a.db")
    assert dm.engine_names == ("m", "sql")
    assert dm.default_engine == "m"
    assert dm.engine_role("m") == {"name": "m", "read_only": False, "primary": None,
                                   "replica": None}
    dm.register_models(Note)
    with dm.context() as ctx:
        assert ctx.engines.status == {"m": "init", "sql": "init"}
        ctx.store(Note).create(Note(id=1, text="x"))
        assert ctx.engines.status == {"m": "start", "sql": "init"}
        assert ctx.engines.opened == ("m",)
        assert ctx.engines.wrote("m")
    assert ctx.engines.status == {"m": "end", "sql": "init"}


def test_a_later_default_engine_wins_over_a_store_engine(dm, tmp_path):
    dm.add_engine("m", mem_url())
    dm.add_engine("sql", f"sqlite:///{tmp_path}/b.db", default=True)
    assert dm.default_engine == "sql"
    dm.register_models(Note)
    with dm.context() as ctx:
        assert ctx.store(Note).meta.backend == "sqlite"
    dm.add_engine("m2", mem_url(), default=True)
    assert dm.default_engine == "m2"


def test_store_engine_names_are_unique_and_read_only_is_refused(dm):
    dm.add_engine("a", mem_url())
    with pytest.raises(AlreadyExists):
        dm.add_engine("a", mem_url())
    with pytest.raises(ValueError, match="read_only"):
        dm.add_engine("b", mem_url(), read_only=True)
    with pytest.raises(ValueError, match="replica_of"):
        dm.add_engine("c", mem_url(), read_only=True, replica_of="a")
    assert dm.engine_names == ("a",)


def test_engine_store_is_the_standalone_store_outside_contexts(dm):
    engine = dm.add_engine("m", mem_url())
    dm.register_models(Note)
    engine.store(Note).create(Note(id=1, text="standalone"))
    with dm.context() as ctx:
        assert ctx.store(Note).read(1) == Note(id=1, text="standalone")
    assert engine.store(Note) is engine.store(Note)


def test_ctx_engines_get_of_a_store_engine_starts_it(dm):
    dm.add_engine("m", mem_url())
    with dm.context() as ctx:
        unit = ctx.engines["m"]
        assert unit is ctx.engines.get("m") is ctx.engines.m
        assert ctx.engines.status == {"m": "start"}


# the unit of work on a memory engine ------------------------------------------------


def test_memory_engine_rolls_back_a_context_that_raised(dm):
    dm.add_engine("m", mem_url())
    dm.register_models(Note, Tag)
    with dm.context() as ctx:
        ctx.store(Note).create(Note(id=1, text="kept"))
    with pytest.raises(RuntimeError):
        with dm.context() as ctx:
            ctx.store(Note).create(Note(id=2, text="lost"))
            ctx.store(Note).update(1, text="changed")
            ctx.store(Tag).create(Tag(id=1, name="lost too"))
            ctx.store(Note).delete(1)
            raise RuntimeError("boom")
    with dm.context() as ctx:
        assert ctx.store(Note).read(1) == Note(id=1, text="kept")
        assert ctx.store(Note).read(2) is None
        assert ctx.store(Tag).count() == 0


def test_memory_engine_read_your_writes_and_isolation(dm):
    dm.add_engine("m", mem_url())
    dm.register_models(Note)
    with dm.context() as ctx:
        ctx.store(Note).create(Note(id=1, text="a"))
        assert ctx.store(Note).read(1) == Note(id=1, text="a")
        assert [n.id for n in ctx.store(Note).search()] == [1]
        # another context (here in another thread) does not see the uncommitted write
        seen: list[object] = []

        def other() -> None:
            with dm.context() as octx:
                seen.append(octx.store(Note).read(1))
                seen.append(octx.store(Note).count())

        t = threading.Thread(target=other)
        t.start()
        t.join(30)
        assert seen == [None, 0]
    with dm.context() as ctx:
        assert ctx.store(Note).read(1) == Note(id=1, text="a")


def test_memory_commit_is_all_or_nothing_across_models(dm):
    dm.add_engine("m", mem_url())
    dm.register_models(Note, Handle)
    with dm.context() as ctx:
        ctx.store(Handle).create(Handle(id=1, nick="ann"))
    # a context that updates Note and creates a Handle whose unique nick another context
    # takes meanwhile: its commit fails and none of it is applied
    with pytest.raises(Conflict):
        with dm.context() as ctx:
            ctx.store(Note).create(Note(id=1, text="x"))
            ctx.store(Handle).create(Handle(id=2, nick="bob"))
            with dm.context() as other:
                other.store(Handle).create(Handle(id=3, nick="bob"))
    with dm.context() as ctx:
        assert ctx.store(Note).read(1) is None
        assert ctx.store(Handle).read(2) is None
        assert ctx.store(Handle).read(3) == Handle(id=3, nick="bob")


def test_memory_write_write_conflict_first_committer_wins(dm):
    dm.add_engine("m", mem_url())
    dm.register_models(Note)
    with dm.context() as ctx:
        ctx.store(Note).create(Note(id=1, text="v0"))
    with pytest.raises(Conflict, match="another context"):
        with dm.context() as first:
            first.store(Note).update(1, text="first")
            with dm.context() as second:
                second.store(Note).update(1, text="second")
    with dm.context() as ctx:
        assert ctx.store(Note).read(1).text == "second"


def test_memory_on_commit_runs_after_commit_only(dm):
    dm.add_engine("m", mem_url())
    dm.register_models(Note)
    seen: list[object] = []
    with dm.context() as ctx:
        ctx.store(Note).create(Note(id=1, text="x"))

        def after() -> None:
            with dm.context() as other:  # the write is visible to others when it runs
                seen.append(other.store(Note).read(1))

        ctx.on_commit(after)
    assert seen == [Note(id=1, text="x")]
    with pytest.raises(ValueError):
        with dm.context() as ctx:
            ctx.store(Note).create(Note(id=2, text="y"))
            ctx.on_commit(lambda: seen.append("never"))
            raise ValueError()
    assert seen == [Note(id=1, text="x")]


def test_memory_savepoint_nests(dm):
    dm.add_engine("m", mem_url())
    dm.register_models(Note, Tag)
    with dm.context() as ctx:
        ctx.store(Note).create(Note(id=1, text="outer"))
        with pytest.raises(ZeroDivisionError):
            with ctx.savepoint():
                ctx.store(Note).create(Note(id=2, text="gone"))
                ctx.store(Note).update(1, text="changed, then undone")
                ctx.store(Tag).create(Tag(id=1, name="first used inside"))
                1 / 0  # noqa: B018
        assert ctx.store(Note).read(1).text == "outer"
        assert ctx.store(Note).read(2) is None
        assert ctx.store(Tag).read(1) is None
        with ctx.savepoint("m"):
            ctx.store(Note).create(Note(id=3, text="kept"))
    with dm.context() as ctx:
        assert [n.id for n in ctx.store(Note).search()] == [1, 3]
        assert ctx.store(Tag).count() == 0


def test_memory_atomic_batch_in_a_context(dm):
    from storeroom import BatchError, Create
    dm.add_engine("m", mem_url())
    dm.register_models(Note)
    with dm.context() as ctx:
        store = ctx.store(Note)
        store.create(Note(id=1, text="a"))
        with pytest.raises(BatchError):
            store.edit_batch([Create(Note(id=2, text="b")), Create(Note(id=1, text="dup"))],
                             atomic=True)
        assert store.read(2) is None
    with dm.context() as ctx:
        assert ctx.store(Note).count() == 1


def test_memory_autocommit_context_writes_at_once(dm):
    dm.add_engine("m", mem_url())
    dm.register_models(Note)
    with pytest.raises(RuntimeError):
        with dm.context(autocommit=True) as ctx:
            ctx.store(Note).create(Note(id=1, text="at once"))
            raise RuntimeError()
    with dm.context() as ctx:
        assert ctx.store(Note).read(1) is not None


def test_memory_sequences_keep_counting_across_concurrent_contexts(dm):
    dm.add_engine("m", mem_url())
    dm.register_models(Counter)
    with dm.context() as a:
        first = a.store(Counter).create(Counter(label="a"))
        with dm.context() as b:
            second = b.store(Counter).create(Counter(label="b"))
    assert first.id != second.id
    with dm.context() as ctx:
        assert ctx.store(Counter).count() == 2


def test_memory_commits_race_without_lost_updates(dm):
    """Threads increment one counter item, each in its own context: no update is lost.

    A context whose commit finds the item changed by another raises ``Conflict``; it
    retries. The final count equals the successful commits.
    """
    dm.add_engine("m", mem_url())
    dm.register_models(Note)
    with dm.context() as ctx:
        ctx.store(Note).create(Note(id=1, text="0"))
    done: list[int] = []
    conflicts: list[int] = []

    def worker() -> None:
        for _ in range(40):
            while True:
                try:
                    with dm.context() as ctx:
                        store = ctx.store(Note)
                        seen = int(store.read(1).text)
                        time.sleep(0.0005)  # let the other threads interleave
                        store.update(1, text=str(seen + 1))
                    done.append(1)
                    break
                except Conflict:
                    conflicts.append(1)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(done) == 160
    assert conflicts  # the threads did race
    with dm.context() as ctx:
        assert ctx.store(Note).read(1).text == "160"


def test_models_on_a_named_sql_engine_beside_a_store_engine(dm, tmp_path):
    dm.add_engine("mem", mem_url(), default=True)
    dm.add_engine("sql", f"sqlite:///{tmp_path}/b.db")
    dm.register_models(Note, engine="sql")
    with dm.context() as ctx:
        ctx.store(Note).create(Note(id=2, text="y"))
        assert ctx.store(Note).meta.backend == "sqlite"


def test_close_and_postfork_reach_store_engines(tmp_path):
    dm = DataManager()
    engine = dm.add_engine("m", mem_url())
    dm.register_models(Note)
    store = engine.store(Note)
    dm.postfork()
    assert engine.store(Note) is not store  # the child opens its own stores
    dm.close()


# async -------------------------------------------------------------------------------


async def test_async_memory_engine_unit_of_work():
    async with AsyncDataManager() as dm:
        engine = dm.add_engine("mem", mem_url(), default=True)
        assert isinstance(engine, AsyncStoreEngine)
        assert dm.engine_names == ("mem",)
        dm.register_models(Note)
        async with dm.context() as ctx:
            await ctx.store(Note).create(Note(id=3, text="z"))
            assert (await ctx.store(Note).read(3)).text == "z"
            assert ctx.engines.status == {"mem": "start"}
            assert await ctx.engines["mem"] is await ctx.engines.get("mem")
        with pytest.raises(RuntimeError):
            async with dm.context() as ctx:
                await ctx.store(Note).create(Note(id=4, text="lost"))
                with pytest.raises(ZeroDivisionError):
                    async with ctx.savepoint():
                        await ctx.store(Note).update(3, text="undone")
                        1 / 0  # noqa: B018
                assert (await ctx.store(Note).read(3)).text == "z"
                raise RuntimeError()
        async with dm.context() as ctx:
            assert await ctx.store(Note).read(4) is None
            assert [n.id async for n in ctx.store(Note).search_all()] == [3]

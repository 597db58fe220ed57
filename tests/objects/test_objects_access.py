"""Reaching ``Model.objects``: the current context, its errors, paging of slices.

Memory engines only (the behaviour here is the query set's, not a backend's); the
contract suite (tests/backends/test_contract_objects.py) runs the methods everywhere.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import Any

import pytest

from storeroom import InvalidFilter, ValidationError, stored
from storeroom.context import AsyncDataManager, DataManager
from storeroom.context.current import current_context
from storeroom.objects import AsyncQuerySet, QuerySet


@stored(key="id", table="access_rows")
class Row:
    id: int
    n: int = 0


@stored(key="id", table="access_other")
class Other:
    id: int


@stored(key="id", table="access_own")
class OwnObjects:
    id: int
    objects: int = 0  # an attribute of its own keeps the name


def manager(url: str = "memory://") -> DataManager:
    dm = DataManager()
    dm.add_engine("main", url)
    dm.add_engine("second", "memory://")
    dm.register_models(Row)
    return dm


def test_outside_a_context_is_a_runtime_error() -> None:
    with pytest.raises(RuntimeError, match="active context"):
        Row.objects  # noqa: B018
    dm = manager()
    with dm.context():
        pass
    with pytest.raises(RuntimeError):  # and again after one ended
        Row.objects  # noqa: B018


def test_outside_a_context_the_attribute_is_absent_for_introspection() -> None:
    # hasattr, help() and doc tools walk a class's attributes: an AttributeError, not a
    # crash; inside a context the attribute is there
    assert not hasattr(Row, "objects")
    assert getattr(Row, "objects", None) is None
    with manager().context():
        assert hasattr(Row, "objects")


def test_an_unregistered_model_is_a_lookup_error() -> None:
    with manager().context(), pytest.raises(LookupError, match="Other"):
        Other.objects  # noqa: B018


def test_objects_belongs_to_the_class_and_a_field_of_that_name_wins() -> None:
    with manager().context():
        with pytest.raises(AttributeError):
            Row(id=1).objects  # noqa: B018
        assert isinstance(Row.objects, QuerySet)
    assert OwnObjects(id=1).objects == 0
    assert "objects" in {f.name for f in dataclasses.fields(OwnObjects)}


def test_nested_contexts_restore_the_outer_one_across_managers() -> None:
    one, two = manager(), manager()
    assert current_context() is None
    with one.context() as outer:
        one_store = outer.store(Row)
        one_store.create(Row(id=1))
        assert current_context() is outer
        with two.context() as inner:
            assert current_context() is inner
            assert Row.objects.count() == 0  # the inner manager's engine
        assert current_context() is outer
        assert Row.objects.count() == 1
    assert current_context() is None


def test_threads_and_tasks_see_their_own_context() -> None:
    dm = manager()
    seen: list[Any] = []

    def other_thread() -> None:
        seen.append(current_context())

    with dm.context():
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
    assert seen == [None]

    async def main() -> None:
        adm = AsyncDataManager()
        adm.add_engine("main", "memory://")
        adm.register_models(Row)
        async with adm.context() as ctx:
            assert isinstance(Row.objects, AsyncQuerySet)
            await Row.objects.create(id=1)

            async def in_task() -> Any:
                return current_context()
            assert await asyncio.create_task(in_task()) is ctx  # a task inherits it
        assert current_context() is None
        await adm.close()
    asyncio.run(main())


def test_using_reads_another_engine() -> None:
    dm = manager()
    with dm.context():
        Row.objects.create(id=1)
        assert Row.objects.count() == 1
        assert Row.objects.using("second").count() == 0
        Row.objects.using("second").bulk_create([Row(id=5), Row(id=6)])
        assert Row.objects.using("second").values_list("id", flat=True)[:] is not None
        assert sorted(Row.objects.using("second").values_list("id", flat=True)) == [5, 6]
        with pytest.raises(KeyError):
            Row.objects.using("nowhere").count()


def test_slices_beyond_a_page_continue_by_cursor_and_never_load_everything(
        monkeypatch: pytest.MonkeyPatch) -> None:
    dm = manager()
    with dm.context() as ctx:
        Row.objects.bulk_create([Row(id=i, n=i % 3) for i in range(20)])
        store = ctx.store(Row)
        # a page of 4 items: the slices below need several pages
        monkeypatch.setattr(store, "meta", dataclasses.replace(store.meta, max_page=4))
        monkeypatch.setattr(store, "_max_page", 4)
        calls: list[dict[str, Any]] = []
        search = store.search

        def counting(*args: Any, **kw: Any) -> Any:
            calls.append(kw)
            return search(*args, **kw)
        monkeypatch.setattr(store, "search", counting)
        qs = Row.objects.order_by("id")
        assert [r.id for r in qs[5:11]] == list(range(5, 11))
        # 11 items read in pages of at most 4, each page after the previous one's cursor
        assert [c["limit"] for c in calls] == [4, 4, 3]
        assert calls[0]["after"] is None and all(c["after"] for c in calls[1:])
        calls.clear()
        assert [r.id for r in qs[2:4]] == [2, 3]  # within one page: one search
        assert [c["limit"] for c in calls] == [4]
        calls.clear()
        assert [r.id for r in qs.filter(n=0)[1:]] == [3, 6, 9, 12, 15, 18]
        assert all(c["limit"] == 4 for c in calls) and len(calls) == 2
        calls.clear()
        assert qs[17].id == 17
        assert qs.filter(n=1).first().id == 1
        assert qs.filter(n=1).exists() and calls[-1]["limit"] == 1


def test_filters_are_checked_when_the_set_runs() -> None:
    with manager().context():
        qs = Row.objects.filter(nope=1)  # lazy: nothing checked or asked yet
        with pytest.raises(InvalidFilter):
            qs.count()
        with pytest.raises(InvalidFilter):
            Row.objects.values("nope")
        with pytest.raises(InvalidFilter):
            Row.objects.filter(42)
        with pytest.raises(InvalidFilter):
            Row.objects.aggregate(s=object())  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="nope"):
            Row.objects.create(id=1, nope=2)
        with pytest.raises(ValidationError):
            Row.objects.get_or_create(n=3)  # no key: the item cannot be made

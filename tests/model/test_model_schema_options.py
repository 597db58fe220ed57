"""``@stored`` schema options: ``unique_together``, ``checks``, ``abstract``, ``engine``
(DESIGN.md "Schema, raw SQL and migrations")."""

from __future__ import annotations

import uuid

import pytest

from storeroom import Q, Ref, field, open_store, stored
from storeroom.context import DataManager
from storeroom.errors import ModelConfigError
from storeroom.model import registry
from storeroom.model.indexes import Index
from storeroom.model.stored import meta_of


@stored(abstract=True, key="code", indexes=[Index("owner")], engine="archive",
        unique_together=[("owner", "title")], checks={"positive": Q(priority__gte=0)})
class Base:
    code: str
    owner: str | None = None
    title: str = ""
    priority: int = 0


@stored(checks={"short": Q(title__lte="zzz")}, indexes=[Index("title")])
class Child(Base):
    extra: int = 0


@stored(unique_together=[("owner", "extra")], engine="other", abstract=True)
class Middle(Base):
    extra: int = 0


@stored(table="grandchildren")
class Grandchild(Middle):
    pass


def test_a_child_inherits_what_it_does_not_set_and_adds_indexes_and_checks() -> None:
    m = meta_of(Child)
    assert m.key.attrs == ("code",)
    assert m.engine == "archive"
    assert m.unique_sets == (("owner", "title"),)
    assert list(m.checks) == ["positive", "short"]
    assert [ix.attrs for ix in m.indexes] == [("owner",), ("title",), ("owner", "title")]
    assert m.name == "child"  # the table is never inherited


def test_the_nearest_base_wins_and_a_chain_of_abstract_bases_adds_up() -> None:
    g = meta_of(Grandchild)
    assert g.engine == "other" and g.name == "grandchildren"
    assert g.unique_sets == (("owner", "extra"),)
    assert list(g.checks) == ["positive"]


def test_an_abstract_model_is_not_registered_nor_opened() -> None:
    assert Base not in registry.registered() and Middle not in registry.registered()
    assert Child in registry.registered()
    with pytest.raises(TypeError, match="abstract"):
        meta_of(Base)
    with pytest.raises(TypeError, match="abstract"):
        open_store(Base, "memory://")
    dm = DataManager()
    with pytest.raises(TypeError, match="abstract"):
        dm.register_models(Base)
    dm.close()


def test_engine_is_the_default_of_register_models_and_its_argument_wins(tmp_path) -> None:
    @stored(engine="archive")
    class Note:
        id: int
        text: str = ""

    dm = DataManager()
    dm.add_engine("main", f"memory://{uuid.uuid4().hex}")
    dm.add_engine("archive", f"memory://{uuid.uuid4().hex}")
    dm.register_models(Note)
    assert dm._engine_for_model(Note) == "archive"
    dm.register_models(Note, engine="main")
    assert dm._engine_for_model(Note) == "main"
    with dm.context() as ctx:
        ctx.store(Note).create(Note(id=1))
    dm.register_models(Note)
    with dm.context() as ctx:  # the item went to "main", not the model's "archive"
        assert ctx.store(Note).read(1) is None
    dm.close()


def test_unique_together_names_ref_columns_and_refuses_unknown_names() -> None:
    @stored
    class Owner:
        id: int

    @stored(unique_together=[("owner", "title")])
    class Doc:
        id: int
        owner: Ref[Owner]
        title: str = ""

    assert meta_of(Doc).unique_sets == (("owner_id", "title"),)
    with pytest.raises(ModelConfigError, match="titel"):
        @stored(unique_together=[("owner", "titel")])
        class Bad:
            id: int
            owner: str = ""


def test_field_unique_is_a_unique_set_too() -> None:
    @stored(unique_together=[("a", "b")])
    class Both:
        id: int
        a: int = 0
        b: int = field(default=0, unique=True)

    assert meta_of(Both).unique_sets == (("b",), ("a", "b"))


def test_a_check_is_a_valid_filter_with_an_identifier_name() -> None:
    with pytest.raises(ModelConfigError, match="identifier"):
        @stored(checks={"not ok": Q(n__gte=0)})
        class BadName:
            id: int
            n: int = 0
    with pytest.raises(ModelConfigError, match="nope"):
        @stored(checks={"ok": Q(nope__gte=0)})
        class BadFilter:
            id: int
            n: int = 0

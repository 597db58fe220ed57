"""The model registry and the lazy configure step: forward references, typed errors."""

from __future__ import annotations

import dataclasses
import gc
import sys
import threading
import types

import pytest

from storeroom import field, open_store, stored
from storeroom.errors import ModelConfigError, StoreroomError
from storeroom.model import registry
from storeroom.model.stored import ModelMeta, Pending, is_stored, meta_of


@stored
class Shelf:
    id: str
    # Box and Label are defined below: resolved when Shelf is first needed
    box: Box | None = None
    labels: list[Label] = field(default_factory=list)


# the state right after the decorator ran, before anything needed Shelf's metadata
SHELF_WAS_PENDING = isinstance(Shelf.__dict__["__storeroom__"], Pending)


@dataclasses.dataclass
class Box:
    size: int


@stored
class Label:
    id: str
    text: str = ""


def test_a_forward_reference_resolves_when_the_first_store_opens():
    assert SHELF_WAS_PENDING and is_stored(Shelf)
    with open_store(Shelf, "sqlite:///:memory:") as store:
        meta = Shelf.__dict__["__storeroom__"]
        assert type(meta) is ModelMeta  # configured once: a plain class attribute now
        assert meta.attrs["box"].annotation == Box | None
        assert meta.attrs["labels"].annotation == list[Label]
        s = store.create(Shelf(id="a", box=Box(size=3), labels=[Label(id="l", text="x")]))
        got = store.read("a")
        assert got == s and isinstance(got.box, Box) and got.labels[0].text == "x"
    assert Shelf.__storeroom__ is meta is meta_of(Shelf(id="b"))


def test_classes_defined_later_in_a_function_resolve_through_the_registry():
    @stored
    class Early:
        id: str
        later: Later | None = None  # a name not in the module: found by class name

    assert isinstance(Early.__dict__["__storeroom__"], Pending)

    @stored
    class Later:
        id: str

    assert meta_of(Early).attrs["later"].inner is Later
    with open_store(Early) as store:
        assert store.create(Early(id="e", later=Later(id="x"))).later == Later(id="x")


def test_an_unresolvable_annotation_is_a_typed_error_naming_class_and_attribute():
    @stored
    class Broken:
        id: str
        owner: NoSuchClass  # noqa: F821

    assert isinstance(Broken.__dict__["__storeroom__"], Pending)  # declared fine
    for attempt in (lambda: open_store(Broken), lambda: Broken.__storeroom__,
                    lambda: meta_of(Broken)):
        with pytest.raises(ModelConfigError, match=r"Broken\.owner.*NoSuchClass") as info:
            attempt()
        assert isinstance(info.value, StoreroomError) and isinstance(info.value, TypeError)
        assert info.value.model.endswith("Broken") and info.value.attribute == "owner"
        assert isinstance(info.value.__cause__, NameError)
    assert isinstance(Broken.__dict__["__storeroom__"], Pending)  # still waiting


def test_a_name_two_registered_classes_share_is_ambiguous():
    def declare_one():
        @stored
        class Twin:
            id: str
        return Twin

    def declare_two():
        @stored
        class Twin:
            id: str
        return Twin
    a, b = declare_one(), declare_two()

    @stored
    class Uses:
        id: str
        twin: Twin | None = None  # noqa: F821

    with pytest.raises(ModelConfigError, match=r"Uses\.twin.*'Twin' is ambiguous") as info:
        meta_of(Uses)
    assert "declare_one.<locals>.Twin" in str(info.value)
    assert "declare_two.<locals>.Twin" in str(info.value)
    assert a is not b


def test_a_class_declared_again_under_its_path_replaces_the_old_one():
    def declare():
        @stored
        class Again:
            id: str
        return Again
    first, second = declare(), declare()
    assert registry.lookup(f"{__name__}.{second.__qualname__}") is second
    assert first not in registry.registered()


def test_a_dotted_module_path_names_one_registered_class(monkeypatch):
    # "module.Label" names Label even in a module that does not import that module
    monkeypatch.setitem(sys.modules, "elsewhere", types.ModuleType("elsewhere"))
    ns = {"__annotations__": {"id": "str", "label": f"{__name__}.Label | None"},
          "label": None, "__module__": "elsewhere"}
    Pointer = stored(type("Pointer", (), ns))
    assert isinstance(Pointer.__dict__["__storeroom__"], Pending)
    assert meta_of(Pointer).attrs["label"].inner is Label
    assert registry.lookup(f"{__name__}.Label") is Label
    with pytest.raises(LookupError):
        registry.lookup("NoSuchModel")


def test_configure_builds_every_pending_model():
    gc.collect()  # the deliberately broken models of earlier tests (the registry is weak)
    @stored
    class Waits:
        id: str
        other: PendingOther | None = None

    @stored
    class PendingOther:
        id: str

    assert isinstance(Waits.__dict__["__storeroom__"], Pending)
    assert is_stored(Waits) and isinstance(Waits.__dict__["__storeroom__"], Pending)
    registry.configure()
    assert type(Waits.__dict__["__storeroom__"]) is ModelMeta
    assert Waits in registry.registered() and PendingOther in registry.registered()

    @stored
    class Lost:
        id: str
        gone: Gone  # noqa: F821

    with pytest.raises(ModelConfigError, match=r"Lost\.gone"):
        registry.configure()
    del Lost
    gc.collect()
    registry.configure()  # nothing pending any more


def test_threads_configuring_at_once_build_one_metadata():
    @stored
    class Racy:
        id: str
        other: RacyOther | None = None

    @stored
    class RacyOther:
        id: str

    seen: list[ModelMeta] = []
    barrier = threading.Barrier(8)

    def read():
        barrier.wait()
        seen.append(Racy.__storeroom__)
    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 8 and all(m is seen[0] for m in seen)


def test_declaration_errors_are_still_raised_where_the_class_is_written():
    with pytest.raises(ModelConfigError, match="key attribute 'nope'"):
        @stored(key="nope")
        class Bad:
            id: str
    with pytest.raises(ModelConfigError, match="Seq.n: generated"):
        from storeroom import generated

        @stored
        class Seq:
            id: str
            n: str = generated.sequence()
    # other tests (in this process) may have registered classes of the same names: only
    # this function's classes must be absent
    here = test_declaration_errors_are_still_raised_where_the_class_is_written.__name__
    assert not any(c.__qualname__.startswith(here) for c in registry.registered())

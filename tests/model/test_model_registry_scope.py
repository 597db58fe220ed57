"""A string annotation naming a class several registered classes share resolves to the
nearest one: the referencing class's module, then its enclosing scope (classes declared
together in one function refer to each other as classes of a module do)."""

from __future__ import annotations

import sys
import types

import pytest

from storeroom import Ref, stored
from storeroom.errors import ModelConfigError
from storeroom.model import meta_of


def _declare_in_scope() -> tuple[type, type]:
    @stored
    class ScopedOwner:
        id: int

    @stored
    class ScopedDoc:
        id: int
        owner: Ref[ScopedOwner] | None = None

    return ScopedOwner, ScopedDoc


def _declare_in_another_scope() -> tuple[type, type]:
    @stored
    class ScopedOwner:
        id: int
        name: str = ""

    @stored
    class ScopedDoc:
        id: int
        owner: Ref[ScopedOwner] | None = None

    return ScopedOwner, ScopedDoc


def _module(name: str, source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    mod = types.ModuleType(name)
    monkeypatch.setitem(sys.modules, name, mod)
    exec(source, mod.__dict__)


OWNER_SOURCE = "from storeroom import stored\n@stored\nclass {}:\n    id: int\n"


def test_same_named_classes_of_two_scopes_each_resolve_their_own(
        monkeypatch: pytest.MonkeyPatch) -> None:
    owner_a, doc_a = _declare_in_scope()
    owner_b, doc_b = _declare_in_another_scope()
    # another module's class of the same name is not a candidate either
    _module("scoped_elsewhere", OWNER_SOURCE.format("ScopedOwner"), monkeypatch)
    assert meta_of(doc_b).refs["owner"].target is owner_b
    assert meta_of(doc_a).refs["owner"].target is owner_a


def test_two_candidates_of_one_scope_elsewhere_stay_ambiguous(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("amb_one", "amb_two"):
        _module(name, OWNER_SOURCE.format("AmbOwner"), monkeypatch)

    @stored
    class AmbDoc:
        id: int
        owner: Ref[AmbOwner] | None = None  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(ModelConfigError, match="ambiguous"):
        meta_of(AmbDoc)

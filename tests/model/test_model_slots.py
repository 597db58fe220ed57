"""A @stored class keeps its attributes in each instance's ``__dict__``: a slotted
dataclass used to be accepted and then fail on its first create with a bare
``AttributeError: 'S' object has no attribute '__dict__'`` from the generated fast path
(and a subclass of one lost its slotted values to the general path). Refused at
declaration, by name."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from storeroom import stored
from storeroom.errors import ModelConfigError


def test_a_slotted_dataclass_is_refused_where_it_is_declared():
    with pytest.raises(ModelConfigError, match=r"__slots__.*slots: id, name"):
        @stored(key="id")
        @dataclass(slots=True, kw_only=True)
        class Slotted:
            id: int
            name: str = ""


def test_a_subclass_of_a_slotted_base_is_refused_for_the_slotted_attributes():
    @dataclass(slots=True, kw_only=True)
    class Base:
        id: int

    with pytest.raises(ModelConfigError, match=r"slots: id\)"):
        @stored(key="id")
        @dataclass(kw_only=True)
        class Child(Base):
            name: str = ""


def test_slots_of_no_attribute_beside_a_dict_are_fine():
    class Cached:
        __slots__ = ("__dict__", "_memo")

    @stored(key="id")
    class Item(Cached):
        id: int
        name: str = ""

    item = Item(id=1, name="a")
    assert vars(item) == {"id": 1, "name": "a"}

"""The option list of ``field`` is declared for the type checker (``FieldKwargs``), the
signature (``field``) and the stored form (``FieldOptions``): they must name the same
options, and every option must reach the ``Attr``."""

from __future__ import annotations

import dataclasses
import inspect

from storeroom import field, stored
from storeroom.model.attrs import Attr
from storeroom.model.fields import OPTION_NAMES, FieldKwargs
from storeroom.model.stored import meta_of
from storeroom.query.paths import synthetic_attr


def test_the_option_lists_agree() -> None:
    signature = [n for n in inspect.signature(field).parameters
                 if n not in ("default", "default_factory", "init")]
    kwargs = list(FieldKwargs.__annotations__)
    options = [n for n in OPTION_NAMES if n != "generator"]  # set by generated.* only
    assert signature == kwargs == options
    attr_fields = {f.name for f in dataclasses.fields(Attr)}
    assert set(OPTION_NAMES) <= attr_fields


def test_every_option_reaches_the_attr() -> None:
    @stored(key="id")
    class Opt:
        id: int
        code: str = field(default="", max_length=9, min_length=1, ge="a", le="z",
                          pattern="[a-z]+", store=True, creatable=False, updatable=False,
                          readable=False, sortable=False, unique=True, index=True)

    a = meta_of(Opt).attrs["code"]
    assert (a.max_length, a.min_length, a.ge, a.le, a.pattern) == (9, 1, "a", "z", "[a-z]+")
    assert (a.store, a.creatable, a.updatable, a.readable, a.sortable, a.unique, a.index) == (
        True, False, False, False, False, True, True)
    key = meta_of(Opt).attrs["id"]
    assert key.is_key and not key.updatable and key.sortable


def test_a_synthetic_attr_has_the_default_options() -> None:
    a = synthetic_attr("address.city", str)
    assert (a.max_length, a.pattern, a.generator, a.unique, a.index) == (
        None, None, None, False, False)
    assert a.store and a.creatable and a.updatable and a.readable and a.sortable
    assert not a.is_key and a.optional
    assert a.name == "address.city"

"""Relation declarations: ``Ref[M]`` / ``Many[M]``, ``field(reverse=, through=,
on_delete=)``, resolution in the lazy configure step, key columns, stubs."""

from __future__ import annotations

import pytest

from storeroom import LazyLoadBlocked, Many, Ref, field, generated, is_loaded, stored
from storeroom.errors import ModelConfigError, ValidationError
from storeroom.model import registry
from storeroom.model.stored import Pending, meta_of


@stored(key="id")
class RCategory:
    id: int = generated.sequence()
    name: str
    # RProduct is defined below: linked when first needed
    products: Many[RProduct] = field(reverse="category")


@stored(key="id")
class RTag:
    id: int = generated.sequence()
    label: str = ""


@stored(key="id")
class RProduct:
    id: int = generated.sequence()
    title: str = ""
    category: Ref[RCategory] | None = field(default=None, on_delete="nullify")
    tags: Many[RTag] = field(through="RProductTag")


@stored(key=("product", "tag"))
class RProductTag:
    product: Ref[RProduct] = field(on_delete="cascade")
    tag: Ref[RTag] = field(on_delete="cascade")


@stored(key=("shelf", "slot"))
class RBin:
    shelf: str
    slot: int
    label: str = ""


@stored(key="id")
class RItem:
    id: str
    bin: Ref[RBin] | None = None  # a composite target key: one column per key part
    parent: Ref[RItem] | None = field(default=None, on_delete="cascade")  # itself
    children: Many[RItem]  # no field(): the one Ref back is found; never required


def test_a_ref_is_stored_as_its_key_columns() -> None:
    m = meta_of(RProduct)
    assert list(m.attrs) == ["id", "title", "category_id"]
    col = m.attrs["category_id"]
    assert (col.kind, col.optional, col.store) == ("int", True, True)
    ref = m.refs["category"]
    assert (ref.target, ref.columns, ref.on_delete, ref.optional) == (
        RCategory, ("category_id",), "nullify", True)
    assert "category" not in m.attrs and "tags" not in m.attrs  # a Many is never stored


def test_composite_and_ref_keys() -> None:
    m = meta_of(RProductTag)
    assert m.key.attrs == ("product_id", "tag_id")
    assert all(a.is_key for a in m.key_attrs)
    assert meta_of(RProductTag).refs["product"].on_delete == "cascade"
    items = meta_of(RItem)
    assert items.refs["bin"].columns == ("bin_shelf", "bin_slot")
    assert (items.attrs["bin_shelf"].kind, items.attrs["bin_slot"].kind) == ("str", "int")
    assert items.refs["parent"].target is RItem and items.refs["parent"].columns == ("parent_id",)
    assert items.refs["bin"].on_delete == "block"  # the default


def test_many_links_to_the_other_side() -> None:
    cat = meta_of(RCategory).manys["products"]
    assert (cat.target, cat.reverse, cat.through) == (RProduct, "category", None)
    tags = meta_of(RProduct).manys["tags"]
    assert tags.through is RProductTag  # the name was resolved
    assert (tags.through_source.name, tags.through_target.name) == ("product", "tag")
    assert meta_of(RItem).manys["children"].reverse == "parent"


def test_the_registry_knows_every_ref_to_a_model() -> None:
    assert {(r.model, r.name) for r in registry.refs_to(RProduct)} == {(RProductTag, "product")}
    assert {(r.model, r.name) for r in registry.refs_to(RItem)} == {(RItem, "parent")}

    @stored(key="id")
    class RNoMany:  # the target declares no Many: the Ref is known all the same
        id: int

    @stored(key="id")
    class RPointsAt:
        id: int
        at: Ref[RNoMany]
    assert [r.model for r in registry.refs_to(RNoMany)] == [RPointsAt]


def test_a_value_is_an_instance_or_a_key() -> None:
    c = RCategory(id=3, name="pcb")
    p = RProduct(title="a", category=c)
    assert p.category is c and p.category_id == 3 and is_loaded(p.category)
    q = RProduct(title="b", category=4)
    stub = q.category
    assert isinstance(stub, RCategory) and not is_loaded(stub) and stub.id == 4
    assert q.category is stub  # the same stub on every access
    with pytest.raises(LazyLoadBlocked, match=r"RCategory\.name.*stub"):
        _ = stub.name  # never the default
    q.category_id = 5  # the columns are the truth
    assert q.category.id == 5
    q.category = None
    assert q.category is None and q.category_id is None
    assert RProduct(title="c").category is None
    pt = RProductTag(product=q, tag=RTag(id=9))
    assert (pt.product_id, pt.tag_id) == (q.id, 9)
    it = RItem(id="x", bin=("s1", 2))
    assert (it.bin_shelf, it.bin_slot) == ("s1", 2) and it.bin.slot == 2
    with pytest.raises(LazyLoadBlocked):
        _ = it.bin.label
    with pytest.raises(ValidationError, match="tuple of 2 parts"):
        RItem(id="y", bin="s1")


def test_a_many_is_not_loaded_until_given() -> None:
    c = RCategory(name="x")
    assert not is_loaded(c, "products")
    with pytest.raises(LazyLoadBlocked, match=r"RCategory\.products is not loaded.*prefetch"):
        _ = c.products
    given = RCategory(name="y", products=[RProduct(title="a")])
    assert is_loaded(given, "products") and given.products[0].title == "a"
    assert RItem(id="r").id == "r"  # a Many without field() is not a required argument


def test_equality_and_repr_compare_ref_keys() -> None:
    assert RProduct(id=1, category=RCategory(id=2, name="n")) == RProduct(id=1, category=2)
    assert RProduct(id=1, category=2) != RProduct(id=1, category=3)
    assert "category_id=2" in repr(RProduct(id=1, category=2))
    assert "stub" in repr(RProduct(id=1, category=2).category)


def test_string_annotations_resolve_in_the_module_then_the_registry() -> None:
    assert isinstance(RCategory.__dict__["__storeroom__"], type(meta_of(RCategory)))

    @stored(key="id")
    class RLater:
        id: int
        other: Ref[RDefinedLater] | None = None  # noqa: F821 - a class of the registry

    assert isinstance(RLater.__dict__["__storeroom__"], Pending)
    registered_later = _declare_later()
    assert meta_of(RLater).refs["other"].target is registered_later


def _declare_later() -> type:
    @stored(key="code")
    class RDefinedLater:
        code: str
    return RDefinedLater


def test_ambiguous_target_names_both() -> None:
    def one() -> type:
        @stored(key="id")
        class RTwin:
            id: int
        return RTwin

    def two() -> type:
        @stored(key="id")
        class RTwin:
            id: int
        return RTwin
    kept = one(), two()  # the registry is weak: keep them alive

    @stored(key="id")
    class RUsesTwin:
        id: int
        twin: Ref[RTwin]  # noqa: F821

    with pytest.raises(ModelConfigError, match="ambiguous") as info:
        meta_of(RUsesTwin)
    assert "one.<locals>.RTwin" in str(info.value) and "two.<locals>.RTwin" in str(info.value)
    assert kept[0] is not kept[1]


@pytest.mark.parametrize(("annotation", "options", "message"), [
    ("Ref[RCategory]", {"on_delete": "nullify"}, "needs an optional reference"),
    ("Ref[RCategory] | None", {"on_delete": "explode", "default": None}, "on_delete must be"),
    ("Ref[RCategory] | None", {"reverse": "x", "default": None}, "belong on a Many"),
    ("Ref[int]", {}, "needs a @stored class"),
    ("Many[RProduct]", {"on_delete": "cascade"}, "on_delete= belongs on a Ref"),
    ("Many[RProduct]", {"reverse": "title"}, "names no Ref"),
    ("Many[RProduct]", {"through": "RCategory"}, "needs exactly one Ref"),
    ("Many[RTag]", {}, "has no Ref"),
    ("str", {"on_delete": "cascade", "default": ""}, "on_delete= belongs on a Ref"),
    ("str", {"reverse": "x"}, "belong on a Many"),
])
def test_declaration_errors_at_configure_time(annotation: str, options: dict,
                                              message: str) -> None:
    ns = {"__annotations__": {"id": "int", "rel": annotation}, "__module__": __name__,
          "rel": field(**options)}
    with pytest.raises(ModelConfigError, match=message) as info:
        cls = stored(key="id")(type("RBad", (), ns))
        meta_of(cls)
    assert info.value.attribute in ("rel", None)


def test_a_column_name_clash_is_refused() -> None:
    with pytest.raises(ModelConfigError, match="'category_id' is also another attribute"):
        @stored(key="id")
        class RClash:
            id: int
            category: Ref[RCategory]
            category_id: int = 0


def test_an_item_built_before_configuring_gets_its_columns() -> None:
    from storeroom.store.prepare import create_values

    @stored(key="id")
    class REarly:
        id: int
        to: Ref[REarlyTarget]  # noqa: F821 - not declared yet: configured later

    early = REarly(id=1, to=7)  # no descriptor yet: the value sits under "to"
    assert isinstance(REarly.__dict__["__storeroom__"], Pending)
    target = _declare_early_target()
    assert create_values(meta_of(REarly), early) == {"id": 1, "to_id": 7}
    assert early.to.code == 7 and early.to_id == 7
    assert meta_of(REarly).refs["to"].target is target


def _declare_early_target() -> type:
    @stored(key="code")
    class REarlyTarget:
        code: int
    return REarlyTarget


def test_a_ref_to_a_model_keyed_by_refs() -> None:
    @stored(key="id")
    class RPointsAtPair:
        id: int
        pair: Ref[RProductTag] | None = None

    m = meta_of(RPointsAtPair)
    assert m.refs["pair"].columns == ("pair_product_id", "pair_tag_id")
    assert m.refs["pair"].target_key == ("product_id", "tag_id")
    x = RPointsAtPair(id=1, pair=(3, 4))
    stub = x.pair
    assert (stub.product_id, stub.tag_id) == (3, 4)
    assert stub.product.id == 3 and not is_loaded(stub.product)  # a key Ref stays real

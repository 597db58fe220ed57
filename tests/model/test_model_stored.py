"""``@stored`` classes: names, keys, indexes, attributes, generators, schema, UNDEFINED."""

from __future__ import annotations

import copy
import dataclasses
import enum
import pickle
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from storeroom import (
    UNDEFINED,
    Index,
    InvalidFilter,
    KeyConfig,
    StoreroomError,
    ValidationError,
    field,
    generated,
    open_store,
    stored,
)
from storeroom.model import is_stored, meta_of, snake_case


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.Enum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass
class Point:
    x: int
    y: int


@stored(key="id", indexes=[Index("owner", "created_at")], table="tasks")
class Task:
    id: str = generated.uuid()
    owner: str
    title: str = field(max_length=200)
    done: bool = False
    priority: int = field(default=0, ge=0, le=5)
    tags: list[str] = field(default_factory=list)
    created_at: datetime = generated.created_at()
    updated_at: datetime = generated.updated_at()
    note: str | None = field(default=None, store=False)


@stored(key=("owner", "num"))
class Note:
    owner: str
    num: int
    text: str = ""


# names -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "snake"), [
    ("Task", "task"), ("TaskList", "task_list"), ("HTTPServer", "http_server"),
    ("ABC", "abc"), ("already_snake", "already_snake"), ("Item2Thing", "item2_thing"),
    ("getHTTPResponseCode", "get_http_response_code"), ("X", "x"),
])
def test_snake_case(name, snake):
    assert snake_case(name) == snake


def test_table_name_defaults_to_snake_case():
    @stored
    class TaskList:
        id: int

    @stored(table="custom")
    class Other:
        id: int

    assert meta_of(TaskList).name == "task_list"
    assert meta_of(Other).name == "custom"
    assert meta_of(Task).name == "tasks"
    assert meta_of(Note).name == "note"


def test_stored_makes_a_keyword_only_dataclass():
    assert dataclasses.is_dataclass(Task)
    assert is_stored(Task) and not is_stored(Point) and not is_stored(3)
    t = Task(owner="ann", title="x")
    assert t.tags == [] and Task(owner="b", title="y").tags is not t.tags
    assert t.id is UNDEFINED and t.created_at is UNDEFINED
    with pytest.raises(TypeError):
        Task("ann", "x")  # type: ignore[misc]
    assert Task.__storeroom__ is meta_of(Task) is meta_of(t)
    with pytest.raises(TypeError):
        meta_of(Point)


def test_stored_accepts_an_existing_dataclass():
    @stored
    @dataclasses.dataclass(kw_only=True)
    class Thing:
        id: int
        name: str = "n"

    assert meta_of(Thing).stored_names == ("id", "name")
    assert Thing(id=1).name == "n"


# attributes ------------------------------------------------------------------------------
def test_attribute_kinds():
    @stored
    class Everything:
        id: int
        s: str
        f: float
        b: bool
        dec: Decimal
        dt: datetime
        d: date
        u: uuid.UUID
        by: bytes
        c: Color
        lv: Level
        o: str | None
        lst: list[int]
        dct: dict[str, Any]
        p: Point

    m = meta_of(Everything)
    kinds = {n: a.kind for n, a in m.attrs.items()}
    assert kinds == {"id": "int", "s": "str", "f": "float", "b": "bool", "dec": "decimal",
                     "dt": "datetime", "d": "date", "u": "uuid", "by": "bytes", "c": "enum",
                     "lv": "enum", "o": "str", "lst": "json", "dct": "json", "p": "json"}
    assert m.attrs["o"].optional and not m.attrs["s"].optional
    assert m.attrs["c"].value_kind == "str" and m.attrs["lv"].value_kind == "int"
    assert m.attrs["c"].is_text and not m.attrs["lv"].is_text
    assert not m.attrs["lst"].orderable and m.attrs["dt"].orderable


def test_field_options():
    @stored
    class Opts:
        id: int
        hidden: str = field(default="", readable=False)
        fixed: str = field(default="", creatable=False)
        frozen: str = field(default="", updatable=False)
        unsorted: int = field(default=0, sortable=False)
        temp: str = field(default="", store=False)
        code: str = field(default="a", pattern=r"^[a-z]+$", min_length=1)

    m = meta_of(Opts)
    assert m.stored_names == ("id", "hidden", "fixed", "frozen", "unsorted", "code")
    assert not m.attrs["hidden"].readable
    assert not m.attrs["fixed"].creatable
    assert not m.attrs["frozen"].updatable
    assert not m.attrs["unsorted"].orderable
    assert not m.attrs["id"].updatable  # key attributes are immutable
    assert "hidden" not in m.json_schema()["properties"]
    s = open_store(Opts, "memory://")
    with pytest.raises(ValidationError) as info:
        s.create(Opts(id=1, fixed="x"))
    assert info.value.errors[0]["rule"] == "not_creatable"
    s.create(Opts(id=1))
    with pytest.raises(ValidationError) as info:
        s.update(1, frozen="x")
    assert info.value.errors[0]["rule"] == "not_updatable"
    with pytest.raises(InvalidFilter, match="unsorted"):
        s.search(order_by="unsorted")
    with pytest.raises(InvalidFilter, match="temp"):
        s.search(order_by="temp")
    for bad, rule in [("A", "pattern"), ("", "min_length")]:
        with pytest.raises(ValidationError) as info:
            s.update(1, code=bad)
        assert info.value.errors[0]["rule"] == rule


# keys ------------------------------------------------------------------------------------
def test_keys():
    assert meta_of(Task).key.attrs == ("id",) and not meta_of(Task).key.composite
    assert meta_of(Note).key.attrs == ("owner", "num") and meta_of(Note).key.composite

    @stored(key=KeyConfig("a", "b"))
    class K1:
        a: str
        b: int

    @stored(key=KeyConfig(("a", "b")))
    class K2:
        a: str
        b: int

    assert meta_of(K1).key.attrs == meta_of(K2).key.attrs == ("a", "b")
    assert KeyConfig("a", "b") == KeyConfig(("a", "b"))
    n = Note(owner="ann", num=3)
    assert meta_of(Note).key_of(n) == ("ann", 3)
    assert meta_of(Task).key_of(Task(id="x", owner="o", title="t")) == "x"
    with pytest.raises(TypeError):
        KeyConfig()


@pytest.mark.parametrize("bad", [
    dict(key="nope"), dict(key=("id", "nope")), dict(key="temp"), dict(key="data"),
    dict(indexes=[Index("nope")]),
])
def test_bad_key_or_index_declarations(bad):
    with pytest.raises(TypeError):
        @stored(**bad)
        class Bad:
            id: int
            temp: str = field(default="", store=False)
            data: list[int] = field(default_factory=list)


def test_index_needs_attributes():
    with pytest.raises(TypeError):
        Index()


@pytest.mark.parametrize(("annotation", "value", "text"), [
    (str, "plain", "plain"), (str, "a/b%c d", "a%2Fb%25c%20d"), (str, "", "~"),
    (str, "~", "%7E"), (str, "_count", "%5Fcount"), (str, "a_b", "a_b"), (str, ".", "%2E"),
    (str, "..", "%2E."), (str, "a,b", "a%2Cb"),
    (str, "ünï", "%C3%BCn%C3%AF"), (int, -5, "-5"), (int, 2**63 - 1, str(2**63 - 1)),
    (float, 3.0, "3.0"), (float, -0.5, "-0.5"), (float, 1e300, "1e%2B300"),
    (bool, True, "true"), (bool, False, "false"),
    (Decimal, Decimal("1.10"), "1.10"), (Decimal, Decimal("-1E+3"), "-1E%2B3"),
    (bytes, b"", "~"), (bytes, b"\xff\xfe", "%5F_4"), (bytes, b"ab", "YWI"),
    (uuid.UUID, uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
    (date, date(2024, 2, 29), "2024-02-29"),
    (datetime, datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
     "2024-01-02T03%3A04%3A05.000006%2B00%3A00"),
    (datetime, datetime(2024, 1, 2, tzinfo=UTC), "2024-01-02T00%3A00%3A00.000000%2B00%3A00"),
    (Color, Color.BLUE, "blue"), (Level, Level.HIGH, "2"),
])
def test_key_string_round_trip(annotation, value, text):
    ns: dict[str, Any] = {}
    cls = type("K", (), {"__annotations__": {"k": annotation}})
    ns["K"] = stored(key="k")(cls)
    key = meta_of(ns["K"]).key
    assert key.to_str(value) == text
    back = key.from_str(text)
    assert back == value and type(back) is type(value)


def test_composite_key_string_round_trip():
    key = meta_of(Note).key
    for value in [("ann", 1), ("a/b", -2), ("", 0), ("%2F", 3), ("ß/İ", 2**40), ("a,b", 1),
                  ("~", 5), ("_", 6)]:
        text = key.to_str(value)
        assert text.count(",") == 1 and "/" not in text
        assert key.from_str(text) == value
    assert key.to_str(("ann", 1)) == "ann,1"
    assert key.to_str(("", 1)) == "~,1"
    for bad in ["ann", "ann,1,2", "ann,x", ",", "ann,1.0", "ann,+1", "ann,1_0", "ann, 1",
                "%FF,1", "ann,٣", None, 5]:
        with pytest.raises(ValidationError):
            key.from_str(bad)
    with pytest.raises(ValidationError):
        key.to_str(("ann",))


@pytest.mark.parametrize(("annotation", "text"), [
    (int, "1.5"), (int, ""), (float, "nan"), (float, "1_0"), (bool, "True"), (bool, "1"),
    (Decimal, "NaN"), (Decimal, "1 "), (bytes, "a"), (bytes, "a+b"), (uuid.UUID, "x"),
    (date, "2024-02-30"), (datetime, "yesterday"), (Color, "RED"), (Level, "3"),
])
def test_bad_key_strings_are_validation_errors(annotation, text):
    cls = type("K", (), {"__annotations__": {"k": annotation}})
    key = meta_of(stored(key="k")(cls)).key
    with pytest.raises(ValidationError) as info:
        key.from_str(text)
    assert info.value.errors[0]["field"] == "k" and info.value.errors[0]["rule"] == "key"


def test_key_string_of_a_surrogate_is_a_validation_error():
    key = meta_of(Note).key
    with pytest.raises(ValidationError) as info:
        key.to_str(("\ud800", 1))
    assert info.value.errors[0]["rule"] == "unicode"


# indexes ---------------------------------------------------------------------------------
def test_indexes():
    @stored(indexes=[Index("a", "b"), Index("b", unique=True, name="named")])
    class Ix:
        id: int
        a: str = ""
        b: str = ""
        email: str = field(default="", unique=True)
        slug: str = field(default="", index=True)

    m = meta_of(Ix)
    got = {(ix.attrs, ix.unique, ix.index_name(m.name)) for ix in m.indexes}
    assert got == {(("a", "b"), False, "ix_ix_a_b"), (("b",), True, "named"),
                   (("email",), True, "uq_ix_email"), (("slug",), False, "ix_ix_slug")}
    assert [a.name for a in m.unique_attrs] == ["email"]
    assert meta_of(Task).indexes == (Index("owner", "created_at"),)


# json schema -----------------------------------------------------------------------------
def test_json_schema():
    schema = meta_of(Task).json_schema()
    assert schema["title"] == "Task" and schema["type"] == "object"
    assert schema["x-key"] == ["id"]
    props = schema["properties"]
    assert set(props) == {"id", "owner", "title", "done", "priority", "tags", "created_at",
                          "updated_at", "note"}
    assert schema["required"] == ["owner", "title"]
    assert props["title"]["maxLength"] == 200
    assert props["priority"]["minimum"] == 0 and props["priority"]["maximum"] == 5
    assert props["done"]["type"] == "boolean"
    assert props["tags"]["type"] == "array" and props["tags"]["items"]["type"] == "string"
    assert props["created_at"]["readOnly"] is True
    assert props["created_at"]["format"] == "date-time"

    @stored
    class WithNested:
        id: int
        p: Point | None = None
        c: Color = Color.RED

    s = meta_of(WithNested).json_schema()
    assert "Point" in s["$defs"]
    assert s["$defs"]["Point"]["required"] == ["x", "y"]
    assert s["properties"]["c"]["enum"] == ["red", "blue"]
    assert s["x-key"] == ["id"] and s["required"] == ["id"]


def test_json_schema_composite_key():
    assert meta_of(Note).json_schema()["x-key"] == ["owner", "num"]


# UNDEFINED -------------------------------------------------------------------------------
def test_undefined_marker():
    assert not UNDEFINED
    assert repr(UNDEFINED) == "UNDEFINED"
    assert type(UNDEFINED)() is UNDEFINED
    assert copy.copy(UNDEFINED) is UNDEFINED and copy.deepcopy(UNDEFINED) is UNDEFINED
    assert pickle.loads(pickle.dumps(UNDEFINED)) is UNDEFINED
    assert copy.deepcopy({"a": [UNDEFINED]})["a"][0] is UNDEFINED


def test_undefined_leaves_attributes_unchanged_in_partial_updates():
    s = open_store(Task, "memory://")
    t = s.create(Task(owner="ann", title="milk", priority=2))
    u = s.update(t.id, title=UNDEFINED, priority=UNDEFINED, done=True)
    assert (u.title, u.priority, u.done) == ("milk", 2, True)
    # UNDEFINED is accepted even for attributes that could not be set
    u = s.update(t.id, id=UNDEFINED, created_at=UNDEFINED, title="x")
    assert u.title == "x" and u.created_at == t.created_at
    # a full update with UNDEFINED attributes keeps them
    u = s.update(dataclasses.replace(u, title=UNDEFINED, priority=4))
    assert (u.title, u.priority) == ("x", 4)


# generators ------------------------------------------------------------------------------
def test_generators():
    counter = iter(range(100))

    @stored
    class Gen:
        id: uuid.UUID = generated.uuid()
        made: datetime = generated.created_at()
        touched: datetime = generated.updated_at()
        serial: int = generated.on_create(lambda: next(counter))
        version: int = generated.on_update(lambda: next(counter))
        name: str = ""

    m = meta_of(Gen)
    assert not m.attrs["made"].updatable
    s = open_store(Gen, "memory://")
    before = datetime.now(UTC)
    g = s.create(Gen())
    assert isinstance(g.id, uuid.UUID) and g.id.version == 4
    assert g.made.tzinfo is not None and g.made.utcoffset() == timedelta(0)
    assert before <= g.made <= datetime.now(UTC)
    assert (g.serial, g.version) == (0, 1)
    g2 = s.update(g.id, name="x")
    assert (g2.serial, g2.version) == (0, 2)
    assert g2.made == g.made and g2.touched >= g.touched
    with pytest.raises(ValidationError):
        s.update(g.id, version=5)  # replaced on every update: not settable
    with pytest.raises(ValidationError):
        s.update(g.id, made=datetime.now(UTC))
    given = s.create(Gen(serial=42))
    assert given.serial == 42
    seq = meta_of(Task).sequence_attr
    assert seq is None

    @stored
    class Seq:
        id: int = generated.sequence()

    assert meta_of(Seq).sequence_attr.name == "id"
    assert not meta_of(Seq).attrs["id"].updatable


@pytest.mark.parametrize("annotation", [str, float, Decimal, bool, Level, int | None,
                                        "int | None", "Optional[int]", list[int]])
def test_a_sequence_needs_an_int_annotation(annotation):
    ns = {"Optional": __import__("typing").Optional}
    ann = eval(annotation, ns) if isinstance(annotation, str) else annotation  # noqa: S307
    cls = type("Seq", (), {"__annotations__": {"id": str, "n": ann}, "n": generated.sequence()})
    with pytest.raises(TypeError, match=r"Seq\.n: generated\.sequence\(\) makes int values"):
        stored(cls)


@pytest.mark.parametrize(("annotation", "gen"), [
    (int, generated.uuid), (bytes, generated.uuid), (str, generated.created_at),
    (date, generated.updated_at), (int, generated.created_at),
])
def test_built_in_generators_need_a_fitting_annotation(annotation, gen):
    cls = type("Gen", (), {"__annotations__": {"id": str, "v": annotation}, "v": gen()})
    with pytest.raises(TypeError, match="Gen.v: generated"):
        stored(cls)


def test_one_sequence_per_model():
    with pytest.raises(TypeError, match="at most one generated.sequence"):
        @stored
        class Two:
            id: int = generated.sequence()
            n: int = generated.sequence()

    @stored(key=("g", "n"))
    class Part:  # a sequence may be a key part or no key at all
        g: str
        n: int = generated.sequence()

    @stored
    class Attr:
        id: str
        n: int = generated.sequence()
        u: uuid.UUID | None = generated.uuid()

    assert meta_of(Part).sequence_attr.name == meta_of(Attr).sequence_attr.name == "n"


def test_build_does_not_validate():
    m = meta_of(Task)
    t = m.build({"id": 5, "owner": None, "title": "x" * 500, "done": "no", "priority": 99,
                 "tags": [], "created_at": None, "updated_at": None})
    assert t.priority == 99 and t.owner is None
    assert t.note is None  # unstored attributes get their default


# ValidationError -------------------------------------------------------------------------
def test_validation_error_shape():
    assert issubclass(ValidationError, ValueError) and issubclass(ValidationError, StoreroomError)
    e = ValidationError("just text")
    assert e.errors == [{"field": None, "value": None, "rule": "invalid",
                         "message": "just text"}]
    e = ValidationError.one("title", "x" * 3, "max_length", "too long", model="task")
    assert e.errors == [{"field": "title", "value": "xxx", "rule": "max_length",
                         "message": "too long"}]
    assert "task" in str(e) and "title" in str(e)


@pytest.mark.parametrize(("changes", "field_", "rule"), [
    ({"title": "x" * 201}, "title", "max_length"),
    ({"priority": 6}, "priority", "le"),
    ({"priority": -1}, "priority", "ge"),
    ({"priority": "lots"}, "priority", "type"),
    ({"priority": 2**64}, "priority", "le"),
    ({"done": []}, "done", "type"),
    ({"owner": None}, "owner", "type"),
    ({"nope": 1}, "nope", "unknown"),
    ({"id": "x"}, "id", "immutable"),
    ({"created_at": datetime(2020, 1, 1, tzinfo=UTC)}, "created_at", "not_updatable"),
])
def test_validation_error_names_field_value_and_rule(changes, field_, rule):
    s = open_store(Task, "memory://")
    t = s.create(Task(owner="ann", title="milk"))
    with pytest.raises(ValidationError) as info:
        s.update(t.id, **changes)
    (e,) = info.value.errors
    assert set(e) == {"field", "value", "rule", "message"}
    value = changes[field_]
    assert (e["field"], e["rule"]) == (field_, rule)
    assert e["value"] == value
    for part in (field_, rule):
        assert part in str(info.value)
    if rule not in ("unknown", "immutable", "not_updatable"):
        assert repr(value)[:30] in e["message"]
    assert s.read(t.id) == t


def test_required_attribute():
    s = open_store(Task, "memory://")

    @stored
    class Req:
        id: int
        name: str

    r = open_store(Req, "memory://")
    item = Req.__new__(Req)
    item.id = 1
    with pytest.raises(ValidationError) as info:
        r.create(item)
    assert info.value.errors[0]["field"] == "name"
    assert info.value.errors[0]["rule"] == "required"
    assert s.count() == 0

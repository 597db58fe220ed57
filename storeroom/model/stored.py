"""``@stored``: turn an annotated class into a keyword-only dataclass with storeroom metadata."""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, overload

from ..errors import ValidationError
from .attrs import Attr
from .fields import OPTIONS_KEY, FieldOptions
from .indexes import Index
from .keys import KeyConfig, PartCodec, part_codec
from .types import (
    DATETIME,
    INT,
    JSON,
    ORDERED_KINDS,
    STR,
    UUID,
    is_dataclass_type,
    kind_of,
    unwrap_optional,
)
from .undefined import UNDEFINED
from .validate import field_adapter, make_checker

T = TypeVar("T")


def snake_case(name: str) -> str:
    """``TaskList`` -> ``task_list``; ``HTTPServer`` -> ``http_server``."""
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s).lower()


class ModelMeta:
    """The metadata of a stored class, at ``Model.__storeroom__``."""

    def __init__(self, cls: type, name: str, attrs: dict[str, Attr], key: KeyConfig,
                 indexes: tuple[Index, ...]) -> None:
        self.cls = cls
        self.name = name
        self.attrs = attrs
        self.key = key
        self.indexes = indexes
        self.stored_attrs: tuple[Attr, ...] = tuple(a for a in attrs.values() if a.store)
        self.stored_names: tuple[str, ...] = tuple(a.name for a in self.stored_attrs)
        self.key_attrs: tuple[Attr, ...] = tuple(attrs[n] for n in key.attrs)
        self.unique_attrs: tuple[Attr, ...] = tuple(a for a in self.stored_attrs if a.unique)
        self.checkers: dict[str, Callable[[Any, list[dict[str, Any]]], Any]] = {
            a.name: make_checker(a) for a in attrs.values()
        }
        # non-stored attributes get their default when an item is built from a row
        self._unstored_defaults = tuple(a for a in attrs.values() if not a.store)
        self._new = object.__new__
        self.sequence_attr: Attr | None = next(
            (a for a in self.stored_attrs if a.generator and a.generator.kind == "sequence"), None)
        from .fastpath import make_fast_create
        self.fast_create: Callable[[Any], dict[str, Any] | None] = make_fast_create(self)

    def __repr__(self) -> str:
        return f"<ModelMeta {self.name} key={self.key.attrs}>"

    # building items without validation (rows read back) -------------------------------
    def build(self, values: dict[str, Any]) -> Any:
        """An instance from a dict of stored values, without validation or __init__."""
        obj: Any = self._new(self.cls)
        if self._unstored_defaults:
            for a in self._unstored_defaults:
                values.setdefault(a.name, a.default_value())
        obj.__dict__ = values
        return obj

    def attr(self, name: str) -> Attr:
        """The attribute called ``name``; ``KeyError`` naming it when unknown."""
        return self.attrs[name]

    def key_of(self, item: Any) -> Any:
        """The key value of an item."""
        return self.key.of(item)

    def coerce_key(self, key: Any) -> Any:
        """Validate and coerce a key value given by a user (scalar or tuple)."""
        parts = self.key.parts(key)
        errors: list[dict[str, Any]] = []
        out = tuple(self.checkers[a.name](p, errors) for a, p in zip(self.key_attrs, parts,
                                                                     strict=True))
        if errors:
            for e in errors:
                e["rule"] = "key" if e["rule"] == "type" else e["rule"]
            raise ValidationError(errors, model=self.name)
        return out[0] if len(out) == 1 else out

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema of an item (readable attributes), as pydantic renders it."""
        props: dict[str, Any] = {}
        required: list[str] = []
        defs: dict[str, Any] = {}
        for a in self.attrs.values():
            if not a.readable:
                continue
            schema = field_adapter(a).json_schema(ref_template="#/$defs/{model}")
            defs.update(schema.pop("$defs", {}))
            if a.generator is not None:
                schema["readOnly"] = not a.creatable or a.generator.kind != "uuid"
            props[a.name] = schema
            if not a.has_default and a.generator is None:
                required.append(a.name)
        out: dict[str, Any] = {"title": self.cls.__name__, "type": "object", "properties": props,
                               "required": required, "x-key": list(self.key.attrs)}
        if defs:
            out["$defs"] = defs
        return out


def _attr_from_field(f: dataclasses.Field[Any], hints: dict[str, Any], key_names: tuple[str, ...],
                     ) -> Attr:
    annotation = hints[f.name]
    inner, optional = unwrap_optional(annotation)
    kind = kind_of(inner)
    opts: FieldOptions = f.metadata.get(OPTIONS_KEY) or FieldOptions()
    default = f.default
    factory = None if f.default_factory is dataclasses.MISSING else f.default_factory
    sortable = opts.sortable and kind in ORDERED_KINDS
    return Attr(
        name=f.name, annotation=annotation, inner=inner, kind=kind, optional=optional,
        default=default, default_factory=factory,
        max_length=opts.max_length, min_length=opts.min_length, ge=opts.ge, le=opts.le,
        pattern=opts.pattern, store=opts.store, creatable=opts.creatable,
        updatable=opts.updatable and f.name not in key_names, readable=opts.readable,
        sortable=sortable, unique=opts.unique, index=opts.index, generator=opts.generator,
        is_key=f.name in key_names,
    )


def _key_codec(attr: Attr) -> PartCodec:
    checker = make_checker(attr)

    def check(value: Any) -> Any:
        errors: list[dict[str, Any]] = []
        value = checker(value, errors)
        if errors:
            raise ValidationError(errors)
        return value
    return part_codec(attr, check)


# the built-in generators and the attribute kinds their values have
_GENERATOR_KINDS = {"sequence": (INT,), "uuid": (STR, UUID), "created_at": (DATETIME,),
                    "updated_at": (DATETIME,)}
_GENERATOR_TYPES = {"sequence": "int", "uuid": "str or UUID", "created_at": "datetime",
                    "updated_at": "datetime"}


def _check_generators(cls_name: str, attrs: dict[str, Attr]) -> None:
    """Refuse a built-in generator on an attribute whose annotation its values do not fit.

    A sequence is an integer counter (as Django's ``AutoField`` and SQLAlchemy's
    ``autoincrement`` are integer-only): on a ``str``, ``float``, ``Decimal``, ``bool``
    or Enum attribute its values would not be what the annotation says, and on
    ``int | None`` it would never be None. One model has at most one.
    """
    sequences = []
    for a in attrs.values():
        gen = a.generator
        if gen is None or gen.kind not in _GENERATOR_KINDS:
            continue
        if a.kind not in _GENERATOR_KINDS[gen.kind] or (gen.kind == "sequence" and a.optional):
            ann = a.annotation
            shown = ann.__name__ if isinstance(ann, type) else repr(ann)
            raise TypeError(
                f"{cls_name}.{a.name}: generated.{gen.kind}() makes "
                f"{_GENERATOR_TYPES[gen.kind]} values, but the attribute is annotated "
                f"{shown}; annotate it {_GENERATOR_TYPES[gen.kind]}"
                + (" (not optional: a sequence always has a value)"
                   if gen.kind == "sequence" and a.kind == INT else ""))
        if gen.kind == "sequence":
            sequences.append(a.name)
    if len(sequences) > 1:
        raise TypeError(f"{cls_name}: at most one generated.sequence() per model, got "
                        f"{', '.join(sequences)}")


def _build_meta(cls: type, key: str | tuple[str, ...] | KeyConfig, indexes: Iterable[Index],
                table: str | None) -> ModelMeta:
    key_names = key.attrs if isinstance(key, KeyConfig) else (
        (key,) if isinstance(key, str) else tuple(key))
    hints = typing.get_type_hints(cls, include_extras=True)
    attrs: dict[str, Attr] = {}
    for f in dataclasses.fields(cls):
        attrs[f.name] = _attr_from_field(f, hints, key_names)
    for k in key_names:
        if k not in attrs:
            raise TypeError(f"{cls.__name__}: key attribute {k!r} is not an attribute")
        if not attrs[k].store:
            raise TypeError(f"{cls.__name__}: key attribute {k!r} must be stored")
        if attrs[k].kind == JSON:
            raise TypeError(f"{cls.__name__}: key attribute {k!r} must be a scalar")
        if not attrs[k].readable:  # keys travel in key strings, URLs and cursors
            raise TypeError(f"{cls.__name__}: key attribute {k!r} must be readable")
    _check_generators(cls.__name__, attrs)
    all_indexes = list(indexes)
    for ix in all_indexes:
        for ix_attr in ix.attrs:
            if ix_attr not in attrs:
                raise TypeError(f"{cls.__name__}: index attribute {ix_attr!r} is not an attribute")
    for a in attrs.values():
        if a.unique and not a.is_key:
            all_indexes.append(Index(a.name, unique=True))
        elif a.index and not a.is_key:
            all_indexes.append(Index(a.name))
    keycfg = KeyConfig(*key_names, _codecs=tuple(_key_codec(attrs[k]) for k in key_names))
    return ModelMeta(cls, table or snake_case(cls.__name__), attrs, keycfg, tuple(all_indexes))


@overload
def stored(cls: type[T], /) -> type[T]: ...
@overload
def stored(*, key: str | tuple[str, ...] | KeyConfig = "id", indexes: Iterable[Index] = (),
           table: str | None = None) -> Callable[[type[T]], type[T]]: ...


def stored(cls: type[T] | None = None, /, *, key: str | tuple[str, ...] | KeyConfig = "id",
           indexes: Iterable[Index] = (), table: str | None = None) -> Any:
    """Make ``cls`` a keyword-only dataclass stored under ``table`` (default: snake_case name).

    ``key`` names the key attribute(s); ``indexes`` adds secondary indexes.
    """

    def wrap(c: type[T]) -> type[T]:
        if not (dataclasses.is_dataclass(c) and "__dataclass_fields__" in c.__dict__):
            c = dataclasses.dataclass(kw_only=True)(c)
        c.__storeroom__ = _build_meta(c, key, indexes, table)  # type: ignore[attr-defined]
        return c

    return wrap(cls) if cls is not None else wrap


def meta_of(model: Any) -> ModelMeta:
    """The ``ModelMeta`` of a stored class or instance; ``TypeError`` for anything else."""
    meta = getattr(model, "__storeroom__", None)
    if not isinstance(meta, ModelMeta):
        raise TypeError(f"{model!r} is not a @stored class")
    return meta


def is_stored(model: Any) -> bool:
    """True for a class decorated with ``@stored``."""
    return isinstance(getattr(model, "__storeroom__", None), ModelMeta)


__all__ = ["stored", "ModelMeta", "meta_of", "is_stored", "snake_case", "UNDEFINED",
           "is_dataclass_type"]

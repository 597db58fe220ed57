"""``@stored``: turn an annotated class into a keyword-only dataclass with storeroom metadata."""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, overload

from ..errors import ModelConfigError, ValidationError
from . import registry
from .attrs import Attr
from .fields import DEFAULT_OPTIONS, OPTIONS_KEY, FieldOptions, field, option_values
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
        # what an upsert of an existing item leaves as stored (not updatable, not the key)
        self.upsert_kept: frozenset[str] = frozenset(
            a.name for a in self.stored_attrs if not a.is_key and not a.updatable)
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
    opts: FieldOptions = f.metadata.get(OPTIONS_KEY) or DEFAULT_OPTIONS
    default = f.default
    factory = None if f.default_factory is dataclasses.MISSING else f.default_factory
    sortable = opts.sortable and kind in ORDERED_KINDS
    is_key = f.name in key_names
    options = option_values(opts)
    # a key is never updated; only a kind with an order sorts
    options.update(updatable=opts.updatable and not is_key, sortable=sortable)
    return Attr(name=f.name, annotation=annotation, inner=inner, kind=kind, optional=optional,
                default=default, default_factory=factory, is_key=is_key, **options)


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
            raise ModelConfigError(
                f"{cls_name}.{a.name}: generated.{gen.kind}() makes "
                f"{_GENERATOR_TYPES[gen.kind]} values, but the attribute is annotated "
                f"{shown}; annotate it {_GENERATOR_TYPES[gen.kind]}"
                + (" (not optional: a sequence always has a value)"
                   if gen.kind == "sequence" and a.kind == INT else ""),
                model=cls_name, attribute=a.name)
        if gen.kind == "sequence":
            sequences.append(a.name)
    if len(sequences) > 1:
        raise ModelConfigError(f"{cls_name}: at most one generated.sequence() per model, got "
                               f"{', '.join(sequences)}", model=cls_name)


class Pending:
    """The declaration of a ``@stored`` class not configured yet, at ``cls.__storeroom__``.

    Reading ``__storeroom__`` configures the class (see ``registry``) and replaces this
    descriptor with the ``ModelMeta``.
    """

    __slots__ = ("cls", "key_names", "indexes", "table")

    def __init__(self, cls: type, key_names: tuple[str, ...], indexes: tuple[Index, ...],
                 table: str | None) -> None:
        self.cls = cls
        self.key_names = key_names
        self.indexes = indexes
        self.table = table

    def __get__(self, obj: Any, owner: type | None = None) -> ModelMeta:
        return registry.configure_model(self.cls)

    def __repr__(self) -> str:
        return f"<Pending {self.cls.__qualname__}>"


def _check_declaration(cls: type, key_names: tuple[str, ...], indexes: tuple[Index, ...]) -> None:
    """The checks that need no resolved annotation, run when the class is declared."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    name = cls.__qualname__
    for k in key_names:
        if k not in fields:
            raise ModelConfigError(f"{name}: key attribute {k!r} is not an attribute",
                                   model=name, attribute=k)
        opts: FieldOptions = fields[k].metadata.get(OPTIONS_KEY) or DEFAULT_OPTIONS
        if not opts.store:
            raise ModelConfigError(f"{name}: key attribute {k!r} must be stored",
                                   model=name, attribute=k)
        if not opts.readable:  # keys travel in key strings, URLs and cursors
            raise ModelConfigError(f"{name}: key attribute {k!r} must be readable",
                                   model=name, attribute=k)
    for ix in indexes:
        for ix_attr in ix.attrs:
            if ix_attr not in fields:
                raise ModelConfigError(f"{name}: index attribute {ix_attr!r} is not an attribute",
                                       model=name, attribute=ix_attr)


def build_meta(cls: type, pending: Pending, hints: dict[str, Any]) -> ModelMeta:
    """The ``ModelMeta`` of a declared class from its resolved annotations (``hints``)."""
    key_names = pending.key_names
    attrs: dict[str, Attr] = {}
    for f in dataclasses.fields(cls):
        attrs[f.name] = _attr_from_field(f, hints, key_names)
    for k in key_names:
        if attrs[k].kind == JSON:
            raise ModelConfigError(f"{cls.__name__}: key attribute {k!r} must be a scalar",
                                   model=cls.__qualname__, attribute=k)
    _check_generators(cls.__name__, attrs)
    all_indexes = list(pending.indexes)
    for a in attrs.values():
        if a.unique and not a.is_key:
            all_indexes.append(Index(a.name, unique=True))
        elif a.index and not a.is_key:
            all_indexes.append(Index(a.name))
    keycfg = KeyConfig(*key_names, _codecs=tuple(_key_codec(attrs[k]) for k in key_names))
    return ModelMeta(cls, pending.table or snake_case(cls.__name__), attrs, keycfg,
                     tuple(all_indexes))


@overload
def stored(cls: type[T], /) -> type[T]: ...
@overload
def stored(*, key: str | tuple[str, ...] | KeyConfig = "id", indexes: Iterable[Index] = (),
           table: str | None = None) -> Callable[[type[T]], type[T]]: ...


@typing.dataclass_transform(kw_only_default=True, field_specifiers=(field,))
def stored(cls: type[T] | None = None, /, *, key: str | tuple[str, ...] | KeyConfig = "id",
           indexes: Iterable[Index] = (), table: str | None = None) -> Any:
    """Make ``cls`` a keyword-only dataclass stored under ``table`` (default: snake_case name).

    ``key`` names the key attribute(s); ``indexes`` adds secondary indexes. The class is
    registered; its metadata is built at once when every annotation resolves already,
    otherwise when it is first needed (a store opens on it, or ``__storeroom__`` is
    read), so annotations may name classes defined later.
    """
    key_names = key.attrs if isinstance(key, KeyConfig) else (
        (key,) if isinstance(key, str) else tuple(key))
    index_list = tuple(indexes)

    def wrap(c: type[T]) -> type[T]:
        if not (dataclasses.is_dataclass(c) and "__dataclass_fields__" in c.__dict__):
            c = dataclasses.dataclass(kw_only=True)(c)
        _check_declaration(c, key_names, index_list)
        pending = Pending(c, key_names, index_list, table)
        type.__setattr__(c, "__storeroom__", pending)
        registry.register(c)
        try:
            # everything defined already (the common case): configure now, so a bad
            # declaration is refused where it is written; registry names are not used
            # yet, as the module may still define a class the annotation means
            hints = registry.resolve_hints(c, registry=False)
        except registry.Unresolved:
            return c  # a forward reference: configured when first needed
        except BaseException:
            registry.unregister(c)  # refused: the class never exists for the registry
            raise
        with registry.lock:
            if c.__dict__.get("__storeroom__") is pending:
                try:
                    meta = build_meta(c, pending, hints)
                except BaseException:
                    registry.unregister(c)
                    raise
                type.__setattr__(c, "__storeroom__", meta)
                registry.configured(c)
        return c

    return wrap(cls) if cls is not None else wrap


def meta_of(model: Any) -> ModelMeta:
    """The ``ModelMeta`` of a stored class or instance; ``TypeError`` for anything else."""
    meta = getattr(model, "__storeroom__", None)
    if not isinstance(meta, ModelMeta):
        raise TypeError(f"{model!r} is not a @stored class")
    return meta


def is_stored(model: Any) -> bool:
    """True for a class decorated with ``@stored`` (without configuring it)."""
    cls = model if isinstance(model, type) else type(model)
    for base in cls.__mro__:
        found = base.__dict__.get("__storeroom__")
        if found is not None:
            return isinstance(found, ModelMeta | Pending)
    return False


__all__ = ["stored", "ModelMeta", "Pending", "build_meta", "meta_of", "is_stored", "snake_case", "UNDEFINED",
           "is_dataclass_type"]

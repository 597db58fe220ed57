"""``@stored``: turn an annotated class into a keyword-only dataclass with storeroom metadata."""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, overload

from ..errors import ModelConfigError, ValidationError
from . import registry
from .attrs import Attr
from .fields import DEFAULT_OPTIONS, OPTIONS_KEY, FieldOptions, field, option_values
from .indexes import Index
from .keys import KeyConfig, PartCodec, part_codec
from .relations import (
    NOT_LOADED,
    ON_DELETE,
    ManyDescriptor,
    ManyInfo,
    RefDescriptor,
    RefInfo,
    column_attr,
    looks_like_many,
    relation_of,
)
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
                 indexes: tuple[Index, ...], *, refs: dict[str, RefInfo] | None = None,
                 manys: dict[str, ManyInfo] | None = None,
                 unique_sets: tuple[tuple[str, ...], ...] = (), engine: str | None = None,
                 ) -> None:
        self.cls = cls
        #: every set of attributes no two items may share (``field(unique=True)``,
        #: ``unique_together`` and unique indexes), as attribute names: an item whose
        #: values of a set include None is not constrained by it (SQL's rule)
        self.unique_sets: tuple[tuple[str, ...], ...] = unique_sets
        #: ``@stored(checks=...)``: name -> the prepared filter every stored item matches
        #: (filled in by ``build_meta`` once the metadata exists to prepare them against)
        self.checks: dict[str, Any] = {}
        #: ``@stored(engine=...)``: the default engine of the model in a data manager
        self.engine = engine
        #: the Ref attributes (not in ``attrs``: their key columns are) and the Many ones
        self.refs: dict[str, RefInfo] = refs or {}
        self.manys: dict[str, ManyInfo] = manys or {}
        self.name = name
        self.attrs = attrs
        self.key = key
        self.indexes = indexes
        self.stored_attrs: tuple[Attr, ...] = tuple(a for a in attrs.values() if a.store)
        self.stored_names: tuple[str, ...] = tuple(a.name for a in self.stored_attrs)
        self.key_attrs: tuple[Attr, ...] = tuple(attrs[n] for n in key.attrs)
        self.unique_attrs: tuple[Attr, ...] = tuple(a for a in self.stored_attrs if a.unique)
        #: the attributes an update sets from their generator (``generated.now()``...)
        self.on_update_attrs: tuple[Attr, ...] = tuple(
            a for a in self.stored_attrs
            if a.generator is not None and a.generator.on_update is not None)
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

    def build_all(self, rows: list[dict[str, Any]]) -> list[Any]:
        """``build`` of each of ``rows`` (each dict becomes its item's own), as a list:
        one call for a batch (a bulk create's returned items)."""
        if self._unstored_defaults:
            return [self.build(v) for v in rows]
        new, cls = self._new, self.cls
        out: list[Any] = []
        append = out.append
        for v in rows:
            obj: Any = new(cls)
            obj.__dict__ = v
            append(obj)
        return out

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

    __slots__ = ("cls", "key_names", "indexes", "table", "unique_together", "checks", "engine")

    def __init__(self, cls: type, key_names: tuple[str, ...], indexes: tuple[Index, ...],
                 table: str | None, unique_together: tuple[tuple[str, ...], ...] = (),
                 checks: dict[str, Any] | None = None, engine: str | None = None) -> None:
        self.cls = cls
        self.key_names = key_names
        self.indexes = indexes
        self.table = table
        self.unique_together = unique_together
        self.checks: dict[str, Any] = checks or {}
        self.engine = engine

    def __get__(self, obj: Any, owner: type | None = None) -> ModelMeta:
        return registry.configure_model(self.cls)

    def __repr__(self) -> str:
        return f"<Pending {self.cls.__qualname__}>"


class Abstract:
    """The marker of an abstract ``@stored`` class (``abstract=True``) at
    ``cls.__storeroom__``: a base whose options its ``@stored`` children inherit, never
    stored itself (not registered; opening a store on it is a ``TypeError``)."""

    __slots__ = ("cls",)

    def __init__(self, cls: type) -> None:
        self.cls = cls

    def __repr__(self) -> str:
        return f"<Abstract {self.cls.__qualname__}>"


# where a @stored class keeps the options it was declared with (inherited ones merged),
# which its children read when it is abstract
_OPTIONS = "__storeroom_options__"
_CHECK_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _inherited(cls: type, given: dict[str, Any]) -> dict[str, Any]:
    """The options of ``cls``: those given, then what its abstract bases set (the
    nearest base first); indexes and checks add up (bases' first), the rest is the
    child's when it sets it. ``table`` and ``abstract`` are never inherited (two
    models on one table would overwrite each other's items)."""
    out = dict(given)
    for base in reversed(cls.__mro__[1:]):  # the farthest base first: nearer ones win
        if not isinstance(base.__dict__.get("__storeroom__"), Abstract):
            continue
        opts = base.__dict__.get(_OPTIONS, {})
        for name, value in opts.items():
            if name in ("indexes", "checks"):
                continue
            if given.get(name) is None:
                out[name] = value
    indexes: list[Index] = []
    checks: dict[str, Any] = {}
    for base in reversed(cls.__mro__[1:]):
        if isinstance(base.__dict__.get("__storeroom__"), Abstract):
            opts = base.__dict__.get(_OPTIONS, {})
            indexes.extend(ix for ix in opts.get("indexes", ()) if ix not in indexes)
            checks.update(opts.get("checks") or {})
    indexes.extend(ix for ix in given.get("indexes") or () if ix not in indexes)
    checks.update(given.get("checks") or {})
    out["indexes"] = tuple(indexes)
    out["checks"] = checks
    return out


def _unique_tuples(name: str, value: Any) -> tuple[tuple[str, ...], ...]:
    """``unique_together`` as a tuple of attribute-name tuples (a lone tuple of names is
    one set, as Django accepts)."""
    if value is None:
        return ()
    items = list(value)
    if items and all(isinstance(v, str) for v in items):
        items = [tuple(items)]
    out: list[tuple[str, ...]] = []
    for t in items:
        if isinstance(t, str) or not all(isinstance(n, str) for n in t) or not t:
            raise ModelConfigError(f"{name}: unique_together takes tuples of attribute names, "
                                   f"got {t!r}", model=name)
        out.append(tuple(t))
    return tuple(out)


def _check_declaration(cls: type, key_names: tuple[str, ...], indexes: tuple[Index, ...],
                       unique_together: tuple[tuple[str, ...], ...] = (),
                       checks: dict[str, Any] | None = None) -> None:
    """The checks that need no resolved annotation, run when the class is declared."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    name = cls.__qualname__
    slotted = [f for f in fields if any(isinstance(k.__dict__.get(f), types.MemberDescriptorType)
                                        for k in cls.__mro__)]
    if slotted or cls.__dictoffset__ == 0:
        # items are read, written and built through their ``__dict__`` (as the fast
        # paths and the row builders do): a slot would hold a value none of them sees
        raise ModelConfigError(
            f"{name}: a @stored class keeps its attributes in each instance's __dict__; "
            "__slots__ (@dataclass(slots=True)) are not supported"
            + (f" (slots: {', '.join(slotted)})" if slotted else ""), model=name)
    for names in unique_together:
        for n in names:
            if n not in fields:
                raise ModelConfigError(f"{name}: unique_together attribute {n!r} is not an "
                                       "attribute", model=name, attribute=n)
    for check_name in checks or {}:
        if not isinstance(check_name, str) or not _CHECK_NAME.match(check_name):
            raise ModelConfigError(f"{name}: a check's name is an identifier (it names a "
                                   f"constraint), got {check_name!r}", model=name)
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


def _opts(f: dataclasses.Field[Any]) -> FieldOptions:
    return f.metadata.get(OPTIONS_KEY) or DEFAULT_OPTIONS


def _target_key_attrs(target: type, cls: type, plain: dict[str, Attr],
                      key_names: tuple[str, ...], where: str) -> tuple[Attr, ...]:
    """The key attributes of a Ref's target, without configuring the target when it is
    still pending (only its key fields are resolved): two models may refer to each other,
    and the target may name classes not defined yet."""
    if target is cls:  # a reference to its own model (a tree)
        if any(k not in plain for k in key_names):
            raise ModelConfigError(f"{where}: a Ref to its own model cannot be part of the key",
                                   model=cls.__qualname__)
        return tuple(plain[k] for k in key_names)
    found = target.__dict__.get("__storeroom__")
    if isinstance(found, ModelMeta):
        return found.key_attrs
    if not isinstance(found, Pending):
        raise ModelConfigError(f"{where}: Ref[...] needs a @stored class, got {target!r}",
                               model=cls.__qualname__)
    tkeys = found.key_names
    hints = registry.resolve_hints(target, registry=True, names=tkeys)
    if any(relation_of(hints[k]) is not None for k in tkeys):
        return registry.configure_model(target).key_attrs  # a Ref inside the target's key
    fields = {f.name: f for f in dataclasses.fields(target)}
    return tuple(_attr_from_field(fields[k], hints, tkeys) for k in tkeys)


def _rel_eq(self: Any, other: Any) -> Any:
    # a model with relations compares its attributes (a Ref by its key columns): the
    # related objects may be stubs, and a Many may not be loaded
    if other.__class__ is not self.__class__:
        return NotImplemented
    a, b = self.__dict__, other.__dict__
    return all(a.get(n, UNDEFINED) == b.get(n, UNDEFINED) for n in self.__storeroom__.attrs)


def _rel_repr(self: Any) -> str:
    d = self.__dict__
    shown = ", ".join(f"{n}={d.get(n, UNDEFINED)!r}" for n in self.__storeroom__.attrs)
    return f"{type(self).__qualname__}({shown})"


def build_meta(cls: type, pending: Pending, hints: dict[str, Any]) -> ModelMeta:
    """The ``ModelMeta`` of a declared class from its resolved annotations (``hints``).

    A ``Ref`` becomes its key columns (``<name>_id`` / ``<name>_<keyattr>``) in
    ``attrs`` and a ``RefInfo`` in ``refs``; a ``Many`` a ``ManyInfo`` in ``manys``
    (linked to the other side by ``link_relations`` once the class is configured).
    """
    key_names = pending.key_names
    cname = cls.__qualname__
    fields = dataclasses.fields(cls)
    field_names = {f.name for f in fields}
    plain: dict[str, Attr] = {}
    related: list[tuple[dataclasses.Field[Any], str, Any, bool]] = []
    for f in fields:
        rel = relation_of(hints[f.name])
        opts = _opts(f)
        if rel is None:
            if opts.reverse is not None or opts.through is not None:
                raise ModelConfigError(f"{cname}.{f.name}: reverse= and through= belong on a "
                                       "Many[...] attribute", model=cname, attribute=f.name)
            if opts.on_delete is not None:
                raise ModelConfigError(f"{cname}.{f.name}: on_delete= belongs on a Ref[...] "
                                       "attribute", model=cname, attribute=f.name)
            plain[f.name] = _attr_from_field(f, hints, key_names)
        else:
            related.append((f, *rel))
    refs: dict[str, RefInfo] = {}
    manys: dict[str, ManyInfo] = {}
    columns_of: dict[str, list[Attr]] = {}
    for f, kind, target, optional in related:
        opts = _opts(f)
        where = f"{cname}.{f.name}"
        if not (isinstance(target, type) and is_stored(target)):
            raise ModelConfigError(f"{where}: {'Ref' if kind == 'ref' else 'Many'}[...] needs a "
                                   f"@stored class, got {target!r}", model=cname,
                                   attribute=f.name)
        if kind == "many":
            problem = (
                "a Many cannot be part of the key" if f.name in key_names else
                "on_delete= belongs on a Ref[...] attribute" if opts.on_delete is not None else
                "a Many is a list, never None: drop '| None'" if optional else
                "give reverse= or through=, not both" if opts.reverse and opts.through else
                "a Many is never stored: store=False is implied" if not opts.store else None)
            if problem:
                raise ModelConfigError(f"{where}: {problem}", model=cname, attribute=f.name)
            manys[f.name] = ManyInfo(cls, f.name, target, opts.reverse, opts.through)
            continue
        on_delete = opts.on_delete or "block"
        problem = (
            "reverse= and through= belong on a Many[...] attribute"
            if opts.reverse is not None or opts.through is not None else
            f"on_delete must be one of {', '.join(ON_DELETE)}, got {on_delete!r}"
            if on_delete not in ON_DELETE else
            "on_delete='nullify' needs an optional reference: annotate it Ref[...] | None"
            if on_delete == "nullify" and not optional else
            "a Ref is always stored (store=False is not supported)" if not opts.store else
            "a Ref's default can only be None"
            if f.default not in (dataclasses.MISSING, None)
            or f.default_factory is not dataclasses.MISSING else None)
        if problem:
            raise ModelConfigError(f"{where}: {problem}", model=cname, attribute=f.name)
        tkeys = _target_key_attrs(target, cls, plain, key_names, where)
        cols = ((f"{f.name}_id",) if len(tkeys) == 1
                else tuple(f"{f.name}_{k.name}" for k in tkeys))
        for c in cols:
            if c in field_names or any(c in (a.name for a in v) for v in columns_of.values()):
                raise ModelConfigError(f"{where}: its key column {c!r} is also another "
                                       "attribute; rename one", model=cname, attribute=f.name)
        is_key = f.name in key_names
        refs[f.name] = RefInfo(cls, f.name, target, optional, on_delete, cols,
                               tuple(k.name for k in tkeys))
        columns_of[f.name] = [column_attr(f.name, c, k, optional, is_key, opts)
                              for c, k in zip(cols, tkeys, strict=True)]
    attrs: dict[str, Attr] = {}
    for f in fields:  # declaration order, a Ref's columns in its place
        if f.name in plain:
            attrs[f.name] = plain[f.name]
        for a in columns_of.get(f.name, ()):
            attrs[a.name] = a
    final_key = tuple(c for k in key_names for c in (refs[k].columns if k in refs else (k,)))
    for k in final_key:
        if attrs[k].kind == JSON:
            raise ModelConfigError(f"{cls.__name__}: key attribute {k!r} must be a scalar",
                                   model=cname, attribute=k)
    _check_generators(cls.__name__, attrs)

    def columns(names: tuple[str, ...]) -> tuple[str, ...]:
        out: list[str] = []
        for n in names:
            if n in manys:
                raise ModelConfigError(f"{cname}: an index cannot name the Many {n!r}",
                                       model=cname, attribute=n)
            out.extend(refs[n].columns if n in refs else (n,))
        return tuple(out)
    all_indexes = [ix if not set(ix.attrs) & set(refs) else
                   Index(*columns(ix.attrs), unique=ix.unique, name=ix.name)
                   for ix in pending.indexes]
    for ix in pending.indexes:
        columns(ix.attrs)
    for a in attrs.values():
        if a.unique and not a.is_key:
            all_indexes.append(Index(a.name, unique=True))
        elif a.index and not a.is_key:
            all_indexes.append(Index(a.name))
    for names in pending.unique_together:
        cols = columns(names)
        if not any(ix.unique and ix.attrs == cols for ix in all_indexes):
            all_indexes.append(Index(*cols, unique=True))
    # every unique set, once; a set holding the whole key is unique anyway
    unique_sets: list[tuple[str, ...]] = []
    for ix in all_indexes:
        if ix.unique and ix.attrs not in unique_sets and not set(final_key) <= set(ix.attrs):
            unique_sets.append(ix.attrs)
    keycfg = KeyConfig(*final_key, _codecs=tuple(_key_codec(attrs[k]) for k in final_key))
    meta = ModelMeta(cls, pending.table or snake_case(cls.__name__), attrs, keycfg,
                     tuple(all_indexes), refs=refs, manys=manys, unique_sets=tuple(unique_sets),
                     engine=pending.engine)
    if pending.checks:
        from ..query.prepare import build_filter  # the query layer builds on the model one
        for check_name, where in pending.checks.items():
            try:
                meta.checks[check_name] = build_filter(meta, where)
            except (ValidationError, TypeError, ValueError) as exc:
                raise ModelConfigError(f"{cname}: check {check_name!r} is not a valid filter: "
                                       f"{exc}", model=cname) from exc
    if refs or manys:
        for info in refs.values():
            type.__setattr__(cls, info.name, RefDescriptor(info))
        for many in manys.values():
            type.__setattr__(cls, many.name, ManyDescriptor(many))
        type.__setattr__(cls, "__eq__", _rel_eq)
        type.__setattr__(cls, "__repr__", _rel_repr)
    return meta


def _resolve_through(many: ManyInfo) -> type:
    through = many.through
    if isinstance(through, type):
        return through
    if isinstance(through, str):
        import sys
        mod = sys.modules.get(many.model.__module__)
        found = getattr(mod, through, None) if "." not in through else None
        if isinstance(found, type) and is_stored(found):
            return found
        try:
            return registry.lookup(through)
        except LookupError as exc:
            raise ModelConfigError(f"{many.model.__qualname__}.{many.name}: through={through!r} "
                                   "names no @stored class", model=many.model.__qualname__,
                                   attribute=many.name) from exc
    raise ModelConfigError(f"{many.model.__qualname__}.{many.name}: through= takes a @stored "
                           f"class or its name, got {through!r}",
                           model=many.model.__qualname__, attribute=many.name)


def link_relations(meta: ModelMeta) -> None:
    """Check and complete every ``Many`` of a configured model against the other side
    (configuring it): ``reverse`` names a ``Ref`` on the target pointing back (found
    when exactly one does); ``through`` is a model with a ``Ref`` to each side."""
    cls = meta.cls
    for many in meta.manys.values():
        where = f"{cls.__qualname__}.{many.name}"
        target_meta = registry.configure_model(many.target)
        if many.through is not None:
            through = _resolve_through(many)
            tmeta = registry.configure_model(through)
            to_self = [r for r in tmeta.refs.values() if r.target is cls]
            to_target = [r for r in tmeta.refs.values() if r.target is many.target]
            if many.target is cls:  # many-to-many with its own model: two Refs to it
                pair = to_self if len(to_self) == 2 else None
            else:
                pair = [to_self[0], to_target[0]] if len(to_self) == 1 and len(
                    to_target) == 1 else None
            if pair is None:
                raise ModelConfigError(
                    f"{where}: through={through.__qualname__} needs exactly one Ref to "
                    f"{cls.__qualname__} and one to {many.target.__qualname__}",
                    model=cls.__qualname__, attribute=many.name)
            many.through, many.through_source, many.through_target = through, pair[0], pair[1]
            continue
        if many.reverse is not None:
            ref = target_meta.refs.get(many.reverse)
            if ref is None or ref.target is not cls:
                raise ModelConfigError(
                    f"{where}: reverse={many.reverse!r} names no Ref[{cls.__qualname__}] on "
                    f"{many.target.__qualname__}", model=cls.__qualname__, attribute=many.name)
            continue
        back = [r.name for r in target_meta.refs.values() if r.target is cls]
        if len(back) != 1:
            raise ModelConfigError(
                f"{where}: {many.target.__qualname__} has "
                f"{'no Ref' if not back else 'several Refs (' + ', '.join(back) + ')'} to "
                f"{cls.__qualname__}; name one with field(reverse=...)",
                model=cls.__qualname__, attribute=many.name)
        many.reverse = back[0]


@overload
def stored(cls: type[T], /) -> type[T]: ...
@overload
def stored(*, key: str | tuple[str, ...] | KeyConfig | None = None,
           indexes: Iterable[Index] = (), table: str | None = None,
           unique_together: Iterable[tuple[str, ...]] | None = None,
           checks: Mapping[str, Any] | None = None, abstract: bool = False,
           engine: str | None = None) -> Callable[[type[T]], type[T]]: ...


@typing.dataclass_transform(kw_only_default=True, field_specifiers=(field,))
def stored(cls: type[T] | None = None, /, *,
           key: str | tuple[str, ...] | KeyConfig | None = None,
           indexes: Iterable[Index] = (), table: str | None = None,
           unique_together: Iterable[tuple[str, ...]] | None = None,
           checks: Mapping[str, Any] | None = None, abstract: bool = False,
           engine: str | None = None) -> Any:
    """Make ``cls`` a keyword-only dataclass stored under ``table`` (default: snake_case name).

    ``key`` names the key attribute(s) (default ``"id"``); ``indexes`` adds secondary
    indexes; ``unique_together`` lists tuples of attributes no two items may share
    (``Conflict``; a tuple holding None is not constrained); ``checks`` maps names to
    filters (``Q``, dict) every stored item must match (``ValidationError`` whose rule
    is the check's name); ``engine`` is the model's default engine in a data manager.
    ``abstract=True`` makes a base: never stored, its ``@stored`` subclasses inherit
    every option they do not set (indexes and checks add up).

    The class is registered; its metadata is built at once when every annotation
    resolves already, otherwise when it is first needed (a store opens on it, or
    ``__storeroom__`` is read), so annotations may name classes defined later.
    """
    given: dict[str, Any] = {
        "key": key, "indexes": tuple(indexes), "unique_together": unique_together,
        "checks": dict(checks) if checks is not None else None, "engine": engine}
    if not isinstance(abstract, bool):
        raise TypeError(f"abstract is True or False, got {abstract!r}")
    if engine is not None and not isinstance(engine, str):
        raise TypeError(f"engine is an engine's name, got {engine!r}")

    def wrap(c: type[T]) -> type[T]:
        if not (dataclasses.is_dataclass(c) and "__dataclass_fields__" in c.__dict__):
            for name, raw in list(c.__dict__.get("__annotations__", {}).items()):
                if name not in c.__dict__ and looks_like_many(raw):
                    # a Many is never a required argument: left out, it is not loaded
                    type.__setattr__(c, name, dataclasses.field(default=NOT_LOADED))
            c = dataclasses.dataclass(kw_only=True)(c)
        opts = _inherited(c, given)
        type.__setattr__(c, _OPTIONS, opts)
        if abstract:  # a base only: not registered, never configured, never opened
            type.__setattr__(c, "__storeroom__", Abstract(c))
            return c
        k = opts.get("key") or "id"
        key_names = k.attrs if isinstance(k, KeyConfig) else (
            (k,) if isinstance(k, str) else tuple(k))
        index_list = opts["indexes"]
        together = _unique_tuples(c.__qualname__, opts.get("unique_together"))
        _check_declaration(c, key_names, index_list, together, opts["checks"])
        pending = Pending(c, key_names, index_list, table, together, opts["checks"],
                          opts.get("engine"))
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
        if any((r := relation_of(h)) is not None and r[0] == "many" for h in hints.values()):
            return c  # a Many is linked to the other side, which may not be declared yet
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
        if isinstance(meta, Abstract):
            raise TypeError(f"{meta.cls.__qualname__} is abstract (@stored(abstract=True)): "
                            "a base for @stored models, never stored itself")
        raise TypeError(f"{model!r} is not a @stored class")
    return meta


def default_engine(model: type) -> str | None:
    """A model's ``@stored(engine=...)`` (None when it sets none), without configuring it;
    ``TypeError`` for an abstract model."""
    found = model.__dict__.get("__storeroom__") if isinstance(model, type) else None
    if isinstance(found, Abstract):
        raise TypeError(f"{model.__qualname__} is abstract (@stored(abstract=True)): "
                        "it has no store to register")
    return found.engine if isinstance(found, ModelMeta | Pending) else None


def is_stored(model: Any) -> bool:
    """True for a class decorated with ``@stored`` (without configuring it)."""
    cls = model if isinstance(model, type) else type(model)
    for base in cls.__mro__:
        found = base.__dict__.get("__storeroom__")
        if found is not None:
            return isinstance(found, ModelMeta | Pending)
    return False


__all__ = ["stored", "Abstract", "ModelMeta", "Pending", "build_meta", "meta_of", "is_stored", "snake_case", "UNDEFINED",
           "is_dataclass_type"]

"""Relations between stored classes: ``Ref[M]`` (many-to-one) and ``Many[M]`` (reverse and
many-to-many), their attribute descriptors, and stubs.

``Ref[M]`` is ``Annotated[M, REF]`` and ``Many[M]`` is ``Annotated[list[M], MANY]``: a type
checker sees ``p.category`` as an ``M`` and ``c.products`` as a ``list[M]``, and the
configure step finds the marker in the resolved annotation.

Storage: a ``Ref`` is not an attribute of ``ModelMeta.attrs``; its *columns* are. A Ref
``category`` to a model keyed by ``id`` stores ``category_id`` (a composite key
``(a, b)``: ``category_a`` and ``category_b``), ordinary stored attributes of the
target key's kind, so every backend stores, filters and orders them as any other. The
instance keeps the columns in its ``__dict__`` (what the write paths read) and the
related object, when one was given or loaded, under the Ref's own name; the
``RefDescriptor`` keeps both in step. ``p.category`` is always an ``M``: the object
given or loaded, or a *stub* (an instance of a subclass of ``M`` holding only the key,
whose other attributes raise ``LazyLoadBlocked``, never a default).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Annotated, Any, Final, TypeVar, get_args, get_origin

from ..errors import LazyLoadBlocked, ValidationError
from .undefined import UNDEFINED

if TYPE_CHECKING:
    from .attrs import Attr

M = TypeVar("M")


class _Marker:
    """The metadata of ``Annotated`` that marks a relation annotation."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<storeroom {self.name}>"


REF: Final = _Marker("Ref")
MANY: Final = _Marker("Many")

#: ``Ref[M]``: a many-to-one reference to the stored class ``M`` (stores M's key).
Ref = Annotated[M, REF]
#: ``Many[M]``: the items of ``M`` related to this one (reverse or ``through=``); never stored.
Many = Annotated[list[M], MANY]

#: what a ``Ref`` may do when the referenced item is deleted
ON_DELETE: Final = ("block", "cascade", "nullify", "ignore")


class _NotLoaded:
    """Type of :data:`NOT_LOADED`: the value of a ``Many`` nobody loaded or gave."""

    _instance: _NotLoaded | None = None
    __slots__ = ()

    def __new__(cls) -> _NotLoaded:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOT_LOADED"

    def __reduce__(self) -> str:
        return "NOT_LOADED"


NOT_LOADED: Final[Any] = _NotLoaded()


def relation_of(annotation: Any) -> tuple[str, Any, bool] | None:
    """``("ref" | "many", target, optional)`` for a relation annotation, else None."""
    from .types import unwrap_optional
    inner, optional = unwrap_optional(annotation)
    if get_origin(inner) is not Annotated:
        return None
    meta = inner.__metadata__
    if REF in meta:
        return "ref", inner.__origin__, optional
    if MANY in meta:
        args = get_args(inner.__origin__)
        return "many", (args[0] if args else None), optional
    return None


def looks_like_many(raw: Any) -> bool:
    """True when a raw (maybe string) annotation is a ``Many[...]``: such a field gets a
    default before the dataclass is made, so it is never a required argument."""
    if isinstance(raw, str):
        text = raw.strip().strip("'\"")
        head = text.split("[", 1)[0].strip()
        return "[" in text and head.rsplit(".", 1)[-1] == "Many"
    return get_origin(raw) is Annotated and MANY in getattr(raw, "__metadata__", ())


class RefInfo:
    """One ``Ref`` attribute: declared on ``model`` as ``name``, pointing at ``target``.

    ``columns`` are the stored attributes holding the target's key, in the order of the
    target's key attributes ``target_key``.
    """

    __slots__ = ("model", "name", "target", "optional", "on_delete", "columns", "target_key")

    def __init__(self, model: type, name: str, target: type, optional: bool, on_delete: str,
                 columns: tuple[str, ...], target_key: tuple[str, ...]) -> None:
        self.model = model
        self.name = name
        self.target = target
        self.optional = optional
        self.on_delete = on_delete
        self.columns = columns
        self.target_key = target_key

    def __repr__(self) -> str:
        return (f"<Ref {self.model.__qualname__}.{self.name} -> {self.target.__qualname__} "
                f"columns={self.columns} on_delete={self.on_delete}>")

    def key_from(self, values: dict[str, Any]) -> Any:
        """The referenced key in ``values`` (stored columns): a scalar, a tuple, or None."""
        if len(self.columns) == 1:
            return values.get(self.columns[0])
        parts = tuple(values.get(c) for c in self.columns)
        return None if any(p is None for p in parts) else parts


class ManyInfo:
    """One ``Many`` attribute; ``reverse`` (the Ref on ``target``) or ``through`` (a model
    with ``through_source`` pointing here and ``through_target`` at ``target``) is
    filled in when the relation is linked (after both sides are configured)."""

    __slots__ = ("model", "name", "target", "reverse", "through", "through_source",
                 "through_target")

    def __init__(self, model: type, name: str, target: type, reverse: str | None,
                 through: Any) -> None:
        self.model = model
        self.name = name
        self.target = target
        self.reverse = reverse
        self.through: Any = through
        self.through_source: RefInfo | None = None
        self.through_target: RefInfo | None = None

    def route(self) -> tuple[RefInfo, RefInfo | None]:
        """The Refs this Many goes through (once linked), for loading, lookups and SQL
        alike: ``(back, None)`` for a reverse Many (``back``: the Ref on ``target``
        pointing here), ``(source, target)`` for a many-to-many (the through model's
        Ref pointing here and its Ref to ``target``)."""
        if self.through is not None:
            src, dst = self.through_source, self.through_target
            if src is None or dst is None:
                raise RuntimeError(f"{self!r} is not linked yet (its models resolve when "
                                   "the first store opens)")
            return src, dst
        from .stored import meta_of
        return meta_of(self.target).refs[self.reverse], None  # type: ignore[index]

    def __repr__(self) -> str:
        how = (f"through={getattr(self.through, '__qualname__', self.through)}"
               if self.through is not None else f"reverse={self.reverse}")
        return f"<Many {self.model.__qualname__}.{self.name} -> {self.target.__qualname__} {how}>"


# ---- descriptors ------------------------------------------------------------------------

class RefDescriptor:
    """``obj.<ref>``: the related object, or a stub; setting takes an object or a key."""

    __slots__ = ("info", "name", "columns", "target", "single")

    def __init__(self, info: RefInfo) -> None:
        self.info = info
        self.name = info.name
        self.columns = info.columns
        self.target = info.target
        self.single = len(info.columns) == 1

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        d = obj.__dict__
        if self.columns[0] not in d and self.name in d:  # set before configuring
            self.__set__(obj, d.pop(self.name))
        key = self.info.key_from(d)
        if key is None:
            return None
        cached = d.get(self.name)
        if cached is not None:
            # the columns are the truth: ``p.category_id = 7`` makes a cached object stale
            if isinstance(cached, self.target):
                tk = self.info.target_key
                cd = cached.__dict__
                ck = cd.get(tk[0]) if self.single else tuple(cd.get(a) for a in tk)
                if ck == key:
                    return cached
            elif type(cached) is Dangling and cached.parts == (
                    (key,) if self.single else key):
                return None  # loaded: no item has the key (an on_delete="ignore" Ref)
        stub = make_stub(self.target, self.info.target_key, key if not self.single else (key,))
        hooks = LAZY
        if hooks is not None:  # in a context: the mapped object of the key, or the stub
            stub = hooks.stub(obj, self.name, stub)
        d[self.name] = stub
        return stub

    def __set__(self, obj: Any, value: Any) -> None:
        d = obj.__dict__
        cols = self.columns
        if value is None:
            for c in cols:
                d[c] = None
            d[self.name] = None
            return
        if isinstance(value, self.target):
            parts = tuple(getattr(value, a) for a in self.info.target_key)
            d[self.name] = value
        else:
            d.pop(self.name, None)
            if self.single:
                parts = (value,)
            elif isinstance(value, tuple | list) and len(value) == len(cols):
                parts = tuple(value)
            else:
                raise ValidationError.one(
                    self.name, value, "reference",
                    f"expected a {self.target.__name__} or its key (a tuple of "
                    f"{len(cols)} parts)", model=type(obj).__name__)
        for c, p in zip(cols, parts, strict=True):
            d[c] = p


class ManyDescriptor:
    """``obj.<many>``: the list of related items once loaded (or given); before that,
    ``LazyLoadBlocked`` naming the path and the fix (lazy loading comes with contexts)."""

    __slots__ = ("info", "name")

    def __init__(self, info: ManyInfo) -> None:
        self.info = info
        self.name = info.name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        v = obj.__dict__.get(self.name, NOT_LOADED)
        if v is NOT_LOADED:
            hooks = LAZY
            if hooks is not None and hooks.load_many(obj, self.name):
                return obj.__dict__[self.name]
            cls = type(obj).__name__
            raise LazyLoadBlocked(
                f"{cls}.{self.name} is not loaded: load it with "
                f"prefetch_related=({self.name!r},) or store.load(obj, {self.name!r}) "
                f"(await store.load(obj, {self.name!r}) on async)")
        return v

    def __set__(self, obj: Any, value: Any) -> None:
        if value is NOT_LOADED:
            obj.__dict__.pop(self.name, None)
        else:
            obj.__dict__[self.name] = list(value)


# ---- stubs --------------------------------------------------------------------------------

class Stub:
    """Mixin of every stub class: an item known only by its key (see ``make_stub``)."""

    __slots__ = ()


class _Blocked:
    """A stub's non-key attribute: never a default, always ``LazyLoadBlocked``."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        hooks = LAZY
        if hooks is not None and hooks.load_stub(obj, self.name):
            return getattr(obj, self.name)  # filled in place: no longer a stub
        raise LazyLoadBlocked(stub_message(obj, self.name))

    def __set__(self, obj: Any, value: Any) -> None:
        raise LazyLoadBlocked(f"{type(obj).__name__}.{self.name}: cannot set an attribute "
                              "of a stub (not loaded); load the item first")


def stub_message(obj: Any, attr: str) -> str:
    """Why reading ``attr`` of the stub ``obj`` is refused, with the path and the fix."""
    name = type(obj).__name__
    via = obj.__dict__.get(VIA)
    owner = via[0]() if via is not None else None
    if owner is not None:
        path, where = via[1], f"{type(owner).__name__}.{via[1]}"
        fix = (f"load it with select_related=({path!r},) / prefetch_related=({path!r},) "
               f"or store.load(obj, {path!r}) (await store.load(obj, {path!r}) on async)")
    else:
        where = name
        fix = ("load it with select_related=(...) / prefetch_related=(...) or "
               "store.load(items, path) (await it on async)")
    return (f"{name}.{attr}: {where} is a stub (the {name} with key {_stub_key(obj)!r}, "
            f"not loaded); {fix}")


class Dangling:
    """What a load attaches to a ``Ref`` whose key names no item (an
    ``on_delete="ignore"`` reference): the Ref then reads as None."""

    __slots__ = ("parts",)

    def __init__(self, parts: tuple[Any, ...]) -> None:
        self.parts = parts

    def __repr__(self) -> str:
        return f"<dangling {self.parts!r}>"


#: the key of a stub's ``__dict__`` holding ``(weakref to the object whose Ref made it,
#: the Ref's name)``: the path a lazy load follows and a message names
VIA: Final = "_storeroom_via"
#: the key of a loaded object's ``__dict__`` holding a weak reference to its result's
#: peers (see ``storeroom.relations.lazy``)
PEERS: Final = "_storeroom_peers"

#: lazy loading's hooks (``storeroom.relations.lazy`` installs them): ``stub(owner,
#: name, stub)``, ``load_stub(stub, attr)``, ``load_many(obj, name)``
LAZY: Any = None


def _stub_key(obj: Any) -> Any:
    names = type(obj).__storeroom_stub_key__
    parts = tuple(obj.__dict__.get(n) for n in names)
    return parts[0] if len(parts) == 1 else parts


def _stub_repr(self: Any) -> str:
    return f"<{type(self).__name__} stub key={_stub_key(self)!r}>"


def _stub_eq(self: Any, other: Any) -> Any:
    if isinstance(other, Stub) and type(other) is type(self):
        return _stub_key(self) == _stub_key(other)
    return NotImplemented


def _stub_hash(self: Any) -> int:
    return hash((type(self).__qualname__, _stub_key(self)))


_STUB_CLASSES: dict[type, type] = {}


def stub_class(target: type, key_names: tuple[str, ...]) -> type:
    """The (cached) stub class of ``target``: a subclass whose every dataclass field but
    the key's is blocked. Its ``__name__`` is the target's, so messages read naturally."""
    cls = target.__dict__.get("__storeroom_stub__")
    if cls is not None:
        return cls  # type: ignore[no-any-return]
    ns: dict[str, Any] = {"__storeroom_stub_key__": key_names,
                          "__repr__": _stub_repr, "__eq__": _stub_eq, "__hash__": _stub_hash,
                          "__module__": target.__module__, "__qualname__": target.__qualname__}
    keep = set(key_names)
    meta = target.__dict__.get("__storeroom__")
    refs = getattr(meta, "refs", {})
    for f in dataclasses.fields(target):
        ref = refs.get(f.name)
        if f.name in keep or (ref is not None and set(ref.columns) <= keep):
            continue  # a key attribute, or a Ref that is part of the key: real values
        ns[f.name] = _Blocked(f.name)
    cls = type(target.__name__, (target, Stub), ns)
    type.__setattr__(target, "__storeroom_stub__", cls)
    return cls


def make_stub(target: type, key_names: tuple[str, ...], parts: tuple[Any, ...]) -> Any:
    """An instance of ``target``'s stub class holding only the key ``parts``."""
    obj: Any = object.__new__(stub_class(target, key_names))
    obj.__dict__.update(zip(key_names, parts, strict=True))
    return obj


def is_loaded(obj: Any, attr: str | None = None) -> bool:
    """False for a stub (an item known only by its key), True for a loaded item.

    With ``attr``: whether that relation of ``obj`` is loaded (a ``Many`` given or loaded;
    a ``Ref`` whose object is loaded or None).
    """
    if attr is None:
        return not isinstance(obj, Stub)
    if isinstance(obj, Stub):
        return False
    desc = getattr(type(obj), attr, None)
    if isinstance(desc, ManyDescriptor):
        return obj.__dict__.get(attr, NOT_LOADED) is not NOT_LOADED
    if isinstance(desc, RefDescriptor):
        value = desc.__get__(obj, type(obj))
        return value is None or not isinstance(value, Stub)
    raise AttributeError(f"{type(obj).__name__} has no relation {attr!r}")


def fill_columns(meta: Any, item: Any) -> None:
    """Give ``item`` its Ref columns when it was built before its class was configured
    (the descriptors were not installed yet: the Ref's value sits under its name)."""
    d = item.__dict__
    for ref in meta.refs.values():
        if ref.columns[0] not in d and ref.name in d:
            RefDescriptor(ref).__set__(item, d.pop(ref.name))


def ref_changes(meta: Any, changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` of a partial update with each Ref (an object, a key or None) given as
    its key columns: ``update(key, category=c)`` is ``update(key, category_id=c.id)``."""
    out: dict[str, Any] = {}
    for name, v in changes.items():
        ref = meta.refs.get(name)
        if ref is None or v is UNDEFINED:
            out[name] = v
            continue
        holder: Any = object.__new__(ref.model)
        RefDescriptor(ref).__set__(holder, v)
        for c in ref.columns:
            out[c] = holder.__dict__[c]
    return out


def column_attr(ref_name: str, column: str, key_attr: Attr, optional: bool, is_key: bool,
                opts: Any) -> Attr:
    """The stored attribute holding one part of a Ref's key (``<ref>_id`` / ``<ref>_<k>``)."""
    from .attrs import Attr
    inner = key_attr.inner
    annotation = (inner | None) if optional else inner
    return Attr(name=column, annotation=annotation, inner=inner, kind=key_attr.kind,
                optional=optional, default=dataclasses.MISSING, default_factory=None,
                max_length=key_attr.max_length, min_length=None, ge=None, le=None,
                pattern=None, store=True, creatable=opts.creatable,
                updatable=opts.updatable and not is_key, readable=opts.readable,
                sortable=opts.sortable and key_attr.sortable, unique=opts.unique,
                index=opts.index, generator=None, is_key=is_key, on_delete=opts.on_delete)


__all__ = ["Dangling", "LAZY", "PEERS", "VIA", "stub_message", "Ref", "Many", "REF", "MANY", "ON_DELETE", "NOT_LOADED", "RefInfo", "ManyInfo",
           "RefDescriptor", "ManyDescriptor", "Stub", "is_loaded", "make_stub", "relation_of",
           "stub_class", "column_attr", "looks_like_many", "fill_columns", "ref_changes"]

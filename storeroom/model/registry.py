"""The model registry and the lazy configure step (as SQLAlchemy's ``configure_mappers``).

``@stored`` registers a class. Its metadata (``ModelMeta``) is built when it is first
needed: at the latest when a store opens on the model, or on the first read of
``Model.__storeroom__``. So annotations may name classes defined later in the module
(``parent: "Category | None"``, ``from __future__ import annotations``).

String annotations resolve in the class's module (then the class body), then in the
registry by class name; a name two registered classes share is ambiguous (an error
naming both; write ``"module.Class"``). After configuring, ``__storeroom__`` is a plain
class attribute: the hot paths pay nothing for the laziness.
"""

from __future__ import annotations

import sys
import threading
import typing
import weakref
from typing import TYPE_CHECKING, Any

from ..errors import ModelConfigError

if TYPE_CHECKING:
    from .stored import ModelMeta

# RLock: building one model's metadata may need another model's (nested or related)
lock = threading.RLock()
# weak: a class defined at run time (a test, a dynamic model) dies with its last user
_by_name: dict[str, weakref.WeakSet[type]] = {}  # class __name__ -> classes
_by_path: weakref.WeakValueDictionary[str, type] = weakref.WeakValueDictionary()
# registered, not configured yet, in declaration order (the Pending is in the class dict)
_pending: weakref.WeakKeyDictionary[type, bool] = weakref.WeakKeyDictionary()
_configuring: set[type] = set()


_generation = 0


def generation() -> int:
    """A number that changes whenever a class is registered or forgotten (a cache of
    ``refs_to`` is valid while it stays the same)."""
    return _generation


def register(cls: type) -> None:
    """Record a ``@stored`` class (called by the decorator, before configuring)."""
    global _generation
    with lock:
        _generation += 1
        path = f"{cls.__module__}.{cls.__qualname__}"
        old = _by_path.get(path)
        if old is not None:  # a re-definition (re-run module, notebook cell) replaces it
            unregister(old)
        _by_path[path] = cls
        _by_name.setdefault(cls.__name__, weakref.WeakSet()).add(cls)
        _pending[cls] = True
        fields = getattr(cls, "__dataclass_fields__", {})
        if "objects" not in cls.__dict__ and "objects" not in fields:
            type.__setattr__(cls, "objects", OBJECTS)


class Objects:
    """``Model.objects``: the model's query set in the current context (see
    ``storeroom.objects``). ``RuntimeError`` outside an active context, ``LookupError``
    for a model the context's data manager does not know, ``AttributeError`` on an
    instance (query sets belong to the class)."""

    __slots__ = ()

    def __get__(self, instance: Any, owner: type) -> Any:
        if instance is not None:
            raise AttributeError(f"objects is reached through the class "
                                 f"({owner.__name__}.objects), not an instance")
        global _objects_for
        if _objects_for is None:
            # imported on first use: the model package does not load the context layer
            from ..objects import objects_for
            _objects_for = objects_for
        return _objects_for(owner)


_objects_for: Any = None
OBJECTS = Objects()


def unregister(cls: type) -> None:
    """Forget ``cls`` (a declaration refused while decorating)."""
    global _generation
    with lock:
        _generation += 1
        path = f"{cls.__module__}.{cls.__qualname__}"
        if _by_path.get(path) is cls:
            del _by_path[path]
        same = _by_name.get(cls.__name__)
        if same is not None:
            same.discard(cls)
        _pending.pop(cls, None)


def registered() -> tuple[type, ...]:
    """Every registered ``@stored`` class, in declaration order."""
    with lock:
        return tuple(_by_path.values())


def lookup(name: str) -> type:
    """The registered class called ``name`` (``Class`` or ``module.Class``).

    ``LookupError`` naming it when none is; ``ModelConfigError`` naming both when two
    registered classes share the name.
    """
    with lock:
        cls = _by_path.get(name)
        if cls is not None:
            return cls
        found = sorted(_by_name.get(name, ()), key=lambda c: f"{c.__module__}.{c.__qualname__}")
    if not found:
        raise LookupError(f"no @stored class is called {name!r}")
    if len(found) > 1:
        both = ", ".join(f"{c.__module__}.{c.__qualname__}" for c in found)
        raise ModelConfigError(f"the name {name!r} is ambiguous: {both}; write \"module.Class\"")
    return found[0]


def configure_model(cls: type) -> ModelMeta:
    """Build (once) and return the metadata of the ``@stored`` class ``cls``.

    ``ModelConfigError`` naming the class and attribute when an annotation cannot be
    resolved or the declaration is invalid.
    """
    from .stored import ModelMeta, Pending, build_meta, link_relations
    meta = cls.__dict__.get("__storeroom__")
    if isinstance(meta, ModelMeta):
        return meta
    with lock:
        meta = cls.__dict__.get("__storeroom__")
        if isinstance(meta, ModelMeta):  # another thread configured it meanwhile
            return meta
        pending = meta
        if not isinstance(pending, Pending):
            from .stored import Abstract
            if isinstance(pending, Abstract):
                raise TypeError(f"{pending.cls.__qualname__} is abstract "
                                "(@stored(abstract=True)): a base for @stored models, "
                                "never stored itself")
            raise TypeError(f"{cls!r} is not a @stored class")
        if cls in _configuring:
            raise ModelConfigError(f"{cls.__qualname__}: its metadata is needed while it is "
                                   "being configured (a cycle through nested models)")
        _configuring.add(cls)
        try:
            meta = build_meta(cls, pending, resolve_hints(cls, registry=True))
        finally:
            _configuring.discard(cls)
        # replaces the class's Pending descriptor: later reads are plain attribute reads
        type.__setattr__(cls, "__storeroom__", meta)
        _pending.pop(cls, None)
        if meta.manys:
            try:
                link_relations(meta)  # may configure the other side, which needs this meta
            except BaseException:
                type.__setattr__(cls, "__storeroom__", pending)
                _pending[cls] = True
                raise
        return meta


def configured(cls: type) -> None:
    """Record that ``cls`` was configured at decoration (no longer pending)."""
    with lock:
        _pending.pop(cls, None)


def configure() -> None:
    """Configure every registered model not configured yet (as ``configure_mappers``).

    Every model that can be configured is; then one ``ModelConfigError`` lists the
    models that could not (each message names the class and attribute).
    """
    with lock:
        todo = list(_pending)
    failed: list[ModelConfigError] = []
    for cls in todo:
        try:
            configure_model(cls)
        except ModelConfigError as exc:
            failed.append(exc)
    if len(failed) == 1:
        raise failed[0]
    if failed:
        raise ModelConfigError(f"{len(failed)} models cannot be configured: "
                               + "; ".join(str(e) for e in failed)) from failed[0]


class Unresolved(Exception):
    """An annotation names something not defined (yet): configuration can wait."""


class _Names(dict[str, Any]):
    """The local namespace string annotations are evaluated in.

    ``eval`` looks names up here first, then in the module's globals, then builtins:
    this mapping answers the class's module and class body first (so the module wins,
    as in plain ``get_type_hints``), then, with ``registry``, registered classes.
    """

    def __init__(self, cls: type, registry: bool) -> None:
        super().__init__()
        mod = sys.modules.get(cls.__module__)
        self.module: dict[str, Any] = vars(mod) if mod is not None else {}
        self.body = vars(cls)
        self.registry = registry

    def __missing__(self, name: str) -> Any:
        if name in self.module:
            return self.module[name]
        if name in self.body:
            return self.body[name]
        if self.registry:
            with lock:
                known = bool(_by_name.get(name)) or any(p.startswith(name + ".") for p in _by_path)
                named = bool(_by_name.get(name))
            if named:
                return lookup(name)
            if known:
                return _DottedPath(name)
        raise KeyError(name)


class _DottedPath:
    """A prefix of a registered ``module.Class`` path, during the evaluation of
    ``"module.Class"`` annotations whose module is not imported in the class's module."""

    def __init__(self, path: str) -> None:
        self._path = path

    def __getattr__(self, part: str) -> Any:
        path = f"{self._path}.{part}"
        with lock:
            cls = _by_path.get(path)
            deeper = any(p.startswith(path + ".") for p in _by_path)
        if cls is not None:
            return cls
        if deeper:
            return _DottedPath(path)
        raise NameError(f"name {path!r} is not defined")


def refs_to(target: type) -> tuple[Any, ...]:
    """Every ``RefInfo`` pointing at ``target``, from every registered model (configuring
    every pending model first, so a Ref is known even when ``target`` declares no
    ``Many``): what ``on_delete`` acts on. A model that cannot be configured is left
    out (no store of it can open). ``generation()`` tells when to ask again."""
    with lock:
        todo = list(_pending)
    for cls in todo:
        try:
            configure_model(cls)
        except ModelConfigError:
            pass  # a broken declaration: no store of it can open, so no item refers
    with lock:
        classes = tuple(_by_path.values())
    out = []
    for cls in classes:
        meta = cls.__dict__.get("__storeroom__")
        for ref in getattr(meta, "refs", {}).values():
            if ref.target is target:
                out.append(ref)
    return tuple(out)


def resolve_hints(cls: type, *, registry: bool, names: tuple[str, ...] | None = None,
                  ) -> dict[str, Any]:
    """The resolved annotation of every dataclass field of ``cls``.

    Each field is resolved in the namespace of the class that declares it. Without
    ``registry`` (at decoration) a name not defined yet raises ``Unresolved``; with it,
    ``ModelConfigError`` naming the class, the attribute and the annotation.
    """
    import dataclasses
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if names is not None and f.name not in names:
            continue
        owner = next((b for b in cls.__mro__ if f.name in b.__dict__.get("__annotations__", {})),
                     cls)
        raw = owner.__dict__.get("__annotations__", {}).get(f.name, f.type)
        # a one-field class in the declaring module: get_type_hints' own rules, one field
        probe = type(owner.__name__, (), {"__annotations__": {f.name: raw},
                                          "__module__": owner.__module__})
        try:
            out[f.name] = typing.get_type_hints(probe, localns=_Names(owner, registry),
                                                include_extras=True)[f.name]
        except NameError as exc:
            if not registry:
                raise Unresolved from exc
            raise ModelConfigError(
                f"{cls.__qualname__}.{f.name}: cannot resolve the annotation {raw!r} ({exc}); "
                f"define or import it in module {owner.__module__}, or declare a @stored "
                "class of that name", model=cls.__qualname__, attribute=f.name) from exc
        except ModelConfigError as exc:  # an ambiguous registry name
            raise ModelConfigError(f"{cls.__qualname__}.{f.name}: {exc}",
                                   model=cls.__qualname__, attribute=f.name) from exc
        except Exception as exc:  # a syntax or type error inside the annotation
            raise ModelConfigError(
                f"{cls.__qualname__}.{f.name}: invalid annotation {raw!r} ({exc})",
                model=cls.__qualname__, attribute=f.name) from exc
    return out

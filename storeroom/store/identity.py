"""The identity map of a context (sans-I/O): per model, one object per key.

A context's stores (``ctx.store(Model)``) run every item they return through the
model's :class:`ModelMap`: the first object read for a key is kept, and every later
result for that key is that same object. A later result does not overwrite it unless
the caller asked for ``refresh=True`` (then the kept object takes the fresh values in
place, as SQLAlchemy's ``populate_existing``). Writes through the store update the
kept object in place (see ``storeroom.store._async.mapped``).

The map gives identity, not caching: every read still asks the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..model.relations import VIA, Stub
from ..model.stored import meta_of


class ModelMap:
    """One model's part of an identity map: key value → the one object of that key.

    The key is the item's key value as ``KeyConfig.of`` gives it (a scalar, or a tuple
    for a composite key). ``stubs`` holds the keys whose mapped object is a stub (only
    its key loaded): a later full load of that key fills the same object in place.
    """

    __slots__ = ("objects", "stubs", "_name", "_names")

    def __init__(self, model: type) -> None:
        names = meta_of(model).key.attrs
        self.objects: dict[Any, Any] = {}
        self.stubs: set[Any] | None = None
        self._name: str | None = names[0] if len(names) == 1 else None
        self._names = names

    def key(self, item: Any) -> Any:
        """The map key of ``item`` (its key value)."""
        d = item.__dict__
        name = self._name
        if name is not None:
            return d[name]
        return tuple(d[n] for n in self._names)

    def key_of_parts(self, parts: tuple[Any, ...]) -> Any:
        """The map key of a key given as its tuple of parts."""
        return parts[0] if self._name is not None else parts

    def adopt(self, item: Any, refresh: bool = False) -> Any:
        """The mapped object for ``item`` (a freshly loaded one): ``item`` itself when its
        key is not mapped yet (it is mapped now), else the mapped object, updated in
        place from ``item`` when ``refresh`` is true or the mapped object is a stub."""
        d = item.__dict__
        name = self._name
        k = d[name] if name is not None else tuple(d[n] for n in self._names)
        objects = self.objects
        mapped = objects.get(k)
        if mapped is None:
            objects[k] = item
            return item
        if refresh or (self.stubs and k in self.stubs):
            self._fill(mapped, item, k)
        return mapped

    def adopt_all(self, items: list[Any], refresh: bool = False) -> list[Any]:
        """``adopt`` for each of ``items`` (a ``None`` stays ``None``), as a new list."""
        name = self._name
        if name is not None and not refresh and not self.stubs:
            # the common case (one key attribute, nothing to fill in place): the mapped
            # object or the item, mapped now, is one C-level setdefault per item
            put = self.objects.setdefault
            return [None if i is None else put(i.__dict__[name], i) for i in items]
        adopt = self.adopt
        return [None if i is None else adopt(i, refresh) for i in items]

    def written(self, item: Any) -> Any:
        """``item`` as a write through the store returned it: the mapped object updated in
        place (and returned), or ``item`` mapped now when its key was not mapped."""
        k = self.key(item)
        mapped = self.objects.get(k)
        if mapped is None or mapped is item:
            self.objects[k] = item
            return item
        self._fill(mapped, item, k)
        return mapped

    def created(self, item: Any) -> Any:
        """A created item: mapped (replacing any object the key had: the create proved
        that object's item was gone)."""
        k = self.key(item)
        self.objects[k] = item
        if self.stubs:
            self.stubs.discard(k)
        return item

    def put_stub(self, stub: Any) -> Any:
        """Map ``stub`` (an object holding only its key) unless its key is mapped; the
        mapped object. A later ``adopt`` of a full item for that key fills the stub."""
        k = self.key(stub)
        mapped = self.objects.get(k)
        if mapped is not None:
            return mapped
        self.objects[k] = stub
        if self.stubs is None:
            self.stubs = set()
        self.stubs.add(k)
        return stub

    def drop(self, k: Any) -> None:
        """Forget the object of map key ``k`` (if any)."""
        self.objects.pop(k, None)
        if self.stubs:
            self.stubs.discard(k)

    def clear(self) -> None:
        """Forget every object of the model."""
        self.objects.clear()
        self.stubs = None

    def _fill(self, mapped: Any, fresh: Any, k: Any) -> None:
        # in place: the user's references to ``mapped`` see the fresh values; attributes
        # the fresh item lacks (relations loaded onto the mapped one) are kept
        d = mapped.__dict__
        if isinstance(mapped, Stub):
            # a stub becomes the loaded object itself: its class (a subclass of the
            # model whose non-key attributes refuse) is swapped for the model's
            d.pop(VIA, None)
            mapped.__class__ = type(fresh)
        d.update(fresh.__dict__)
        if self.stubs:
            self.stubs.discard(k)

    def __len__(self) -> int:
        return len(self.objects)


class IdentityMap:
    """A context's identity map: one :class:`ModelMap` per model (made on first use)."""

    __slots__ = ("_models", "track_peers", "groups")

    def __init__(self, track_peers: bool = False) -> None:
        self._models: dict[type, ModelMap] = {}
        #: whether results are kept as peer groups (a sync context's lazy="peers")
        self.track_peers = track_peers
        #: the peer groups of the context's results (see ``storeroom.relations.lazy``):
        #: held here, for the context's life, as the mapped objects are
        self.groups: list[Any] = []

    def of(self, model: type) -> ModelMap:
        """The map of ``model``."""
        found = self._models.get(model)
        if found is None:
            found = self._models[model] = ModelMap(model)
        return found

    def get(self, model: type, key: Any) -> Any:
        """The mapped object of ``model`` at key value ``key``, or ``None``."""
        found = self._models.get(model)
        return None if found is None else found.objects.get(key)

    def clear(self, models: Iterable[type] | None = None) -> None:
        """Forget every mapped object (of ``models`` only, when given)."""
        for model, found in self._models.items():
            if models is None or model in models:
                found.clear()
        if models is None:
            self.groups = []

    def __len__(self) -> int:
        return sum(len(m) for m in self._models.values())

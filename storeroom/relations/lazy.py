"""Lazy loading in a context: what reading a stub's attribute or an unloaded ``Many``
does, per the context's mode (``dm.context(lazy=...)``).

- ``"peers"`` (a sync context's default): the relation is loaded for every object of
  the same result (the *peers*: the page of a search, a ``read_batch``, the items one
  relation load gave), in one batched read, so N+1 becomes 2 round trips;
- ``"one"``: only for the object read;
- ``"raise"`` (the only mode of async contexts, which never do hidden I/O), and outside
  any context: ``LazyLoadBlocked`` naming the path and the fix.

Each object of a result holds a weak reference to its :class:`Peers` (under
``PEERS`` in its ``__dict__``); the context's identity map holds the groups for the
context's life, as it holds the objects. A stub made in a context is put in the
context's identity map (so a later load of its key fills that same object, see
``ModelMap._fill``) and remembers the object whose Ref made it (``VIA``): the path a
lazy load follows.
"""

from __future__ import annotations

import weakref
from typing import Any

from ..errors import LazyLoadBlocked
from ..model import relations as _rel
from ..model.relations import NOT_LOADED, PEERS, VIA, Stub

#: the lazy modes of a context
MODES = ("peers", "one", "raise")


def _gone() -> None:
    """What a link read back from a pickle or a copy points at: nothing."""
    return None


def _revive() -> Any:
    return _gone


class _Link(weakref.ref):  # type: ignore[type-arg]
    """A weak reference kept in an item's ``__dict__`` that pickles and copies as a dead
    link (a weak reference itself cannot be pickled: items stay picklable)."""

    __slots__ = ()

    def __reduce__(self) -> Any:
        return (_revive, ())


class Peers:
    """The objects of one result, for lazy loading in mode ``"peers"``."""

    __slots__ = ("items", "__weakref__")

    def __init__(self, items: list[Any]) -> None:
        self.items = items


def remember(identity: Any, items: list[Any]) -> None:
    """Make ``items`` (a result) one peer group, held by ``identity`` (the context's map)."""
    if len(items) < 2:
        return
    group = Peers(items)
    identity.groups.append(group)
    link = _Link(group)
    for item in items:
        if item is not None:
            item.__dict__[PEERS] = link


def _peers(obj: Any) -> list[Any]:
    link = obj.__dict__.get(PEERS)
    group = link() if link is not None else None
    return [obj] if group is None else group.items


def _unloaded(obj: Any, name: str) -> bool:
    v = obj.__dict__.get(name)
    return not isinstance(obj, Stub) and (v is None or isinstance(v, Stub))


def _context() -> Any:
    from ..context.current import CURRENT
    return CURRENT.get()


class _Hooks:
    """The hooks ``storeroom.model.relations`` calls (installed below)."""

    def stub(self, owner: Any, name: str, stub: Any) -> Any:
        """A stub just made for ``owner.<name>``: in a context, the mapped object of its
        key (the stub itself, mapped now, when none is)."""
        ctx = _context()
        if ctx is not None:
            mapped = ctx.identity_map.of(type(stub).__mro__[1]).put_stub(stub)
            if mapped is not stub:
                return mapped
        # the path a lazy load follows, and an error message names
        stub.__dict__[VIA] = (_Link(owner), name)
        return stub

    def load_stub(self, stub: Any, attr: str) -> bool:
        """Load the stub ``stub`` (it becomes the loaded object) per the context's mode;
        False when lazy loading is refused here."""
        ctx = _context()
        mode = getattr(ctx, "lazy", "raise")
        if mode == "raise":
            return False
        via = stub.__dict__.get(VIA)
        owner = via[0]() if via is not None else None
        if mode == "peers" and owner is not None and not isinstance(owner, Stub):
            name = via[1]
            peers = [p for p in _peers(owner) if p is owner or _unloaded(p, name)]
            ctx.store(type(owner)).load(peers, name)
        if isinstance(stub, Stub):  # mode "one", or the stub was not the mapped object
            target = type(stub).__mro__[1]
            names = type(stub).__storeroom_stub_key__  # type: ignore[attr-defined]
            parts = tuple(stub.__dict__[n] for n in names)
            fresh = ctx.store(target).read(parts[0] if len(parts) == 1 else parts)
            if isinstance(stub, Stub):
                if fresh is None:
                    raise LazyLoadBlocked(
                        f"{target.__name__}.{attr}: no {target.__name__} has the key "
                        f"{parts[0] if len(parts) == 1 else parts!r} (a dangling reference)")
                stub.__dict__.pop(VIA, None)
                stub.__class__ = target
                stub.__dict__.update(fresh.__dict__)
        return True

    def load_many(self, obj: Any, name: str) -> bool:
        """Load ``obj.<name>`` (a Many) per the context's mode; False when refused."""
        ctx = _context()
        mode = getattr(ctx, "lazy", "raise")
        if mode == "raise" or isinstance(obj, Stub):
            return False
        if mode == "peers":
            peers = [p for p in _peers(obj)
                     if p is obj or p.__dict__.get(name, NOT_LOADED) is NOT_LOADED]
        else:
            peers = [obj]
        ctx.store(type(obj)).load(peers, name)
        return True


_rel.LAZY = _Hooks()

__all__ = ["MODES", "Peers", "remember"]

"""Eager loading of relations, sans-I/O: which keys to fetch for which path, and how to
attach what was fetched. The store front (``store/_async/store.py``) does the I/O once.

A load is planned as a tree of :class:`Step`: one per relation and depth, merged over
every path given (``("products", "products__tags")`` is one ``products`` step with one
``tags`` step below it). Each step costs one batched read per chunk of distinct keys:

- ``ref``: a ``Ref`` on the source model, fetched with ``read_batch`` of the distinct
  referenced keys (a JOIN on SQL when asked with ``select_related``);
- ``reverse``: a ``Many`` whose items hold a ``Ref`` back, fetched with one search
  ``<ref>_id__in=[...]`` over the distinct source keys;
- ``through``: a many-to-many ``Many``: one search of the through model, then one
  ``read_batch`` of the distinct target keys.

What is attached: a Ref gets its loaded object (or :class:`~storeroom.model.relations.Dangling` when its key names
no item: an ``on_delete="ignore"`` reference, which then reads as None); a Many gets the
list of its items, in key order (``through``: the through items' key order).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidFilter
from ..model.relations import Dangling, ManyInfo, RefInfo
from ..model.stored import meta_of

#: the largest ``__in`` list of one search of a reverse or through step, per backend
#: (``StoreMeta.backend``): SQLite binds one parameter per value (500 stays below the
#: 999 of old builds), PostgreSQL one array; DynamoDB's IN takes 100 values, and Redis
#: reads a sorted set whole past 256
IN_CHUNKS = {"sqlite": 500, "postgresql": 1000, "mysql": 1000, "mongodb": 1000,
             "memory": 1000}
IN_CHUNK = 100  # elsewhere


def in_chunk(backend: str) -> int:
    """The largest ``__in`` list of one relation search on ``backend``."""
    return IN_CHUNKS.get(backend, IN_CHUNK)


@dataclass(frozen=True, slots=True)
class Step:
    """Load relation ``name`` of ``model``: of kind ``ref`` (``ref`` is the Ref on
    ``model``), ``reverse`` (``ref`` is the Ref on ``target`` pointing back) or
    ``through`` (``ref`` is the through model's Ref to ``model``, ``link`` its Ref to
    ``target``); ``children`` load relations of the loaded items."""

    name: str
    kind: str
    model: type
    target: type
    ref: RefInfo
    link: RefInfo | None
    many: ManyInfo | None
    children: tuple[Step, ...]

    @property
    def through(self) -> type | None:
        """The through model of a ``through`` step."""
        return None if self.link is None else self.ref.model


_PLANS: dict[tuple[type, tuple[str, ...], bool], tuple[Step, ...]] = {}


def paths_of(value: Any, option: str) -> tuple[str, ...]:
    """The paths of a ``select_related=`` / ``prefetch_related=`` value (a str or a
    sequence of str) as a tuple; ``InvalidFilter`` for anything else."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(p, str) for p in value):
        return tuple(value)
    raise InvalidFilter(f"{option} takes relation paths (str, or a tuple of str such as "
                        f"('category', 'products__tags')), got {value!r}")


def plan(model: type, paths: Iterable[str], *, select: bool = False) -> tuple[Step, ...]:
    """The steps loading ``paths`` (``a__b`` at any depth) from items of ``model``.

    ``select``: the paths of ``select_related``, which follow ``Ref`` relations only
    (each a JOIN on SQL). An unknown name → ``InvalidFilter`` naming the path.
    """
    paths = tuple(paths)
    memo = (model, paths, select)
    found = _PLANS.get(memo)
    if found is not None:
        return found
    tree: dict[str, Any] = {}
    for path in paths:
        if not path or not isinstance(path, str):
            raise InvalidFilter(f"a relation path is a non-empty str, got {path!r}")
        node = tree
        for part in path.split("__"):
            node = node.setdefault(part, {})
    steps = _steps(model, tree, "", select, paths)
    if len(_PLANS) < 1024:
        _PLANS[memo] = steps
    return steps


def _steps(model: type, tree: dict[str, Any], prefix: str, select: bool,
           paths: tuple[str, ...]) -> tuple[Step, ...]:
    m = meta_of(model)
    out = []
    for name, sub in tree.items():
        path = f"{prefix}{name}"
        ref = m.refs.get(name)
        many = m.manys.get(name)
        if ref is not None:
            kids = _steps(ref.target, sub, path + "__", select, paths)
            out.append(Step(name, "ref", model, ref.target, ref, None, None, kids))
            continue
        if many is None or select:
            what = ("a Ref (select_related follows Ref relations; use prefetch_related "
                    "for a Many)" if many is not None else "a relation")
            known = sorted([*m.refs, *([] if select else m.manys)])
            raise InvalidFilter(f"{m.name}: {path!r} is not {what} of "
                                f"{model.__name__} (relations: {', '.join(known) or 'none'})")
        kids = _steps(many.target, sub, path + "__", select, paths)
        via, link = many.route()
        out.append(Step(name, "reverse" if link is None else "through", model, many.target,
                        via, link, many, kids))
    return tuple(out)


def depth_paths(steps: tuple[Step, ...], prefix: str = "") -> list[tuple[str, Step]]:
    """Every step of a plan with its path (``a__b``), parents first."""
    out: list[tuple[str, Step]] = []
    for s in steps:
        out.append((prefix + s.name, s))
        out.extend(depth_paths(s.children, prefix + s.name + "__"))
    return out


def order_paths(model: type, order: Iterable[tuple[str, Any]]) -> tuple[str, ...]:
    """The Ref paths (``a__b``) an order's names across relations (``a__b__attr``) go
    through, sorted: what an order across relations loads onto the items it sorts."""
    attrs = meta_of(model).attrs
    return tuple(sorted({n.rsplit("__", 1)[0] for n, _ in order if n not in attrs}))


def order_plan(model: type, order: Iterable[tuple[str, Any]]) -> tuple[Step, ...]:
    """The steps of ``select_related`` of the order's Ref paths (``order_paths``): how
    an order across relations loads the related items it sorts by (a JOIN on SQL, a
    batched read per Ref and depth elsewhere)."""
    return plan(model, order_paths(model, order), select=True)


def order_prefixes(model: type, order: Iterable[tuple[str, Any]]) -> frozenset[str]:
    """Every Ref path an order across relations loads (``{"a", "a__b"}`` for
    ``a__b__attr``): the ``select_related`` paths the ordered read attached already."""
    return frozenset(path for path, _ in depth_paths(order_plan(model, order)))


# ---- keys to fetch ------------------------------------------------------------------

def key_of(obj: Any, names: tuple[str, ...]) -> tuple[Any, ...]:
    """The key parts of ``obj`` (attributes ``names``, read without descriptors)."""
    d = obj.__dict__
    return tuple(d[n] for n in names)


def ref_keys(step: Step, items: list[Any]) -> list[tuple[Any, ...]]:
    """The distinct keys the Ref of a ``ref`` step holds in ``items`` (None skipped)."""
    cols = step.ref.columns
    if len(cols) == 1:  # the common case: one column, no per-item tuple (one dict pass)
        col = cols[0]
        values = dict.fromkeys([i.__dict__.get(col) for i in items])
        values.pop(None, None)
        return [(v,) for v in values]
    seen: dict[tuple[Any, ...], None] = {}
    for item in items:
        d = item.__dict__
        parts = tuple(d.get(c) for c in cols)
        if None not in parts:
            seen[parts] = None
    return list(seen)


def source_keys(step: Step, items: list[Any]) -> list[tuple[Any, ...]]:
    """The distinct keys of ``items`` that a ``reverse`` / ``through`` step's Ref holds."""
    names = step.ref.target_key
    if len(names) == 1:  # the common case: one key column, one tuple per distinct key
        n = names[0]
        return [(v,) for v in dict.fromkeys([i.__dict__[n] for i in items])]
    return list(dict.fromkeys(key_of(i, names) for i in items))


def chunks(keys: list[tuple[Any, ...]], size: int) -> list[list[tuple[Any, ...]]]:
    """``keys`` in lists of at most ``size``."""
    return [keys[i:i + size] for i in range(0, len(keys), size)]


# ---- attaching ----------------------------------------------------------------------

def attach_ref(step: Step, items: list[Any], found: dict[tuple[Any, ...], Any]) -> list[Any]:
    """Give each of ``items`` its loaded Ref object from ``found`` (key parts → object);
    a key ``found`` lacks is dangling. The distinct loaded objects, for the next depth."""
    ref = step.ref
    cols = ref.columns
    name = ref.name
    if len(cols) == 1:  # the common case: one column, looked up by value, not tuple
        col = cols[0]
        by_value = {k[0]: o for k, o in found.items()}
        for item in items:
            d = item.__dict__
            v = d.get(col)
            if v is None:
                d[name] = None
                continue
            got = by_value.get(v)
            d[name] = Dangling((v,)) if got is None else got
        return _distinct(found.values())
    for item in items:
        d = item.__dict__
        parts = tuple(d.get(c) for c in cols)
        if None in parts:
            d[name] = None
            continue
        got = found.get(parts)
        d[name] = Dangling(parts) if got is None else got
    return _distinct(found.values())


def attach_reverse(step: Step, parents: list[Any], children: list[Any]) -> list[Any]:
    """Give each parent the list of ``children`` whose Ref points at it (in the order of
    ``children``), and each child its parent as the Ref's object."""
    ref = step.ref
    names = ref.target_key
    cols = ref.columns
    many = step.name
    back = ref.name
    if len(cols) == 1:  # the common case: a single-column key, without tuples
        col, kn = cols[0], names[0]
        groups: dict[Any, tuple[list[Any], Any]] = {p.__dict__[kn]: ([], p) for p in parents}
        for c in children:
            d = c.__dict__
            g = groups.get(d.get(col))
            if g is not None:
                g[0].append(c)
                d[back] = g[1]
        for p in parents:
            p.__dict__[many] = groups[p.__dict__[kn]][0]
        return children  # a search's items: distinct already
    by_key: dict[tuple[Any, ...], list[Any]] = {key_of(p, names): [] for p in parents}
    owners: dict[tuple[Any, ...], Any] = {key_of(p, names): p for p in parents}
    for c in children:
        d = c.__dict__
        k = tuple(d.get(col) for col in cols)
        group = by_key.get(k)
        if group is not None:
            group.append(c)
            d[back] = owners[k]
    for p in parents:
        p.__dict__[many] = by_key[key_of(p, names)]
    return children


def link_targets(step: Step, links: list[Any]) -> list[tuple[Any, ...]]:
    """The distinct target keys the through items ``links`` reference."""
    cols = step.link.columns  # type: ignore[union-attr]
    seen: dict[tuple[Any, ...], None] = {}
    for link in links:
        d = link.__dict__
        parts = tuple(d.get(c) for c in cols)
        if None not in parts:
            seen[parts] = None
    return list(seen)


def attach_through(step: Step, parents: list[Any], links: list[Any],
                   found: dict[tuple[Any, ...], Any]) -> list[Any]:
    """Give each parent the list of targets its through items ``links`` reference (in the
    links' order; a dangling one is left out), and each link its two Ref objects."""
    src = step.ref
    link = step.link
    assert link is not None
    names = src.target_key
    by_key: dict[tuple[Any, ...], list[Any]] = {key_of(p, names): [] for p in parents}
    owners: dict[tuple[Any, ...], Any] = {key_of(p, names): p for p in parents}
    for x in links:
        d = x.__dict__
        k = tuple(d.get(c) for c in src.columns)
        group = by_key.get(k)
        if group is None:
            continue
        d[src.name] = owners[k]
        parts = tuple(d.get(c) for c in link.columns)
        target = found.get(parts)
        d[link.name] = Dangling(parts) if target is None else target
        if target is not None:
            group.append(target)
    for p in parents:
        p.__dict__[step.name] = by_key[key_of(p, names)]
    return _distinct(found.values())


def _distinct(objs: Iterable[Any]) -> list[Any]:
    seen: dict[int, Any] = {}
    for o in objs:
        if o is not None:
            seen.setdefault(id(o), o)
    return list(seen.values())


def loaded_under(step: Step, items: list[Any]) -> list[Any]:
    """The distinct objects ``step`` attached to ``items`` (loaded earlier, e.g. by a
    JOIN): the items of the next depth."""
    name = step.name
    # distinct by identity in one pass (the same object under the same id: assigning
    # again keeps the first position)
    seen: dict[int, Any] = {}
    for item in items:
        v = item.__dict__.get(name)
        if v is None or type(v) is Dangling:
            continue
        if isinstance(v, list):
            for o in v:
                seen[id(o)] = o
        else:
            seen[id(v)] = v
    return list(seen.values())


__all__ = ["IN_CHUNK", "IN_CHUNKS", "in_chunk", "Step", "attach_reverse", "attach_ref", "attach_through", "chunks",
           "depth_paths", "key_of", "link_targets", "loaded_under", "paths_of", "plan",
           "order_paths", "order_plan", "order_prefixes", "ref_keys", "source_keys"]

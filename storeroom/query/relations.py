"""Lookups across relations (sans-I/O, shared by every backend): ``category__name="PCB"``
(forward, through a ``Ref``), ``products__title__icontains="driver"`` (reverse, through a
``Many``), ``tags__label__in=[...]`` (many-to-many ``through=``), any depth.

A prepared relation lookup is a :class:`Rel` leaf of the filter tree: ``Rel(kind, name,
info, node)`` where ``node`` is a prepared filter on the related model.

* ``kind == "ref"``: the item's ``name`` Ref; the filter is ``node`` on the referenced
  item, or on a row of ``None`` s when there is none (a ``None`` or dangling reference,
  as a LEFT JOIN would see it): ``category__name="x"`` is false there,
  ``category__name__isnull=True`` and ``category__name__ne="x"`` true.
* ``kind == "many"``: *exists* an item of the ``name`` Many matching ``node``. Every
  to-many leaf is its own "exists" (``products__title="a", products__price__gt=1`` may
  be met by two products); ``products__isnull=True`` is ``~Rel(many, EVERYTHING)``.

Local evaluation (``evaluate.compile_local``) runs a ``Rel`` over the loaded graph
(``p.category``, ``c.products``); that is the reference meaning. A backend that does not
compile ``Rel`` natively gets the filter with every ``Rel`` replaced by a condition on
its own attributes (:func:`plan_rel`: a search of the related model whose keys or
reference columns are collected, then ``<ref>_id__in`` / ``key__in``); the store front
does the searches. SQL compiles them (EXISTS / correlated subqueries).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InvalidFilter
from .ast import EVERYTHING, NOTHING, OPERATORS, And, Cond, Node, Not, Or

if TYPE_CHECKING:
    from ..model.relations import ManyInfo, RefInfo
    from ..model.stored import ModelMeta

REF, MANY = "ref", "many"


@dataclass(frozen=True, slots=True, repr=False)
class Rel(Node):
    """A lookup across the relation ``name`` of the filtered model: ``node`` (a prepared
    filter on the related model) on the referenced item (``kind == "ref"``, a row of
    Nones when there is none), or on *some* related item (``kind == "many"``)."""

    kind: str
    name: str
    info: Any  # RefInfo (ref) or ManyInfo (many)
    node: Node

    def __repr__(self) -> str:  # stable across processes: cursors fingerprint it
        return f"Rel({self.kind}, {self.info.model.__qualname__}.{self.name}, {self.node!r})"

    @property
    def target(self) -> type:
        """The related model ``node`` filters."""
        return self.info.target  # type: ignore[no-any-return]


class _NullRow:
    """What a lookup through a None reference sees: every attribute is None."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        return None


NULL_ROW: Any = _NullRow()


def is_relation(meta: ModelMeta, name: str) -> bool:
    """True when the lookup name ``name`` starts at a Ref or a Many of ``meta``."""
    head = name.split("__", 1)[0]
    return head in meta.refs or head in meta.manys


def _key_parts(info: RefInfo | ManyInfo, key_names: tuple[str, ...], value: Any,
               where: str) -> tuple[Any, ...]:
    target = info.target
    if isinstance(value, target):
        return tuple(getattr(value, a) for a in key_names)
    if len(key_names) == 1:
        return (value,)
    if isinstance(value, tuple | list) and len(value) == len(key_names):
        return tuple(value)
    raise InvalidFilter(f"{where}: expected a {target.__name__} or its key (a tuple of "
                        f"{len(key_names)} parts), got {value!r}")


def _on_columns(cols: tuple[str, ...], key_names: tuple[str, ...], info: Any, op: str,
                value: Any, where: str) -> Node:
    """``op value`` on a reference given as objects or keys, as conditions on ``cols``
    (the columns holding the key ``key_names`` of ``info.target``)."""
    if op == "isnull" or (op in ("eq", "ne") and value is None):
        isnull = bool(value) if op == "isnull" else op == "eq"
        if op == "isnull" and not isinstance(value, bool):
            raise InvalidFilter(f"{where}__isnull needs True or False, got {value!r}")
        parts: list[Node] = [Cond(c, "isnull", True) for c in cols]
        anynull = parts[0] if len(parts) == 1 else Or(tuple(parts))
        return anynull if isnull else Not(anynull)
    if op in ("in", "not_in"):
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise InvalidFilter(f"{where}__{op} needs a list of values, got {value!r}")
        values = list(value)
        if len(cols) == 1:
            listed = [v if v is None else _key_parts(info, key_names, v, where)[0]
                      for v in values]
            return Cond(cols[0], op, listed)
        alts: list[Node] = [_on_columns(cols, key_names, info, "eq", v, where) for v in values]
        either: Node = Or(tuple(alts))
        return either if op == "in" else Not(either)
    if op in ("eq", "ne"):
        kp = _key_parts(info, key_names, value, where)
        eqs = tuple(Cond(c, "eq", p) for c, p in zip(cols, kp, strict=True))
        same: Node = eqs[0] if len(eqs) == 1 else And(eqs)
        return same if op == "eq" else Not(same)
    if len(cols) == 1 and op in OPERATORS:
        return Cond(cols[0], op, _key_parts(info, key_names, value, where)[0])
    raise InvalidFilter(f"{where}__{op}: a reference is filtered with eq, ne, in, not_in "
                        "or isnull (or one of its attributes: "
                        f"{where}__<attribute>)")


def prepare_rel(meta: ModelMeta, c: Cond, prepare: Callable[[ModelMeta, Node], Node]
                ) -> Node:
    """A condition whose name starts at a Ref or Many of ``meta``, prepared: a ``Rel``
    (or, on the Ref itself, conditions on its columns). ``prepare`` prepares a filter
    on another model (the caller's ``prepare``: this module does not import it)."""
    from ..model.stored import meta_of

    parts = c.attr.split("__")
    head, rest, op = parts[0], parts[1:], c.op
    if op not in OPERATORS:
        rest.append(op)  # category__name: the last part is an attribute, the operator eq
        op = "eq"
    ref = meta.refs.get(head)
    if ref is not None:
        if not rest:  # category=obj / key, category__in=[...], category__isnull=True
            return prepare(meta, _on_columns(ref.columns, ref.target_key, ref, op, c.value,
                                             head))
        inner = prepare(meta_of(ref.target), Cond("__".join(rest), op, c.value))
        if inner == EVERYTHING or inner == NOTHING:
            # decided on every loaded item (isnull on a required attribute, in []...),
            # but a row of Nones may decide it the other way
            if (inner == EVERYTHING) is _on_nulls(op, c.value):
                return inner
            loaded = Rel(REF, head, ref, Cond(ref.target_key[0], "isnull", False))
            return loaded if inner == EVERYTHING else Not(loaded)
        return Rel(REF, head, ref, inner)
    many = meta.manys[head]
    tmeta = meta_of(many.target)
    if not rest:
        if op == "isnull":
            if not isinstance(c.value, bool):
                raise InvalidFilter(f"{head}__isnull needs True or False, got {c.value!r}")
            exists = Rel(MANY, head, many, EVERYTHING)
            return Not(exists) if c.value else exists
        if op in ("eq", "in"):  # tags=tag / tags__in=[...]: has one of these items
            cond = _on_columns(tmeta.key.attrs, tmeta.key.attrs, many, op, c.value, head)
            inner = prepare(tmeta, cond)
            return NOTHING if inner == NOTHING else Rel(MANY, head, many, inner)
        raise InvalidFilter(f"{head}__{op}: a Many is filtered with isnull, eq / in (an item "
                            f"or key), or by an attribute of its items: {head}__<attribute>")
    inner = prepare(tmeta, Cond("__".join(rest), op, c.value))
    if inner == NOTHING:
        return NOTHING
    return Rel(MANY, head, many, inner)


def _on_nulls(op: str, value: Any) -> bool:
    """What one condition gives on a None value."""
    if op == "isnull":
        return bool(value)
    if op in ("eq", "ne") and value is None:
        return op == "eq"
    return op in ("ne", "not_in")


def has_rel(node: Node) -> bool:
    """True when a filter holds a ``Rel`` anywhere (no recursion)."""
    t = type(node)
    if t is Cond:
        return False
    if t is Rel:
        return True
    stack = [node]
    while stack:
        n = stack.pop()
        t = type(n)
        if t is Rel:
            return True
        if t is And or t is Or:
            stack.extend(n.items)  # type: ignore[attr-defined]
        elif t is Not:
            stack.append(n.item)  # type: ignore[attr-defined]
    return False


def rels(node: Node) -> list[Rel]:
    """Every ``Rel`` of a filter (the outermost ones; their own nodes are not entered)."""
    out: list[Rel] = []
    stack = [node]
    while stack:
        n = stack.pop()
        t = type(n)
        if t is Rel:
            out.append(n)  # type: ignore[arg-type]
        elif t is And or t is Or:
            stack.extend(n.items)  # type: ignore[attr-defined]
        elif t is Not:
            stack.append(n.item)  # type: ignore[attr-defined]
    return out


def replace_rels(node: Node, done: dict[Rel, Node]) -> Node:
    """``node`` with each ``Rel`` replaced by ``done[rel]`` (then simplified)."""
    from .ast import fold
    from .prepare import _simplified

    def leaf(n: Any) -> Node:
        return done.get(n, n) if type(n) is Rel else n  # type: ignore[no-any-return]
    return fold(node, leaf, _simplified)


# ---- key lookups: how a backend without native relation lookups runs a Rel ---------------

@dataclass(frozen=True, slots=True)
class Step:
    """One search of the planner: the items of ``model`` matching ``where``; the values
    of ``collect`` (attribute names) of each are gathered as tuples."""

    model: type
    where: Node
    collect: tuple[str, ...]


def null_value(rel: Rel) -> bool:
    """What a ``ref`` Rel's filter gives on a row of Nones (a None reference)."""
    from .evaluate import compile_local
    return bool(compile_local(rel.node)(NULL_ROW))


def plan_rel(rel: Rel) -> list[Step]:
    """The searches that turn ``rel`` into a condition on the filtered model's own
    attributes (see :func:`finish_rel`), each fed the previous one's values.

    ``ref``: one search of the target; when the filter holds on a row of Nones, the
    search is for the items it does *not* hold on, so that a None or dangling reference
    matches (``<ref>_id not_in``). ``many`` (reverse): one search of the related model
    collecting its reference columns. ``many`` (through): the target's keys, then the
    through model's rows that reference them.
    """
    from ..model.stored import meta_of
    from .prepare import negate

    if rel.kind == REF:
        info: RefInfo = rel.info
        tkey = meta_of(info.target).key.attrs
        where = negate(rel.node) if null_value(rel) else rel.node
        return [Step(info.target, where, tkey)]
    many: ManyInfo = rel.info
    src, dst = many.route()
    if dst is None:  # reverse: src is the Ref on the target pointing back
        return [Step(many.target, rel.node, src.columns)]
    if rel.node == EVERYTHING:
        return [Step(many.through, Not(_any_null(dst.columns)), src.columns)]
    tkey = meta_of(many.target).key.attrs
    return [Step(many.target, rel.node, tkey), Step(many.through, EVERYTHING, src.columns)]


def _any_null(cols: tuple[str, ...]) -> Node:
    parts = tuple(Cond(c, "isnull", True) for c in cols)
    return parts[0] if len(parts) == 1 else Or(parts)


def _in(cols: tuple[str, ...], values: list[tuple[Any, ...]]) -> Node:
    """``cols`` hold one of ``values`` (tuples of parts; a tuple with a None never does)."""
    values = [v for v in values if not any(p is None for p in v)]
    if not values:
        return NOTHING
    if len(cols) == 1:
        return Cond(cols[0], "in", [v[0] for v in values])
    return Or(tuple(And(tuple(Cond(c, "eq", p) for c, p in zip(cols, v, strict=True)))
                    for v in values))


def step_filter(rel: Rel, i: int, previous: list[tuple[Any, ...]]) -> Node:
    """The filter of step ``i`` (> 0) of ``plan_rel(rel)``, given the values step
    ``i - 1`` collected (unprepared: the store prepares it on the step's model)."""
    many: ManyInfo = rel.info
    assert many.through_target is not None
    return _in(many.through_target.columns, previous)


def finish_rel(meta: ModelMeta, rel: Rel, values: list[tuple[Any, ...]]) -> Node:
    """The condition on ``meta``'s model equal to ``rel``, given the values the last step
    of ``plan_rel(rel)`` collected (unprepared: the store prepares it)."""
    if rel.kind == REF:
        info: RefInfo = rel.info
        found = _in(info.columns, values)
        return Not(found) if null_value(rel) else found
    return _in(meta.key.attrs, values)


__all__ = ["Rel", "NULL_ROW", "REF", "MANY", "Step", "is_relation", "prepare_rel", "has_rel",
           "rels", "replace_rels", "plan_rel", "step_filter", "finish_rel", "null_value"]

"""Sans-I/O batch planning shared by every backend: upsert values and the simulation
of a batch (outcome codes, order, duplicate keys within one batch, the net effect).

An upsert is a full write: on an existing item every stored attribute is written except
the key and the attributes that cannot be updated (``generated.created_at`` and
``updatable=False`` ones keep their stored value); on a missing key it is a create.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError
from ..model.stored import ModelMeta
from ..store.fexpr import has_expr, resolve
from ..store.types import INVALID, PreparedEdit
from .common import Outcome, duplicate, ok, refusal, unique_id, unique_text, unique_value


def kept_names(meta: ModelMeta) -> frozenset[str]:
    """Attributes an upsert of an existing item leaves as stored (not updatable)."""
    return meta.upsert_kept


def written_names(meta: ModelMeta, names: Any) -> list[str]:
    """Of ``names`` (the attributes of an upsert's values), those written on an existing
    item: not the key, not the kept ones."""
    kept = kept_names(meta)
    keys = set(meta.key.attrs)
    return [n for n in names if n not in keys and n not in kept]


def upserted(meta: ModelMeta, current: dict[str, Any] | None, values: dict[str, Any]
             ) -> dict[str, Any]:
    """The stored values after upserting ``values`` over ``current`` (None: no item)."""
    if current is None:
        return dict(values)
    kept = kept_names(meta)
    return {**values, **{n: current.get(n) for n in kept if n in current or n in values}}


def upsert_key(meta: ModelMeta, values: dict[str, Any]) -> tuple[Any, ...] | None:
    """The key of an upsert's values; None when part of it is left to the backend
    (a sequence): then the upsert is a create."""
    try:
        return tuple(values[n] for n in meta.key.attrs)
    except KeyError:
        return None


NOT_APPLIED: Outcome = (False, None, None, "not applied: batch failed")
"""The outcome of an edit of an atomic batch that failed elsewhere (one value for all)."""


def stopped(out: list[Outcome], n: int) -> list[Outcome]:
    """``out`` (the outcomes of an atomic batch of ``n`` edits, up to the one that failed)
    completed with ``NOT_APPLIED`` for the edits after it."""
    out.extend([NOT_APPLIED] * (n - len(out)))
    return out


def failed_at(n: int, pos: int, outcome: Outcome) -> list[Outcome]:
    """The outcomes of an atomic batch of ``n`` edits refused as a whole because of the
    edit at ``pos``: its ``outcome`` there, ``NOT_APPLIED`` everywhere else."""
    out = [NOT_APPLIED] * n
    out[pos] = outcome
    return out


@dataclass(slots=True)
class Simulation:
    """Edits applied, in order, to the states read before a batch (sans I/O).

    ``outcomes`` has one per edit: when an edit fails (``failed`` is its position) the
    edits before it report what they did, it reports why, and every later one is
    ``NOT_APPLIED``. ``first`` / ``final`` are the states per key (None: no item) before
    and after the batch, in order of first touch; ``last`` is the position of the last
    edit of each key and ``setters`` of the edit that gave a unique attribute its value
    (``(attr, key) -> position``). A backend writes the net effect, guarded by ``first``.
    """

    outcomes: list[Outcome]
    failed: int | None
    first: dict[Hashable, dict[str, Any] | None] = field(default_factory=dict)
    final: dict[Hashable, dict[str, Any] | None] = field(default_factory=dict)
    last: dict[Hashable, int] = field(default_factory=dict)
    setters: dict[tuple[str, Hashable], int] = field(default_factory=dict)


def simulate(meta: ModelMeta, edits: Sequence[PreparedEdit],
             read: Callable[[Hashable], dict[str, Any] | None],
             key_of: Callable[[tuple[Any, ...]], Hashable],
             key_text: Callable[[tuple[Any, ...]], str], *,
             names: Sequence[str] | None = None,
             unique: Sequence[str | tuple[str, ...]] = (),
             same: Callable[[Any, Any], bool] | None = None) -> Simulation:
    """Simulate ``edits`` exactly as local evaluation says, on the states ``read(k)``
    gives for each key ``k = key_of(parts)``.

    Outcome codes: a create of an existing key is ``duplicate_key``; an update or delete
    of a missing key ``missing_key``, of an item whose precondition does not hold
    ``precondition_failed``; an update whose ``F`` expression (evaluated on the item as
    the earlier edits left it) is out of its bounds ``invalid``; an upsert never fails
    here. Several edits of one key see
    each other's effects. With ``unique`` (attribute names or tuples of them, and
    ``same``, how two values compare), an edit that gives an attribute (a tuple) the
    value another touched item ends with is ``duplicate_key`` too (``setters`` is keyed
    by ``(unique_id(names), key)``) (values of untouched items are the backend's to guard).
    ``names``: the attributes a created state holds (default: the edit's values).
    """
    sim = Simulation([], None)
    cur, first, last, setters = sim.final, sim.first, sim.last, sim.setters
    build = meta.build
    for pos, e in enumerate(edits):
        parts = _parts(meta, e)
        k = key_of(parts)
        if k not in cur:
            cur[k] = first[k] = read(k)
        now = cur[k]
        last[k] = pos
        values = e.values if names is None else {n: e.values.get(n) for n in names}
        out: Outcome
        new: dict[str, Any] | None
        if e.kind == "create":
            if now is not None:
                out, new = duplicate(
                    f"{meta.name}: an item with key {key_text(parts)!r} exists already"), now
            else:
                out, new = ok(None), dict(values)
        elif e.kind == "upsert":
            out, new = ok(None), upserted(meta, now, values)
        else:
            why = refusal(meta, parts, None if now is None else build(dict(now)),
                          e.precondition)
            if why is not None:
                out, new = why, now
            elif e.kind == "update":
                assert now is not None
                try:  # F expressions over the item as the earlier edits left it
                    changes = resolve(meta, e.values, now) if has_expr(e.values) \
                        else e.values
                except ValidationError as exc:
                    out, new = (False, None, INVALID, str(exc)), now
                else:
                    out, new = ok(None), {**now, **changes}
            else:
                out, new = ok(None), None
        if out[0] and new is not None and unique:
            eq = same or (lambda a, b: a == b)
            for name in unique:
                ns = (name,) if isinstance(name, str) else tuple(name)
                vs = unique_value(ns, new)
                if vs is None:
                    continue
                if any(k2 != k and s is not None and all(
                        eq(s.get(n), v) for n, v in zip(ns, vs, strict=True))
                       for k2, s in cur.items()):
                    out = duplicate(f"{meta.name}: {unique_text(ns, vs)} exists already")
                    break
                setters[(unique_id(ns), k)] = pos
        if not out[0]:
            sim.outcomes.append(out)
            stopped(sim.outcomes, len(edits))
            sim.failed = pos
            return sim
        cur[k] = new
        sim.outcomes.append(ok(None if new is None else build(dict(new))))
    return sim


def _parts(meta: ModelMeta, e: PreparedEdit) -> tuple[Any, ...]:
    if e.kind == "create" or e.key is None:
        return tuple(e.values.get(n) for n in meta.key.attrs)
    return tuple(e.key)

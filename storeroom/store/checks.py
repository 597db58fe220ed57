"""``@stored(checks=...)`` evaluated by storeroom (sans-I/O): the backends without a
native CHECK constraint (all but SQL) have the store front test every item it writes.

A write of a whole item tests the item. A partial write (an update, ``update_where``)
must hold on the item *after* the changes, without reading it first: ``residual``
evaluates the check's conditions on the attributes the changes set, leaving a filter
on the others that the *stored* item must match. That filter joins the write's
precondition, so the backend checks it atomically with the write, as it does any
precondition (natively or guarded by the values it read). When the guarded write is
refused, one read tells a failed check (``ValidationError``) from a missing item or a
failed precondition.
"""

from __future__ import annotations

from typing import Any

from ..errors import ValidationError
from ..model.stored import ModelMeta
from ..query.ast import EVERYTHING, NOTHING, And, Cond, Node, Not, Or, fold
from ..query.evaluate import compile_local
from ..query.prepare import simplify

__all__ = ["check_error", "failed_check", "residual", "residual_all", "with_checks"]


def failed_check(meta: ModelMeta, item: Any) -> str | None:
    """The name of the first check ``item`` (an instance or a dict of its values) does
    not match; None when it matches every one."""
    obj = meta.build(dict(item)) if isinstance(item, dict) else item
    for name, node in meta.checks.items():
        if not compile_local(node)(obj):
            return name
    return None


def check_error(meta: ModelMeta, name: str, value: Any = None) -> ValidationError:
    """The error of a write whose item fails the check ``name`` (rule = the name)."""
    return ValidationError.one(None, value, name, f"the item does not satisfy the check "
                               f"{name!r}", model=meta.name)


def check_item(meta: ModelMeta, values: dict[str, Any]) -> None:
    """``ValidationError`` when the item of ``values`` fails a check."""
    name = failed_check(meta, values)
    if name is not None:
        raise check_error(meta, name)


def residual(node: Node, meta: ModelMeta, known: dict[str, Any]) -> Node:
    """``node`` with every condition on an attribute of ``known`` evaluated on those
    values: what the other attributes must match so that an item holding ``known``
    matches ``node`` (EVERYTHING / NOTHING when ``known`` decides it)."""
    item = meta.build(dict(known))

    def leaf(c: Any) -> Node:
        if isinstance(c, Cond) and c.attr.split(".", 1)[0] in known:
            return EVERYTHING if compile_local(c)(item) else NOTHING
        return c  # type: ignore[no-any-return]

    def combine(n: Node, parts: list[Node]) -> Node:
        if type(n) is Not:
            return Not(parts[0])
        return And(tuple(parts)) if type(n) is And else Or(tuple(parts))

    return simplify(fold(node, leaf, combine))


def residual_all(meta: ModelMeta, known: dict[str, Any]) -> dict[str, Node]:
    """``residual`` of every check (name -> filter on the stored item)."""
    return {name: residual(node, meta, known) for name, node in meta.checks.items()}


def with_checks(pre: Node | None, residuals: dict[str, Node]) -> Node | None:
    """``pre`` and every residual (None when nothing is left to test)."""
    parts = [r for r in residuals.values() if r != EVERYTHING]
    if pre is not None:
        parts.append(pre)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else simplify(And(tuple(parts)))

"""``F`` update expressions (``stock=F("stock") - 1``): the value, its validation and its
evaluation against the values an item holds before the write (sans-I/O).

An expression is a tree of ``F`` references, numbers and ``+ - *``. ``check`` validates
it for an attribute when an update is prepared; backends then evaluate it against the
row they hold locked (memory, SQL) or read and write back guarded by the values it
read (``guard``), so that the write is atomic and every ``F`` sees the values before it.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import ValidationError
from ..model.stored import ModelMeta
from ..model.types import FLOAT, INT
from ..query.ast import And, Cond, Node

_OPS = ("+", "-", "*")


class F:
    """A reference to an attribute's value before the update: ``F("stock") - 1``.

    Combine with numbers (either side) and other ``F`` s by ``+``, ``-`` and ``*``;
    pass the result as a change to ``update``, ``update_where`` or ``Update``.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValidationError.one(None, name, "type",
                                      f"F takes an attribute name, got {name!r}")
        self.name = name

    def __repr__(self) -> str:
        return f"F({self.name!r})"

    def __add__(self, other: Any) -> Expr:
        return Expr("+", self, other)

    def __radd__(self, other: Any) -> Expr:
        return Expr("+", other, self)

    def __sub__(self, other: Any) -> Expr:
        return Expr("-", self, other)

    def __rsub__(self, other: Any) -> Expr:
        return Expr("-", other, self)

    def __mul__(self, other: Any) -> Expr:
        return Expr("*", self, other)

    def __rmul__(self, other: Any) -> Expr:
        return Expr("*", other, self)

    def __eq__(self, other: object) -> bool:
        return type(other) is F and other.name == self.name

    def __hash__(self) -> int:
        return hash(("F", self.name))


class Expr(F):
    """``left op right`` of ``F`` s and numbers (built by ``F``'s operators)."""

    __slots__ = ("op", "left", "right")

    def __init__(self, op: str, left: Any, right: Any) -> None:  # noqa: D107
        self.name = ""
        self.op, self.left, self.right = op, left, right

    def __repr__(self) -> str:
        return f"({self.left!r} {self.op} {self.right!r})"

    def __eq__(self, other: object) -> bool:
        return (type(other) is Expr and other.op == self.op and other.left == self.left
                and other.right == self.right)

    def __hash__(self) -> int:
        return hash((self.op, self.left, self.right))


def is_expr(value: Any) -> bool:
    """True when a change is an ``F`` expression."""
    return isinstance(value, F)


def has_expr(values: dict[str, Any]) -> bool:
    """True when any change of an update is an ``F`` expression."""
    # a plain loop: asked on every update, where a generator expression costs more than
    # the few values it looks at
    for v in values.values():
        if isinstance(v, F):
            return True
    return False


def _numeric(meta: ModelMeta, name: str, errors: list[dict[str, Any]], target: str) -> str:
    a = meta.attrs.get(name)
    if a is None or not a.store:
        errors.append({"field": target, "value": F(name), "rule": "unknown",
                       "message": f"F({name!r}): {meta.name} has no attribute {name!r} "
                                  "(rule: unknown)"})
        return ""
    if a.kind not in (INT, FLOAT):
        errors.append({"field": target, "value": F(name), "rule": "type",
                       "message": f"F({name!r}): {name} is not an int or float attribute "
                                  "(rule: type)"})
        return ""
    if a.optional:
        errors.append({"field": target, "value": F(name), "rule": "nullable",
                       "message": f"F({name!r}): {name} may be None; F needs a non-nullable "
                                  "attribute (rule: nullable)"})
        return ""
    return str(a.kind)


def check(meta: ModelMeta, target: str, expr: F, errors: list[dict[str, Any]]) -> F:
    """Validate ``expr`` as the new value of attribute ``target``; errors are appended.

    The target and every referenced attribute are non-nullable ``int`` / ``float``
    attributes; an ``int`` target takes only ints (a float operand or a float
    attribute in its expression is an error: the type of a value is kept).
    """
    kind = _numeric(meta, target, errors, target)
    if not kind:
        return expr
    floats: list[Any] = []
    bad: list[Any] = []

    def walk(e: Any, depth: int) -> None:
        if depth > 64:
            bad.append(e)
        elif type(e) is Expr:
            if e.op not in _OPS:
                bad.append(e)
            walk(e.left, depth + 1)
            walk(e.right, depth + 1)
        elif type(e) is F:
            if _numeric(meta, e.name, errors, target) == FLOAT:
                floats.append(e)
        elif type(e) is int:
            if not -(2**63) <= e < 2**63:
                bad.append(e)
        elif type(e) is float:
            if not math.isfinite(e):
                bad.append(e)
            floats.append(e)
        else:
            bad.append(e)

    walk(expr, 0)
    if bad:
        errors.append({"field": target, "value": expr, "rule": "type",
                       "message": f"{target}: {bad[0]!r} is not an int, a finite float or an "
                                  "F expression of + - * (rule: type)"})
    elif kind == INT and floats:
        errors.append({"field": target, "value": expr, "rule": "type",
                       "message": f"{target} is an int attribute; {floats[0]!r} in {expr!r} "
                                  "would make it a float (rule: type)"})
    return expr


def increment(target: str, expr: Any) -> int | None:
    """``c`` when ``expr`` is ``F(target) + c`` / ``F(target) - c`` / ``c + F(target)``
    with an int ``c`` (an increment: ``$inc``, ``ADD``), else None."""
    if type(expr) is not Expr or expr.op not in ("+", "-"):
        return None
    left, right = expr.left, expr.right
    if type(left) is F and left.name == target and type(right) is int:
        return right if expr.op == "+" else -right
    if expr.op == "+" and type(right) is F and right.name == target and type(left) is int:
        return left
    return None


def linear(expr: Any) -> tuple[str | None, int, int] | None:
    """``(name, k, c)`` when ``expr`` is ``k * F(name) + c`` with ``k`` 1 or -1 and an
    int ``c`` (``name`` None and ``k`` 0: a constant), folding ``+`` / ``-`` of ints and
    one ``F``; None for anything else (a ``*``, a float, two references). Backends whose
    writes take ``operand +/- operand`` only (DynamoDB ``SET``) write these natively."""
    if type(expr) is F:
        return expr.name, 1, 0
    if type(expr) is int:
        return None, 0, expr
    if type(expr) is not Expr or expr.op not in ("+", "-"):
        return None
    left, right = linear(expr.left), linear(expr.right)
    if left is None or right is None:
        return None
    sign = 1 if expr.op == "+" else -1
    (ln, lk, lc), (rn, rk, rc) = left, right
    if ln is not None and rn is not None:
        return None
    return (ln if ln is not None else rn), lk + sign * rk, lc + sign * rc


def refs(expr: Any, out: set[str] | None = None) -> set[str]:
    """The names of the attributes ``expr`` refers to."""
    out = set() if out is None else out
    stack = [expr]
    while stack:
        e = stack.pop()
        if type(e) is Expr:
            stack.append(e.left)
            stack.append(e.right)
        elif type(e) is F:
            out.add(e.name)
    return out


def evaluate(expr: Any, row: Any) -> Any:
    """The value of ``expr`` with ``row`` (a dict of the values before the update)."""
    if type(expr) is Expr:
        left, right = evaluate(expr.left, row), evaluate(expr.right, row)
        if expr.op == "+":
            return left + right
        if expr.op == "-":
            return left - right
        return left * right
    if type(expr) is F:
        return row[expr.name]
    return expr


def out_of_bounds(meta: ModelMeta, values: dict[str, Any]) -> ValidationError | None:
    """The error for results of ``F`` expressions outside their attribute's ``ge`` / ``le``
    (``values`` holds the results, by attribute); None when all are inside."""
    errors = []
    for name, v in values.items():
        a = meta.attrs[name]
        if a.ge is not None and v < a.ge:
            errors.append({"field": name, "value": v, "rule": "ge",
                           "message": f"{name}: {v!r} is below its minimum {a.ge!r} "
                                      "(rule: ge)"})
        elif a.le is not None and v > a.le:
            errors.append({"field": name, "value": v, "rule": "le",
                           "message": f"{name}: {v!r} is above its maximum {a.le!r} "
                                      "(rule: le)"})
        elif meta.attrs[name].kind == FLOAT and not math.isfinite(v):
            errors.append({"field": name, "value": v, "rule": "finite",
                           "message": f"{name}: the result {v!r} is not finite (rule: finite)"})
        elif meta.attrs[name].kind == INT and not -(2**63) <= v < 2**63:
            errors.append({"field": name, "value": v, "rule": "range",
                           "message": f"{name}: the result {v!r} does not fit in 64 bits "
                                      "(rule: range)"})
    return ValidationError(errors, model=meta.name) if errors else None


def resolve(meta: ModelMeta, values: dict[str, Any], row: Any) -> dict[str, Any]:
    """``values`` with every ``F`` expression replaced by its result over ``row`` (the
    item's values before the update: a dict, or an item); ``ValidationError`` when a
    result is outside its attribute's bounds (nothing must then be written)."""
    if not isinstance(row, dict):
        row = row.__dict__
    out = dict(values)
    results = {}
    for name, v in values.items():
        if isinstance(v, F):
            r = evaluate(v, row)
            out[name] = results[name] = r
    err = out_of_bounds(meta, results)
    if err is not None:
        raise err
    return out


def guard(values: dict[str, Any], item: Any, pre: Node | None) -> Node:
    """The precondition of an optimistic write of ``resolve``d values read from ``item``:
    ``pre`` and every attribute the expressions refer to still equal to what was read."""
    names: set[str] = set()
    for v in values.values():
        if isinstance(v, F):
            refs(v, names)
    d = item if isinstance(item, dict) else item.__dict__
    conds: list[Node] = [Cond(n, "eq", d[n]) for n in sorted(names)]
    if pre is not None:
        conds.append(pre)
    return conds[0] if len(conds) == 1 else And(tuple(conds))


__all__ = ["F", "Expr", "check", "evaluate", "guard", "has_expr", "increment", "is_expr", "linear",
           "out_of_bounds",
           "refs", "resolve"]

"""Validate a filter against a model: known attributes and operators, values coerced
losslessly to the attribute's type, and the tree simplified."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pydantic

from ..errors import InvalidFilter
from ..model.attrs import Attr
from ..model.stored import ModelMeta
from ..model.text import has_surrogate
from ..model.types import DATETIME, DECIMAL, ENUM, FLOAT, INT, JSON
from ..model.validate import _adapter, to_utc
from .ast import (
    EVERYTHING,
    NOTHING,
    OPERATORS,
    ORDER_OPERATORS,
    TEXT_OPERATORS,
    And,
    Cond,
    Node,
    Not,
    Or,
    fold,
)
from .paths import prepare_path
from .q import parse_lookup, to_node
from .relations import Rel, is_relation, prepare_rel
from .surrogates import without_surrogates


def coerce_value(attr: Attr, op: str, value: Any) -> Any:
    """``value`` as the attribute's type, when that loses nothing; ``InvalidFilter`` otherwise."""
    if value is None:
        raise InvalidFilter(f"{attr.name}__{op}: None is not a valid value (use isnull)")
    if attr.kind == FLOAT and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if attr.kind == ENUM and isinstance(value, attr.inner):
        return value
    if type(value) is attr.inner and attr.kind != DATETIME:
        if attr.kind == INT and not -(2**63) <= value < 2**63:
            raise InvalidFilter(f"{attr.name}__{op}: {value!r} is outside the 64-bit "
                                "integer range")
        if (attr.kind == FLOAT and value != value) or (attr.kind == DECIMAL and value.is_nan()):
            raise InvalidFilter(f"{attr.name}__{op}: NaN cannot be compared")
        return value
    try:
        out = _adapter(attr.inner).validate_python(value)
    except pydantic.ValidationError as exc:
        raise InvalidFilter(
            f"{attr.name}__{op}: {value!r} cannot be used as a {_tname(attr)} "
            f"({exc.errors()[0]['msg']})") from None
    if attr.kind == DATETIME:
        out = to_utc(out)
    if attr.kind == FLOAT and out != out:
        raise InvalidFilter(f"{attr.name}__{op}: NaN cannot be compared")
    if attr.kind == INT and not -(2**63) <= out < 2**63:
        raise InvalidFilter(f"{attr.name}__{op}: {value!r} is outside the 64-bit integer range")
    return out


def _tname(attr: Attr) -> str:
    return getattr(attr.inner, "__name__", None) or str(attr.inner)


def _known(meta: ModelMeta, name: str, op: str) -> Attr:
    a = meta.attrs.get(name)
    if a is None or not a.store:
        raise InvalidFilter(f"unknown attribute {name!r} in filter {name}__{op} on {meta.name}")
    if op not in OPERATORS:
        raise InvalidFilter(f"unknown operator {op!r} in filter {name}__{op} "
                            f"(operators: {', '.join(sorted(OPERATORS))})")
    return a


def prepare_cond(meta: ModelMeta, c: Cond) -> Node:
    """One condition, validated and coerced (may simplify to another node)."""
    name = c.attr
    r = meta.attrs.get(name) if type(name) is str else None
    if r is None:
        if (meta.refs or meta.manys) and type(name) is str and is_relation(meta, name):
            return prepare_rel(meta, c, prepare)  # category__name, products__title, tags
        if type(name) is str and ("." in name or "__" in name):
            return prepare_path(meta, c)  # address__city, address.zip, dct__k__gte
    elif r.kind == JSON and (c.op == "contains" or c.op not in OPERATORS) and r.store:
        return prepare_path(meta, c)  # tags__contains (membership), address__city
    a = _known(meta, c.attr, c.op)
    return _prepare_on(meta, a, c)


def _prepare_on(meta: ModelMeta, a: Attr, c: Cond) -> Node:
    """``c`` on the (known) attribute ``a``, validated and coerced."""
    if a.is_text and (decided := without_surrogates(a, c)) is not None:
        return prepare(meta, decided)  # a lone surrogate: no stored string holds one
    op, value = c.op, c.value
    if op == "isnull":
        if not isinstance(value, bool):
            raise InvalidFilter(f"{a.name}__isnull needs True or False, got {value!r}")
        if not a.optional:
            return NOTHING if value else EVERYTHING
        return Cond(a.name, "isnull", value)
    if a.kind == JSON:
        if op in ("eq", "ne") and value is None:
            return _prepare_on(meta, a, Cond(a.name, "isnull", op == "eq"))
        raise InvalidFilter(f"{a.name}__{op}: a {_tname(a)} attribute can only be filtered "
                            "with isnull (a list also with contains; look up a field or key "
                            f"of a dataclass or dict with {a.name}__<name>)")
    if op in ("eq", "ne") and value is None:
        return _prepare_on(meta, a, Cond(a.name, "isnull", op == "eq"))
    if op in TEXT_OPERATORS:
        if not a.is_text:
            raise InvalidFilter(f"{a.name}__{op}: operator {op!r} needs a str attribute, "
                                f"{a.name} is {_tname(a)}")
        if not isinstance(value, str):
            raise InvalidFilter(f"{a.name}__{op}: {value!r} is not a str")
        return Cond(a.name, op, value)
    if op in ORDER_OPERATORS and not a.orderable and a.kind != ENUM:
        raise InvalidFilter(f"{a.name}__{op}: {a.name} cannot be compared")
    if op in ("in", "not_in"):
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise InvalidFilter(f"{a.name}__{op} needs a list of values, got {value!r}")
        values = list(value)
        has_none = any(v is None for v in values)
        coerced = tuple(dict.fromkeys(coerce_value(a, op, v) for v in values if v is not None))
        node: Node
        if op == "in":
            parts: list[Node] = [Cond(a.name, "in", coerced)] if coerced else []
            if has_none:
                parts.append(Cond(a.name, "isnull", True))
            return simplify(Or(tuple(parts)))
        parts = [Cond(a.name, "not_in", coerced)] if coerced else []
        if has_none:
            parts.append(Cond(a.name, "isnull", False))
        node = simplify(And(tuple(parts)))
        return node
    if op == "range":
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise InvalidFilter(f"{a.name}__range needs (low, high), got {value!r}")
        pair = list(value)
        if len(pair) != 2:
            raise InvalidFilter(f"{a.name}__range needs exactly two values, got {value!r}")
        return Cond(a.name, "range", (coerce_value(a, op, pair[0]), coerce_value(a, op, pair[1])))
    return Cond(a.name, op, coerce_value(a, op, value))


def prepare(meta: ModelMeta, node: Node) -> Node:
    """A whole tree validated, coerced and simplified (without recursion: any depth)."""
    return fold(node, lambda c: _prepare_leaf(meta, c), _simplified)


def _prepare_leaf(meta: ModelMeta, node: Any) -> Node:
    if isinstance(node, Cond):
        return prepare_cond(meta, node)
    if isinstance(node, Rel):
        return node  # prepared already (a filter prepared again)
    raise InvalidFilter(f"not a filter node: {node!r}")


def _is_everything(n: Node) -> bool:
    return type(n) is And and not n.items


def _is_nothing(n: Node) -> bool:
    return type(n) is Or and not n.items


def simplify(node: Node) -> Node:
    """Flatten nested And/Or, drop neutral parts and duplicates, fold constants and double
    negation, and merge an Or of equalities on one attribute into one ``in`` (an And of
    ``ne``/``not_in`` on one attribute into one ``not_in``). Any depth (no recursion)."""
    return fold(node, _leaf, _simplified)


def _leaf(node: Any) -> Any:
    return node


def _simplified(node: Node, kids: list[Node]) -> Node:
    """One node of ``simplify``, its children already simplified."""
    t = type(node)
    if t is Not:
        return negate(kids[0])
    return junction(t, kids)


def negate(inner: Node) -> Node:
    """``Not(inner)`` simplified, ``inner`` being simplified already."""
    t = type(inner)
    if t is Not:
        return inner.item  # type: ignore[attr-defined, no-any-return]
    if t is Cond:
        if inner.op == "isnull":  # type: ignore[attr-defined]
            return Cond(inner.attr, "isnull", not inner.value)  # type: ignore[attr-defined]
    elif _is_everything(inner):
        return NOTHING
    elif _is_nothing(inner):
        return EVERYTHING
    return Not(inner)


def junction(t: type, kids: Iterable[Node]) -> Node:
    """``And(kids)`` (``t is And``) or ``Or(kids)`` simplified, the kids being simplified
    already."""
    is_and = t is And
    items: list[Node] = []
    seen: set[Node] | None = None  # a few items compare directly; many by hash
    for n in kids:
        tn = type(n)
        if tn is t:
            sub = n.items  # type: ignore[attr-defined]
        elif (tn is And or tn is Or) and not n.items:  # type: ignore[attr-defined]
            if (tn is And) is is_and:
                continue  # neutral
            return NOTHING if is_and else EVERYTHING  # absorbing
        else:
            sub = (n,)
        for m in sub:
            if seen is None:
                if m in items:
                    continue
                items.append(m)
                if len(items) > 8:
                    seen = _hashed(items)
            elif not _duplicate(m, seen, items):
                items.append(m)
    if len(items) > 1:
        items = _merge_lists(items, is_and)
    if len(items) == 1:
        return items[0]
    if not items:
        return EVERYTHING if is_and else NOTHING
    return And(tuple(items)) if is_and else Or(tuple(items))


def _hashed(items: list[Node]) -> set[Node]:
    """The items that can be hashed, as a set."""
    seen: set[Node] = set()
    for m in items:
        try:
            seen.add(m)
        except TypeError:
            pass
    return seen


def _duplicate(m: Node, seen: set[Node], items: list[Node]) -> bool:
    """True when ``m`` equals an earlier item; else it is recorded in ``seen``."""
    try:
        if m in seen:
            return True
        seen.add(m)
        return False
    except TypeError:  # a value that cannot be hashed (an unprepared list): compare
        return m in items


def _merge_lists(items: list[Node], is_and: bool) -> list[Node]:
    """In an Or, the ``eq``/``in`` conditions on one attribute as one ``in``; in an And,
    the ``ne``/``not_in`` ones as one ``not_in`` (local evaluation gives both forms the
    same meaning; a backend compiles one list far better than many conditions)."""
    one, many = ("ne", "not_in") if is_and else ("eq", "in")
    where: dict[str, list[int]] = {}
    n = 0
    for m in items:
        if type(m) is Cond and (m.op == one or m.op == many):
            n += 1
    if n < 2:
        return items  # the common case: nothing to merge
    for i, m in enumerate(items):
        if type(m) is Cond and (m.op == one or (m.op == many and type(m.value) is tuple)):
            where.setdefault(m.attr, []).append(i)
    if all(len(ix) < 2 for ix in where.values()):
        return items
    out: list[Node | None] = list(items)
    for name, ix in where.items():
        if len(ix) < 2:
            continue
        values: list[Any] = []
        for i in ix:
            c = items[i]
            if c.op == one:  # type: ignore[attr-defined]
                values.append(c.value)  # type: ignore[attr-defined]
            else:
                values.extend(c.value)  # type: ignore[attr-defined]
        try:
            merged = tuple(dict.fromkeys(values))  # loose bools are JsonBool: never 1
        except TypeError:  # unhashable values (an unprepared filter): leave them
            continue
        out[ix[0]] = Cond(name, many, merged)
        for i in ix[1:]:
            out[i] = None
    return [m for m in out if m is not None]


def free_text(meta: ModelMeta, text: str) -> Node:
    """``query="..."``: case-insensitive contains on any readable string attribute."""
    if not isinstance(text, str):
        raise InvalidFilter(f"query must be a str, got {text!r}")
    if not text:
        return EVERYTHING
    if has_surrogate(text):
        return NOTHING  # no stored string holds a lone surrogate
    attrs = [a for a in meta.stored_attrs if a.readable and a.is_text]
    return simplify(Or(tuple(Cond(a.name, "icontains", text) for a in attrs)))


def build_filter(meta: ModelMeta, where: Any = None, query: str | None = None,
                 lookups: dict[str, Any] | None = None) -> Node:
    """The validated filter of a search: ``where`` AND lookups AND free text."""
    parts = [prepare(meta, to_node(where))] if where is not None else []
    if lookups:
        parts.extend(prepare_cond(meta, parse_lookup(k, v)) for k, v in lookups.items())
    if query is not None:
        parts.append(free_text(meta, query))
    if len(parts) == 1:
        return parts[0]
    return junction(And, parts)

"""Generated fast paths for the commonest writes (as attrs and msgspec do).

``make_fast_create(meta)`` returns ``fn(item) -> dict | None``: the validated stored
values of an item whose attributes all have their exact type and pass their
constraints, or None to send the item down the general path (which coerces values
and names every problem). It must accept exactly what the general path accepts
unchanged; anything else returns None.

``make_fast_rows(meta, names, encoders)`` is the same checks in one loop over a batch
of Creates, each item's values written straight into the tuple of parameters of an
INSERT of ``names`` (no dict per item): a backend's bulk insert.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .attrs import Attr
from .codegen import compile_generated
from .stored import ModelMeta
from .text import has_surrogate
from .types import BOOL, BYTES, DATETIME, FLOAT, INT, STR
from .undefined import UNDEFINED

_EXACT = {STR: "str", INT: "int", FLOAT: "float", BOOL: "bool", BYTES: "bytes",
          DATETIME: "datetime"}
INT64 = (-(2**63), 2**63 - 1)

#: ``rows(edits) -> (values, parameters) | None``: see ``make_fast_rows``
FastRows = Callable[[list[Any]], "tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]] | None"]


@dataclass(frozen=True, slots=True)
class _Checked:
    """The generated lines that read one attribute of an item (``item.name``, or from
    ``d``, its ``__dict__``: see ``_reads_by_attribute``) into the local ``var``, give it
    its default, and return None unless it may be stored as it is (``test``, the last
    line); ``sequence`` when the backend assigns it (the lines then only read it:
    UNDEFINED when not given)."""

    name: str
    var: str
    sequence: bool
    lines: tuple[str, ...]
    test: str


def _checks(meta: ModelMeta, env: dict[str, Any]
            ) -> tuple[list[_Checked], tuple[str, ...]] | None:
    """Every stored attribute's ``_Checked``, its constants put in ``env``, and the lines
    that start reading an item (none, or ``d = item.__dict__``); None when an attribute
    has no fast check (the general path then takes every item)."""
    out = []
    by_attribute = _reads_by_attribute(meta)
    for i, a in enumerate(meta.stored_attrs):
        got = _check(a, i, env, by_attribute)
        if got is None:
            return None
        out.append(got)
    return out, (() if by_attribute else ("d = item.__dict__",))


def _reads_by_attribute(meta: ModelMeta) -> bool:
    """True when reading ``item.name`` gives what the general path reads from the
    instance's ``__dict__`` (``d.get(name, UNDEFINED)``, then the default): the class
    looks attributes up plainly, and each stored attribute is either no class attribute
    (missing, it raises AttributeError: the general path then names it), or one holding
    UNDEFINED or the attribute's own plain default (what the dataclass leaves there),
    which is what the general path makes of it missing. Reading attributes leaves the
    instance's values inline: ``item.__dict__`` would build a dict for each item (about
    140 ns, and one more object per item for the collector). A class attribute
    reassigned after ``@stored`` is not seen by the check: neither is it by the
    dataclass's ``__init__``."""
    cls = meta.cls
    if cls.__getattribute__ is not object.__getattribute__ or \
            any("__getattr__" in k.__dict__ for k in cls.__mro__):
        return False
    for a in meta.stored_attrs:
        for k in cls.__mro__:
            if a.name in k.__dict__:
                v = k.__dict__[a.name]
                if hasattr(type(v), "__get__") or hasattr(type(v), "__set__"):
                    return False  # a descriptor: a property, a slot, a method
                if v is not UNDEFINED and not (
                        a.has_default and a.default_factory is None and a.default is v):
                    return False
                break
    return True


def _check(a: Attr, i: int, env: dict[str, Any], by_attribute: bool) -> _Checked | None:
    n = a.name
    tname = _EXACT.get(a.kind)
    if tname is None or a.pattern is not None or (not a.creatable and a.generator is None):
        return None
    if a.kind == DATETIME and (a.ge is not None or a.le is not None):
        return None
    v = f"x{i}"
    lines = [f"{v} = item.{n}" if by_attribute else f"{v} = d[{n!r}]"]
    gen = a.generator
    seq = gen is not None and gen.on_create is None  # a sequence: the backend's
    if seq and a.kind != INT:
        return None
    if gen is not None and not seq:
        env[f"g{i}"] = gen.on_create
        conv = f"str(g{i}())" if a.kind == STR else f"g{i}()"
        lines.append(f"if {v} is U: {v} = {conv}")
    elif gen is None and a.has_default:
        env[f"a{i}"] = a
        lines.append(f"if {v} is U: {v} = a{i}.default_value()")
    checks = [f"type({v}) is not {tname}"]
    if a.kind == STR:  # a lone surrogate: the general path names it
        checks.append(f"(not {v}.isascii() and sur({v}))")
    if a.kind == INT:
        checks.append(f"not {INT64[0]} <= {v} <= {INT64[1]}")
    if a.kind == FLOAT:
        checks.append(f"{v} != {v}")
    if a.kind == DATETIME:  # stored as given only when tz-aware UTC already
        checks.append(f"{v}.tzinfo is not UTC")
    if a.max_length is not None:
        checks.append(f"len({v}) > {a.max_length}")
    if a.min_length is not None:
        checks.append(f"len({v}) < {a.min_length}")
    if a.ge is not None:
        env[f"ge{i}"] = a.ge
        checks.append(f"{v} < ge{i}")
    if a.le is not None:
        env[f"le{i}"] = a.le
        checks.append(f"{v} > le{i}")
    cond = " or ".join(checks)
    test = f"if {v} is not None and ({cond}): return None" if a.optional else \
        f"if {cond}: return None"
    return _Checked(n, v, seq, tuple(lines), test)


def _env() -> dict[str, Any]:
    return {"U": UNDEFINED, "str": str, "int": int, "float": float, "bool": bool,
            "bytes": bytes, "len": len, "sur": has_surrogate, "datetime": datetime,
            "UTC": UTC}


def make_fast_create(meta: ModelMeta) -> Callable[[Any], dict[str, Any] | None]:
    """A specialised ``create_values`` for plain items of ``meta``'s class (an instance
    lacking an attribute raises KeyError or AttributeError: the general path then names
    it)."""
    env = _env()
    got = _checks(meta, env)
    if got is None:
        return _never
    checks, start = got
    lines = ["def fast(item):", *(f"    {ln}" for ln in start), "    out = {}"]
    for c in checks:
        lines += ("    " + ln for ln in c.lines)
        if c.sequence:  # left out when not given (the backend assigns it), else checked
            lines += [f"    if {c.var} is not U:", f"        {c.test}",
                      f"        out[{c.name!r}] = {c.var}"]
        else:
            lines += [f"    {c.test}", f"    out[{c.name!r}] = {c.var}"]
    lines.append("    return out")
    compile_generated("\n".join(lines) + "\n", env, "fast_create", meta.cls)
    return env["fast"]  # type: ignore[no-any-return]


def make_fast_rows(meta: ModelMeta, names: Sequence[str],
                   encoders: Mapping[str, Callable[[Any], Any] | None]) -> FastRows:
    """``rows(edits)``: for a list of Creates of plain instances of ``meta``'s class (as
    ``make_fast_create`` accepts), the tuple of each item's validated values of
    ``names``, in that order, and the tuple of those values encoded by ``encoders``
    (the same list when no attribute of ``names`` has an encoder); None as soon as one
    item is not plain or gives a sequence attribute that is not in ``names`` (the
    backend assigns it) or leaves out one that is. ``names`` holds every stored
    attribute but such sequences; KeyError or AttributeError when an item lacks an
    attribute."""
    env = _env()
    got = _checks(meta, env)
    stored = {a.name for a in meta.stored_attrs}
    if got is None or not set(names) <= stored or \
            any(not c.sequence and c.name not in names for c in got[0]):
        return _never
    checks, start = got
    env["cls"] = meta.cls
    var = {c.name: c.var for c in checks}
    lines = ["def rows(edits):", "    out = []", "    append = out.append"]
    encoded = [n for n in names if encoders.get(n) is not None]
    if encoded:
        lines += ["    params = []", "    param = params.append"]
    lines += ["    for e in edits:", "        item = e.item",
              "        if type(item) is not cls: return None",
              *(f"        {ln}" for ln in start)]
    for c in checks:
        if c.sequence and c.name not in names:  # the backend's: not to be given
            lines += ("        " + ln for ln in c.lines)
            lines.append(f"        if {c.var} is not U: return None")
            continue
        lines += ("        " + ln for ln in c.lines)
        if c.sequence:  # one the backend does not assign here: to be given
            lines.append(f"        if {c.var} is U: return None")
        lines.append(f"        {c.test}")
    lines.append("        append((" + "".join(f"{var[n]}, " for n in names) + "))")
    if encoded:
        parts = []
        for j, n in enumerate(names):
            if n in encoded:
                env[f"c{j}"] = encoders[n]
                parts.append(f"(None if {var[n]} is None else c{j}({var[n]}))")
            else:
                parts.append(var[n])
        lines.append("        param((" + "".join(p + ", " for p in parts) + "))")
        lines.append("    return out, params")
    else:
        lines.append("    return out, out")
    compile_generated("\n".join(lines) + "\n", env, "fast_rows", meta.cls)
    return env["rows"]  # type: ignore[no-any-return]


def _never(item: Any) -> None:
    return None

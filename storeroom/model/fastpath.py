"""Generated fast paths for the commonest writes (as attrs and msgspec do).

``make_fast_create(meta)`` returns ``fn(item) -> dict | None``: the validated stored
values of an item whose attributes all have their exact type and pass their
constraints, or None to send the item down the general path (which coerces values
and names every problem). It must accept exactly what the general path accepts
unchanged; anything else returns None.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .codegen import compile_generated
from .stored import ModelMeta
from .text import has_surrogate
from .types import BOOL, BYTES, DATETIME, FLOAT, INT, STR
from .undefined import UNDEFINED

_EXACT = {STR: "str", INT: "int", FLOAT: "float", BOOL: "bool", BYTES: "bytes",
          DATETIME: "datetime"}
INT64 = (-(2**63), 2**63 - 1)


def make_fast_create(meta: ModelMeta) -> Callable[[Any], dict[str, Any] | None]:
    """A specialised ``create_values`` for plain items of ``meta``'s class."""
    env: dict[str, Any] = {"U": UNDEFINED, "str": str, "int": int, "float": float, "bool": bool,
                           "bytes": bytes, "len": len, "sur": has_surrogate,
                           "datetime": datetime, "UTC": UTC}
    lines = ["def fast(item):", "    d = item.__dict__", "    out = {}"]
    for i, a in enumerate(meta.stored_attrs):
        n = a.name
        tname = _EXACT.get(a.kind)
        if tname is None or a.pattern is not None or (not a.creatable and a.generator is None):
            return _never
        if a.kind == DATETIME and (a.ge is not None or a.le is not None):
            return _never
        lines.append(f"    v = d[{n!r}]")
        gen = a.generator
        seq = gen is not None and gen.on_create is None  # a sequence: the backend's
        if seq and a.kind != INT:
            return _never
        if seq:  # left out when not given (the backend assigns it), else checked
            lines.append("    if v is not U:")
        elif gen is not None:
            env[f"g{i}"] = gen.on_create
            conv = f"str(g{i}())" if a.kind == STR else f"g{i}()"
            lines.append(f"    if v is U: v = {conv}")
        elif a.has_default:
            env[f"a{i}"] = a
            lines.append(f"    if v is U: v = a{i}.default_value()")
        checks = [f"type(v) is not {tname}"]
        if a.kind == STR:  # a lone surrogate: the general path names it
            checks.append("(not v.isascii() and sur(v))")
        if a.kind == INT:
            checks.append(f"not {INT64[0]} <= v <= {INT64[1]}")
        if a.kind == FLOAT:
            checks.append("v != v")
        if a.kind == DATETIME:  # stored as given only when tz-aware UTC already
            checks.append("v.tzinfo is not UTC")
        if a.max_length is not None:
            checks.append(f"len(v) > {a.max_length}")
        if a.min_length is not None:
            checks.append(f"len(v) < {a.min_length}")
        if a.ge is not None:
            env[f"ge{i}"] = a.ge
            checks.append(f"v < ge{i}")
        if a.le is not None:
            env[f"le{i}"] = a.le
            checks.append(f"v > le{i}")
        cond = " or ".join(checks)
        pad = "    " if seq else ""
        if a.optional:
            lines.append(f"{pad}    if v is not None and ({cond}): return None")
        else:
            lines.append(f"{pad}    if {cond}: return None")
        lines.append(f"{pad}    out[{n!r}] = v")
    lines.append("    return out")
    # ``fast_all(edits)``: the same checks inlined in one loop over a batch's Creates,
    # the list of their values, or None as soon as one item is not plain
    body = lines[1:-1]  # from ``d = item.__dict__`` to the last ``out[...] = v``
    env["cls"] = meta.cls
    lines += ["def fast_all(edits):", "    res = []", "    append = res.append",
              "    for e in edits:", "        item = e.item",
              "        if type(item) is not cls: return None",
              *("    " + ln for ln in body), "        append(out)", "    return res"]
    compile_generated("\n".join(lines) + "\n", env, "fast_create", meta.cls)
    # an instance lacking an attribute raises KeyError: create_values takes the general path
    meta.fast_create_all = env["fast_all"]
    return env["fast"]  # type: ignore[no-any-return]


def _never(item: Any) -> None:
    return None


"""Aggregates (``Count Sum Min Max Avg``): their validation and their local evaluation.

Sans-I/O: a store prepares the aggregates asked for (``prepare_aggregates``) and hands
them to its backend's ``aggregate(node, specs)``; a backend that runs them natively
(SQL, MongoDB) gives the raw results to ``finish`` for the shared readings, and one that
does not evaluates them with an :class:`Accumulator` over its matching items.

Readings, the same on every backend: over no values ``None`` for Sum, Min, Max and Avg
and ``0`` for Count; ``None`` values are skipped (as SQL does); Avg of ints is a float;
Decimal attributes stay Decimal (Sum and Avg too).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..errors import InvalidFilter
from ..model.types import BOOL, DECIMAL, FLOAT, INT, ORDERED_KINDS

NUMERIC_KINDS = frozenset({INT, FLOAT, DECIMAL, BOOL})


class Aggregate:
    """One aggregate over the matching items; ``Count()``, ``Sum("price")``, ...

    Use them in ``Model.objects.aggregate(n=Count(), top=Max("priority"))`` or
    ``store.aggregate({"n": Count()})``.
    """

    func = ""
    __slots__ = ("attr",)

    def __init__(self, attr: str | None = None) -> None:
        if attr is not None and not isinstance(attr, str):
            raise InvalidFilter(f"{type(self).__name__}: an attribute name is a str, "
                                f"got {attr!r}")
        self.attr = attr

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.attr == self.attr

    def __hash__(self) -> int:
        return hash((self.func, self.attr))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({'' if self.attr is None else repr(self.attr)})"


class Count(Aggregate):
    """How many items match (``Count()``), or how many have a non-None ``attr``."""

    func = "count"
    __slots__ = ()


class Sum(Aggregate):
    """The sum of a numeric attribute over the matches (``None`` over none)."""

    func = "sum"
    __slots__ = ()

    def __init__(self, attr: str) -> None:
        super().__init__(attr)


class Min(Aggregate):
    """The smallest value of an ordered attribute (``None`` over none)."""

    func = "min"
    __slots__ = ()

    def __init__(self, attr: str) -> None:
        super().__init__(attr)


class Max(Aggregate):
    """The largest value of an ordered attribute (``None`` over none)."""

    func = "max"
    __slots__ = ()

    def __init__(self, attr: str) -> None:
        super().__init__(attr)


class Avg(Aggregate):
    """The mean of a numeric attribute: a float (a Decimal for a Decimal attribute)."""

    func = "avg"
    __slots__ = ()

    def __init__(self, attr: str) -> None:
        super().__init__(attr)


@dataclass(frozen=True, slots=True)
class AggSpec:
    """One prepared aggregate as a backend receives it: the result's name, the function
    (``count sum min max avg``), the attribute (None for ``Count()``) and its kind; for a
    Min / Max of an Enum attribute, the Enum class its result is read back as."""

    name: str
    func: str
    attr: str | None
    kind: str | None
    enum: Any = None


def prepare_aggregates(meta: Any, aggregates: Mapping[str, Aggregate]) -> tuple[AggSpec, ...]:
    """Validate ``aggregates`` against the model: ``InvalidFilter`` naming an unknown or
    unreadable attribute, a Sum / Avg of a non-numeric one or a Min / Max of an unordered
    one."""
    if not isinstance(aggregates, Mapping) or not aggregates:
        raise InvalidFilter("aggregate needs at least one named aggregate, "
                            "e.g. aggregate(n=Count())")
    out = []
    for name, agg in aggregates.items():
        if not isinstance(agg, Aggregate) or not agg.func:
            raise InvalidFilter(f"{name}: not an aggregate: {agg!r} (use Count, Sum, Min, "
                                "Max or Avg)")
        if agg.attr is None:
            if agg.func != "count":
                raise InvalidFilter(f"{name}: {type(agg).__name__} needs an attribute")
            out.append(AggSpec(name, "count", None, None))
            continue
        a = meta.attrs.get(agg.attr)
        if a is None or not a.store or not a.readable:
            raise InvalidFilter(f"{name}: {meta.name} has no readable stored attribute "
                                f"{agg.attr!r}")
        kind = a.value_kind
        if agg.func in ("sum", "avg") and kind not in NUMERIC_KINDS:
            raise InvalidFilter(f"{name}: {type(agg).__name__}({agg.attr!r}) needs a numeric "
                                f"attribute, {agg.attr!r} is {a.kind}")
        if agg.func in ("min", "max") and kind not in ORDERED_KINDS:
            raise InvalidFilter(f"{name}: {type(agg).__name__}({agg.attr!r}) needs an ordered "
                                f"attribute, {agg.attr!r} is {a.kind}")
        # Min / Max compare an Enum by its value and give back the member, as reading the
        # attribute does (Sum / Avg of an int Enum are numbers)
        member = a.enum_cls if agg.func in ("min", "max") else None
        out.append(AggSpec(name, agg.func, agg.attr, kind, member))
    return tuple(out)


def _plain(v: Any) -> Any:
    """The comparable value of an attribute (an Enum by its value)."""
    return getattr(v, "value", v) if hasattr(v, "_value_") else v


class Accumulator:
    """The local evaluation of aggregates: ``add`` each matching item, then ``result``."""

    __slots__ = ("specs", "rows", "counts", "acc")

    def __init__(self, specs: tuple[AggSpec, ...]) -> None:
        self.specs = specs
        self.rows = 0
        self.counts = [0] * len(specs)  # the non-None values seen per aggregate
        self.acc: list[Any] = [None] * len(specs)

    def add(self, item: Any) -> None:
        """Count ``item`` into every aggregate."""
        self.rows += 1
        acc, counts = self.acc, self.counts
        for i, s in enumerate(self.specs):
            if s.attr is None:
                continue
            v = getattr(item, s.attr)
            if v is None:
                continue
            v = _plain(v)
            counts[i] += 1
            cur = acc[i]
            f = s.func
            if f == "sum" or f == "avg":
                acc[i] = v + 0 if cur is None else cur + v  # bool -> int
            elif f == "min":
                if cur is None or v < cur:
                    acc[i] = v
            elif f == "max":
                if cur is None or v > cur:
                    acc[i] = v

    def result(self) -> dict[str, Any]:
        """``{name: value}`` with the readings of the module docstring."""
        out: dict[str, Any] = {}
        for i, s in enumerate(self.specs):
            if s.func == "count":
                out[s.name] = self.rows if s.attr is None else self.counts[i]
            elif s.func == "avg":
                out[s.name] = average(s, self.acc[i], self.counts[i])
            else:
                v = self.acc[i]
                out[s.name] = s.enum(v) if s.enum is not None and v is not None else v
        return out


def average(spec: AggSpec, total: Any, n: int) -> Any:
    """The mean from a sum and a count (None when ``n`` is 0): a Decimal for a Decimal
    attribute, else a float (an int sum is divided exactly, as Python's ``/`` does)."""
    if not n or total is None:
        return None
    if spec.kind == DECIMAL:
        return Decimal(total) / n
    if spec.kind == FLOAT:
        return float(total) / n
    return int(total) / n


def local_aggregate(specs: tuple[AggSpec, ...], items: Iterable[Any]) -> dict[str, Any]:
    """The aggregates over ``items`` (every one a match)."""
    acc = Accumulator(specs)
    for item in items:
        acc.add(item)
    return acc.result()


def finish(specs: tuple[AggSpec, ...], raw: Mapping[str, Any],
           decode: Any = None) -> dict[str, Any]:
    """Readings of natively computed aggregates.

    ``raw`` maps each spec's name to the database's value, and for Avg the name to the
    pair ``(sum, count)`` (the mean is divided here, so every backend rounds alike);
    ``decode(spec, value)`` turns a stored value back into the attribute's type.
    """
    out: dict[str, Any] = {}
    for s in specs:
        v = raw[s.name]
        if s.func == "count":
            out[s.name] = int(v or 0)
            continue
        if s.func == "avg":
            total, n = v
            out[s.name] = average(s, None if total is None else _kinded(s, total, decode),
                                  int(n or 0))
            continue
        out[s.name] = None if v is None else _kinded(s, v, decode)
    return out


def _kinded(spec: AggSpec, v: Any, decode: Any) -> Any:
    if decode is not None:
        v = decode(spec, v)
    if spec.enum is not None:
        return spec.enum(_kinded(AggSpec(spec.name, spec.func, spec.attr, spec.kind), v, None))
    if spec.kind == INT or (spec.kind == BOOL and spec.func == "sum"):
        return int(v)
    if spec.kind == BOOL:
        return bool(v)
    if spec.kind == FLOAT:
        return float(v)
    if spec.kind == DECIMAL and not isinstance(v, Decimal):
        return Decimal(str(v))
    return v


__all__ = ["Aggregate", "Count", "Sum", "Min", "Max", "Avg", "AggSpec", "Accumulator",
           "prepare_aggregates", "local_aggregate", "finish", "average"]

"""``MongoCore``: everything about one model in one MongoDB collection that is not I/O.

Documents
    One collection per store. A one-attribute key is the document's ``_id`` (and is not
    repeated as a field); a composite key is an ``_id`` sub-document ``{k1: .., k2: ..}``
    and each key attribute is also a top-level field, so that it can be filtered and
    sorted. An attribute whose value is ``None`` is left out of the document (so sparse
    and partial unique indexes treat it as SQL treats NULL, and ``{a: null}`` still
    matches it).

Values (all round-trip exactly)
    str, int (64-bit), float, bool: BSON natives. bytes: Binary. Enum: its value.
    datetime: fixed-width ISO-8601 UTC text with microseconds (BSON dates keep only
    milliseconds), so text order is time order. date: ISO text. UUID: canonical text
    (text order is UUID order). Decimal: its exact text. JSON kinds (list, dict,
    dataclasses): the JSON that pydantic writes, as BSON arrays and sub-documents (so
    that dotted paths reach into them): numbers stay int64 / double, an int beyond 64
    bits is a Decimal128 (compared by value; beyond 34 significant digits it is
    refused), infinities and NaN are the JSON strings
    ``"Infinity"`` / ``"NaN"``, bytes base64 text. A dict key holding ``%``, ``.`` or NUL,
    or starting with ``$``, is stored percent-escaped (``%25``, ``%2E``, ``%00``, a
    leading ``%24``): BSON keys hold no NUL and MongoDB reserves ``.`` and ``$``. A value
    stored as a string is the JSON text that earlier versions wrote, and still reads.

Filters
    Compiled to query documents that agree with local evaluation (two-valued logic:
    ``$ne``, ``$nin`` and ``$nor`` match a missing attribute, as ``ne``, ``not_in``
    and ``Not`` match None). String operators are ``$regex`` over an escaped literal,
    case-sensitive; the ``i`` variants run against a shadow field ``__lc.<attr>`` that
    holds Python's ``str.lower()`` of the value, written with every write, so that the
    server never case-folds (its folding differs from ``str.lower()``: ``/s/i`` matches
    "ſ", ``/i/i`` matches "İ"). Not native: every comparison of a Decimal (its text
    does not compare numerically) and ``lt``/``lte``/``gt``/``gte``/``range`` and
    ordering of bytes (BSON orders binary by length first).

Nested paths (``address__city``, ``tags__contains``)
    Dotted paths when :func:`~storeroom.query.paths.document_path` allows (every step a
    dataclass field or a ``dict[str, X]`` key, so no array is ever traversed; a ``str``,
    ``int`` or ``bool`` leaf): comparisons, ``$in``/``$nin``, case-sensitive text
    operators by ``$regex``; list membership is ``$elemMatch`` with ``$eq``. Local: the
    i-operators (the shadow lower-case field is top-level only), loose ``Any`` values
    (MongoDB compares across types, traverses arrays and matches ``[null]`` as null),
    other leaf kinds, dicts whose keys are not ``str``. (Equality of a whole list or
    dict attribute, key-order sensitive here, is ``InvalidFilter`` on every backend.)

Ordering
    ``None`` sorts last in both directions. MongoDB puts missing values first when
    ascending, so an order with an optional attribute ascending runs as an aggregation
    that sorts on a computed "is null" flag first.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from bson.decimal128 import Decimal128

from ...errors import ValidationError
from ...model.attrs import Attr
from ...model.stored import ModelMeta
from ...model.types import (
    BYTES,
    DATE,
    DATETIME,
    DECIMAL,
    ENUM,
    FLOAT,
    INT,
    JSON,
    UUID,
)
from ...query.ast import (
    LIST_OPERATORS,
    OPERATORS,
    ORDER_OPERATORS,
    And,
    Cond,
    Node,
    Not,
    conds,
    depth,
    fold,
)
from ...query.order import Order
from ...query.paths import LIST, document_path, path_info
from ...store.aggregate import AggSpec
from ...store.fexpr import Expr, F, increment
from ...store.plan import Split, list_superset, split_filter
from ..common import make_store_meta, unreadable
from ..evolution import absent_value
from ..values import iso_utc, json_doc_dumper, json_doc_loader

Conv = Callable[[Any], Any] | None

LOWER = "__lc"
"""The sub-document holding ``str.lower()`` of every text attribute."""
SEQUENCES = "storeroom_sequences"
"""The collection holding ``generated.sequence()`` counters, one document per collection."""
NOTHING_QUERY: dict[str, Any] = {"_id": {"$exists": False}}
INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
MAX_DEPTH = 32
"""Deepest native filter (And/Or/Not levels); a deeper one is evaluated locally."""
MAX_QUERY_BYTES = 8 * 1024 * 1024
"""Largest native filter (its values, in BSON); a larger one is evaluated locally."""
MAX_IN = 256
"""Longest native ``$in``/``$nin`` list. MongoDB advises against long ones (every value is
compared, or is one index interval); a longer ``in`` runs as the range of its values,
and the list itself is checked locally."""
_NAN = float("nan")


# values ----------------------------------------------------------------------------------
def _int64(name: str) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        if isinstance(v, int) and not INT64_MIN <= v <= INT64_MAX:
            raise ValidationError.one(name, v, "range",
                                      f"{v!r} does not fit in a 64-bit integer (MongoDB)")
        return v
    return check


def _enum_value(check: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    def conv(v: Any) -> Any:
        v = v.value if isinstance(v, enum.Enum) else v
        return v if check is None else check(v)
    return conv


_ESCAPE = re.compile(r"[%.\x00]|^\$")
_UNESCAPE = re.compile(r"%(25|2E|00|24)")
_ESCAPES = {"%": "%25", ".": "%2E", "\x00": "%00", "$": "%24"}
_UNESCAPES = {"25": "%", "2E": ".", "00": "\x00", "24": "$"}


def esc_key(k: str) -> str:
    """A dict key as a BSON field name (``%``, ``.``, NUL and a leading ``$`` escaped)."""
    return _ESCAPE.sub(lambda m: _ESCAPES[m.group()], k)


def unesc_key(k: str) -> str:
    """The inverse of :func:`esc_key`."""
    return _UNESCAPE.sub(lambda m: _UNESCAPES[m.group(1)], k) if "%" in k else k


def _to_bson(name: str, v: Any) -> Any:
    """Parsed JSON as BSON values: keys escaped, ints checked against int64."""
    t = type(v)
    if t is dict:
        return {esc_key(k): _to_bson(name, x) for k, x in v.items()}
    if t is list:
        return [_to_bson(name, x) for x in v]
    if t is int and not INT64_MIN <= v <= INT64_MAX:
        return _big_int(name, v)
    return v


def _big_int(name: str, v: int) -> Decimal128:
    """An int beyond 64 bits as a Decimal128, which the server compares with other
    numbers by value; beyond its 34 significant digits, a ValidationError."""
    text = str(abs(v))
    digits = text.rstrip("0")
    if len(digits) > 34:
        raise ValidationError.one(name, v, "range", f"{v!r} in {name} has more than 34 "
                                  "significant digits: a MongoDB number holds no more")
    sign = "-" if v < 0 else ""
    return Decimal128(Decimal(f"{sign}{digits}E{len(text) - len(digits)}"))


def _from_bson(v: Any) -> Any:
    t = type(v)
    if t is dict:
        return {unesc_key(k): _from_bson(x) for k, x in v.items()}
    if t is list:
        return [_from_bson(x) for x in v]
    if t is Decimal128:  # only ever an int beyond 64 bits (a Decimal is JSON text)
        return int(v.to_decimal())
    return v


def _json_dump(a: Attr) -> Callable[[Any], Any]:
    return json_doc_dumper(a, lambda v: _to_bson(a.name, v))


def _json_load(a: Attr) -> Callable[[Any], Any]:
    return json_doc_loader(a, _from_bson)


def to_mongo(a: Attr) -> Conv:
    """The converter of a Python value to its BSON value (None: no conversion)."""
    kind = a.kind
    if kind == ENUM:
        return _enum_value(_int64(a.name) if a.value_kind == INT else None)
    if kind == INT:
        return _int64(a.name)
    if kind == JSON:
        return _json_dump(a)
    table: dict[str, Callable[[Any], Any]] = {
        DATETIME: iso_utc, DATE: date.isoformat, UUID: str, DECIMAL: str}
    return table.get(kind)


def from_mongo(a: Attr) -> Conv:
    """The converter of a BSON value back to the Python value (None: no conversion)."""
    kind = a.kind
    if kind == ENUM:
        enum_cls: type[Enum] = a.inner  # an Enum class converts its values
        return enum_cls
    if kind == JSON:
        return _json_load(a)
    table: dict[str, Callable[[Any], Any]] = {
        DATETIME: datetime.fromisoformat, DATE: date.fromisoformat, UUID: uuid.UUID,
        DECIMAL: Decimal, FLOAT: float, BYTES: bytes, INT: int}
    return table.get(kind)


def regex_literal(text: str) -> str:
    """``text`` as a regular expression matching exactly it (PCRE and Python ``re``)."""
    out = []
    for ch in text:
        o = ord(ch)
        if o >= 128 or ch.isalnum() or ch == "_":
            out.append(ch)
        elif o < 32 or o == 127:
            out.append(f"\\x{o:02x}")
        else:
            out.append("\\" + ch)
    return "".join(out)


_END = "(?![\\s\\S])"  # the very end (PCRE's ``$`` and ``\Z`` also match before a final \n)


def text_regex(op: str, text: str) -> str:
    """The regex of a (case-sensitive) text operator over a literal."""
    lit = regex_literal(text)
    if op in ("contains", "icontains"):
        return lit
    if op in ("startswith", "istartswith"):
        return "^" + lit
    if op in ("endswith", "iendswith"):
        return lit + _END
    raise ValueError(op)


# the core ---------------------------------------------------------------------------------
class MongoCore:
    """Codec, filter compiler, orderings and index specs of one model in one collection."""

    def __init__(self, meta: ModelMeta, collection: str | None = None, *,
                 transactions: bool = True) -> None:
        self.meta = meta
        self.name = collection or meta.name
        self.key_names = meta.key.attrs
        self.single = len(self.key_names) == 1
        self.seq = meta.sequence_attr
        self.attrs = {a.name: a for a in meta.stored_attrs}
        self.paths: dict[str, str] = {
            a.name: ("_id" if self.single and a.is_key else a.name) for a in meta.stored_attrs}
        self.text = frozenset(a.name for a in meta.stored_attrs if a.is_text)
        self.enc: dict[str, Conv] = {a.name: to_mongo(a) for a in meta.stored_attrs}
        self.floats = frozenset(a.name for a in meta.stored_attrs if a.kind == FLOAT)
        self._dec = tuple((a.name, self.paths[a.name], from_mongo(a))
                          for a in meta.stored_attrs)
        self._nullable = frozenset(a.name for a in meta.stored_attrs if a.optional)
        self.projection: dict[str, Any] | None = {LOWER: 0} if self.text else None
        self.store_meta = make_store_meta(meta, "mongodb", native_ops=OPERATORS,
                                          atomic_batch=transactions,
                                          transactions=transactions,
                                          max_batch=1000, max_page=1000)

    # values ------------------------------------------------------------------------
    def value(self, name: str, v: Any) -> Any:
        """The BSON value of one attribute's Python value."""
        conv = self.enc[name]
        return v if conv is None or v is None else conv(v)

    def key_id(self, key: tuple[Any, ...]) -> Any:
        """The ``_id`` of a key tuple."""
        if self.single:
            return self.value(self.key_names[0], key[0])
        return {n: self.value(n, v) for n, v in zip(self.key_names, key, strict=True)}

    def document(self, values: dict[str, Any]) -> dict[str, Any]:
        """The document of a new item (values of every stored attribute)."""
        doc: dict[str, Any] = {"_id": self.key_id(tuple(values[n] for n in self.key_names))}
        lower: dict[str, str] = {}
        single_key = self.key_names[0] if self.single else None
        text = self.text
        for name, v in values.items():
            if v is None:
                continue
            if name in text and (lv := _lower(v)) is not None:
                lower[name] = lv
            if name == single_key:
                continue
            conv = self.enc[name]
            doc[name] = v if conv is None else conv(v)
        if lower:
            doc[LOWER] = lower
        return doc

    def update_doc(self, values: dict[str, Any]) -> dict[str, Any]:
        """``{$set: .., $unset: ..}`` for changes (None values are unset)."""
        sets: dict[str, Any] = {}
        unsets: dict[str, Any] = {}
        for name, v in values.items():
            path = self.paths[name]
            if v is None:
                unsets[path] = ""
                if name in self.text:
                    unsets[f"{LOWER}.{name}"] = ""
            else:
                sets[path] = self.value(name, v)
                if name in self.text:
                    lv = _lower(v)
                    if lv is None:
                        unsets[f"{LOWER}.{name}"] = ""
                    else:
                        sets[f"{LOWER}.{name}"] = lv
        out: dict[str, Any] = {}
        if sets:
            out["$set"] = sets
        if unsets:
            out["$unset"] = unsets
        return out

    def fexpr_update(self, values: dict[str, Any], q: dict[str, Any]
                     ) -> tuple[Any, dict[str, Any]]:
        """The update and query of a write of changes holding ``F`` expressions, one
        atomic ``find_one_and_update`` / ``update_many``: ``$inc`` when each is an int
        increment of its own attribute (the bounds moved onto it in the query), else
        an update pipeline whose one ``$set`` stage computes every result from the
        document before the update (``$add`` / ``$subtract`` / ``$multiply``; plain
        changes as ``$literal``), the results' bounds (and 64 bits / finiteness) in
        the query's ``$expr``."""
        meta = self.meta
        plain = {n: v for n, v in values.items() if not isinstance(v, F)}
        conds: list[dict[str, Any]] = [q]
        incs = {n: increment(n, v) for n, v in values.items() if isinstance(v, F)}
        if all(c is not None and meta.attrs[n].kind == INT for n, c in incs.items()):
            doc = self.update_doc(plain) if plain else {}
            inc: dict[str, Any] = {}
            for n, c in incs.items():
                assert c is not None
                inc[self.paths[n]] = c
                a = meta.attrs[n]
                bound: dict[str, Any] = {}
                if a.ge is not None:
                    bound["$gte"] = a.ge - c
                if a.le is not None:
                    bound["$lte"] = a.le - c
                if bound:
                    conds.append({self.paths[n]: bound})
            doc["$inc"] = inc
            return doc, (conds[0] if len(conds) == 1 else {"$and": conds})
        plain_doc = self.update_doc(plain) if plain else {}
        sets: dict[str, Any] = {p: {"$literal": v}
                                for p, v in plain_doc.get("$set", {}).items()}
        checks: list[dict[str, Any]] = []
        for n, v in values.items():
            if not isinstance(v, F):
                continue
            e = self._mexpr(v)
            sets[self.paths[n]] = e
            a = meta.attrs[n]
            if meta.attrs[n].kind == INT:
                checks += [{"$gte": [e, -(2**63)]}, {"$lte": [e, 2**63 - 1]}]
            else:  # NaN is below every number in MongoDB's order: refused too
                checks += [{"$gt": [e, float("-inf")]}, {"$lt": [e, float("inf")]}]
            if a.ge is not None:
                checks.append({"$gte": [e, a.ge]})
            if a.le is not None:
                checks.append({"$lte": [e, a.le]})
        pipeline: list[dict[str, Any]] = [{"$set": sets}]
        if "$unset" in plain_doc:
            pipeline.append({"$unset": list(plain_doc["$unset"])})
        conds.append({"$expr": {"$and": checks}})
        return pipeline, {"$and": conds}

    def _mexpr(self, e: Any) -> Any:
        """An ``F`` expression as an aggregation expression over the stored document."""
        if type(e) is Expr:
            op = {"+": "$add", "-": "$subtract", "*": "$multiply"}[e.op]
            return {op: [self._mexpr(e.left), self._mexpr(e.right)]}
        if type(e) is F:
            return "$" + self.paths[e.name]
        return {"$literal": e}

    def build(self, doc: dict[str, Any]) -> Any:
        """An item from a document, without validation (a value its converter refuses:
        ``BackendError``, see ``unreadable``)."""
        d: dict[str, Any] = {}
        for name, path, conv in self._dec:
            v = doc.get(path)
            if v is None:
                # None is stored as an absent field: a required attribute absent was
                # added after the item was written (its default, or an error)
                d[name] = (None if name in self._nullable
                           else absent_value(self.meta, name, doc.get("_id")))
            elif conv is None:
                d[name] = v
            else:
                try:
                    d[name] = conv(v)
                except Exception as exc:
                    raise unreadable(self.meta.name, exc) from exc
        return self.meta.build(d)

    def key_of(self, item: Any) -> tuple[Any, ...]:
        """The key tuple of an item."""
        return tuple(getattr(item, n) for n in self.key_names)

    def guard(self, doc: dict[str, Any]) -> dict[str, Any]:
        """A query matching the document only while no stored attribute changed."""
        q: dict[str, Any] = {"_id": doc["_id"]}
        for _name, path, _conv in self._dec:
            if path != "_id":
                q[path] = {"$eq": doc.get(path)}
        return q

    def conflict_text(self, values: dict[str, Any]) -> str:
        """What a duplicate key / unique value error says."""
        m = self.meta
        parts = [f"{n}={values.get(n)!r}" for n in m.key.attrs if n in values]
        parts += [f"{n}={values.get(n)!r}" for names in m.unique_sets for n in names
                  if n in values and n not in m.key.attrs]
        return f"{m.name}: an item with " + ", ".join(parts) + " exists already"

    # filters -------------------------------------------------------------------------
    def can_compile(self, node: Node) -> bool:
        """True when the whole node runs on the server with local evaluation's meaning
        (and nests at most ``MAX_DEPTH`` deep: a BSON document nests at most 100 levels,
        two per And/Or/Not)."""
        if type(node) is Cond:
            return self._cond_native(node)
        return all(self._cond_native(c) for c in conds(node)) and depth(node) <= MAX_DEPTH

    def fits(self, node: Node) -> bool:
        """True when the query document stays well within BSON's 16 MiB."""
        size = 0
        for c in conds(node):
            size += _bson_size(c.value)
        return size <= MAX_QUERY_BYTES

    def _cond_native(self, node: Cond) -> bool:
        """True when one condition runs natively with local evaluation's meaning."""
        a = self.attrs.get(node.attr)
        if a is None or (a.kind == JSON and node.op == "contains"):
            return self._path_native(node)  # a nested path or list membership
        if node.op == "isnull":
            return True
        kind = a.kind
        if kind in (DECIMAL, JSON):
            return False
        if node.op in LIST_OPERATORS and len(node.value) > MAX_IN:
            return False
        if kind == BYTES and node.op in ORDER_OPERATORS:
            return False
        return True

    def _path_native(self, node: Cond) -> bool:
        """True when a nested condition runs as a dotted path with local evaluation's
        meaning (:func:`~storeroom.query.paths.document_path`; no i-operator, ints within
        64 bits, lists within ``MAX_IN``)."""
        if document_path(self.meta, node) is None:
            return False
        op = node.op
        if op == "isnull":
            return True
        if op in ("iexact", "icontains", "istartswith", "iendswith"):  # no shadow field
            return False
        values = node.value if op in LIST_OPERATORS or op == "range" else (node.value,)
        if op in LIST_OPERATORS and len(values) > MAX_IN:
            return False
        return all(type(v) is not int or INT64_MIN <= v <= INT64_MAX for v in values)

    def split(self, node: Node) -> Split:
        """What of a filter runs on the server."""
        return split_filter(node, self.can_compile, self.fits, list_superset)

    def compile(self, node: Node) -> dict[str, Any]:
        """The query document of an all-native node."""
        return fold(node, self._leaf, _junction_query)

    def _leaf(self, node: Any) -> dict[str, Any]:
        if not isinstance(node, Cond):
            raise TypeError(f"not a filter node: {node!r}")
        return self._cond(node)

    def key_query(self, key: tuple[Any, ...], pre: Node | None = None) -> dict[str, Any]:
        """The query of the item at key (and a native precondition)."""
        q = {"_id": self.key_id(key)}
        if pre is None:
            return q
        return {"$and": [q, self.compile(pre)]}

    def _cond(self, c: Cond) -> dict[str, Any]:
        name, op, value = c.attr, c.op, c.value
        a = self.attrs.get(name)
        if a is None or (a.kind == JSON and op == "contains"):
            return self._path_cond(c)
        path = self.paths[name]
        if op == "isnull":
            if a.kind == JSON:  # None is no field; an array holding null is no None
                return {path: {"$exists": not value}}
            return {path: None} if value else {path: {"$ne": None}}
        if op in ("eq", "ne", "lt", "lte", "gt", "gte"):
            cond: dict[str, Any] = {f"${op}": self.value(name, value)}
            if op not in ("eq", "ne") and name in self.floats:
                cond["$ne"] = _NAN  # Python: NaN is neither less nor greater
            return {path: cond}
        if op in ("in", "not_in"):
            mop = "$in" if op == "in" else "$nin"
            return {path: {mop: [self.value(name, v) for v in value]}}
        if op == "range":
            cond = {"$gte": self.value(name, value[0]), "$lte": self.value(name, value[1])}
            if name in self.floats:
                cond["$ne"] = _NAN
            return {path: cond}
        text = _plain(value)
        if op == "iexact":
            return {f"{LOWER}.{name}": {"$eq": text.lower()}}
        if op.startswith("i"):
            return {f"{LOWER}.{name}": {"$regex": text_regex(op, text.lower())}}
        return {path: {"$regex": text_regex(op, text)}}

    def _path_cond(self, c: Cond) -> dict[str, Any]:
        """The query of a native nested condition: a dotted path of escaped keys."""
        info = path_info(self.meta, c.attr)
        path = ".".join((self.paths[info.root], *map(esc_key, info.keys)))
        op, value = c.op, _plain(c.value)
        if op == "isnull":  # missing, null, or a null on the way (no array on a strict path)
            return {path: None} if value else {path: {"$ne": None}}
        if info.shape == LIST:  # membership: an element equal to the value
            return {path: {"$elemMatch": {"$eq": value}}}
        if op in ("eq", "ne", "lt", "lte", "gt", "gte"):
            return {path: {f"${op}": value}}
        if op in ("in", "not_in"):
            return {path: {"$in" if op == "in" else "$nin": [_plain(v) for v in value]}}
        if op == "range":
            return {path: {"$gte": _plain(value[0]), "$lte": _plain(value[1])}}
        return {path: {"$regex": text_regex(op, value)}}

    # ordering -------------------------------------------------------------------------
    def can_order(self, order: Order) -> bool:
        """True when the server sorts by this order exactly as ``sort_items`` does."""
        return all(self.attrs[n].kind not in (DECIMAL, BYTES, JSON) for n, _ in order)

    def needs_pipeline(self, order: Order) -> bool:
        """True when an optional attribute sorts ascending (the server puts None first)."""
        return any(self.attrs[n].optional and not desc for n, desc in order)

    def sort_spec(self, order: Order) -> list[tuple[str, int]]:
        """The ``sort`` of a find."""
        return [(self.paths[n], -1 if desc else 1) for n, desc in order]

    def pipeline(self, query: dict[str, Any], order: Order, limit: int | None
                 ) -> list[dict[str, Any]]:
        """An aggregation: match, then sort with None last in both directions."""
        flags: dict[str, Any] = {}
        sort: dict[str, int] = {}
        for i, (n, desc) in enumerate(order):
            path = self.paths[n]
            if self.attrs[n].optional:
                flag = f"__null{i}"
                flags[flag] = {"$cond": [{"$eq": [{"$ifNull": [f"${path}", None]}, None]},
                                         1, 0]}
                sort[flag] = 1
            sort[path] = -1 if desc else 1
        stages: list[dict[str, Any]] = [{"$match": query}]
        if flags:
            stages.append({"$addFields": flags})
        stages.append({"$sort": sort})
        if limit is not None:
            stages.append({"$limit": limit})
        drop = {f: 0 for f in flags}
        if self.projection:
            drop.update(self.projection)
        if drop:
            stages.append({"$project": drop})
        return stages

    def group_pipeline(self, query: dict[str, Any], specs: tuple[AggSpec, ...]
                       ) -> list[dict[str, Any]] | None:
        """An aggregation computing ``specs`` over the matches (``$match`` then one
        ``$group``), or None when one is not native (only Count, and Sum / Min / Max /
        Avg of int and float attributes are: other kinds are stored as strings). Avg
        gives the sum and the count (``store.aggregate.finish`` divides)."""
        if not all(s.attr is None or self.attrs[s.attr].value_kind in (INT, FLOAT)
                   for s in specs):
            return None
        group: dict[str, Any] = {"_id": None}
        for i, s in enumerate(specs):
            if s.attr is None:
                group[f"a{i}"] = {"$sum": 1}
                continue
            path = f"${self.paths[s.attr]}"
            present = {"$cond": [{"$eq": [{"$ifNull": [path, None]}, None]}, 0, 1]}
            if s.func == "count":
                group[f"a{i}"] = {"$sum": present}
            elif s.func == "avg":
                group[f"a{i}"] = {"$sum": path}
                group[f"n{i}"] = {"$sum": present}
            else:
                group[f"a{i}"] = {f"${s.func}": path}
        return [{"$match": query}, {"$group": group}]

    # indexes --------------------------------------------------------------------------
    def index_specs(self) -> list[tuple[list[tuple[str, int]], dict[str, Any]]]:
        """(keys, options) of every index the model declares."""
        out: list[tuple[list[tuple[str, int]], dict[str, Any]]] = []
        if not self.single:
            out.append(([(n, 1) for n in self.key_names], {"name": f"key_{self.name}"}))
        for ix in self.meta.indexes:
            keys = [(self.paths[a], 1) for a in ix.attrs]
            opts: dict[str, Any] = {"name": ix.index_name(self.name)}
            if ix.unique:
                opts["unique"] = True
                optional = [self.paths[a] for a in ix.attrs if self.meta.attrs[a].optional]
                if optional:
                    # an item whose attribute is None is not constrained (as NULL in SQL)
                    opts["partialFilterExpression"] = {p: {"$exists": True} for p in optional}
            out.append((keys, opts))
        return out


def _junction_query(node: Node, parts: list[dict[str, Any]]) -> dict[str, Any]:
    t = type(node)
    if t is Not:
        return {"$nor": [parts[0]]}
    if not parts:
        return {} if t is And else dict(NOTHING_QUERY)
    if len(parts) == 1:
        return parts[0]
    return {"$and" if t is And else "$or": parts}


def _bson_size(value: Any) -> int:
    """An upper bound of the BSON bytes a filter value takes (with its element name)."""
    value = _plain(value)
    if isinstance(value, str):
        return 4 * len(value) + 16
    if isinstance(value, bytes):
        return len(value) + 16
    if isinstance(value, tuple | list):
        return sum(_bson_size(v) + 8 for v in value) + 16
    return 48


def _plain(v: Any) -> Any:
    return v.value if isinstance(v, enum.Enum) else v


def _lower(v: Any) -> str | None:
    v = _plain(v)
    return v.lower() if isinstance(v, str) else None

"""What the sync and async DynamoDB backends share: the table layout, filters compiled to
DynamoDB expressions, access-path planning (Query on a key or index, else Scan) and
error translation. No I/O here.

Layout of a store ``t``:

- table ``t``: partition key = the first key attribute, sort key = the second; a key of
  more than two attributes sorts on a synthetic ``~sk`` attribute (an injective encoding
  of the remaining parts, used for exact lookups only). Every attribute is also stored
  under its own name.
- one global secondary index per model index (first attribute: partition key, second:
  sort key), projection ALL, created with the table (on-demand billing).
- table ``t.storeroom`` (only when needed): uniqueness records ``u\\x1fattr\\x1fvalue``
  (owner = the item's key string) and ``generated.sequence()`` counters.

Planning: a filter that pins the partition key of the table or of an index with ``eq``
becomes a Query (the sort key condition is derived from the filter); anything else is
a Scan with a FilterExpression. Query results come in sort-key order, which serves
``order_by`` natively when the first ordered attribute is that sort key. A cursor's
position continues a Query on the table's own order as its ``ExclusiveStartKey``
(``start_key``); elsewhere its keyset condition joins the filter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ...errors import BackendError, UnsupportedOperation
from ...model.stored import ModelMeta
from ...model.types import BOOL, DECIMAL, INT, JSON
from ...query.ast import (
    EVERYTHING,
    NOTHING,
    OPERATORS,
    And,
    Cond,
    Node,
    Not,
    Or,
    conds,
    depth,
    fold,
    weight,
)
from ...query.evaluate import compile_local, plain
from ...query.intervals import Interval, hull, meet, of_cond
from ...query.order import Order
from ...query.paths import LIST, PathInfo, document_path, path_info
from ...query.prepare import junction, negate, simplify
from ...store.fexpr import F, linear
from ...store.plan import Split, list_superset, split_filter
from ..common import make_store_meta, unique_id, unique_text, unique_value, unreadable
from ..evolution import absent_value
from .codec import AttrCodec, decimal_fits, esc_s

SK = "~sk"  # synthetic sort key of a key with more than two attributes
AUX_KEY = "k"
LOCAL_OPS = frozenset({"icontains", "istartswith", "iendswith", "iexact", "endswith"})
NATIVE_OPS = OPERATORS - LOCAL_OPS
KEY_OPS = frozenset({"eq", "lt", "lte", "gt", "gte", "range", "startswith"})
MAX_IN = 100  # operands of one IN
# DynamoDB's limits on one expression: 4 KB of text, about 1 MB of serialized values.
# A native filter stays below these (with room for the key or existence condition beside
# it) and nests at most MAX_DEPTH deep; the rest of a filter is evaluated locally.
MAX_EXPR = 3800
MAX_VALUES = 800_000
MAX_DEPTH = 32
_SMALL = 40  # a filter of at most this weight (ast.weight) is far below MAX_EXPR


class Expected(Exception):
    """An anticipated service error (``code``) that the caller handles."""

    def __init__(self, code: str, exc: BaseException) -> None:
        super().__init__(code)
        self.code = code
        self.exc = exc
        self.response: dict[str, Any] = getattr(exc, "response", {}) or {}


def error_code(exc: BaseException) -> str:
    """The DynamoDB error code of a botocore ``ClientError`` ('' for anything else)."""
    resp = getattr(exc, "response", None)
    if isinstance(resp, dict):
        return str(resp.get("Error", {}).get("Code", ""))
    return ""


def wrap_error(exc: BaseException, what: str) -> Exception:
    """A storeroom error for a driver error (the caller raises it ``from exc``)."""
    code = error_code(exc)
    if code == "UnknownOperationException":
        return UnsupportedOperation(
            f"{what}: this DynamoDB endpoint does not support the operation "
            f"({code}; dynalite lacks TransactWriteItems - use moto_server or AWS)")
    msg = str(exc) or type(exc).__name__
    return BackendError(f"{what}: {msg}")


# expressions ---------------------------------------------------------------------------
class Expr:
    """Collects the placeholders of one request's expressions."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self._by_name: dict[str, str] = {}

    def n(self, attr: str) -> str:
        """The placeholder of an attribute name."""
        ph = self._by_name.get(attr)
        if ph is None:
            ph = f"#n{len(self._by_name)}"
            self._by_name[attr] = ph
            self.names[ph] = attr
        return ph

    def v(self, av: dict[str, Any]) -> str:
        """The placeholder of an attribute value."""
        ph = f":v{len(self.values)}"
        self.values[ph] = av
        return ph

    def params(self) -> dict[str, Any]:
        """``ExpressionAttributeNames`` / ``Values`` for a request (only when used)."""
        out: dict[str, Any] = {}
        if self.names:
            out["ExpressionAttributeNames"] = self.names
        if self.values:
            out["ExpressionAttributeValues"] = self.values
        return out


_EXPRS = ("KeyConditionExpression", "FilterExpression", "ConditionExpression",
          "UpdateExpression", "ProjectionExpression")
_PLACEHOLDER = re.compile(r"[#:]\w+")


def prune(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` without placeholders no expression uses (DynamoDB rejects those); a
    compiled filter may fold to a constant after placeholders were made."""
    names = params.get("ExpressionAttributeNames")
    values = params.get("ExpressionAttributeValues")
    if not names and not values:
        return params
    used = set(_PLACEHOLDER.findall(" ".join(str(params[k]) for k in _EXPRS if k in params)))
    out = dict(params)
    for key, table in (("ExpressionAttributeNames", names), ("ExpressionAttributeValues",
                                                             values)):
        if table is None:
            continue
        kept = {k: v for k, v in table.items() if k in used}
        if kept:
            out[key] = kept
        else:
            del out[key]
    return out


Compiled = str | bool  # an expression, or a constant


def _and(parts: Iterable[Compiled]) -> Compiled:
    out: list[str] = []
    for p in parts:
        if p is False:
            return False
        if p is True:
            continue
        out.append(p)
    if not out:
        return True
    return out[0] if len(out) == 1 else "(" + " AND ".join(out) + ")"


def _or(parts: Iterable[Compiled]) -> Compiled:
    out: list[str] = []
    for p in parts:
        if p is True:
            return True
        if p is False:
            continue
        out.append(p)
    if not out:
        return False
    return out[0] if len(out) == 1 else "(" + " OR ".join(out) + ")"


def _not(p: Compiled) -> Compiled:
    if isinstance(p, bool):
        return not p
    return f"(NOT {p})"


def _in_matches(av: dict[str, Any]) -> bool:
    """False for an attribute value that dynalite's ``IN`` never matches (``""``, ``b""``,
    ``false``: a falsy raw value); real DynamoDB and moto match them."""
    return bool(next(iter(av.values())))


def _junction_expr(node: Node, parts: list[Compiled]) -> Compiled:
    t = type(node)
    if t is Not:
        return _not(parts[0])
    return _and(parts) if t is And else _or(parts)


def _value_size(value: Any) -> int:
    """An upper bound of a filter value's serialized size (JSON escapes take 6 bytes)."""
    if isinstance(value, str):
        return 6 * len(value) + 16
    if isinstance(value, bytes):
        return 2 * len(value) + 16
    if isinstance(value, tuple | list):
        return sum(_value_size(v) + 8 for v in value)
    return 64


class FilterCompiler:
    """Prepared filters to DynamoDB condition expressions, two-valued like local evaluation.

    ``None`` is a missing attribute: comparisons on it are false, ``<>`` is guarded
    with ``attribute_not_exists`` and ``NOT`` inverts a two-valued result.
    """

    def __init__(self, codecs: dict[str, AttrCodec], meta: ModelMeta | None = None) -> None:
        self.codecs = codecs
        self.meta = meta
        self._leaves: dict[str, AttrCodec] = {}  # codecs of nested leaves, by path

    def can_compile(self, node: Node) -> bool:
        """True when the whole node runs on the server (and nests at most MAX_DEPTH)."""
        if type(node) is Cond:
            return self._cond_native(node)
        return all(self._cond_native(c) for c in conds(node)) and depth(node) <= MAX_DEPTH

    def fits(self, node: Node) -> bool:
        """True when the node's expression and values stay within one request's limits."""
        size = 0
        for c in conds(node):
            size += _value_size(c.value)
        if size > MAX_VALUES:
            return False
        if weight(node) <= _SMALL:
            return True
        compiled = self.compile(node, Expr())
        return isinstance(compiled, bool) or len(compiled.encode()) <= MAX_EXPR

    def _cond_native(self, node: Cond) -> bool:
        """True when one condition runs natively with local evaluation's meaning."""
        c = self.codecs.get(node.attr)
        if c is None or (c.doc and node.op == "contains"):
            return self._path_native(node)  # a nested path or list membership
        op = node.op
        if op == "isnull":
            return True
        if op in LOCAL_OPS or c.attr.kind == JSON:
            return False
        return self._operands_native(c, node)

    def _operands_native(self, c: AttrCodec, node: Cond) -> bool:
        """True when a comparison through codec ``c`` agrees with local evaluation on
        every endpoint (operators, operand ranges, string order)."""
        op = node.op
        if c.attr.kind == BOOL and c.tag == "BOOL" and op in ("lt", "lte", "gt", "gte",
                                                             "range"):
            return False
        if op == "contains" and c.keyish and node.value[:1] == "\x00":
            return False
        operands = node.value if op in ("in", "not_in", "range") else (node.value,)
        if op in ("lt", "lte", "gt", "gte", "range") and not all(map(c.order_safe, operands)):
            return False  # dynalite would compare by UTF-16 code units
        return all(c.fits(v) for v in operands)

    def _leaf_codec(self, name: str) -> tuple[PathInfo, AttrCodec]:
        """The resolved path ``name`` and the codec of its leaf (a list's element)."""
        assert self.meta is not None
        info = path_info(self.meta, name)
        codec = self._leaves.get(name)
        if codec is None:
            a = info.attr if info.attr is not None else info.element_attr
            assert a is not None
            codec = self._leaves[name] = AttrCodec(a, False)
        return info, codec

    def _path_native(self, node: Cond) -> bool:
        """True when a nested condition runs as a document path (``#a.#b``) with local
        evaluation's meaning (:func:`~storeroom.query.paths.document_path`; operands as
        for a top-level attribute of the leaf's kind: ints of 38 digits at most)."""
        if self.meta is None or document_path(self.meta, node) is None:
            return False
        op = node.op
        if op == "isnull":
            return True
        if op in LOCAL_OPS:
            return False
        info, codec = self._leaf_codec(node.attr)
        operands = node.value if op in ("in", "not_in", "range") else (node.value,)
        if not all(type(v) is not int or decimal_fits(Decimal(v)) for v in operands):
            return False  # beyond DynamoDB's numbers: no stored value equals it
        if info.shape == LIST:  # dynalite's contains() never finds "" nor a bool
            av = codec.av(node.value)
            return "BOOL" not in av and _in_matches(av)
        return self._operands_native(codec, node)

    def compile(self, node: Node, ex: Expr) -> Compiled:
        """The condition expression of a node (or a constant)."""
        return fold(node, lambda c: self._leaf(c, ex), _junction_expr)

    def _leaf(self, c: Any, ex: Expr) -> Compiled:
        if not isinstance(c, Cond):
            raise TypeError(f"not a filter node: {c!r}")
        return self._cond(c, ex)

    def _cond(self, c: Cond, ex: Expr) -> Compiled:
        codec = self.codecs.get(c.attr)
        if codec is None or (codec.doc and c.op == "contains"):
            return self._path_cond(c, ex)
        op, value = c.op, c.value
        if op == "isnull":
            return f"attribute_not_exists({ex.n(c.attr)})" if value else \
                f"attribute_exists({ex.n(c.attr)})"
        return self._compare(ex.n(c.attr), codec, c, ex)

    def _path_cond(self, c: Cond, ex: Expr) -> Compiled:
        """A native nested condition on the document path ``#root.#k1.#k2``."""
        assert self.meta is not None
        info = path_info(self.meta, c.attr)
        a = ".".join([ex.n(info.root), *(ex.n(esc_s(k)) for k in info.keys)])
        op, value = c.op, c.value
        if op == "isnull":  # a None inside a document is stored as NULL
            null = ex.v({"S": "NULL"})
            if value:
                return f"(attribute_not_exists({a}) OR attribute_type({a}, {null}))"
            return f"(attribute_exists({a}) AND NOT attribute_type({a}, {null}))"
        info, codec = self._leaf_codec(c.attr)
        if info.shape == LIST:  # membership
            return f"contains({a}, {ex.v(codec.av(value))})"
        if op in ("contains", "startswith") and value == "":  # any string, not NULL
            return f"attribute_type({a}, {ex.v({'S': 'S'})})"
        return self._compare(a, codec, c, ex)

    def _compare(self, a: str, codec: AttrCodec, c: Cond, ex: Expr) -> Compiled:
        """A comparison of the attribute (or document path) ``a`` through ``codec``."""
        op, value = c.op, c.value
        if op in ("eq", "lt", "lte", "gt", "gte"):
            sym = {"eq": "=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}[op]
            return f"{a} {sym} {ex.v(codec.av(value))}"
        if op == "ne":
            return f"(attribute_not_exists({a}) OR {a} <> {ex.v(codec.av(value))})"
        if op in ("in", "not_in"):
            # dynalite's IN never matches an empty string, empty bytes or false (it tests
            # the attribute's raw value for truth): those operands are compared with =
            avs = [codec.av(v) for v in value]
            eqs = [f"{a} = {ex.v(av)}" for av in avs if not _in_matches(av)]
            vals = [av for av in avs if _in_matches(av)]
            chunks = [vals[i:i + MAX_IN] for i in range(0, len(vals), MAX_IN)]
            inside = _or([*eqs, *(f"{a} IN (" + ", ".join(ex.v(av) for av in ch) + ")"
                                  for ch in chunks)])
            return inside if op == "in" else _not(inside)
        if op == "range":
            lo, hi = value
            if plain(lo) > plain(hi):
                return False
            # not BETWEEN: dynalite and moto fail it when a bound is the empty string
            return f"({a} >= {ex.v(codec.av(lo))} AND {a} <= {ex.v(codec.av(hi))})"
        if op in ("contains", "startswith"):
            if value == "":
                return f"attribute_exists({a})"
            text = esc_s(value) if codec.keyish and op == "startswith" else value
            fn = "contains" if op == "contains" else "begins_with"
            return f"{fn}({a}, {ex.v({'S': text})})"
        raise UnsupportedOperation(f"operator {op!r} is not compiled for DynamoDB")


# planning ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Path:
    """A way to Query: the table or one global secondary index."""

    index: str | None
    pk: str
    sk: str | None  # model attribute of the sort key (None: no sort key, or synthetic)
    synthetic: bool = False  # the table's sort key is ``~sk``
    key_names: frozenset[str] = frozenset()  # attributes a Query filter may not reference


@dataclass
class Plan:
    """How to fetch the items of a filter."""

    op: str  # "query" | "scan" | "none"
    params: dict[str, Any] = field(default_factory=dict)
    local: Node = EVERYTHING  # re-checked on returned items
    ordered: bool = False  # items come in the requested order (see ``tie``)
    tie: str | None = None  # sort-key attribute whose ties need sorting locally
    path: Path | None = None


def implied_interval(node: Node, attr: str) -> Interval | None:
    """A range of ``attr`` that every item matching ``node`` lies in (None: unknown)."""
    def leaf(c: Any) -> Interval | None:
        return of_cond(c) if isinstance(c, Cond) and c.attr == attr else None

    def combine(n: Node, ivs: list[Interval | None]) -> Interval | None:
        t = type(n)
        acc: Interval | None = None
        if t is And:
            for iv in ivs:
                if iv is not None:
                    acc = iv if acc is None else meet(acc, iv)
            return acc
        if t is Or:
            for iv in ivs:
                if iv is None or not iv.bounded:
                    return None
                acc = iv if acc is None else hull(acc, iv)
            return acc
        return None
    return fold(node, leaf, combine)


class _Known:
    """An object whose attributes are the pinned values (for partial evaluation)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


def peval(node: Node, known: dict[str, Any], nonnull: frozenset[str]) -> Node:
    """``node`` with conditions on pinned attributes (and ``isnull`` on attributes that
    are never None) replaced by their truth value, simplified."""
    def leaf(c: Node) -> Node:
        if not isinstance(c, Cond):
            return c
        if c.attr in known:
            return EVERYTHING if compile_local(c)(_Known(known)) else NOTHING
        if c.op == "isnull" and c.attr in nonnull:
            return NOTHING if c.value else EVERYTHING
        return c

    def combine(n: Node, kids: list[Node]) -> Node:
        return negate(kids[0]) if type(n) is Not else junction(type(n), kids)
    return fold(node, leaf, combine)


def attrs_of(node: Node) -> set[str]:
    """Every attribute a filter mentions (the root attribute of a nested path)."""
    from ...query.ast import conds
    return {c.attr.split(".", 1)[0] for c in conds(node)}


MAX_SAME_TERMS = 64
"""Most terms of a document compared element by element (``same_value``)."""


def same_value(a: str, av: dict[str, Any], ex: Expr) -> str:
    """The condition "the attribute (or document path) ``a`` holds ``av``".

    A map or list is compared element by element, with ``size`` (dynalite has no ``=`` on
    maps and lists; DynamoDB compares them as values, whatever the order of map keys),
    and with ``=`` when that would take more than ``MAX_SAME_TERMS`` terms."""
    parts: list[str] = []

    def walk(path: str, v: dict[str, Any]) -> bool:
        ((tag, x),) = v.items()
        if len(parts) > MAX_SAME_TERMS:
            return False
        if tag == "NULL":
            parts.append(f"attribute_type({path}, {ex.v({'S': 'NULL'})})")
            return True
        if tag not in ("M", "L"):
            parts.append(f"{path} = {ex.v(v)}")
            return True
        parts.append(f"attribute_type({path}, {ex.v({'S': tag})})")
        parts.append(f"size({path}) = {ex.v({'N': str(len(x))})}")
        if tag == "M":
            return all(walk(f"{path}.{ex.n(k)}", y) for k, y in x.items())
        return all(walk(f"{path}[{i}]", y) for i, y in enumerate(x))

    if not walk(a, av):
        return f"{a} = {ex.v(av)}"
    return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"


class DynamoCore:
    """Everything about one model's DynamoDB table that needs no I/O."""

    def __init__(self, meta: ModelMeta, table: str, *, max_local_sort: int | None = 10_000,
                 consistent: bool = True) -> None:
        self.meta = meta
        self.table = table
        self.aux_table = f"{table}.storeroom"
        self.max_local_sort = max_local_sort
        self.consistent = consistent
        key = meta.key.attrs
        self.key_names = key
        # global secondary indexes: (name, partition attr, sort attr or None)
        gsis: list[tuple[str, str, str | None]] = []
        seen: set[tuple[str, ...]] = set()
        for ix in meta.indexes:
            parts = [a for a in ix.attrs[:2]]
            if any(meta.attrs[a].kind == JSON or not meta.attrs[a].store for a in parts):
                continue
            if tuple(parts) in seen or tuple(parts) == tuple(key[:2]) or len(gsis) >= 20:
                continue
            seen.add(tuple(parts))
            name = ix.index_name(table)[:255]
            gsis.append((name, parts[0], parts[1] if len(parts) > 1 else None))
        self.gsis = gsis
        keyish = set(key[:2])
        for _, p, s in gsis:
            keyish.add(p)
            if s is not None:
                keyish.add(s)
        self.codecs: dict[str, AttrCodec] = {
            a.name: AttrCodec(a, a.name in keyish) for a in meta.stored_attrs}
        self.compiler = FilterCompiler(self.codecs, meta)
        # Decimal digits: DynamoDB may normalize numbers (1.10 -> 1.1), so the exact text
        # is kept beside the number in "<name>~d" (filters and order use the number)
        self.decimals = frozenset(a.name for a in meta.stored_attrs if a.kind == DECIMAL)
        self.nonnull = frozenset(a.name for a in meta.stored_attrs if not a.optional)
        self.pk = key[0]
        self.synthetic = len(key) > 2
        self.sk_name: str | None = SK if self.synthetic else (key[1] if len(key) == 2 else None)
        table_path = Path(None, key[0], key[1] if len(key) == 2 else None, self.synthetic,
                          frozenset(n for n in (key[0], self.sk_name) if n))
        self.paths: list[Path] = [table_path] + [
            Path(name, p, s, False, frozenset(n for n in (p, s) if n)) for name, p, s in gsis]
        # unique sets by ``unique_id`` (an attribute's name for one attribute)
        self.unique_names: dict[str, tuple[str, ...]] = {
            unique_id(names): names for names in meta.unique_sets}
        self.unique = tuple(self.unique_names)
        self.unique_attrs = frozenset(n for names in meta.unique_sets for n in names)
        self.seq = meta.sequence_attr.name if meta.sequence_attr is not None else None
        self.needs_aux = bool(self.unique) or self.seq is not None
        self.store_meta = make_store_meta(meta, "dynamodb", native_ops=NATIVE_OPS,
                                          atomic_batch=True, max_batch=1000, max_page=1000,
                                          transactions=False)

    # schema ----------------------------------------------------------------------------
    def table_spec(self) -> dict[str, Any]:
        """The CreateTable request of the store's table."""
        codecs = self.codecs
        defs: dict[str, str] = {}
        schema = [{"AttributeName": self.pk, "KeyType": "HASH"}]
        defs[self.pk] = codecs[self.pk].key_type
        if self.sk_name is not None:
            schema.append({"AttributeName": self.sk_name, "KeyType": "RANGE"})
            defs[self.sk_name] = "S" if self.synthetic else codecs[self.sk_name].key_type
        spec: dict[str, Any] = {"TableName": self.table, "KeySchema": schema,
                                "BillingMode": "PAY_PER_REQUEST"}
        gsis = []
        for name, p, s in self.gsis:
            gsi, gdefs = self.gsi_spec(name, p, s)
            defs.update(gdefs)
            gsis.append(gsi)
        if gsis:
            spec["GlobalSecondaryIndexes"] = gsis
        spec["AttributeDefinitions"] = [{"AttributeName": n, "AttributeType": t}
                                        for n, t in defs.items()]
        return spec

    def gsi_spec(self, name: str, p: str, s: str | None
                 ) -> tuple[dict[str, Any], dict[str, str]]:
        """One global secondary index (as CreateTable / UpdateTable's ``Create`` take it)
        and the attribute definitions of its keys."""
        ks = [{"AttributeName": p, "KeyType": "HASH"}]
        defs = {p: self.codecs[p].key_type}
        if s is not None:
            ks.append({"AttributeName": s, "KeyType": "RANGE"})
            defs[s] = self.codecs[s].key_type
        return ({"IndexName": name, "KeySchema": ks, "Projection": {"ProjectionType": "ALL"}},
                defs)

    def missing_gsis(self, described: dict[str, Any]) -> list[tuple[str, str, str | None]]:
        """The model's GSIs that a DescribeTable's ``Table`` lacks."""
        have = {g["IndexName"] for g in described.get("GlobalSecondaryIndexes", ())}
        return [g for g in self.gsis if g[0] not in have]

    def without_gsis(self, names: set[str]) -> None:
        """Stop querying the GSIs ``names`` (the endpoint could not add them: dynalite
        ignores UpdateTable's GlobalSecondaryIndexUpdates); searches that would use
        them scan instead. Their attributes keep the key form, so a later addition
        finds the stored items ready."""
        self.paths = [p for p in self.paths if p.index not in names]

    def reencoded(self, raw: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
        """The attributes among ``names`` (keys of an index being added) that ``raw``, an
        item written before the index existed, holds in the non-key form, in the key
        form (a bool as a number, an empty string / bytes escaped): ``{name: (old av,
        new av)}``, empty when nothing differs."""
        out: dict[str, Any] = {}
        for n in names:
            codec = self.codecs[n]
            av = raw.get(n)
            if av is None or codec.doc:
                continue
            plain = AttrCodec(codec.attr, False)
            if plain.tag not in av:
                continue  # written in the key form already
            if plain.tag == codec.tag and av[plain.tag] not in ("", b""):
                # a string's key form differs only when it is empty or starts with NUL;
                # the latter cannot be told from a key form, so only "" is rewritten
                # (a re-run of an interrupted create_tables must change nothing)
                continue
            v = plain.load(av)
            if v is None:
                continue
            new = codec.av(v)
            if new != av:
                out[n] = (av, new)
        return out

    def schema_marker(self, sid: str) -> dict[str, Any]:
        """The companion-table key recording that unique set ``sid``'s items cover every
        stored item (``create_tables`` builds them once for items written before)."""
        return {AUX_KEY: {"S": f"schema\x1f{sid}"}}

    def defaults_marker(self) -> dict[str, Any]:
        """The companion-table key of the record of the attributes whose defaults
        ``create_tables`` wrote into the stored items that lacked them (a string set
        ``done``; see ``evolution.backfilled``)."""
        return {AUX_KEY: {"S": "schema\x1f\x1fdefaults"}}

    def default_sets(self, name: str, value: Any, ex: Expr) -> list[str]:
        """The ``SET`` clauses writing attribute ``name``'s default ``value`` as a write
        of the model stores it (key form for an index key, a Decimal's exact text)."""
        out = [f"{ex.n(name)} = {ex.v(self.codecs[name].av(value))}"]
        if name in self.decimals:
            out.append(f"{ex.n(name + '~d')} = {ex.v({'S': str(value)})}")
        return out

    def aux_spec(self) -> dict[str, Any]:
        """The CreateTable request of the companion table (uniqueness, sequences)."""
        return {"TableName": self.aux_table, "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [{"AttributeName": AUX_KEY, "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": AUX_KEY, "AttributeType": "S"}]}

    # values ----------------------------------------------------------------------------
    def synthetic_sk(self, parts: Iterable[Any]) -> str:
        """The ``~sk`` value of the key parts after the first."""
        codecs = [self.codecs[n] for n in self.key_names[1:]]
        return json.dumps([c.canonical(p) for c, p in zip(codecs, parts, strict=True)],
                          ensure_ascii=False, separators=(",", ":"))

    def key_av(self, key: tuple[Any, ...]) -> dict[str, Any]:
        """The DynamoDB ``Key`` of a key tuple."""
        out = {self.pk: self.codecs[self.pk].av(key[0])}
        if self.synthetic:
            out[SK] = {"S": self.synthetic_sk(key[1:])}
        elif self.sk_name is not None:
            out[self.sk_name] = self.codecs[self.sk_name].av(key[1])
        return out

    def key_of_raw(self, raw: dict[str, Any]) -> tuple[Any, ...]:
        """The key tuple of a raw item."""
        return tuple(self.codecs[n].load(raw[n]) for n in self.key_names)

    def encode_item(self, values: dict[str, Any]) -> dict[str, Any]:
        """A full item (None values left out)."""
        codecs = self.codecs
        item = {n: codecs[n].av(v) for n, v in values.items() if v is not None and n in codecs}
        for n in self.decimals:
            if values.get(n) is not None:
                item[n + "~d"] = {"S": str(values[n])}
        if self.synthetic:
            item[SK] = {"S": self.synthetic_sk(tuple(values[n] for n in self.key_names[1:]))}
        return item

    def build(self, raw: dict[str, Any]) -> Any:
        """A model instance from a raw item, without validation (a value its codec
        refuses: ``BackendError``, see ``unreadable``)."""
        values: dict[str, Any] = {}
        nonnull = self.nonnull
        for name, codec in self.codecs.items():
            av = raw.get(name)
            if av is not None:
                try:
                    values[name] = codec.load(av)
                except Exception as exc:  # a value another program wrote
                    raise unreadable(self.meta.name, exc) from exc
            elif name in nonnull:
                # None is stored as an absent attribute: a required one absent was added
                # after the item was written (its default, or an error naming it)
                values[name] = absent_value(self.meta, name, self.key_of_raw(raw))
            else:
                values[name] = None
        for name in self.decimals:
            text = raw.get(name + "~d")
            if text is not None and values[name] is not None:
                try:
                    exact = Decimal(text["S"])
                except Exception as exc:
                    raise unreadable(self.meta.name, exc) from exc
                if exact == values[name]:
                    values[name] = exact
        return self.meta.build(values)

    def key_str(self, key: tuple[Any, ...]) -> str:
        """The text naming a key tuple in uniqueness records (a fixed internal form)."""
        return self.meta.key.internal_str(key if len(key) > 1 else key[0])

    def unique_key(self, sid: str, value: tuple[Any, ...]) -> dict[str, Any]:
        """The companion-table key of a unique set's values (``u<US>attr<US>value`` for
        one attribute; each value length-prefixed for several, unambiguous)."""
        names = self.unique_names[sid]
        canon = [self.codecs[n].canonical(v) for n, v in zip(names, value, strict=True)]
        text = canon[0] if len(canon) == 1 else "".join(f"{len(c)}:{c}" for c in canon)
        return {AUX_KEY: {"S": f"u\x1f{sid}\x1f{text}"}}

    def unique_of(self, sid: str, values: dict[str, Any]) -> tuple[Any, ...] | None:
        """The values of unique set ``sid`` in ``values``; None when one is None."""
        return unique_value(self.unique_names[sid], values)

    def unique_of_raw(self, sid: str, raw: dict[str, Any] | None) -> tuple[Any, ...] | None:
        """As ``unique_of``, from a stored item's DynamoDB attributes."""
        if raw is None:
            return None
        out = []
        for n in self.unique_names[sid]:
            if n not in raw:
                return None
            v = self.codecs[n].load(raw[n])
            if v is None:
                return None
            out.append(v)
        return tuple(out)

    def unique_shown(self, sid: str, value: tuple[Any, ...]) -> str:
        """``a='x', b=2``: a unique set's values in an error."""
        return unique_text(self.unique_names[sid], value)

    def seq_key(self) -> dict[str, Any]:
        """The companion-table key of the sequence counter."""
        return {AUX_KEY: {"S": f"seq\x1f{self.seq}"}}

    def native_fexpr(self, values: dict[str, Any]) -> bool:
        """True when ``update_expr`` writes these ``F`` expressions in the ``SET`` itself:
        each an int ``±F(x) + c`` (DynamoDB adds and subtracts operands, never
        multiplies), and no unique attribute changes (that write reads first anyway)."""
        return not any(n in self.unique_attrs for n in values) and all(
            not isinstance(v, F) or (self.meta.attrs[n].kind == INT and linear(v) is not None)
            for n, v in values.items())

    def fexpr_bounds(self, values: dict[str, Any], ex: Expr) -> list[str]:
        """Conditions keeping every ``F`` result inside its ``ge`` / ``le`` and 64 bits:
        the bounds of ``±x + c`` moved onto ``x`` (computed here), as the condition
        sees the values before the update."""
        out = []
        for n, v in values.items():
            if not isinstance(v, F):
                continue
            lin = linear(v)
            assert lin is not None
            x, k, c = lin
            assert x is not None
            a = self.meta.attrs[n]
            lo = Decimal(-(2**63)) if a.ge is None else max(Decimal(str(a.ge)), Decimal(-(2**63)))
            hi = Decimal(2**63 - 1) if a.le is None else min(Decimal(str(a.le)),
                                                               Decimal(2**63 - 1))
            # x + c in [lo, hi] <=> x in [lo - c, hi - c]; c - x in [lo, hi] <=> x in [c - hi, c - lo]
            xlo, xhi = (lo - c, hi - c) if k == 1 else (c - hi, c - lo)
            out.append(f"{ex.n(x)} BETWEEN {ex.v({'N': str(xlo)})} AND {ex.v({'N': str(xhi)})}")
        return out

    def _fexpr_set(self, v: F, ex: Expr) -> str:
        """The right side of ``SET #t = ...`` for a ``native_fexpr`` expression."""
        lin = linear(v)
        assert lin is not None
        x, k, c = lin
        assert x is not None
        if k == -1:
            return f"{ex.v({'N': str(c)})} - {ex.n(x)}"
        return ex.n(x) if c == 0 else f"{ex.n(x)} + {ex.v({'N': str(c)})}"

    def update_expr(self, values: dict[str, Any], ex: Expr) -> str:
        """``SET ... REMOVE ...`` for changes (None removes the attribute; an ``F``
        expression, see ``native_fexpr``, is computed by the ``SET``)."""
        sets, removes = [], []
        for n, v in values.items():
            if isinstance(v, F):
                sets.append(f"{ex.n(n)} = {self._fexpr_set(v, ex)}")
            elif v is None:
                removes.append(ex.n(n))
                if n in self.decimals:
                    removes.append(ex.n(n + "~d"))
            else:
                sets.append(f"{ex.n(n)} = {ex.v(self.codecs[n].av(v))}")
                if n in self.decimals:
                    sets.append(f"{ex.n(n + '~d')} = {ex.v({'S': str(v)})}")
        out = []
        if sets:
            out.append("SET " + ", ".join(sets))
        if removes:
            out.append("REMOVE " + ", ".join(removes))
        return " ".join(out)

    def exists_cond(self, ex: Expr) -> str:
        """The condition "the item exists"."""
        return f"attribute_exists({ex.n(self.pk)})"

    def write_cond(self, pre: Node | None, ex: Expr) -> str | None:
        """The condition of a write by key: the item exists and ``pre`` (all native)
        holds; None when ``pre`` can never hold (nothing to write)."""
        cond = self.exists_cond(ex)
        if pre is None:
            return cond
        compiled = self.compiler.compile(self.normalize(pre), ex)
        if compiled is False:
            return None
        return cond if compiled is True else f"{cond} AND {compiled}"

    def same_values_cond(self, raw: dict[str, Any] | None, names: Iterable[str],
                         ex: Expr) -> str:
        """The condition "these attributes still hold what was read" (optimistic check)."""
        if raw is None:
            return f"attribute_not_exists({ex.n(self.pk)})"
        parts = [self.exists_cond(ex)]
        for n in sorted(set(names)):
            if n in raw:
                parts.append(same_value(ex.n(n), raw[n], ex))
            else:
                parts.append(f"attribute_not_exists({ex.n(n)})")
        return " AND ".join(parts)

    # filters ---------------------------------------------------------------------------
    def split(self, node: Node) -> Split:
        """What of a filter runs on the server."""
        return split_filter(node, self.compiler.can_compile, self.compiler.fits,
                            list_superset)

    def can_order(self, order: Order) -> bool:
        """True when some Query can return items in this order (its first attribute is a
        sort key); ``find`` sorts locally (bounded) when the filter pins no partition."""
        if not order:
            return False
        first = order[0][0]
        for p in self.paths:
            if p.sk == first and not p.synthetic and first in self.nonnull:
                return True
        return False

    def normalize(self, node: Node) -> Node:
        """``isnull`` on attributes that are never None folded to constants."""
        return peval(node, {}, self.nonnull)

    def plan(self, node: Node, order: Order | None) -> Plan:
        """The best Query, else a Scan, for a native filter."""
        node = self.normalize(node)
        if node == NOTHING:
            return Plan("none")
        conj = list(node.items) if isinstance(node, And) else [node]
        best: tuple[tuple[int, ...], Path, Any] | None = None
        for rank, path in enumerate(self.paths):
            pinned = _pinned(conj, path.pk)
            if pinned is _NO:
                continue
            if path.index is not None and path.sk is not None and path.sk not in self.nonnull:
                # items whose sort attribute is None are not in the index
                if peval(node, {path.pk: pinned, path.sk: None}, self.nonnull) != NOTHING:
                    continue
            serves = order is not None and len(order) > 0 and (
                path.sk == order[0][0] if path.sk else path.index is None)
            has_sk = path.sk is not None and implied_interval(node, path.sk) is not None
            score = (int(serves), int(has_sk), -rank)
            if best is None or score > best[0]:
                best = (score, path, pinned)
        if best is None:
            return self._scan(node)
        return self._query(node, best[1], best[2], order)

    def start_key(self, plan: Plan, order: Order, after: tuple[Any, ...]
                  ) -> dict[str, Any] | None:
        """The ``ExclusiveStartKey`` that continues ``plan`` after the item with order
        values ``after``, when the plan's order is the table's own (a Query on the table
        whose first ordered attribute is its sort key, the partition pinned: the table key
        is then unique and totally ordered, so the server resumes exactly there), else
        None (the keyset condition goes into the filter). An index's order is not used:
        its ties on the sort key come in an order of the server's, not the store's."""
        path = plan.path
        if (plan.op != "query" or not plan.ordered or plan.tie is not None or path is None
                or path.index is not None or path.synthetic):
            return None
        if path.sk is not None and path.sk != order[0][0]:
            return None
        pos = {name: v for (name, _), v in zip(order, after, strict=True)}
        try:
            key = tuple(pos[n] for n in self.key_names)
        except KeyError:  # (parse_order always appends the key)
            return None
        if any(v is None for v in key):
            return None
        return self.key_av(key)

    def _scan(self, node: Node) -> Plan:
        ex = Expr()
        cond = self.compiler.compile(node, ex)
        if cond is False:
            return Plan("none")
        params: dict[str, Any] = {"TableName": self.table, "ConsistentRead": self.consistent}
        if cond is not True:
            params["FilterExpression"] = cond
        params.update(ex.params())
        return Plan("scan", params)

    def _query(self, node: Node, path: Path, pinned: Any, order: Order | None) -> Plan:
        ex = Expr()
        rest = peval(node, {path.pk: pinned}, self.nonnull)
        if rest == NOTHING:
            return Plan("none")
        key_parts = [f"{ex.n(path.pk)} = {ex.v(self.codecs[path.pk].av(pinned))}"]
        conj = list(rest.items) if isinstance(rest, And) else [rest]
        exact: Cond | None = None
        if path.sk is not None:
            sk_codec = self.codecs[path.sk]
            iv = implied_interval(rest, path.sk)
            if iv is not None and iv.bounded:
                s = ex.n(path.sk)
                if iv.has_lo and iv.has_hi:
                    if iv.empty:
                        return Plan("none")
                    if iv.point:
                        key_parts.append(f"{s} = {ex.v(sk_codec.av(iv.lo))}")
                    else:
                        key_parts.append(f"{s} BETWEEN {ex.v(sk_codec.av(iv.lo))} AND "
                                         f"{ex.v(sk_codec.av(iv.hi))}")
                elif iv.has_lo:
                    key_parts.append(f"{s} {'>=' if iv.lo_in else '>'} "
                                     f"{ex.v(sk_codec.av(iv.lo))}")
                else:
                    key_parts.append(f"{s} {'<=' if iv.hi_in else '<'} "
                                     f"{ex.v(sk_codec.av(iv.hi))}")
                single = [c for c in conj if isinstance(c, Cond) and c.attr == path.sk]
                if len(single) == 1 and all(
                        not (attrs_of(c) & {path.sk}) for c in conj if c is not single[0]):
                    exact = single[0]  # the key condition says exactly this
            elif sk_codec.text:
                starts = [c for c in conj if isinstance(c, Cond) and c.attr == path.sk
                          and c.op == "startswith" and c.value != ""]
                if starts:
                    text = starts[0].value
                    text = esc_s(text) if sk_codec.keyish else text
                    key_parts.append(f"begins_with({ex.n(path.sk)}, {ex.v({'S': text})})")
                    exact = starts[0]
        elif path.synthetic:
            rest_names = self.key_names[1:]
            vals = []
            for n in rest_names:
                v = _pinned(conj, n)
                if v is _NO:
                    break
                vals.append(v)
            else:
                key_parts.append(f"{ex.n(SK)} = {ex.v({'S': self.synthetic_sk(vals)})}")
        filters: list[Node] = []
        local: list[Node] = []
        for c in conj:
            if c is exact or c == EVERYTHING:
                continue
            if attrs_of(c) & path.key_names:
                local.append(c)
            else:
                filters.append(c)
        params: dict[str, Any] = {"TableName": self.table,
                                  "KeyConditionExpression": " AND ".join(key_parts)}
        if path.index is not None:
            params["IndexName"] = path.index
        else:
            params["ConsistentRead"] = self.consistent
        if filters:
            cond = self.compiler.compile(simplify(And(tuple(filters))), ex)
            if cond is False:
                return Plan("none")
            if cond is not True:
                params["FilterExpression"] = cond
        ordered, tie = False, None
        if order:
            first, desc = order[0]
            if path.index is None and path.sk is None and not path.synthetic:
                ordered = True  # at most one item
            elif path.sk == first:
                ordered = True
                params["ScanIndexForward"] = not desc
                if path.index is not None:
                    tie = first
        params.update(ex.params())
        local_node = simplify(And(tuple(local))) if local else EVERYTHING
        return Plan("query", params, local_node, ordered, tie, path)


class _NoValue:
    pass


_NO: Any = _NoValue()


def _pinned(conj: list[Node], attr: str) -> Any:
    """The value ``attr`` is pinned to by an ``eq`` conjunct (or ``_NO``)."""
    for c in conj:
        if isinstance(c, Cond) and c.attr == attr:
            if c.op == "eq":
                return c.value
            if c.op == "in" and len(c.value) == 1:
                return next(iter(c.value))
    return _NO


__all__ = ["DynamoCore", "Plan", "Path", "Expr", "FilterCompiler", "Expected", "error_code",
           "wrap_error", "NATIVE_OPS", "LOCAL_OPS", "peval", "implied_interval"]

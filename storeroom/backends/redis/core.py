"""What the sync and async Redis backends share: layout, indexes, planning, the Lua program.

Layout under ``base = {prefix}:{table}``:

* ``base:{keystr}``: the item, one JSON string;
* ``base:#keys``: a score-0 sorted set of ``enc(key)`` (every item; key order);
* ``base:#ix:{attr}``: per indexed attribute, a score-0 sorted set of
  ``enc(value) + enc(key)`` for items whose value is not None (``ZRANGEBYLEX`` gives
  value order, key order within a value);
* ``base:#null:{attr}``: ``enc(key)`` of the items whose indexed attribute is None;
* ``base:#uq:{attr}``: per unique attribute, a hash ``enc(value) -> keystr``;
* ``base:#schema``: a hash whose fields name the index structures built over the
  stored items (``create_tables`` builds the missing ones, re-indexing in batches);
* ``base:#seq``: the counter of a ``generated.sequence()`` key;
* ``{prefix}:#secret``: the cursor secret of every store under the prefix.

A key string is percent-encoded, so it never starts with ``#``. Every write (item,
index entries, uniqueness) is one Lua script run: guards first (the item is absent /
still holds the JSON read before / a unique value is free), then the writes, so a write
is atomic and a concurrent change makes it retry instead of interleave. ``F`` updates
of int attributes that change no indexed or unique attribute (by key, an atomic batch
of updates, ``update_where``) are instead one run of ``FEXPR_LUA``, which reads, checks
the precondition or filter, evaluates and writes inside the script: no guard, no retry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from ...errors import BackendError, Conflict
from ...model.stored import ModelMeta
from ...model.types import BOOL, DECIMAL, FLOAT, INT, STR
from ...query.ast import EVERYTHING, NOTHING, And, Cond, Node, Not, Or, conds
from ...query.evaluate import compile_local
from ...query.intervals import LexInterval, meet_all_lex, meet_lex
from ...query.order import Order
from ...query.prepare import simplify
from ...store.fexpr import Expr, F
from ...store.plan import Split, split_filter
from ...store.types import PreparedEdit
from ..batch import simulate
from ..common import Outcome, make_store_meta, unique_id, unique_text, unique_value
from .codec import Dec, Enc, Skip, doc_codec, doc_value, enc_int, sort_codec, succ, text_prefix

NATIVE_OPS = frozenset({"eq", "in", "lt", "lte", "gt", "gte", "range", "isnull", "startswith"})
RANGE_OPS = NATIVE_OPS

# when the part of a filter that is not on the scanned index selects at most this many
# keys, those items are fetched directly and sorted locally instead of scanning
SMALL_SET = 1000
# an ``in`` of more values than this reads its sorted set whole (one round trip) and picks
# the members of those values, instead of one range read per value
BIG_IN = 256
MAX_RETRIES = 20
# a guarded write of F results loses to every concurrent increment of its items: tried
# as often as the store tries its guarded writes (each round, some writer wins)
FEXPR_RETRIES = 10_000

Interval = LexInterval  # [lo, hi) in member bytes; None: unbounded (query.intervals)

LUA = """
local i = 1
local ng = tonumber(ARGV[i]); i = i + 1
for g = 1, ng do
  local t = ARGV[i]; local k = KEYS[tonumber(ARGV[i + 1])]; local a = ARGV[i + 2]
  i = i + 3
  if t == 'n' then
    if redis.call('EXISTS', k) == 1 then return g end
  elseif t == 'e' then
    if redis.call('GET', k) ~= a then return g end
  else
    local c = tonumber(ARGV[i]); i = i + 1
    local owner = redis.call('HGET', k, a)
    if owner then
      local found = false
      for j = 0, c - 1 do
        if ARGV[i + j] == owner then found = true end
      end
      if not found then return g end
    end
    i = i + c
  end
end
local nw = tonumber(ARGV[i]); i = i + 1
for w = 1, nw do
  local t = ARGV[i]; local k = KEYS[tonumber(ARGV[i + 1])]
  local a = ARGV[i + 2]; local b = ARGV[i + 3]
  i = i + 4
  if t == 'set' then redis.call('SET', k, a)
  elseif t == 'del' then redis.call('DEL', k)
  elseif t == 'zadd' then redis.call('ZADD', k, 0, a)
  elseif t == 'zrem' then redis.call('ZREM', k, a)
  elseif t == 'hset' then redis.call('HSET', k, a, b)
  elseif t == 'hdel' then
    if redis.call('HGET', k, a) == b then redis.call('HDEL', k, a) end
  elseif t == 'max' then
    local cur = tonumber(redis.call('GET', k) or '0')
    if cur < tonumber(a) then redis.call('SET', k, a) end
  end
end
return 0
"""
LUA_SHA = hashlib.sha1(LUA.encode()).hexdigest()

# The hot path of a create: KEYS = item, key set, nz sorted sets, nu unique hashes;
# ARGV = document, enc(key), keystr, nz, nu, nz members, nu unique fields.
# Returns 0, 1 when the key exists, 1 + j when unique value j is taken.
CREATE_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
local nz = tonumber(ARGV[4]); local nu = tonumber(ARGV[5])
for j = 1, nu do
  local owner = redis.call('HGET', KEYS[2 + nz + j], ARGV[5 + nz + j])
  if owner and owner ~= ARGV[3] then return 1 + j end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], 0, ARGV[2])
for j = 1, nz do redis.call('ZADD', KEYS[2 + j], 0, ARGV[5 + j]) end
for j = 1, nu do redis.call('HSET', KEYS[2 + nz + j], ARGV[5 + nz + j], ARGV[3]) end
return 0
"""
CREATE_SHA = hashlib.sha1(CREATE_LUA.encode()).hexdigest()

# ``F`` updates of int attributes in one run: by key, an atomic batch of updates and
# ``update_where``: no read before it and no guard, the items are read, checked and
# written inside the script. ARGV[1]: 'a' (atomic batch: stop at the first edit that
# fails) or 'w' (update_where: skip a missing item or one its filter does not match);
# ARGV[2]: the number of edits; per edit: its KEYS index, the number of ARGV slots that
# follow for it, npred and the predicate's tokens (``lua_pred``), then nt and the targets
# (name, lo, hi ('' unbounded), ntok, RPN tokens: 'r' name | 'c' number | op), then np
# and the plain changes (name, JSON). The item's JSON is scanned for its top-level values
# and the results spliced in, so every other byte is kept. Each edit sees the ones before it.
# Returns {0, n applied, the doc after each edit (mode 'a')...}; {1 | 4, e, nil, docs
# after the edits before e} when edit e's item is missing | its predicate is false (mode
# 'a'); {2, e, doc before e, ...} a result out of bounds; {3}: something Lua cannot
# evaluate exactly (a non-int operand, beyond 2^53, an absent attribute): the caller
# takes the guarded path. Nothing is written unless 0.
FEXPR_LUA = """
local BIG = 9007199254740992
local EXACT = {}
local function scan(doc)
  local vals = {}
  local i, n, depth, key, want, vkey, vstart = 1, #doc, 0, nil, false, nil, 0
  local function str_end(j)
    j = j + 1
    while true do
      local c = string.byte(doc, j)  -- 92: a backslash, 34: the closing quote
      if c == 92 then j = j + 2 elseif c == 34 then return j else j = j + 1 end
    end
  end
  while i <= n do
    local ch = string.sub(doc, i, i)
    if ch == '"' then
      local j = str_end(i)
      if depth == 1 and want then key = string.sub(doc, i + 1, j - 1); want = false
      elseif depth == 1 and key then vals[key] = {i, j}; key = nil end
      i = j + 1
    elseif ch == '{' or ch == '[' then
      if depth == 1 and key then vkey = key; vstart = i; key = nil end
      depth = depth + 1
      if depth == 1 then want = true end
      i = i + 1
    elseif ch == '}' or ch == ']' then
      depth = depth - 1
      if depth == 1 and vkey then vals[vkey] = {vstart, i}; vkey = nil end
      i = i + 1
    elseif ch == ',' then
      if depth == 1 then want = true end
      i = i + 1
    elseif depth == 1 and key and ch ~= ':' then
      local s, e = string.find(doc, '^[-0-9.eE+a-z]+', i)
      vals[key] = {s, e}; key = nil
      i = e + 1
    else i = i + 1 end
  end
  return vals
end
local function raw(doc, vals, name)
  local v = vals[name]
  if not v then error(EXACT) end
  return string.sub(doc, v[1], v[2])
end
local function num(doc, vals, name)
  local text = raw(doc, vals, name)
  if text == 'null' then return nil end
  if not string.find(text, '^-?%d+$') then error(EXACT) end
  local x = tonumber(text)
  if math.abs(x) >= BIG then error(EXACT) end
  return x
end
local function pred(doc, vals, a, stop)
  local st = {}
  while a < stop do
    local tok = ARGV[a]
    if tok == 'T' then st[#st + 1] = true; a = a + 1
    elseif tok == 'q' then  -- the value's JSON is one of c texts
      local text = raw(doc, vals, ARGV[a + 1])
      local c = tonumber(ARGV[a + 2])
      local found = false
      for j = 1, c do
        if ARGV[a + 2 + j] == text then found = true end
      end
      st[#st + 1] = found; a = a + 3 + c
    elseif tok == 'o' then  -- an int attribute compared (None: false)
      local x = num(doc, vals, ARGV[a + 1])
      local op, y = ARGV[a + 2], tonumber(ARGV[a + 3])
      local r = false
      if x ~= nil then
        if op == 'lt' then r = x < y elseif op == 'lte' then r = x <= y
        elseif op == 'gt' then r = x > y else r = x >= y end
      end
      st[#st + 1] = r; a = a + 4
    elseif tok == '!' then st[#st] = not st[#st]; a = a + 1
    else  -- '&' or '|' of the c values on top
      local c = tonumber(ARGV[a + 1])
      local r = tok == '&'
      for j = 1, c do
        local x = st[#st]; st[#st] = nil
        if tok == '&' then r = r and x else r = r or x end
      end
      st[#st + 1] = r; a = a + 2
    end
  end
  return st[1]
end
local function edit(doc, vals, a)
  local out = {}
  local nt = tonumber(ARGV[a]); a = a + 1
  for t = 1, nt do
    local name, lo, hi, ntok = ARGV[a], ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3])
    a = a + 4
    local st = {}
    for k = 1, ntok do
      local tok = ARGV[a]; a = a + 1
      if tok == 'r' then
        local x = num(doc, vals, ARGV[a]); a = a + 1
        if x == nil then error(EXACT) end
        st[#st + 1] = x
      elseif tok == 'c' then
        local x = tonumber(ARGV[a]); a = a + 1
        if x == nil or x ~= math.floor(x) or math.abs(x) >= BIG then error(EXACT) end
        st[#st + 1] = x
      else
        local r = st[#st]; st[#st] = nil
        local l = st[#st]
        if tok == '+' then l = l + r elseif tok == '-' then l = l - r else l = l * r end
        if math.abs(l) >= BIG then error(EXACT) end
        st[#st] = l
      end
    end
    local r = st[1]
    if (lo ~= '' and r < tonumber(lo)) or (hi ~= '' and r > tonumber(hi)) then
      return false
    end
    if num(doc, vals, name) == nil then error(EXACT) end
    out[#out + 1] = {vals[name][1], vals[name][2], string.format('%.0f', r)}
  end
  local np = tonumber(ARGV[a]); a = a + 1
  for p = 1, np do
    local v = vals[ARGV[a]]
    if not v then error(EXACT) end
    out[#out + 1] = {v[1], v[2], ARGV[a + 1]}
    a = a + 2
  end
  table.sort(out, function(p, q) return p[1] > q[1] end)
  for _, o in ipairs(out) do
    doc = string.sub(doc, 1, o[1] - 1) .. o[3] .. string.sub(doc, o[2] + 1)
  end
  return doc
end
local function run()
  local mode = ARGV[1]
  local docs, changed, order, res = {}, {}, {}, {}
  local n, a = 0, 3
  for e = 1, tonumber(ARGV[2]) do
    local ki, len = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
    local nxt = a + 2 + len
    a = a + 2
    local doc = docs[ki]
    if doc == nil then
      doc = redis.call('GET', KEYS[ki]); docs[ki] = doc
    end
    if not doc then
      if mode == 'a' then return {1, e, false, unpack(res)} end
    else
      local vals = scan(doc)
      local np = tonumber(ARGV[a])
      local hit = np == 0 or pred(doc, vals, a + 1, a + 1 + np)
      a = a + 1 + np
      if hit then
        local new = edit(doc, vals, a)
        if not new then return {2, e, doc, unpack(res)} end
        docs[ki] = new; n = n + 1
        if not changed[ki] then changed[ki] = true; order[#order + 1] = ki end
        if mode == 'a' then res[#res + 1] = new end
      elseif mode == 'a' then return {4, e, false, unpack(res)} end
    end
    a = nxt
  end
  for _, ki in ipairs(order) do redis.call('SET', KEYS[ki], docs[ki]) end
  return {0, n, unpack(res)}
end
local ok, r = pcall(run)
if ok then return r end
if r == EXACT then return {3} end
error(r)
"""
FEXPR_SHA = hashlib.sha1(FEXPR_LUA.encode()).hexdigest()


def rpn(expr: Any, out: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """``expr`` (ints, ``F`` s and ``+ - *``) as the tokens of ``FEXPR_LUA``."""
    if type(expr) is Expr:
        rpn(expr.left, out)
        rpn(expr.right, out)
        out.append((expr.op,))
    elif type(expr) is F:
        out.append(("r", expr.name))
    else:
        out.append(("c", str(expr)))
    return out


def _canonical(codec: tuple[Enc, Skip, Dec]) -> Any:
    """``value -> the value the key index gives back for it`` (its sort encoding decoded)."""
    enc, _, dec = codec

    def canon(v: Any) -> Any:
        return dec(enc(v), 0)[0]
    return canon

class Program:
    """Arguments of one run of the write script: guards, then writes."""

    __slots__ = ("keys", "_idx", "guards", "ng", "writes", "nw", "info")

    def __init__(self) -> None:
        self.keys: list[Any] = []
        self._idx: dict[Any, str] = {}
        self.guards: list[Any] = []
        self.ng = 0
        self.writes: list[Any] = []
        self.nw = 0
        self.info: list[tuple[Any, ...]] = []

    def k(self, key: Any) -> str:
        i = self._idx.get(key)
        if i is None:
            self.keys.append(key)
            i = self._idx[key] = str(len(self.keys))
        return i

    def absent(self, key: str, info: tuple[Any, ...]) -> None:
        self.guards += ("n", self.k(key), "")
        self.ng += 1
        self.info.append(info)

    def holds(self, key: str, raw: bytes, info: tuple[Any, ...]) -> None:
        self.guards += ("e", self.k(key), raw)
        self.ng += 1
        self.info.append(info)

    def free(self, hkey: str, fld: bytes, owners: list[str], info: tuple[Any, ...]) -> None:
        self.guards += ("u", self.k(hkey), fld, str(len(owners)), *owners)
        self.ng += 1
        self.info.append(info)

    def write(self, op: str, key: str, a: Any = "", b: Any = "") -> None:
        self.writes += (op, self.k(key), a, b)
        self.nw += 1

    def args(self) -> list[Any]:
        """``numkeys, *keys, *argv`` for EVALSHA."""
        return [len(self.keys), *self.keys, self.ng, *self.guards, self.nw, *self.writes]


@dataclass
class IndexInfo:
    """One indexed attribute: its sorted sets and sort encoding."""

    name: str
    zkey: str
    nullkey: str | None
    enc: Enc
    skip: Skip
    text: bool
    uqkey: str | None = None


@dataclass
class Driver:
    """How a native ordering is scanned: the index, and the directions."""

    index: IndexInfo | None  # None: the key index
    desc: bool  # direction of the first attribute
    key_desc: bool  # direction of the rest (key parts)

    @property
    def mixed(self) -> bool:
        return self.desc != self.key_desc


@dataclass
class Segment:
    """A lex range of one sorted set, scanned in one direction (grouped: by value, each
    value's members in the other direction)."""

    zkey: str
    lo: bytes | None
    hi: bytes | None
    desc: bool
    grouped: bool = False
    skip: Skip | None = None  # for grouped scans and attribute indexes: end of the value


@dataclass
class BatchPlan:
    """Outcomes of simulated edits and the program that writes their net effect."""

    outcomes: list[Outcome]
    program: Program | None
    failed: bool
    setters: dict[tuple[str, str], int] = field(default_factory=dict)


def lex_lo(lo: bytes | None) -> bytes:
    return b"-" if lo is None else b"[" + lo


def lex_hi(hi: bytes | None) -> bytes:
    return b"+" if hi is None else b"(" + hi


ALL: list[Interval] = [(None, None)]


class RedisCore:
    """Everything about one model in one Redis namespace that needs no I/O."""

    def __init__(self, meta: ModelMeta, prefix: str = "storeroom", table: str | None = None
                 ) -> None:
        self.meta = meta
        self.table = table or meta.name
        self.base = f"{prefix}:{self.table}"
        # storeroom's cursor secret: one per prefix, the namespace of a Redis database's
        # stores (no table's keys look like it: they all have the form base:...)
        self.secret_key = f"{prefix}:#secret"
        self.keys_zset = f"{self.base}:#keys"
        self.seq_key = f"{self.base}:#seq"
        # which index structures are built over the stored items (``structures``)
        self.schema_key = f"{self.base}:#schema"
        self.store_meta = make_store_meta(meta, "redis", native_ops=NATIVE_OPS,
                                          atomic_batch=True, transactions=False)
        self.encode, self.values, self.build = doc_codec(meta)
        self.key_names = meta.key.attrs
        self.seq = meta.sequence_attr
        # key encoding
        kc = []
        for a in meta.key_attrs:
            c = sort_codec(a)
            if c is None:
                raise TypeError(f"{meta.name}: key attribute {a.name} cannot be stored in Redis")
            kc.append(c)
        self._kenc = [c[0] for c in kc]
        self._kdec = [c[2] for c in kc]
        self.key_codec = kc[0]
        self._single_str_key = len(kc) == 1 and meta.key_attrs[0].kind == STR
        # equal float / Decimal keys (-0.0 and 0.0, 1.10 and 1.1) name one item, the one
        # the key index (which encodes them equally) decodes to
        self._kcanon = tuple(_canonical(c) if a.kind in (FLOAT, DECIMAL) else None
                             for a, c in zip(meta.key_attrs, kc, strict=True))
        if not any(self._kcanon):
            self._kcanon = ()
        # indexes: every attribute of a declared index, unique or index=True
        names: list[str] = []
        for ix in meta.indexes:
            names += [n for n in ix.attrs if n not in names]
        self.ix: dict[str, IndexInfo] = {}
        for n in names:
            a = meta.attrs[n]
            if a.is_key or not a.store:
                continue
            c = sort_codec(a)
            if c is None:
                continue
            self.ix[n] = IndexInfo(n, f"{self.base}:#ix:{n}",
                                   f"{self.base}:#null:{n}" if a.optional else None,
                                   c[0], c[1], a.is_text)
        # unique sets (``unique_id`` names them: the attribute for one): a hash each
        self.uq: dict[str, str] = {}
        self.uq_names: dict[str, tuple[str, ...]] = {}
        self.uq_encs: dict[str, tuple[Enc, ...]] = {}
        for uset in meta.unique_sets:
            sid = unique_id(uset)
            encs: list[Enc] = []
            for n in uset:
                c = sort_codec(meta.attrs[n])
                encs.append(c[0] if c is not None else (lambda v: str(v).encode()))
            self.uq[sid] = f"{self.base}:#uq:{sid}"
            self.uq_names[sid] = uset
            self.uq_encs[sid] = tuple(encs)
        self.uq_attrs = frozenset(n for names in meta.unique_sets for n in names)
        self._ix_list = list(self.ix.values())

    # schema evolution (``create_tables``) ----------------------------------------------
    def structures(self) -> dict[str, tuple[str, ...]]:
        """The index structures the model declares: marker field (``ix:attr`` /
        ``uq:set``) -> its Redis keys. ``schema_key``'s hash lists those built over the
        stored items; ``create_tables`` builds the others and deletes the structures of
        markers the model no longer declares (they are no longer maintained)."""
        out: dict[str, tuple[str, ...]] = {}
        for info in self._ix_list:
            out[f"ix:{info.name}"] = (info.zkey,) + ((info.nullkey,) if info.nullkey else ())
        for sid, hk in self.uq.items():
            out[f"uq:{sid}"] = (hk,)
        return out

    def dropped_keys(self, marker: str) -> list[str]:
        """The Redis keys of the structure of a marker the model no longer declares."""
        kind, _, name = marker.partition(":")
        if kind == "ix":
            return [f"{self.base}:#ix:{name}", f"{self.base}:#null:{name}"]
        return [f"{self.base}:#uq:{name}"]

    def index_entries(self, markers: set[str], values: dict[str, Any], kb: bytes
                      ) -> list[tuple[str, bytes, str | None]]:
        """``(key, member, None)`` sorted-set entries and ``(hash, field, keystr)``
        uniqueness entries of one stored item, for the structures in ``markers``."""
        out: list[tuple[str, bytes, str | None]] = []
        for info in self._ix_list:
            if f"ix:{info.name}" not in markers:
                continue
            v = values[info.name]
            if v is not None:
                out.append((info.zkey, info.enc(v) + kb, None))
            elif info.nullkey is not None:
                out.append((info.nullkey, kb, None))
        for sid, hk in self.uq.items():
            if f"uq:{sid}" in markers and (fld := self.uq_field(sid, values)) is not None:
                out.append((hk, fld, self.keystr(self.key_of(values))))
        return out

    def uq_field(self, sid: str, values: dict[str, Any]) -> bytes | None:
        """The hash field of the unique set ``sid``'s values in ``values`` (None when one
        is None: not constrained). Several values: each length-prefixed, unambiguous."""
        names = self.uq_names[sid]
        vs = unique_value(names, values)
        if vs is None:
            return None
        encs = self.uq_encs[sid]
        if len(names) == 1:
            return encs[0](vs[0])
        parts = [e(v) for e, v in zip(encs, vs, strict=True)]
        return b"".join(len(b).to_bytes(4, "big") + b for b in parts)

    def uq_shown(self, sid: str, values: dict[str, Any]) -> str:
        """``a='x', b=2``: the unique set's values, for an error."""
        names = self.uq_names[sid]
        return unique_text(names, tuple(values.get(n) for n in names))

    # keys --------------------------------------------------------------------------
    def keystr(self, key: tuple[Any, ...]) -> str:
        if self._single_str_key:
            return quote(key[0], safe="")
        if self._kcanon:
            key = tuple(v if c is None else c(v) for c, v in zip(self._kcanon, key, strict=True))
        return self.meta.key.internal_str(key[0] if len(key) == 1 else key)

    def item_key(self, key: tuple[Any, ...]) -> str:
        if self._single_str_key:
            return f"{self.base}:{quote(key[0], safe='')}"
        return f"{self.base}:{self.keystr(key)}"

    def kenc(self, key: tuple[Any, ...]) -> bytes:
        enc = self._kenc
        if len(enc) == 1:
            return enc[0](key[0])
        return b"".join(e(v) for e, v in zip(enc, key, strict=True))

    def kdec(self, buf: bytes, pos: int = 0) -> tuple[Any, ...]:
        out = []
        for d in self._kdec:
            v, pos = d(buf, pos)
            out.append(v)
        return tuple(out)

    def key_of(self, values: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(values[n] for n in self.key_names)

    def item_key_of_kenc(self, kb: bytes) -> str:
        return self.item_key(self.kdec(kb))

    # what runs natively --------------------------------------------------------------
    def cond_native(self, c: Cond) -> bool:
        if c.op not in NATIVE_OPS:
            return False
        if c.attr in self.key_names:
            return c.op != "startswith" or self.meta.attrs[c.attr].is_text
        info = self.ix.get(c.attr)
        if info is None:
            return False
        return c.op != "startswith" or info.text

    def can_compile(self, node: Node) -> bool:
        """True when the whole node runs natively."""
        return all(self.cond_native(c) for c in conds(node))

    def split(self, node: Node) -> Split:
        return split_filter(node, self.can_compile)

    def driver(self, order: Order | None) -> Driver | None:
        keys = self.key_names
        if not order:
            return Driver(None, False, False)
        names = tuple(n for n, _ in order)
        if names == keys:
            rest = {d for _, d in order[1:]}
            if len(rest) > 1:
                return None
            return Driver(None, order[0][1], rest.pop() if rest else order[0][1])
        if len(order) == len(keys) + 1 and names[1:] == keys and names[0] in self.ix:
            ds = {d for _, d in order[1:]}
            if len(ds) == 1:
                return Driver(self.ix[names[0]], order[0][1], ds.pop())
        return None

    def can_order(self, order: Order) -> bool:
        return self.driver(order) is not None

    # conditions as lex intervals ------------------------------------------------------
    def cond_intervals(self, c: Cond, enc: Enc, optional: bool
                       ) -> tuple[list[Interval], bool]:
        """The member intervals of a condition on an index whose members start with
        ``enc(value)``, and whether the None group matches."""
        op, v = c.op, c.value
        if op == "isnull":
            return ([] if v else ALL), bool(v) and optional
        if op == "eq":
            e = enc(v)
            return [(e, succ(e))], False
        if op == "in":
            ivs = sorted({(e, succ(e)) for e in map(enc, v)}, key=lambda iv: iv[0])
            return ivs, False  # type: ignore[return-value]
        if op == "gt":
            s = succ(enc(v))
            return ([] if s is None else [(s, None)]), False
        if op == "gte":
            return [(enc(v), None)], False
        if op == "lt":
            return [(None, enc(v))], False
        if op == "lte":
            return [(None, succ(enc(v)))], False
        if op == "range":
            lo, hi = enc(v[0]), succ(enc(v[1]))
            if hi is not None and lo >= hi:
                return [], False
            return [(lo, hi)], False
        if op == "startswith":
            p = text_prefix(v)
            return [(p or None, succ(p) if p else None)], False
        raise ValueError(op)

    def leaf_intervals(self, c: Cond) -> tuple[str, list[Interval], str | None, Skip | None]:
        """For a condition served by a range scan: (zset, intervals, null zset, skip)."""
        if c.attr == self.key_names[0]:
            ivs, _ = self.cond_intervals(c, self._kenc[0], False)
            return self.keys_zset, ivs, None, None
        info = self.ix[c.attr]
        ivs, nul = self.cond_intervals(c, info.enc, info.nullkey is not None)
        return info.zkey, ivs, (info.nullkey if nul else None), info.skip

    def is_range_leaf(self, c: Cond) -> bool:
        return c.attr in self.ix or c.attr == self.key_names[0]

    def is_big_in(self, c: Node) -> bool:
        """True for an ``in`` read as a whole sorted set (``BIG_IN``)."""
        return type(c) is Cond and c.op == "in" and len(c.value) > BIG_IN

    def big_in_members(self, c: Cond) -> tuple[str, Callable[[list[bytes]], set[bytes]]]:
        """For a big ``in`` on the key or an index: the sorted set to read whole, and the
        function from its members to the encoded keys of the items whose value is listed."""
        if c.attr == self.key_names[0]:
            enc, zkey = self._kenc[0], self.keys_zset
            want = {enc(v) for v in c.value}
            if len(self.key_names) == 1:
                return zkey, lambda ms: {m for m in ms if m in want}
            kskip = self.key_codec[1]
            return zkey, lambda ms: {m for m in ms if m[:kskip(m, 0)] in want}
        info = self.ix[c.attr]
        want = {info.enc(v) for v in c.value}
        skip = info.skip

        def pick(ms: list[bytes]) -> set[bytes]:
            out = set()
            for m in ms:
                end = skip(m, 0)
                if m[:end] in want:
                    out.add(m[end:])
            return out
        return info.zkey, pick

    # ordered scans ---------------------------------------------------------------------
    def segments(self, d: Driver, ivs: list[Interval], null_ok: bool,
                 after: tuple[Any, ...] | None) -> list[Segment]:
        """The sorted-set ranges that give the items of a native order, in order."""
        info = d.index
        if info is None:
            zkey, venc, skip = self.keys_zset, self._kenc[0], self.key_codec[1]
            nullkey = None
        else:
            zkey, venc, skip, nullkey = info.zkey, info.enc, info.skip, info.nullkey
        if nullkey is None:
            null_ok = False
        ordered = sorted(ivs, key=lambda iv: b"" if iv[0] is None else iv[0],
                         reverse=d.desc)
        val_ivs = ordered
        first: list[Segment] = []
        null_lo: bytes | None = None
        null_hi: bytes | None = None
        if after is not None:
            va = after[0]
            if info is None:
                tail = b"".join(e(v) for e, v in zip(self._kenc[1:], after[1:], strict=True))
            else:
                tail = self.kenc(after[1:])
            if va is None:
                val_ivs = []
                if d.key_desc:
                    null_hi = tail
                else:
                    null_lo = tail + b"\x00"
            else:
                ev = venc(va)
                m = ev + tail
                if not d.mixed:
                    cut: Interval = (None, m) if d.desc else (m + b"\x00", None)
                    val_ivs = [x for iv in ordered if (x := meet_lex(iv, cut)) is not None]
                else:
                    grp: Interval = (None, m) if d.key_desc else (m + b"\x00", None)
                    grp2 = meet_lex(grp, (ev, succ(ev)))
                    if grp2 is not None:
                        first = [Segment(zkey, x[0], x[1], d.key_desc, False, skip)
                                 for iv in ordered if (x := meet_lex(iv, grp2)) is not None]
                    nxt = succ(ev)
                    cut2: Interval | None = (None, ev) if d.desc else (
                        None if nxt is None else (nxt, None))
                    val_ivs = [] if cut2 is None else [
                        x for iv in ordered if (x := meet_lex(iv, cut2)) is not None]
        segs = first + [Segment(zkey, lo, hi, d.desc, d.mixed, skip) for lo, hi in val_ivs]
        if null_ok and nullkey is not None:
            segs.append(Segment(nullkey, null_lo, null_hi, d.key_desc, False, None))
        return segs

    def drive_split(self, d: Driver, node: Node) -> tuple[list[Interval], bool, Node]:
        """Split a native filter into bounds on the driving index and the rest (the
        keyset position of a cursor comes with the ``Query``, not in the filter)."""
        items: list[Node] = list(node.items) if isinstance(node, And) else [node]
        if node == EVERYTHING:
            items = []
        attr = self.key_names[0] if d.index is None else d.index.name
        ivs, null_ok = ALL, True
        rest: list[Node] = []
        for n in items:
            if isinstance(n, Cond) and n.attr == attr and not self.is_big_in(n):
                if d.index is None:
                    ivs2, nul = self.cond_intervals(n, self._kenc[0], False)
                else:
                    ivs2, nul = self.cond_intervals(n, d.index.enc, d.index.nullkey is not None)
                ivs = meet_all_lex(ivs, ivs2)
                null_ok = null_ok and nul
            else:
                rest.append(n)
        return ivs, null_ok, simplify(And(tuple(rest)))

    def member_kenc(self, seg: Segment, m: bytes) -> bytes:
        if seg.zkey == self.keys_zset or seg.skip is None:
            return m
        return m[seg.skip(m, 0):]

    # writes ----------------------------------------------------------------------------
    def create_program(self, values: dict[str, Any]) -> tuple[Program, str]:
        """The program of a plain create (one round trip)."""
        key = self.key_of(values)
        ks = self.keystr(key)
        ik = f"{self.base}:{ks}"
        kb = self.kenc(key)
        p = Program()
        p.absent(ik, ("item", ks))
        for name, hk in self.uq.items():
            fld = self.uq_field(name, values)
            if fld is not None:
                p.free(hk, fld, [ks], ("unique", name, self.uq_shown(name, values), ks))
        p.write("set", ik, self.encode(values))
        p.write("zadd", self.keys_zset, kb)
        for info in self._ix_list:
            v = values[info.name]
            if v is None:
                if info.nullkey is not None:
                    p.write("zadd", info.nullkey, kb)
            else:
                p.write("zadd", info.zkey, info.enc(v) + kb)
        for name, hk in self.uq.items():
            fld = self.uq_field(name, values)
            if fld is not None:
                p.write("hset", hk, fld, ks)
        if self.seq is not None and isinstance(values.get(self.seq.name), int):
            p.write("max", self.seq_key, str(values[self.seq.name]))
        return p, ks

    def create_args(self, values: dict[str, Any]) -> tuple[list[Any], str, list[Any]]:
        """``numkeys, *keys, *argv`` of the create script; the keystr; unique values."""
        key = tuple([values[n] for n in self.key_names])
        if self._single_str_key:
            ks = quote(key[0], safe="")
            kb = self._kenc[0](key[0])
        else:
            ks = self.keystr(key)
            kb = self.kenc(key)
        zkeys: list[str] = []
        members: list[bytes] = []
        for info in self._ix_list:
            v = values[info.name]
            if v is None:
                if info.nullkey is not None:
                    zkeys.append(info.nullkey)
                    members.append(kb)
            else:
                zkeys.append(info.zkey)
                members.append(info.enc(v) + kb)
        hkeys: list[str] = []
        fields: list[bytes] = []
        taken: list[Any] = []
        if self.uq:
            for name, hk in self.uq.items():
                fld = self.uq_field(name, values)
                if fld is not None:
                    hkeys.append(hk)
                    fields.append(fld)
                    taken.append(self.uq_shown(name, values))
        return ([2 + len(zkeys) + len(hkeys), f"{self.base}:{ks}", self.keys_zset, *zkeys,
                 *hkeys, self.encode(values), kb, ks, len(zkeys), len(hkeys), *members,
                 *fields], ks, taken)

    def create_failure(self, code: int, ks: str, taken: list[Any]) -> Conflict:
        if code == 1:
            return self.key_conflict(ks)
        return Conflict(f"{self.meta.name}: {taken[code - 2]} exists already")

    def _index_diff(self, p: Program, kb: bytes, old: dict[str, Any] | None,
                    new: dict[str, Any] | None) -> None:
        if old is None and new is not None:
            p.write("zadd", self.keys_zset, kb)
        elif new is None and old is not None:
            p.write("zrem", self.keys_zset, kb)
        for info in self._ix_list:
            n = info.name
            ov = None if old is None else old[n]
            nv = None if new is None else new[n]
            if old is not None and new is not None and _same(ov, nv):
                continue
            if old is not None:
                if ov is None:
                    if info.nullkey is not None:
                        p.write("zrem", info.nullkey, kb)
                else:
                    p.write("zrem", info.zkey, info.enc(ov) + kb)
            if new is not None:
                if nv is None:
                    if info.nullkey is not None:
                        p.write("zadd", info.nullkey, kb)
                else:
                    p.write("zadd", info.zkey, info.enc(nv) + kb)

    def plan(self, edits: list[PreparedEdit], initial: dict[str, bytes | None]) -> BatchPlan:
        """Simulate edits (all or nothing) on the states read before; the program writes
        the net effect guarded by those states."""
        kparts: dict[str, tuple[Any, ...]] = {}

        def key_of(parts: tuple[Any, ...]) -> str:
            ks = self.keystr(parts)
            kparts.setdefault(ks, parts)
            return ks

        def read(ks: Any) -> dict[str, Any] | None:
            raw = initial.get(ks)
            return None if raw is None else self.values(raw)

        sim = simulate(self.meta, edits, read, key_of, self.keystr,
                       unique=list(self.uq_names.values()),
                       same=_same)
        outcomes = sim.outcomes
        if sim.failed is not None:
            return BatchPlan(outcomes, None, True)
        first: dict[str, dict[str, Any] | None] = sim.first  # type: ignore[assignment]
        cur: dict[str, dict[str, Any] | None] = sim.final  # type: ignore[assignment]
        setters: dict[tuple[str, str], int] = sim.setters  # type: ignore[assignment]
        p = Program()
        for ks in first:
            ik = f"{self.base}:{ks}"
            raw = initial.get(ks)
            if raw is None:
                p.absent(ik, ("item", ks))
            else:
                p.holds(ik, raw, ("item", ks))
        for name, hk in self.uq.items():
            before, after = self._uq_moves(name, first, cur)
            for fld, ks in sorted(after - before):
                owners = [ks] + [k2 for f2, k2 in before if f2 == fld]
                p.free(hk, fld, owners,
                       ("unique", name, self.uq_shown(name, cur[ks]), ks))  # type: ignore[arg-type]
        for ks, old in first.items():
            new = cur[ks]
            if old == new and old is not None:
                continue
            ik = f"{self.base}:{ks}"
            if new is None:
                if old is not None:
                    p.write("del", ik)
            else:
                p.write("set", ik, self.encode(new))
            self._index_diff(p, self.kenc(kparts[ks]), old, new)
        for name, hk in self.uq.items():
            before, after = self._uq_moves(name, first, cur)
            for fld, ks in sorted(before - after):
                p.write("hdel", hk, fld, ks)
            for fld, ks in sorted(after - before):
                p.write("hset", hk, fld, ks)
        if self.seq is not None:
            top = max((v[self.seq.name] for v in cur.values()
                       if v is not None and isinstance(v.get(self.seq.name), int)), default=None)
            if top is not None:
                p.write("max", self.seq_key, str(top))
        return BatchPlan(outcomes, p if p.nw else None, False, setters)

    def _uq_moves(self, sid: str, first: dict[str, dict[str, Any] | None],
                  cur: dict[str, dict[str, Any] | None]
                  ) -> tuple[set[tuple[bytes, str]], set[tuple[bytes, str]]]:
        """The (field, keystr) of unique set ``sid`` before and after a batch."""
        before = {(f, ks) for ks, o in first.items()
                  if o is not None and (f := self.uq_field(sid, o)) is not None}
        after = {(f, ks) for ks, n in cur.items()
                 if n is not None and (f := self.uq_field(sid, n)) is not None}
        return before, after

    def native_fexpr(self, values: dict[str, Any], pre: Node | None) -> bool:
        """True when ``FEXPR_LUA`` writes this update alone: every ``F`` expression of
        an int attribute and no change to an indexed or unique attribute (the script
        rewrites the item only). A precondition ``lua_pred`` does not compile: the
        backend reads the item, checks it and writes the results guarded by the JSON it
        read (two round trips)."""
        attrs = self.meta.attrs
        return all(
            (not isinstance(v, F) or attrs[n].kind == INT) and n not in self.ix
            and n not in self.uq_attrs for n, v in values.items())

    def lua_pred(self, node: Node | None) -> list[str] | None:
        """``node`` as the predicate tokens of ``FEXPR_LUA`` (RPN; empty for no
        condition); None when Lua cannot evaluate it exactly as local evaluation does.
        Kept to what compares the item's JSON text or its top-level ints: ``eq ne in
        not_in isnull`` on str, int and bool attributes (and None), ``lt lte gt gte
        range`` on int attributes with int bounds below 2^53."""
        if node is None:
            return []
        out: list[str] = []
        return out if self._pred(node, out) else None

    def _pred(self, node: Node, out: list[str]) -> bool:
        if node == EVERYTHING:
            out.append("T")
            return True
        if isinstance(node, (And, Or)):
            if not all(self._pred(n, out) for n in node.items):
                return False
            out += ("&" if isinstance(node, And) else "|", str(len(node.items)))
            return True
        if isinstance(node, Not):
            if not self._pred(node.item, out):
                return False
            out.append("!")
            return True
        if not isinstance(node, Cond) or "." in node.attr:
            return False
        a = self.meta.attrs.get(node.attr)
        if a is None or not a.store or a.kind not in _LUA_TYPES:
            return False
        op, v, kind = node.op, node.value, _LUA_TYPES[a.kind]
        if op == "isnull":
            out += ("q", a.name, "1", "null")
            if not v:
                out.append("!")
            return True
        if op in ("eq", "ne", "in", "not_in"):
            vs = list(v) if op in ("in", "not_in") else [v]
            if not all(x is None or type(x) is kind for x in vs):
                return False
            out += ("q", a.name, str(len(vs)), *(doc_value(a, x) for x in vs))
            if op in ("ne", "not_in"):
                out.append("!")
            return True
        if kind is not int:
            return False
        bounds = {"lt": [("lt", v)], "lte": [("lte", v)], "gt": [("gt", v)],
                  "gte": [("gte", v)]}.get(op)
        if op == "range":
            bounds = [("gte", v[0]), ("lte", v[1])]
        if bounds is None or not all(type(x) is int and abs(x) < 2 ** 53 for _, x in bounds):
            return False
        for o, x in bounds:
            out += ("o", a.name, o, str(x))
        if len(bounds) > 1:
            out += ("&", str(len(bounds)))
        return True

    def edit_tokens(self, values: dict[str, Any]) -> list[Any]:
        """The targets and plain changes of an ``F`` update, as ``FEXPR_LUA`` takes them."""
        exprs = {n: v for n, v in values.items() if isinstance(v, F)}
        plain = {n: v for n, v in values.items() if not isinstance(v, F)}
        argv: list[Any] = [str(len(exprs))]
        for n, v in exprs.items():
            a = self.meta.attrs[n]
            toks = rpn(v, [])
            argv += (n, "" if a.ge is None else repr(a.ge), "" if a.le is None else repr(a.le),
                     str(len(toks)), *(t for tok in toks for t in tok))
        argv.append(str(len(plain)))
        for n, v in plain.items():
            argv += (n, doc_value(self.meta.attrs[n], v))
        return argv

    def fexpr_args(self, mode: str, edits: list[tuple[tuple[Any, ...], dict[str, Any],
                                                             list[str]]]) -> list[Any]:
        """``numkeys, *keys, *argv`` of ``FEXPR_LUA``: per edit its key, its values
        (``native_fexpr``) and its predicate tokens (``lua_pred``)."""
        keys: dict[str, int] = {}
        argv: list[Any] = [mode, str(len(edits))]
        for key, values, pred in edits:
            ik = self.item_key(key)
            ki = keys.setdefault(ik, len(keys) + 1)
            body = [str(len(pred)), *pred, *self.edit_tokens(values)]
            argv += (str(ki), str(len(body)), *body)
        return [len(keys), *keys, *argv]

    def guard_failure(self, p: Program, g: int) -> tuple[str, Conflict | None]:
        """What a failed guard means: ("retry", None) or ("conflict", Conflict)."""
        info = p.info[g - 1]
        if info[0] == "item":
            return "retry", None
        _, _sid, shown, _ks = info
        return "conflict", Conflict(f"{self.meta.name}: {shown} exists already")

    def key_conflict(self, ks: str) -> Conflict:
        return Conflict(f"{self.meta.name}: an item with key {ks!r} exists already")

    def local_key_filter(self, c: Node) -> Any:
        """For conditions on later parts of a composite key: a test on decoded keys."""
        test = compile_local(c)
        names = self.key_names

        class _K:
            __slots__ = names

        def keep(kb: bytes) -> bool:
            o = _K()
            for n, v in zip(names, self.kdec(kb), strict=True):
                setattr(o, n, v)
            return test(o)
        return keep


# the attribute kinds ``lua_pred`` compares, and the exact type of their values
_LUA_TYPES: dict[str, type] = {STR: str, INT: int, BOOL: bool}


def _same(a: Any, b: Any) -> bool:
    return a is b or (type(a) is type(b) and a == b)


def too_busy(what: str) -> BackendError:
    return BackendError(f"{what}: the item kept changing; gave up after {MAX_RETRIES} tries")


__all__ = ["RedisCore", "Program", "Segment", "Driver", "NATIVE_OPS", "LUA", "LUA_SHA",
           "FEXPR_LUA", "FEXPR_SHA",
           "lex_lo", "lex_hi", "SMALL_SET", "FEXPR_RETRIES", "MAX_RETRIES", "NOTHING", "EVERYTHING",
           "Dec", "enc_int"]

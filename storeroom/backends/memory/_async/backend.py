"""In-memory backend. Values are copied in and out, so stored state is never shared."""

from __future__ import annotations

import copy
import threading
from collections.abc import AsyncIterator
from typing import Any

from ....errors import Conflict
from ....model.stored import ModelMeta, meta_of
from ....query.ast import Node
from ....query.evaluate import compile_local, sort_items
from ....query.order import Order
from ....store.plan import Split
from ....store.types import PreparedEdit
from ...common import Outcome, duplicate, key_dict, make_store_meta, missing, ok, refusal

# One table per (url name, model name), shared by every store opened on the same name.
_TABLES: dict[tuple[str, str], _Table] = {}
_TABLES_LOCK = threading.Lock()


class _Table:
    def __init__(self) -> None:
        self.rows: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.lock = threading.RLock()
        self.sequence = 0


def _copy(values: dict[str, Any]) -> dict[str, Any]:
    # scalars are immutable; only JSON-ish values need a deep copy
    return {k: (copy.deepcopy(v) if isinstance(v, list | dict) or hasattr(v, "__dict__")
                else v) for k, v in values.items()}


class AsyncMemoryBackend:
    """Items kept in a dict in this process (``memory://name`` shares one table per name)."""

    max_local_sort = None

    def __init__(self, model: type, name: str = "") -> None:
        self._m: ModelMeta = meta_of(model)
        self.store_meta = make_store_meta(self._m, "memory", transactions=True)
        if name:
            with _TABLES_LOCK:
                self._t = _TABLES.setdefault((name, self._m.name), _Table())
        else:
            self._t = _Table()

    def split(self, node: Node) -> Split:
        """Everything runs "natively" here."""
        return Split(node, _everything())

    def can_order(self, order: Order) -> bool:
        """Every ordering is native."""
        return True

    async def create_tables(self) -> None:
        """Nothing to create."""

    async def close(self) -> None:
        """Nothing to release; the data stays for other stores on the same name."""

    def _build(self, values: dict[str, Any]) -> Any:
        return self._m.build(_copy(values))

    def _check_unique(self, values: dict[str, Any], key: tuple[Any, ...] | None) -> None:
        for a in self._m.unique_attrs:
            v = values.get(a.name)
            if v is None:
                continue
            for k, row in self._t.rows.items():
                if k != key and row.get(a.name) == v:
                    raise Conflict(f"{self._m.name}: {a.name}={v!r} exists already")

    def _insert(self, values: dict[str, Any]) -> Any:
        m = self._m
        seq = m.sequence_attr
        t = self._t
        if seq is not None and seq.name not in values:
            t.sequence += 1
            values[seq.name] = t.sequence
        elif seq is not None and isinstance(values.get(seq.name), int):
            t.sequence = max(t.sequence, values[seq.name])
        key = tuple(values[a] for a in m.key.attrs)
        if key in t.rows:
            raise Conflict(f"{m.name}: an item with key {m.key.to_str(key if len(key) > 1 else key[0])!r} exists already")
        self._check_unique(values, None)
        t.rows[key] = _copy(values)
        return self._build(values)

    def _update(self, key: tuple[Any, ...], values: dict[str, Any], pre: Node | None) -> Any:
        row = self._t.rows.get(key)
        if row is None:
            return None
        if pre is not None and not compile_local(pre)(self._m.build(dict(row))):
            return None
        new = {**row, **values}
        self._check_unique(new, key)
        self._t.rows[key] = _copy(new)
        return self._build(new)

    def _delete(self, key: tuple[Any, ...], pre: Node | None) -> bool:
        row = self._t.rows.get(key)
        if row is None:
            return False
        if pre is not None and not compile_local(pre)(self._m.build(dict(row))):
            return False
        del self._t.rows[key]
        return True

    async def insert(self, values: dict[str, Any]) -> Any:
        """Store a new item; Conflict on a duplicate key or unique value."""
        with self._t.lock:
            return self._insert(values)

    async def get(self, key: tuple[Any, ...]) -> Any:
        """The item at key, or None."""
        row = self._t.rows.get(key)
        return None if row is None else self._build(row)

    async def get_many(self, keys: list[tuple[Any, ...]]) -> list[Any]:
        """Items aligned with keys."""
        rows = self._t.rows
        return [None if (r := rows.get(k)) is None else self._build(r) for k in keys]

    async def update(self, key: tuple[Any, ...], values: dict[str, Any], pre: Node | None) -> Any:
        """Apply changes; None when missing or the precondition fails."""
        with self._t.lock:
            return self._update(key, values, pre)

    async def delete(self, key: tuple[Any, ...], pre: Node | None) -> bool:
        """Delete; False when missing or the precondition fails."""
        with self._t.lock:
            return self._delete(key, pre)

    def _matching(self, node: Node) -> list[Any]:
        keep = compile_local(node)
        with self._t.lock:
            rows = list(self._t.rows.values())
        build = self._m.build
        return [item for item in (build(dict(r)) for r in rows) if keep(item)]

    async def find(self, node: Node, order: Order, limit: int | None) -> list[Any]:
        """Matching items in order, at most limit."""
        items = sort_items(self._matching(node), order)
        items = items if limit is None else items[:limit]
        return [self._build(i.__dict__) for i in items]

    async def iterate(self, node: Node) -> AsyncIterator[Any]:
        """Matching items in no particular order."""
        for item in self._matching(node):
            yield self._build(item.__dict__)

    async def count(self, node: Node) -> int:
        """How many match."""
        return len(self._matching(node))

    async def update_where(self, node: Node, values: dict[str, Any]) -> int:
        """Apply changes to every match (all or nothing: a unique value conflicts)."""
        with self._t.lock:
            keys = [tuple(getattr(i, a) for a in self._m.key.attrs) for i in self._matching(node)]
            snapshot = dict(self._t.rows)
            try:
                return sum(1 for k in keys if self._update(k, values, None) is not None)
            except Conflict:
                self._t.rows = snapshot
                raise

    async def delete_where(self, node: Node) -> int:
        """Delete every match."""
        with self._t.lock:
            keys = [tuple(getattr(i, a) for a in self._m.key.attrs) for i in self._matching(node)]
            return sum(1 for k in keys if self._delete(k, None))

    async def apply(self, edits: list[PreparedEdit], atomic: bool) -> list[Outcome]:
        """Apply prepared edits in order; atomic restores everything when one fails."""
        out: list[Outcome] = []
        with self._t.lock:
            snapshot = (dict(self._t.rows), self._t.sequence) if atomic else None
            for e in edits:
                out.append(self._apply_one(e))
                if atomic and not out[-1][0]:
                    assert snapshot is not None
                    self._t.rows, self._t.sequence = snapshot
                    out.extend((False, None, None, "not applied: batch failed")
                               for _ in edits[len(out):])
                    return out
        return out

    def _apply_one(self, e: PreparedEdit) -> Outcome:
        try:
            if e.kind == "create":
                return ok(self._insert(e.values))
            if e.kind == "update":
                row = self._t.rows.get(e.key)
                why = refusal(self._m, e.key, None if row is None else self._m.build(dict(row)),
                              e.precondition)
                return why if why is not None else ok(self._update(e.key, e.values, None))
            return ok(None) if self._delete(e.key, None) else missing(key_dict(self._m, e.key))
        except Conflict as exc:
            return duplicate(exc)


def _everything() -> Node:
    from ....query.ast import EVERYTHING
    return EVERYTHING

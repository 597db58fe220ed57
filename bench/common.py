"""What the SQL benchmarks share: storeroom's side of the workloads, and the table they
print (ops/s, ratio to the raw driver, storeroom's ratio to the fastest peer library)."""

from __future__ import annotations

import math
from typing import Any


class StoreroomWorkloads:
    """storeroom's side of every SQL workload, on the store URL given to ``setup``."""

    name = "storeroom"

    def setup(self, url: str) -> None:
        from storeroom import Index, open_store, stored

        @stored(key="id", indexes=[Index("category")], table="item")
        class Item:
            id: int
            name: str
            category: str
            price: float
            qty: int
            active: bool

        self.Item = Item
        self.url = url
        self.s = open_store(Item, url)
        self.s.create_tables()
        self.dm: Any = None

    def _items(self, rows: list[tuple[Any, ...]]) -> list[Any]:
        M = self.Item
        return [M(id=r[0], name=r[1], category=r[2], price=r[3], qty=r[4], active=r[5])
                for r in rows]

    def load(self, rows: list[tuple[Any, ...]]) -> None:
        from storeroom import Create
        for i in range(0, len(rows), 1000):
            self.s.edit_batch([Create(x) for x in self._items(rows[i:i + 1000])])

    def get(self, k: int) -> Any:
        return self.s.read(k)

    def create_tx(self, rows: list[tuple[Any, ...]]) -> None:
        if self.dm is None:
            from storeroom.context import DataManager
            self.dm = DataManager()
            self.dm.add_engine("main", self.url, default=True)
            self.dm.register_models(self.Item)
        with self.dm.context() as ctx:
            s = ctx.store(self.Item)
            for x in self._items(rows):
                s.create(x)

    def bulk(self, rows: list[tuple[Any, ...]]) -> None:
        self.load(rows)

    def page(self, cat: str) -> Any:
        return self.s.search(category=cat, qty__gte=10, order_by=["-price"], limit=20)

    def iterate(self) -> int:
        return sum(1 for _ in self.s.search_all())

    def count(self, cat: str) -> int:
        return self.s.count(category=cat, active=True)

    def update(self, k: int) -> None:
        self.s.update(k, qty=7)

    def delete(self, k: int) -> None:
        self.s.delete(k)

    def batch(self, keys: list[int]) -> list[Any]:
        return self.s.read_batch(keys)

    def close(self) -> None:
        self.s.close()
        if self.dm is not None:
            self.dm.close()


def print_table(title: str, results: dict[tuple[str, str], float], names: list[str],
           workloads: list[tuple[str, str]], raw: str) -> None:
    """Print the table; ``results`` maps (workload, library name) to seconds per op."""
    peers = [n for n in names if n not in (raw, "storeroom")]
    print(f"\n{title}; ops/s (ratio to {raw})\n")
    print(f"| {'workload':<40} | " + " | ".join(f"{n:>22}" for n in names) +
          " | storeroom / best peer |")
    print("|" + "---|" * (len(names) + 2))
    ratios: list[float] = []
    for wl, label in workloads:
        floor = results.get((wl, raw))
        cells = []
        for n in names:
            t = results.get((wl, n), math.nan)
            if math.isnan(t):
                cells.append(f"{'n/a':>22}")
                continue
            r = (floor / t) if floor else math.nan
            cells.append(f"{1 / t:>12,.0f} ({r:5.2f}x)")
        best_peer = min((results[(wl, p)] for p in peers
                         if not math.isnan(results.get((wl, p), math.nan))), default=math.nan)
        ours = results.get((wl, "storeroom"), math.nan)
        vs = best_peer / ours if not math.isnan(best_peer) else math.nan
        if floor and not math.isnan(ours):
            ratios.append(floor / ours)
        print(f"| {label:<40} | " + " | ".join(cells) + f" | {vs:>20.2f}x |")
    if ratios:
        gm = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
        print(f"\nstoreroom geometric mean of ratios to {raw}: {gm:.2f}x")

"""The side-by-side table every SQL benchmark prints: ops/s, ratio to the raw driver,
and storeroom's ratio to the fastest peer library."""

from __future__ import annotations

import math


def report(title: str, results: dict[tuple[str, str], float], names: list[str],
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

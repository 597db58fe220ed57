"""Benchmark ``storeroom.safe`` against stdlib ``shelve``, ``sqlitedict``, ``diskcache``,
``lmdb`` and raw ``sqlite3`` (the floor), side by side in one run.

Run: ``python bench/safe_bench.py [--quick]``. Not part of the test suite.

Every engine stores pickled values (protocol 5) under ``str`` keys and, unless marked, runs at
the same durability: a write has been fsynced when the call returns.

* raw sqlite3 (floor): WAL + ``synchronous=FULL`` (the WAL is fsynced on every commit),
  autocommit ``INSERT OR REPLACE``; get = ``SELECT`` + ``pickle.loads``.
* raw lmdb: ``sync=True, metasync=True`` (data and meta page fsynced per commit);
  get = read transaction + ``pickle.loads``.
* safe: ``Safe(path)`` (``durability="full"``); safe-normal: ``durability="normal"``
  (fsync at checkpoints only: not durable against power loss, shown for reference).
* sqlitedict: ``journal_mode="WAL"``; it hard-codes ``synchronous=OFF`` (no fsync ever), so
  the bench sets ``synchronous=FULL`` through its connection and calls a blocking ``commit()``
  after every write (``autocommit=True`` alone returns before the commit).
* diskcache: ``sqlite_synchronous=2`` (FULL; its default is NORMAL) with WAL; values here are
  small, so they live in SQLite (diskcache writes big values to files *without* fsync).
* shelve: stdlib ``dbm`` backend available here with ``sync()`` after each write. No backend
  fsyncs, none is crash-safe or multi-process safe: shelve is listed but NOT at equal
  durability, and it sits out the multi-process test.

Every engine names its SQLite ``synchronous`` level (``sync``). The durable-set comparison
(``bench_set_pairs``, the "set at equal durability" table) only ever compares engines at
the same level, interleaved a few writes at a time so that they share the disk's noise:

* FULL (a write is fsynced before it returns): safe ``durability="full"``, sqlitedict with
  ``synchronous=FULL`` set by the bench, diskcache ``sqlite_synchronous=2``, raw sqlite3.
* NORMAL (WAL synced at checkpoints only: atomic, survives a process crash, may lose the
  last writes on power loss): safe ``durability="normal"``, sqlitedict with
  ``synchronous=NORMAL``, diskcache's default (``sqlite_synchronous=1``), raw sqlite3.
* OFF: sqlitedict as it ships (never fsyncs: not even the file's integrity survives a
  power loss), shown for reference only, never paired.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import pickle
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from storeroom.safe import Safe  # noqa: E402

VALUE = {"id": 12345, "name": "widget", "tags": ["a", "b", "c"], "price": 9.99}
P = 5


# -- engines -------------------------------------------------------------------------------


class Engine(ABC):
    """A uniform face over one key-value store."""

    name = "?"
    #: SQLite ``synchronous`` level, or the equivalent (lmdb: FULL); "-" for none (shelve)
    sync = "FULL"
    durable = True
    multiprocess = True

    def __init__(self, path: str) -> None:
        self.path = path

    @abstractmethod
    def set(self, key: str, value: Any) -> None:
        """Each engine's own implementation."""

    @abstractmethod
    def get(self, key: str) -> Any:
        """Each engine's own implementation."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Each engine's own implementation."""

    @abstractmethod
    def bulk(self, items: list[tuple[str, Any]]) -> None:
        """Each engine's own implementation."""

    def close(self) -> None:  # noqa: B027 - optional hook: most engines hold nothing open
        """Release what the engine holds (nothing by default)."""


class RawSqlite(Engine):
    name = "raw sqlite3"
    sync = "FULL"

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=60)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(f"PRAGMA synchronous={self.sync}")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID"
        )
        self.cur = self.conn.cursor()

    def set(self, key: str, value: Any) -> None:
        self.cur.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, pickle.dumps(value, P)))

    def get(self, key: str) -> Any:
        return pickle.loads(
            self.cur.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()[0]
        )

    def delete(self, key: str) -> None:
        self.cur.execute("DELETE FROM kv WHERE key = ?", (key,))

    def bulk(self, items: list[tuple[str, Any]]) -> None:
        cur = self.cur
        cur.execute("BEGIN IMMEDIATE")
        for k, v in items:
            cur.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (k, pickle.dumps(v, P)))
        cur.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


class RawSqliteNormal(RawSqlite):
    name = "raw sqlite3 (NORMAL)"
    sync = "NORMAL"
    durable = False


class RawLmdb(Engine):
    name = "raw lmdb"

    def __init__(self, path: str) -> None:
        import lmdb

        super().__init__(path)
        self.env = lmdb.open(path, map_size=1 << 30, sync=True, metasync=True, max_readers=256)

    def set(self, key: str, value: Any) -> None:
        with self.env.begin(write=True) as txn:
            txn.put(key.encode(), pickle.dumps(value, P))

    def get(self, key: str) -> Any:
        with self.env.begin() as txn:
            return pickle.loads(txn.get(key.encode()))

    def delete(self, key: str) -> None:
        with self.env.begin(write=True) as txn:
            txn.delete(key.encode())

    def bulk(self, items: list[tuple[str, Any]]) -> None:
        with self.env.begin(write=True) as txn:
            for k, v in items:
                txn.put(k.encode(), pickle.dumps(v, P))

    def close(self) -> None:
        self.env.close()


class SafeEngine(Engine):
    name = "storeroom.safe"
    durability = "full"

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.safe = Safe(path, durability=self.durability)  # type: ignore[arg-type]

    def set(self, key: str, value: Any) -> None:
        self.safe[key] = value

    def get(self, key: str) -> Any:
        return self.safe[key]

    def delete(self, key: str) -> None:
        del self.safe[key]

    def bulk(self, items: list[tuple[str, Any]]) -> None:
        with self.safe.transaction() as t:
            for k, v in items:
                t[k] = v

    def close(self) -> None:
        self.safe.close()


class SafeNormal(SafeEngine):
    name = "safe (normal)"
    durability = "normal"
    sync = "NORMAL"
    durable = False


class SqliteDictEngine(Engine):
    name = "sqlitedict"
    #: the level the bench sets (None: sqlitedict's own, OFF)
    level: str | None = "FULL"

    def __init__(self, path: str) -> None:
        from sqlitedict import SqliteDict

        super().__init__(path)
        self.d = SqliteDict(path, journal_mode="WAL", autocommit=False, timeout=60)
        # sqlitedict hard-codes ``PRAGMA synchronous=OFF`` (never fsyncs); set the level back
        # through its connection thread so it runs at the same durability as its pair.
        if self.level is not None:
            self.d.conn.execute(f"PRAGMA synchronous={self.level}")
        got = self.d.conn.select_one("PRAGMA synchronous")[0]
        assert got == {"OFF": 0, "NORMAL": 1, "FULL": 2}[self.sync], (self.name, got)

    def set(self, key: str, value: Any) -> None:
        self.d[key] = value
        self.d.commit()

    def get(self, key: str) -> Any:
        return self.d[key]

    def delete(self, key: str) -> None:
        del self.d[key]
        self.d.commit()

    def bulk(self, items: list[tuple[str, Any]]) -> None:
        for k, v in items:
            self.d[k] = v
        self.d.commit()

    def close(self) -> None:
        self.d.close()


class SqliteDictNormal(SqliteDictEngine):
    name = "sqlitedict (NORMAL)"
    level = "NORMAL"
    sync = "NORMAL"
    durable = False


class SqliteDictOff(SqliteDictEngine):
    name = "sqlitedict (as shipped: OFF)"
    level = None
    sync = "OFF"
    durable = False


class DiskCacheEngine(Engine):
    name = "diskcache"
    synchronous = 2  # FULL

    def __init__(self, path: str) -> None:
        import diskcache

        super().__init__(path)
        self.c = diskcache.Cache(path, sqlite_synchronous=self.synchronous, timeout=60)
        got = self.c._sql("PRAGMA synchronous").fetchone()[0]
        assert got == self.synchronous, (self.name, got)

    def set(self, key: str, value: Any) -> None:
        self.c[key] = value

    def get(self, key: str) -> Any:
        return self.c[key]

    def delete(self, key: str) -> None:
        del self.c[key]

    def bulk(self, items: list[tuple[str, Any]]) -> None:
        with self.c.transact():
            for k, v in items:
                self.c[k] = v

    def close(self) -> None:
        self.c.close()


class DiskCacheNormal(DiskCacheEngine):
    name = "diskcache (NORMAL: default)"
    synchronous = 1
    sync = "NORMAL"
    durable = False


class ShelveEngine(Engine):
    name = "shelve"
    sync = "-"
    durable = False
    multiprocess = False

    def __init__(self, path: str) -> None:
        import shelve

        super().__init__(path)
        self.s = shelve.open(path, protocol=P)

    def set(self, key: str, value: Any) -> None:
        self.s[key] = value
        self.s.sync()

    def get(self, key: str) -> Any:
        return self.s[key]

    def delete(self, key: str) -> None:
        del self.s[key]
        self.s.sync()

    def bulk(self, items: list[tuple[str, Any]]) -> None:
        for k, v in items:
            self.s[k] = v
        self.s.sync()

    def close(self) -> None:
        self.s.close()


ENGINES: list[type[Engine]] = [
    RawSqlite,
    RawLmdb,
    SafeEngine,
    SqliteDictEngine,
    DiskCacheEngine,
    ShelveEngine,
    SafeNormal,
    RawSqliteNormal,
    SqliteDictNormal,
    DiskCacheNormal,
    SqliteDictOff,
]
#: the durable-set pairs: at each level, the safe against each peer at that same level
PAIRS = {
    "FULL": (SafeEngine.name, (SqliteDictEngine.name, DiskCacheEngine.name, RawSqlite.name)),
    "NORMAL": (SafeNormal.name, (SqliteDictNormal.name, DiskCacheNormal.name,
                                 RawSqliteNormal.name)),
}
BY_NAME = {e.name: e for e in ENGINES}
FLOOR = RawSqlite.name
RAW = (RawSqlite.name, RawLmdb.name)
PEERS = (SqliteDictEngine.name, DiskCacheEngine.name, RawLmdb.name)


# -- measurements --------------------------------------------------------------------------


def keys(n: int, prefix: str = "key") -> list[str]:
    return [f"{prefix}{i:07d}" for i in range(n)]


def timed(fn: Callable[[str], Any], ks: list[str], budget: float) -> float:
    """Mean seconds per call of ``fn`` over ``ks`` (cycled), running for ~``budget`` s."""
    n = 0
    start = time.perf_counter()
    end = start + budget
    while True:
        for k in ks:
            fn(k)
        n += len(ks)
        now = time.perf_counter()
        if now >= end:
            return (now - start) / n


def timed_once(fn: Callable[[str], Any], ks: list[str], budget: float) -> float:
    """Mean seconds per call of ``fn`` over each of ``ks`` once, stopping after ~``budget`` s."""
    start = time.perf_counter()
    end = start + budget
    n = 0
    for i in range(0, len(ks), 10):
        for k in ks[i : i + 10]:
            fn(k)
        n += len(ks[i : i + 10])
        if time.perf_counter() >= end:
            break
    return (time.perf_counter() - start) / n


def bench_single(engines: dict[str, Engine], budget: float, rounds: int) -> dict[str, dict]:
    """Durable set, get and delete, round-robin over engines to share disk noise fairly."""
    res: dict[str, dict[str, list[float]]] = {n: {"set": [], "get": [], "delete": []} for n in engines}
    hot = keys(1000)
    for e in engines.values():
        e.bulk([(k, VALUE) for k in hot])
    for r in range(rounds):
        for name, e in engines.items():
            res[name]["get"].append(timed(e.get, hot, budget / 2))
        for name, e in engines.items():
            ks = keys(100, prefix=f"s{r}-")
            res[name]["set"].append(timed(lambda k, e=e: e.set(k, VALUE), ks, budget))
        for name, e in engines.items():
            ks = keys(20_000, prefix=f"d{r}-")
            e.bulk([(k, VALUE) for k in ks])
            res[name]["delete"].append(timed_once(e.delete, ks, budget))
    return {n: {op: statistics.median(v) for op, v in ops.items()} for n, ops in res.items()}


def bench_set_pairs(engines: dict[str, Engine], rounds: int, per: int = 1
                    ) -> dict[str, dict[str, float]]:
    """Single-key sets at equal durability: the engines of each ``PAIRS`` level take turns,
    ``per`` sets each, ``rounds`` times (the order rotating), so that a slow moment of the
    disk falls on all of them (the fsync time of this shared machine's disk moves by 10x
    within seconds: coarser turns measured the disk, not the engines). Per engine: median
    and mean seconds of one set."""
    lat: dict[str, list[float]] = {}
    pc = time.perf_counter
    for level, (safe, peers) in PAIRS.items():
        group = [n for n in (safe, *peers) if n in engines]
        for n in group:
            lat[n] = []
        for r in range(rounds):
            order = group[r % len(group):] + group[:r % len(group)]
            for n in order:
                e = engines[n]
                for i in range(per):
                    k = f"p{level}{r}-{i}"
                    t = pc()
                    e.set(k, VALUE)
                    lat[n].append(pc() - t)
    return {n: {"median": statistics.median(v), "mean": statistics.fmean(v)}
            for n, v in lat.items()}


def bench_bulk(engines: dict[str, Engine], rounds: int) -> dict[str, float]:
    """10k sets in one transaction: seconds per set (median over rounds)."""
    out: dict[str, list[float]] = {n: [] for n in engines}
    for r in range(rounds):
        for name, e in engines.items():
            items = [(k, VALUE) for k in keys(10_000, prefix=f"b{r}-")]
            t = time.perf_counter()
            e.bulk(items)
            out[name].append((time.perf_counter() - t) / len(items))
    return {n: statistics.median(v) for n, v in out.items()}


def _mixed_worker(name: str, path: str, seconds: float, seed: int, q: Any, go: Any) -> None:
    e = BY_NAME[name](path)
    rnd = random.Random(seed)
    ks = keys(1000)
    lat_get: list[float] = []
    lat_set: list[float] = []
    go.wait()
    end = time.perf_counter() + seconds
    pc = time.perf_counter
    while pc() < end:
        k = ks[rnd.randrange(1000)]
        if rnd.random() < 0.8:
            t = pc()
            e.get(k)
            lat_get.append(pc() - t)
        else:
            t = pc()
            e.set(k, VALUE)
            lat_set.append(pc() - t)
    e.close()
    q.put((lat_get, lat_set))


def bench_mixed(name: str, path: str, procs: int, seconds: float) -> dict[str, float]:
    """``procs`` processes, 80% get / 20% durable set on 1000 shared keys."""
    e = BY_NAME[name](path)
    e.bulk([(k, VALUE) for k in keys(1000)])
    e.close()
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    go = ctx.Event()
    ps = [ctx.Process(target=_mixed_worker, args=(name, path, seconds, i, q, go))
          for i in range(procs)]
    for p in ps:
        p.start()
    time.sleep(0.5)
    go.set()
    gets: list[float] = []
    sets: list[float] = []
    for _ in ps:
        g, s = q.get()
        gets += g
        sets += s
    for p in ps:
        p.join()
    allops = sorted(gets + sets)
    gets.sort()
    sets.sort()

    def pct(xs: list[float], p: float) -> float:
        return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")

    return {
        "ops/s": len(allops) / seconds,
        "p50": pct(allops, 0.5),
        "p99": pct(allops, 0.99),
        "get p50": pct(gets, 0.5),
        "get p99": pct(gets, 0.99),
        "set p50": pct(sets, 0.5),
        "set p99": pct(sets, 0.99),
    }


# -- report --------------------------------------------------------------------------------


def us(x: float) -> str:
    return f"{x * 1e6:,.1f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="shorter runs")
    ap.add_argument("--procs", type=int, default=8)
    ap.add_argument("--mixed-only", action="store_true", help="only the multi-process test")
    ap.add_argument("--pairs-only", action="store_true",
                    help="only the durable-set comparison at equal durability")
    ap.add_argument("--pair-rounds", type=int, default=0,
                    help="rounds of the equal-durability set comparison, one set per "
                         "engine each (default 300, --quick 100)")
    args = ap.parse_args()
    budget, rounds, mixed_s = (0.3, 2, 1.5) if args.quick else (1.0, 3, 4.0)
    pair_rounds = args.pair_rounds or (100 if args.quick else 300)

    os.makedirs(".bench", exist_ok=True)
    root = tempfile.mkdtemp(prefix="safe-", dir=".bench")
    try:
        paths = {e.name: os.path.join(root, e.name.replace(" ", "_").replace("(", "")
                                      .replace(")", "")) for e in ENGINES}
        for e in ENGINES:
            if issubclass(e, (RawLmdb, DiskCacheEngine)):
                os.makedirs(paths[e.name], exist_ok=True)
        engines = {e.name: e(paths[e.name]) for e in ENGINES}
        print(f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, "
              f"{os.cpu_count()} CPUs, dir {root}")
        single: dict = {}
        bulk: dict = {}
        pairs: dict = {}
        if not args.mixed_only:
            pairs = bench_set_pairs(engines, pair_rounds)
        if not (args.mixed_only or args.pairs_only):
            single = bench_single(engines, budget, rounds)
            bulk = bench_bulk(engines, rounds)
        for e in engines.values():
            e.close()
        mixed = {}
        for e in [] if args.pairs_only else ENGINES:
            if e.multiprocess and e.durable:
                path = paths[e.name] + "-mixed"
                if issubclass(e, (RawLmdb, DiskCacheEngine)):
                    os.makedirs(path, exist_ok=True)
                mixed[e.name] = bench_mixed(e.name, path, args.procs, mixed_s)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    report(single, bulk, mixed, args.procs, pairs)


def report(single: dict, bulk: dict, mixed: dict, procs: int, pairs: dict | None = None
           ) -> None:
    if pairs:
        report_pairs(pairs)
    if single:
        report_single(single, bulk)
    if mixed:
        report_mixed(mixed, procs)


def report_pairs(pairs: dict) -> None:
    """The durable-set table: the safe and its peers at each level, peer ÷ safe (above 1:
    the safe is faster)."""
    print("\nset at equal durability (µs per set, engines interleaved; "
          "peer ÷ safe on the median: above 1 the safe is faster)")
    hdr = f"{'level':8s}{'engine':30s}{'median':>10s}{'mean':>10s}{'peer÷safe':>11s}"
    print(hdr)
    print("-" * len(hdr))
    for level, (safe, peers) in PAIRS.items():
        if safe not in pairs:
            continue
        mine = pairs[safe]["median"]
        for n in (safe, *peers):
            if n not in pairs:
                continue
            m = pairs[n]
            ratio = "" if n == safe else f"{m['median'] / mine:11.2f}"
            print(f"{level:8s}{n:30s}{us(m['median']):>10s}{us(m['mean']):>10s}{ratio}")


def report_single(single: dict, bulk: dict) -> None:
    names = list(single)
    equal = [n for n in names if BY_NAME[n].durable]
    print("\nµs per operation (lower is better); ×floor = / raw sqlite3 FULL; "
          "×best peer = / fastest of sqlitedict, diskcache, lmdb")
    hdr = f"{'engine':30s}{'sync':>8s}" + "".join(
        f"{c:>12s}" for c in ("set", "get", "delete", "bulk set")
    )
    print(hdr)
    print("-" * len(hdr))
    for n in names:
        row = single[n]
        print(f"{n:30s}{BY_NAME[n].sync:>8s}"
              f"{us(row['set']):>12s}{us(row['get']):>12s}{us(row['delete']):>12s}"
              f"{us(bulk[n]):>12s}")
    s = single["storeroom.safe"]
    print("\nstoreroom.safe ratios")
    for op in ("set", "get", "delete", "bulk"):
        mine = bulk["storeroom.safe"] if op == "bulk" else s[op]

        def val(n: str, op: str = op) -> float:
            return float(bulk[n] if op == "bulk" else single[n][op])

        floor = val(FLOOR)
        fastest_raw = min(RAW, key=val)
        best_peer = min((p for p in PEERS if p in equal), key=val)
        print(f"  {op:7s} ×floor {mine / floor:5.2f}   ×fastest raw ({fastest_raw}) "
              f"{mine / val(fastest_raw):5.2f}   ×best peer ({best_peer}) "
              f"{mine / val(best_peer):5.2f}")


def report_mixed(mixed: dict, procs: int) -> None:
    print(f"\n{procs} processes, 80% get / 20% durable set, µs latency")
    hdr = f"{'engine':24s}{'ops/s':>10s}" + "".join(
        f"{c:>10s}" for c in ("p50", "p99", "get p50", "get p99", "set p50", "set p99")
    )
    print(hdr)
    print("-" * len(hdr))
    for n, m in mixed.items():
        print(f"{n:24s}{m['ops/s']:>10,.0f}" + "".join(
            f"{us(m[c]):>10s}" for c in ("p50", "p99", "get p50", "get p99", "set p50",
                                          "set p99")))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""SQLite workloads side by side: raw sqlite3 (the floor), storeroom, SQLAlchemy ORM,
Pony and peewee, all at the same PRAGMAs (WAL, synchronous=NORMAL unless
``--synchronous FULL``, storeroom's durable default), in one process run.

    python bench/sqlite_bench.py [--rows 10000] [--repeat 3] [--only storeroom,raw]
                                 [--synchronous NORMAL|FULL]

Prints ops/s per workload and library, each library's ratio to raw sqlite3, and
storeroom's ratio to the fastest peer ORM. Median of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from common import StoreroomWorkloads, print_table  # noqa: E402

# at module level: SQLAlchemy resolves the string annotations of mapped classes here
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column  # noqa: E402

PRAGMAS = {"journal_mode": "WAL", "synchronous": "NORMAL"}
CATEGORIES = [f"cat{i}" for i in range(20)]

WORKLOADS = [
    ("get", "get by key"),
    ("create_tx", "create one at a time in one transaction"),
    ("bulk", "bulk create (1000 per batch)"),
    ("page", "filtered sorted page of 20"),
    ("iterate", "iterate all objects"),
    ("count", "count with a filter"),
    ("update", "partial update by key"),
    ("delete", "delete by key"),
    ("batch", "read_batch of 100"),
    ("async_page", "search page via open_async_store"),
]


def row(i: int) -> tuple[Any, ...]:
    return (i, f"item {i}", CATEGORIES[i % 20], float(i % 997) / 7, i % 50, i % 3 == 0)


# ---------------------------------------------------------------------------------------
class Raw:
    """The floor: sqlite3 with hand-written SQL, tuples, no objects."""

    name = "raw sqlite3"

    def setup(self, path: str) -> None:
        self.c = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for k, v in PRAGMAS.items():
            self.c.execute(f"PRAGMA {k}={v}")
        self.c.execute("CREATE TABLE IF NOT EXISTS item (id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                       " category TEXT NOT NULL, price REAL NOT NULL, qty INTEGER NOT NULL,"
                       " active BOOLEAN NOT NULL)")
        self.c.execute("CREATE INDEX IF NOT EXISTS ix_item_category ON item (category)")

    def load(self, rows: list[tuple[Any, ...]]) -> None:
        self.c.execute("BEGIN")
        self.c.executemany("INSERT INTO item VALUES (?,?,?,?,?,?)", rows)
        self.c.execute("COMMIT")

    def get(self, k: int) -> Any:
        return self.c.execute("SELECT id, name, category, price, qty, active FROM item WHERE id=?",
                              (k,)).fetchone()

    def create_tx(self, rows: list[tuple[Any, ...]]) -> None:
        c = self.c
        c.execute("BEGIN")
        for r in rows:
            c.execute("INSERT INTO item VALUES (?,?,?,?,?,?)", r)
        c.execute("COMMIT")

    def bulk(self, rows: list[tuple[Any, ...]]) -> None:
        self.load(rows)

    def page(self, cat: str) -> list[Any]:
        return self.c.execute("SELECT id, name, category, price, qty, active FROM item "
                              "WHERE category=? AND qty>=? ORDER BY price DESC, id LIMIT 21",
                              (cat, 10)).fetchall()

    def iterate(self) -> int:
        return len(self.c.execute("SELECT id, name, category, price, qty, active FROM item"
                                  ).fetchall())

    def count(self, cat: str) -> int:
        return self.c.execute("SELECT count(*) FROM item WHERE category=? AND active=1",
                              (cat,)).fetchone()[0]

    def update(self, k: int) -> None:
        self.c.execute("UPDATE item SET qty=? WHERE id=?", (7, k))

    def delete(self, k: int) -> None:
        self.c.execute("DELETE FROM item WHERE id=?", (k,))

    def batch(self, keys: list[int]) -> list[Any]:
        q = "SELECT id, name, category, price, qty, active FROM item WHERE id IN ({})".format(",".join(
            "?" * len(keys)))
        found = {r[0]: r for r in self.c.execute(q, keys).fetchall()}
        return [found.get(k) for k in keys]

    def async_page(self, cat: str) -> Any:
        return self.page(cat)

    def close(self) -> None:
        self.c.close()


# ---------------------------------------------------------------------------------------
class Storeroom(StoreroomWorkloads):
    """storeroom on the SQLite file, plus the async store for the async workload."""

    def setup(self, path: str) -> None:
        from storeroom import open_async_store
        super().setup(f"sqlite:///{path}?synchronous={PRAGMAS['synchronous']}")
        self.loop = asyncio.new_event_loop()
        self.a = open_async_store(self.Item, self.url)

    def async_page(self, cat: str) -> Any:
        return self.loop.run_until_complete(
            self.a.search(category=cat, qty__gte=10, order_by=["-price"], limit=20))

    def close(self) -> None:
        super().close()
        self.loop.run_until_complete(self.a.close())
        self.loop.close()

# ---------------------------------------------------------------------------------------
class SqlaOrm:
    name = "SQLAlchemy ORM"

    def setup(self, path: str) -> None:
        import sqlalchemy as sa
        from sqlalchemy import event
        class Base(DeclarativeBase):
            pass

        class Item(Base):
            __tablename__ = "item"
            id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
            name: Mapped[str]
            category: Mapped[str] = mapped_column(index=True)
            price: Mapped[float]
            qty: Mapped[int]
            active: Mapped[bool]

        self.Item, self.sa = Item, sa
        self.engine = sa.create_engine(f"sqlite:///{path}")

        @event.listens_for(self.engine, "connect")
        def _pragmas(dbapi_conn: Any, _: Any) -> None:
            for k, v in PRAGMAS.items():
                dbapi_conn.execute(f"PRAGMA {k}={v}")

        Base.metadata.create_all(self.engine)
        self.Session = Session
        self.session = Session(self.engine, expire_on_commit=False)

    def _objs(self, rows: list[tuple[Any, ...]]) -> list[Any]:
        M = self.Item
        return [M(id=r[0], name=r[1], category=r[2], price=r[3], qty=r[4], active=r[5])
                for r in rows]

    def load(self, rows: list[tuple[Any, ...]]) -> None:
        with self.Session(self.engine) as s:
            s.add_all(self._objs(rows))
            s.commit()

    def get(self, k: int) -> Any:
        s = self.session
        obj = s.get(self.Item, k, populate_existing=True)
        s.commit()
        return obj

    def create_tx(self, rows: list[tuple[Any, ...]]) -> None:
        with self.Session(self.engine) as s:
            for o in self._objs(rows):
                s.add(o)
                s.flush()
            s.commit()

    def bulk(self, rows: list[tuple[Any, ...]]) -> None:
        self.load(rows)

    def page(self, cat: str) -> Any:
        sa, M = self.sa, self.Item
        with self.Session(self.engine) as s:
            return s.scalars(sa.select(M).where(M.category == cat, M.qty >= 10)
                             .order_by(M.price.desc(), M.id).limit(21)).all()

    def iterate(self) -> int:
        with self.Session(self.engine) as s:
            return len(s.scalars(self.sa.select(self.Item)).all())

    def count(self, cat: str) -> int:
        sa, M = self.sa, self.Item
        with self.Session(self.engine) as s:
            return s.scalar(sa.select(sa.func.count()).select_from(M)
                            .where(M.category == cat, M.active.is_(True)))

    def update(self, k: int) -> None:
        with self.Session(self.engine) as s:
            s.execute(self.sa.update(self.Item).where(self.Item.id == k).values(qty=7))
            s.commit()

    def delete(self, k: int) -> None:
        with self.Session(self.engine) as s:
            s.execute(self.sa.delete(self.Item).where(self.Item.id == k))
            s.commit()

    def batch(self, keys: list[int]) -> list[Any]:
        with self.Session(self.engine) as s:
            found = {o.id: o for o in s.scalars(self.sa.select(self.Item)
                                                .where(self.Item.id.in_(keys)))}
            return [found.get(k) for k in keys]

    def async_page(self, cat: str) -> Any:
        return None

    def close(self) -> None:
        self.session.close()
        self.engine.dispose()


# ---------------------------------------------------------------------------------------
class Peewee:
    name = "peewee"

    def setup(self, path: str) -> None:
        import peewee as pw
        self.db = pw.SqliteDatabase(path, pragmas=PRAGMAS)

        class Item(pw.Model):
            id = pw.IntegerField(primary_key=True)
            name = pw.TextField()
            category = pw.TextField(index=True)
            price = pw.FloatField()
            qty = pw.IntegerField()
            active = pw.BooleanField()

            class Meta:
                database = self.db
                table_name = "item"

        self.Item, self.pw = Item, pw
        self.db.connect()
        self.db.create_tables([Item])

    def _dicts(self, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        return [dict(id=r[0], name=r[1], category=r[2], price=r[3], qty=r[4], active=r[5])
                for r in rows]

    def load(self, rows: list[tuple[Any, ...]]) -> None:
        with self.db.atomic():
            for i in range(0, len(rows), 100):
                self.Item.insert_many(self._dicts(rows[i:i + 100])).execute()

    def get(self, k: int) -> Any:
        return self.Item.get_or_none(self.Item.id == k)

    def create_tx(self, rows: list[tuple[Any, ...]]) -> None:
        with self.db.atomic():
            for d in self._dicts(rows):
                self.Item.create(**d)

    def bulk(self, rows: list[tuple[Any, ...]]) -> None:
        self.load(rows)

    def page(self, cat: str) -> Any:
        M = self.Item
        return list(M.select().where((M.category == cat) & (M.qty >= 10))
                    .order_by(M.price.desc(), M.id).limit(21))

    def iterate(self) -> int:
        return len(list(self.Item.select()))

    def count(self, cat: str) -> int:
        M = self.Item
        return M.select().where((M.category == cat) & (M.active == True)).count()  # noqa: E712

    def update(self, k: int) -> None:
        self.Item.update(qty=7).where(self.Item.id == k).execute()

    def delete(self, k: int) -> None:
        self.Item.delete_by_id(k)

    def batch(self, keys: list[int]) -> list[Any]:
        found = {o.id: o for o in self.Item.select().where(self.Item.id.in_(keys))}
        return [found.get(k) for k in keys]

    def async_page(self, cat: str) -> Any:
        return None

    def close(self) -> None:
        self.db.close()


# ---------------------------------------------------------------------------------------
class PonyOrm:
    name = "Pony"

    def setup(self, path: str) -> None:
        import pony.orm as po
        self.po = po
        db = po.Database()

        class Item(db.Entity):
            _table_ = "item"
            id = po.PrimaryKey(int, auto=False)
            name = po.Required(str)
            category = po.Required(str, index=True)
            price = po.Required(float)
            qty = po.Required(int)
            active = po.Required(bool)

        db.bind(provider="sqlite", filename=path, create_db=True)

        @db.on_connect(provider="sqlite")
        def _pragmas(db_: Any, conn: Any) -> None:
            for k, v in PRAGMAS.items():
                conn.execute(f"PRAGMA {k}={v}")

        db.generate_mapping(create_tables=True)
        self.db, self.Item = db, Item

    def load(self, rows: list[tuple[Any, ...]]) -> None:
        with self.po.db_session:
            for r in rows:
                self.Item(id=r[0], name=r[1], category=r[2], price=r[3], qty=r[4], active=r[5])

    def get(self, k: int) -> Any:
        with self.po.db_session:
            return self.Item.get(id=k)

    def create_tx(self, rows: list[tuple[Any, ...]]) -> None:
        with self.po.db_session:
            for r in rows:
                self.Item(id=r[0], name=r[1], category=r[2], price=r[3], qty=r[4], active=r[5])
                self.po.flush()

    def bulk(self, rows: list[tuple[Any, ...]]) -> None:
        self.load(rows)

    def page(self, cat: str) -> Any:
        po, M = self.po, self.Item
        with po.db_session:
            return M.select(lambda i: i.category == cat and i.qty >= 10).order_by(
                lambda i: (po.desc(i.price), i.id))[:21]

    def iterate(self) -> int:
        with self.po.db_session:
            return len(self.Item.select()[:])

    def count(self, cat: str) -> int:
        with self.po.db_session:
            return self.po.count(i for i in self.Item if i.category == cat and i.active)

    def update(self, k: int) -> None:
        with self.po.db_session:
            self.Item[k].qty = 7

    def delete(self, k: int) -> None:
        with self.po.db_session:
            self.Item[k].delete()

    def batch(self, keys: list[int]) -> list[Any]:
        with self.po.db_session:
            found = {o.id: o for o in self.Item.select(lambda i: i.id in keys)}
            return [found.get(k) for k in keys]

    def async_page(self, cat: str) -> Any:
        return None

    def close(self) -> None:
        self.db.disconnect()


LIBS: list[Callable[[], Any]] = [Raw, Storeroom, SqlaOrm, PonyOrm, Peewee]


# ---------------------------------------------------------------------------------------
def run_workload(lib: Any, wl: str, n_rows: int, base: str) -> float:
    """Seconds per operation for one workload on a fresh copy of the loaded database."""
    work = tempfile.mkdtemp(dir=base)
    path = os.path.join(work, "db.sqlite")
    shutil.copy(os.path.join(base, "seed.sqlite"), path)
    lib.setup(path)
    try:
        keys = list(range(n_rows))
        gc.collect()
        if wl == "get":
            ks = keys[::3][:3000]
            t = time.perf_counter()
            for k in ks:
                lib.get(k)
            return (time.perf_counter() - t) / len(ks)
        if wl == "create_tx":
            rows = [row(n_rows + i) for i in range(2000)]
            t = time.perf_counter()
            lib.create_tx(rows)
            return (time.perf_counter() - t) / len(rows)
        if wl == "bulk":
            rows = [row(n_rows + i) for i in range(10000)]
            t = time.perf_counter()
            for i in range(0, len(rows), 1000):
                lib.bulk(rows[i:i + 1000])
            return (time.perf_counter() - t) / len(rows)
        if wl in ("page", "async_page"):
            fn = getattr(lib, wl)
            if fn(CATEGORIES[0]) is None:
                return math.nan
            t = time.perf_counter()
            for i in range(500):
                fn(CATEGORIES[i % 20])
            return (time.perf_counter() - t) / 500
        if wl == "iterate":
            t = time.perf_counter()
            got = lib.iterate()
            dt = time.perf_counter() - t
            assert got == n_rows, (lib.name, got)
            return dt / n_rows
        if wl == "count":
            t = time.perf_counter()
            for i in range(300):
                lib.count(CATEGORIES[i % 20])
            return (time.perf_counter() - t) / 300
        if wl == "update":
            ks = keys[1::3][:2000]
            t = time.perf_counter()
            for k in ks:
                lib.update(k)
            return (time.perf_counter() - t) / len(ks)
        if wl == "delete":
            ks = keys[2::3][:2000]
            t = time.perf_counter()
            for k in ks:
                lib.delete(k)
            return (time.perf_counter() - t) / len(ks)
        if wl == "batch":
            batches = [keys[i:i + 100] for i in range(0, min(n_rows, 10000), 100)]
            t = time.perf_counter()
            for b in batches:
                lib.batch(b)
            return (time.perf_counter() - t) / len(batches)
        raise ValueError(wl)
    finally:
        lib.close()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="")
    ap.add_argument("--workloads", default="")
    ap.add_argument("--synchronous", default="NORMAL", choices=["NORMAL", "FULL"],
                    help="PRAGMA synchronous for every library (storeroom's default: FULL)")
    args = ap.parse_args()
    PRAGMAS["synchronous"] = args.synchronous
    libs = [L() for L in LIBS]
    if args.only:
        wanted = args.only.split(",")
        libs = [lib for lib in libs if any(w.lower() in lib.name.lower() for w in wanted)]
    wls = [w for w in WORKLOADS if not args.workloads or w[0] in args.workloads.split(",")]
    base = tempfile.mkdtemp(prefix="storeroom-bench-")
    try:
        seed = Raw()
        seed.setup(os.path.join(base, "seed.sqlite"))
        seed.load([row(i) for i in range(args.rows)])
        seed.c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        seed.close()
        results: dict[tuple[str, str], float] = {}
        for wl, _ in wls:
            for lib in libs:
                times = [run_workload(lib, wl, args.rows, base) for _ in range(args.repeat)]
                results[(wl, lib.name)] = statistics.median(times)
        report(results, libs, wls, args)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def report(results: dict[tuple[str, str], float], libs: list[Any], wls: list[tuple[str, str]],
           args: Any) -> None:
    """Print the side-by-side table (bench/report.py)."""
    print_table(f"SQLite (WAL, synchronous={args.synchronous} for every library), "
                f"{args.rows} rows, median of {args.repeat}", results,
                [lib.name for lib in libs], wls, "raw sqlite3")


if __name__ == "__main__":
    main()

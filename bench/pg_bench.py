#!/usr/bin/env python3
"""PostgreSQL workloads side by side: raw psycopg 3 (the floor: prepared statements,
tuples, no objects), storeroom, SQLAlchemy ORM (psycopg 3) and peewee (psycopg 3), all
on the same server and connection settings, in one process run.

    python bench/pg_bench.py [--url postgresql://postgres@127.0.0.1:54329/test]
                             [--rows 10000] [--repeat 3] [--only storeroom,raw]

Each workload runs on a freshly loaded table (schema ``bench_pg``). Prints ops/s per
workload and library, each library's ratio to raw psycopg, and storeroom's ratio to the
fastest peer ORM. Median of ``--repeat`` runs. Results and analysis: bench/README_pg.md.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from typing import Any
from urllib.parse import quote

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import psycopg  # noqa: E402
from common import StoreroomWorkloads, print_table  # noqa: E402
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column  # noqa: E402

SCHEMA = "bench_pg"
CATEGORIES = [f"cat{i}" for i in range(20)]
COLS = "id, name, category, price, qty, active"

WORKLOADS = [
    ("get", "get by key"),
    ("create_tx", "create one at a time in one transaction"),
    ("bulk", "bulk create (1000 per batch)"),
    ("page", "filtered sorted page of 20"),
    ("iterate", "iterate 10k objects"),
    ("count", "count with a filter"),
    ("update", "partial update by key"),
    ("delete", "delete by key"),
    ("batch", "read_batch of 100"),
]


def row(i: int) -> tuple[Any, ...]:
    return (i, f"item {i}", CATEGORIES[i % 20], float(i % 997) / 7, i % 50, i % 3 == 0)


def with_path(url: str) -> str:
    """The URL with ``search_path`` set to the benchmark schema."""
    sep = "&" if "?" in url else "?"
    return url + sep + "options=" + quote(f"-csearch_path={SCHEMA}")


def reset_table(url: str, n_rows: int) -> None:
    """A fresh ``item`` table holding ``n_rows`` rows (the same DDL for every library)."""
    with psycopg.connect(url, autocommit=True) as c:
        c.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        c.execute(f"DROP TABLE IF EXISTS {SCHEMA}.item")
        c.execute(f'CREATE TABLE {SCHEMA}.item (id BIGINT PRIMARY KEY, name TEXT COLLATE "C" '
                  f'NOT NULL, category TEXT COLLATE "C" NOT NULL, price DOUBLE PRECISION NOT '
                  f"NULL, qty BIGINT NOT NULL, active BOOLEAN NOT NULL)")
        c.execute(f"CREATE INDEX ix_item_category ON {SCHEMA}.item (category)")
        with c.cursor().copy(f"COPY {SCHEMA}.item ({COLS}) FROM STDIN") as cp:
            for i in range(n_rows):
                cp.write_row(row(i))
        c.execute(f"VACUUM ANALYZE {SCHEMA}.item")


# ---------------------------------------------------------------------------------------
class Raw:
    """The floor: psycopg 3, hand-written SQL, prepared statements, tuples."""

    name = "raw psycopg"

    def setup(self, url: str) -> None:
        self.c = psycopg.connect(with_path(url), autocommit=True)

    def get(self, k: int) -> Any:
        return self.c.execute(f"SELECT {COLS} FROM item WHERE id = %s", (k,),
                              prepare=True).fetchone()

    def create_tx(self, rows: list[tuple[Any, ...]]) -> None:
        with self.c.transaction():
            for r in rows:
                self.c.execute("INSERT INTO item VALUES (%s, %s, %s, %s, %s, %s)", r,
                               prepare=True)

    def bulk(self, rows: list[tuple[Any, ...]]) -> None:
        with self.c.transaction(), self.c.cursor() as cur:
            cur.executemany("INSERT INTO item VALUES (%s, %s, %s, %s, %s, %s)", rows)

    def page(self, cat: str) -> list[Any]:
        return self.c.execute(f"SELECT {COLS} FROM item WHERE category = %s AND qty >= %s "
                              "ORDER BY price DESC, id LIMIT 21", (cat, 10),
                              prepare=True).fetchall()

    def iterate(self) -> int:
        return len(self.c.execute(f"SELECT {COLS} FROM item").fetchall())

    def count(self, cat: str) -> int:
        return self.c.execute("SELECT count(*) FROM item WHERE category = %s AND active",
                              (cat,), prepare=True).fetchone()[0]  # type: ignore[index]

    def update(self, k: int) -> None:
        self.c.execute("UPDATE item SET qty = %s WHERE id = %s", (7, k), prepare=True)

    def delete(self, k: int) -> None:
        self.c.execute("DELETE FROM item WHERE id = %s", (k,), prepare=True)

    def batch(self, keys: list[int]) -> list[Any]:
        rows = self.c.execute(f"SELECT {COLS} FROM item WHERE id = ANY(%s)", (keys,),
                              prepare=True).fetchall()
        found = {r[0]: r for r in rows}
        return [found.get(k) for k in keys]

    def close(self) -> None:
        self.c.close()


# ---------------------------------------------------------------------------------------
class Storeroom(StoreroomWorkloads):
    """storeroom on the benchmark's PostgreSQL schema."""

    def setup(self, url: str) -> None:
        super().setup(with_path(url))

# ---------------------------------------------------------------------------------------
class SqlaOrm:
    name = "SQLAlchemy ORM"

    def setup(self, url: str) -> None:
        import sqlalchemy as sa

        class Base(DeclarativeBase):
            pass

        class Item(Base):
            __tablename__ = "item"
            id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True,
                                            autoincrement=False)
            name: Mapped[str]
            category: Mapped[str] = mapped_column(index=True)
            price: Mapped[float]
            qty: Mapped[int] = mapped_column(sa.BigInteger)
            active: Mapped[bool]

        self.Item, self.sa = Item, sa
        self.engine = sa.create_engine(with_path(url).replace("postgresql://",
                                                              "postgresql+psycopg://", 1))
        self.session = Session(self.engine, expire_on_commit=False)

    def _objs(self, rows: list[tuple[Any, ...]]) -> list[Any]:
        M = self.Item
        return [M(id=r[0], name=r[1], category=r[2], price=r[3], qty=r[4], active=r[5])
                for r in rows]

    def get(self, k: int) -> Any:
        s = self.session
        obj = s.get(self.Item, k, populate_existing=True)
        s.commit()
        return obj

    def create_tx(self, rows: list[tuple[Any, ...]]) -> None:
        with Session(self.engine) as s:
            for o in self._objs(rows):
                s.add(o)
                s.flush()
            s.commit()

    def bulk(self, rows: list[tuple[Any, ...]]) -> None:
        with Session(self.engine) as s:
            s.add_all(self._objs(rows))
            s.commit()

    def page(self, cat: str) -> Any:
        sa, M = self.sa, self.Item
        with Session(self.engine) as s:
            return s.scalars(sa.select(M).where(M.category == cat, M.qty >= 10)
                             .order_by(M.price.desc(), M.id).limit(21)).all()

    def iterate(self) -> int:
        with Session(self.engine) as s:
            return len(s.scalars(self.sa.select(self.Item)).all())

    def count(self, cat: str) -> int:
        sa, M = self.sa, self.Item
        with Session(self.engine) as s:
            return s.scalar(sa.select(sa.func.count()).select_from(M)  # type: ignore[no-any-return]
                            .where(M.category == cat, M.active.is_(True)))

    def update(self, k: int) -> None:
        with Session(self.engine) as s:
            s.execute(self.sa.update(self.Item).where(self.Item.id == k).values(qty=7))
            s.commit()

    def delete(self, k: int) -> None:
        with Session(self.engine) as s:
            s.execute(self.sa.delete(self.Item).where(self.Item.id == k))
            s.commit()

    def batch(self, keys: list[int]) -> list[Any]:
        with Session(self.engine) as s:
            found = {o.id: o for o in s.scalars(self.sa.select(self.Item)
                                                .where(self.Item.id.in_(keys)))}
            return [found.get(k) for k in keys]

    def close(self) -> None:
        self.session.close()
        self.engine.dispose()


# ---------------------------------------------------------------------------------------
class Peewee:
    name = "peewee"

    def setup(self, url: str) -> None:
        from urllib.parse import urlsplit

        import peewee as pw
        p = urlsplit(url)
        self.db = pw.PostgresqlDatabase(p.path.strip("/"), host=p.hostname, port=p.port,
                                        user=p.username, password=p.password,
                                        options=f"-csearch_path={SCHEMA}",
                                        prefer_psycopg3=True, autocommit=True)

        class Item(pw.Model):
            id = pw.BigIntegerField(primary_key=True)
            name = pw.TextField()
            category = pw.TextField(index=True)
            price = pw.DoubleField()
            qty = pw.BigIntegerField()
            active = pw.BooleanField()

            class Meta:
                database = self.db
                table_name = "item"

        self.Item, self.pw = Item, pw
        self.db.connect()

    def _dicts(self, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        return [dict(id=r[0], name=r[1], category=r[2], price=r[3], qty=r[4], active=r[5])
                for r in rows]

    def get(self, k: int) -> Any:
        return self.Item.get_or_none(self.Item.id == k)

    def create_tx(self, rows: list[tuple[Any, ...]]) -> None:
        with self.db.atomic():
            for d in self._dicts(rows):
                self.Item.create(**d)

    def bulk(self, rows: list[tuple[Any, ...]]) -> None:
        with self.db.atomic():
            self.Item.insert_many(self._dicts(rows)).execute()

    def page(self, cat: str) -> Any:
        M = self.Item
        return list(M.select().where((M.category == cat) & (M.qty >= 10))
                    .order_by(M.price.desc(), M.id).limit(21))

    def iterate(self) -> int:
        return len(list(self.Item.select()))

    def count(self, cat: str) -> int:
        M = self.Item
        return M.select().where((M.category == cat) & (M.active == True)).count()  # type: ignore[no-any-return]  # noqa: E712

    def update(self, k: int) -> None:
        self.Item.update(qty=7).where(self.Item.id == k).execute()

    def delete(self, k: int) -> None:
        self.Item.delete_by_id(k)

    def batch(self, keys: list[int]) -> list[Any]:
        found = {o.id: o for o in self.Item.select().where(self.Item.id.in_(keys))}
        return [found.get(k) for k in keys]

    def close(self) -> None:
        self.db.close()


LIBS = [Raw, Storeroom, SqlaOrm, Peewee]


def run_workload(lib: Any, wl: str, n_rows: int, url: str) -> float:
    """Seconds per operation for one workload on a freshly loaded table."""
    reset_table(url, n_rows)
    lib.setup(url)
    try:
        keys = list(range(n_rows))
        gc.collect()
        if wl == "get":
            ks = keys[::3][:3000]
            for k in ks[:50]:  # warm: connection, prepared statements, caches
                lib.get(k)
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
        if wl == "page":
            lib.page(CATEGORIES[0])
            t = time.perf_counter()
            for i in range(500):
                lib.page(CATEGORIES[i % 20])
            return (time.perf_counter() - t) / 500
        if wl == "iterate":
            lib.count(CATEGORIES[0])  # connect
            t = time.perf_counter()
            got = lib.iterate()
            dt = time.perf_counter() - t
            assert got == n_rows, (lib.name, got)
            return dt / n_rows
        if wl == "count":
            lib.count(CATEGORIES[0])
            t = time.perf_counter()
            for i in range(300):
                lib.count(CATEGORIES[i % 20])
            return (time.perf_counter() - t) / 300
        if wl == "update":
            ks = keys[1::3][:2000]
            lib.update(ks[0])
            t = time.perf_counter()
            for k in ks:
                lib.update(k)
            return (time.perf_counter() - t) / len(ks)
        if wl == "delete":
            ks = keys[2::3][:2000]
            lib.get(0)
            t = time.perf_counter()
            for k in ks:
                lib.delete(k)
            return (time.perf_counter() - t) / len(ks)
        if wl == "batch":
            batches = [keys[i:i + 100] for i in range(0, min(n_rows, 10000), 100)]
            lib.batch(batches[0])
            t = time.perf_counter()
            for b in batches:
                lib.batch(b)
            return (time.perf_counter() - t) / len(batches)
        raise ValueError(wl)
    finally:
        lib.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default=os.environ.get("STOREROOM_TEST_PG_URL") or
                    "postgresql://postgres@127.0.0.1:54329/test")
    ap.add_argument("--rows", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="")
    ap.add_argument("--workloads", default="")
    args = ap.parse_args()
    libs = [L() for L in LIBS]
    if args.only:
        wanted = args.only.split(",")
        libs = [lib for lib in libs if any(w.lower() in lib.name.lower() for w in wanted)]
    wls = [w for w in WORKLOADS if not args.workloads or w[0] in args.workloads.split(",")]
    results: dict[tuple[str, str], float] = {}
    try:
        for wl, _ in wls:
            for lib in libs:
                times = [run_workload(lib, wl, args.rows, args.url) for _ in range(args.repeat)]
                results[(wl, lib.name)] = statistics.median(times)
        report(results, libs, wls, args)
    finally:
        with psycopg.connect(args.url, autocommit=True) as c:
            c.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")


def report(results: dict[tuple[str, str], float], libs: list[Any], wls: list[tuple[str, str]],
           args: Any) -> None:
    """Print the side-by-side table (bench/report.py)."""
    print_table(f"PostgreSQL, {args.rows} rows, median of {args.repeat}", results,
                [lib.name for lib in libs], wls, "raw psycopg")


if __name__ == "__main__":
    main()

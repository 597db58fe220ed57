#!/usr/bin/env python3
"""Loading related objects: storeroom against the raw driver, SQLAlchemy ORM and Django,
on SQLite and PostgreSQL, in one command.

    python bench/relations_bench.py [--sizes 100x10,1000x10] [--backends sqlite,pg]
                                    [--pg-url URL] [--repeat 3] [--only raw,storeroom]
                                    [--workloads prefetch,select] [--quick] [--json PATH]

Two tables, ``rb_parent`` (``id``, ``name``) and ``rb_child`` (``id``, ``parent_id`` with
its FOREIGN KEY and index, ``name``, ``value`` indexed), created by storeroom's own DDL
so that every library reads the same tables; parents x children per parent rows.

Workloads (one operation = one whole load of the graph, except ``page``):

``prefetch``  every parent with its children: storeroom ``search_all(prefetch_related=
              ("children",))``; SQLAlchemy ``selectinload``; Django ``prefetch_related``.
``select``    every child with its parent: storeroom ``search_all(select_related=
              ("parent",))``; SQLAlchemy ``joinedload``; Django ``select_related``.
``lazy``      every parent, then ``p.children`` of each: storeroom in a sync context with
              ``lazy="peers"`` (the first access loads the children of every parent of the
              result); SQLAlchemy's and Django's default lazy loading (N+1 queries); raw:
              the same N+1 queries, as the reference of what N+1 costs.
``page``      a filtered, ordered page of 20 children (``value = v ORDER BY id``): storeroom
              ``ctx.store(Child).search(..., limit=20)`` against
              ``Child.objects.filter(...).order_by("id")[:20]`` in the same kind of context
              (the query set's overhead; target: at most 1.15x the time), and the peers.

The storeroom variants: ``storeroom`` (the store's parameters above), ``storeroom-load``
(``search_all()`` then ``store.load(items, path)``), ``storeroom-objects``
(``Model.objects.prefetch_related(...)`` / ``.select_related(...)`` / ``.filter(...)[:20]``
in a context). A cell a library has no own way of doing is listed in ``SKIP`` (printed
``n/a``, not run); every other cell runs, and any error in it fails the run.

Each measurement runs in a fresh process on a fresh database (a copy of the seeded SQLite
file; PostgreSQL: the schema ``bench_rel`` dropped and loaded again), the libraries
interleaved within each repeat; the median of ``--repeat`` is reported. Every measurement
returns a checksum of what it loaded (normalised to plain tuples, untimed): the run fails
when two libraries disagree, so that none looks fast by loading less. Printed: ops/s,
ratio to the raw driver, storeroom's speed ÷ the faster peer (SQLAlchemy, Django) per
workload, and the query set's time ÷ the store's for ``page``; the whole run is written as
JSON (default ``.bench/relations-<time>.json``).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)  # this checkout's storeroom, not an installed one

from storeroom import Many, Ref, field, stored  # noqa: E402

PRAGMAS = {"journal_mode": "WAL", "synchronous": "NORMAL"}
SCHEMA = "bench_rel"
N_VALUES = 100  # child.value = id % N_VALUES: the page workload's filter

WORKLOADS = [
    ("prefetch", "parents with their children (prefetch)"),
    ("select", "children with their parent (select / join)"),
    ("lazy", "parents, then p.children of each (lazy)"),
    ("page", "filtered ordered page of 20 children"),
]
WL_NAMES = [w for w, _ in WORKLOADS]


@stored(key="id", table="rb_parent")
class RbParent:
    """The parent model (storeroom's side)."""

    id: int
    name: str
    children: Many[RbChild] = field(reverse="parent")


@stored(key="id", table="rb_child")
class RbChild:
    """The child model (storeroom's side)."""

    id: int
    parent: Ref[RbParent] = field(on_delete="cascade", index=True)
    name: str
    value: int = field(index=True)


def parent_row(i: int) -> tuple[Any, ...]:
    return (i, f"parent {i}")


def child_row(j: int, per: int) -> tuple[Any, ...]:
    """(id, parent_id, name, value) of child ``j`` (1-based)."""
    return (j, (j - 1) // per + 1, f"child {j}", j % N_VALUES)


def iterations(parents: int, per: int, quick: bool) -> int:
    """Whole-graph loads timed per measurement (about 30,000 objects' worth)."""
    return 1 if quick else max(3, 30_000 // (parents * (per + 1)))


def page_calls(quick: bool) -> list[int]:
    return [i % N_VALUES for i in range(5 if quick else 2000)]


# ---------------------------------------------------------------------------------------
# the libraries: setup(target) (target: {"kind": "sqlite"|"pg", "path"|"url": ...}),
# optionally prepare(wl) (untimed), one method per workload, close(); and how to read the
# results: kids(parent) -> children, up(child) -> parent, row(obj) -> plain tuple.

class Base:
    name = "?"

    def prepare(self, wl: str) -> None:
        pass

    def row(self, o: Any) -> tuple[Any, ...]:
        """A parent as (id, name) or a child as (id, parent_id, name, value)."""
        if hasattr(o, "value"):
            return (o.id, o.parent_id, o.name, o.value)
        return (o.id, o.name)

    def kids(self, p: Any) -> list[Any]:
        return list(p.children)

    def up(self, c: Any) -> Any:
        return c.parent

    def norm(self, wl: str, result: Any) -> Any:
        row = self.row
        if wl in ("prefetch", "lazy"):
            if wl == "lazy":
                return sorted((row(p), sorted(row(c) for c in kids)) for p, kids in result)
            return sorted((row(p), sorted(row(c) for c in self.kids(p))) for p in result)
        if wl == "select":
            return sorted((row(c), row(self.up(c))) for c in result)
        return [[row(c) for c in page] for page in result]  # page


def pg_with_path(url: str) -> str:
    sep = "&" if "?" in url else "?"
    return url + sep + "options=" + quote(f"-csearch_path={SCHEMA}")


class Raw(Base):
    """The reference: the driver, hand-written SQL, tuples (sqlite3 or psycopg 3)."""

    name = "raw driver"

    def setup(self, target: dict[str, Any]) -> None:
        self.pg = target["kind"] == "pg"
        if self.pg:
            import psycopg
            self.c: Any = psycopg.connect(pg_with_path(target["url"]), autocommit=True)
            self.p = "%s"
        else:
            self.c = sqlite3.connect(target["path"], isolation_level=None)
            for k, v in PRAGMAS.items():
                self.c.execute(f"PRAGMA {k}={v}")
            self.p = "?"

    def row(self, o: Any) -> tuple[Any, ...]:
        return tuple(o)

    def _q(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        return list(self.c.execute(sql.replace("?", self.p), args).fetchall())

    def _children_of(self, ids: list[int]) -> dict[int, list[Any]]:
        if self.pg:
            rows = self.c.execute("SELECT id, parent_id, name, value FROM rb_child "
                                  "WHERE parent_id = ANY(%s)", (ids,)).fetchall()
        else:
            rows = self.c.execute("SELECT id, parent_id, name, value FROM rb_child WHERE "
                                  f"parent_id IN ({','.join('?' * len(ids))})", ids).fetchall()
        by: dict[int, list[Any]] = {i: [] for i in ids}
        for r in rows:
            by[r[1]].append(r)
        return by

    def prefetch(self) -> Any:
        parents = self._q("SELECT id, name FROM rb_parent")
        by = self._children_of([p[0] for p in parents])
        return [(p, by[p[0]]) for p in parents]

    def select(self) -> Any:
        return [(r[:4], r[4:]) for r in self._q(
            "SELECT c.id, c.parent_id, c.name, c.value, p.id, p.name FROM rb_child c "
            "JOIN rb_parent p ON p.id = c.parent_id")]

    def lazy(self) -> Any:
        q = "SELECT id, parent_id, name, value FROM rb_child WHERE parent_id = ?"
        return [(p, self._q(q, (p[0],))) for p in self._q("SELECT id, name FROM rb_parent")]

    def page(self, v: int) -> Any:
        return self._q("SELECT id, parent_id, name, value FROM rb_child WHERE value = ? "
                       "ORDER BY id LIMIT 20", (v,))

    def norm(self, wl: str, result: Any) -> Any:
        if wl in ("prefetch", "lazy"):
            return sorted((tuple(p), sorted(tuple(c) for c in kids)) for p, kids in result)
        if wl == "select":
            return sorted((tuple(c), tuple(p)) for c, p in result)
        return [[tuple(c) for c in page] for page in result]

    def close(self) -> None:
        self.c.close()


# ---------------------------------------------------------------------------------------
def storeroom_url(target: dict[str, Any]) -> str:
    if target["kind"] == "pg":
        return pg_with_path(target["url"])
    return f"sqlite:///{target['path']}?synchronous={PRAGMAS['synchronous']}"


class Storeroom(Base):
    """storeroom's store API (``open_store``; a context for ``lazy`` and ``page``)."""

    name = "storeroom"

    def setup(self, target: dict[str, Any]) -> None:
        from storeroom import open_store
        self.url = storeroom_url(target)
        self.parents = open_store(RbParent, self.url)
        self.children = open_store(RbChild, self.url)
        self.dm: Any = None
        self.cm: Any = None

    def _manager(self) -> Any:
        from storeroom.context import DataManager
        self.dm = DataManager()
        self.dm.add_engine("main", self.url, default=True)
        self.dm.register_models(RbParent, RbChild)
        return self.dm

    def prepare(self, wl: str) -> None:
        if wl == "lazy":
            self._manager()
        elif wl == "page":  # one context around the timed calls (the same for objects)
            self.cm = self._manager().context()
            self.ctx = self.cm.__enter__()

    def prefetch(self) -> Any:
        return list(self.parents.search_all(prefetch_related=("children",)))

    def select(self) -> Any:
        return list(self.children.search_all(select_related=("parent",)))

    def lazy(self) -> Any:
        with self.dm.context(lazy="peers") as ctx:
            return [(p, list(p.children)) for p in ctx.store(RbParent).search_all()]

    def page(self, v: int) -> Any:
        return self.ctx.store(RbChild).search(value=v, order_by=["id"], limit=20).items

    def close(self) -> None:
        if self.cm is not None:
            self.cm.__exit__(None, None, None)
        self.parents.close()
        self.children.close()
        if self.dm is not None:
            self.dm.close()


class StoreroomLoad(Storeroom):
    """storeroom's ``store.load(items, path)`` after a plain ``search_all``."""

    name = "storeroom load"

    def prefetch(self) -> Any:
        return self.parents.load(list(self.parents.search_all()), "children")

    def select(self) -> Any:
        return self.children.load(list(self.children.search_all()), "parent")


class StoreroomObjects(Storeroom):
    """storeroom's query sets, ``Model.objects``, in a sync context."""

    name = "storeroom objects"

    def prepare(self, wl: str) -> None:
        self._manager()
        if wl == "page":
            self.cm = self.dm.context()
            self.ctx = self.cm.__enter__()

    def prefetch(self) -> Any:
        with self.dm.context():
            return list(RbParent.objects.prefetch_related("children"))  # type: ignore[attr-defined]

    def select(self) -> Any:
        with self.dm.context():
            return list(RbChild.objects.select_related("parent"))  # type: ignore[attr-defined]

    def page(self, v: int) -> Any:
        return list(RbChild.objects.filter(value=v).order_by("id")[:20])  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------
def sqla_engine(target: dict[str, Any]) -> Any:
    import sqlalchemy as sa
    if target["kind"] == "pg":
        return sa.create_engine(pg_with_path(target["url"]).replace(
            "postgresql://", "postgresql+psycopg://", 1))
    engine = sa.create_engine(f"sqlite:///{target['path']}")

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _: Any) -> None:
        for k, v in PRAGMAS.items():
            dbapi_conn.execute(f"PRAGMA {k}={v}")

    return engine


class SqlaOrm(Base):
    """SQLAlchemy 2 ORM, a session per load: ``selectinload`` for prefetch,
    ``joinedload`` for select, the default lazy loading for lazy."""

    name = "SQLAlchemy ORM"

    def setup(self, target: dict[str, Any]) -> None:
        import sqlalchemy as sa
        from sqlalchemy.orm import DeclarativeBase, Session, joinedload, relationship, selectinload

        class B(DeclarativeBase):
            pass

        class P(B):
            __tablename__ = "rb_parent"
            id = sa.Column(sa.Integer, primary_key=True, autoincrement=False)
            name = sa.Column(sa.Text, nullable=False)
            children = relationship("C", back_populates="parent")

        class C(B):
            __tablename__ = "rb_child"
            id = sa.Column(sa.Integer, primary_key=True, autoincrement=False)
            parent_id = sa.Column(sa.Integer, sa.ForeignKey("rb_parent.id"), nullable=False)
            name = sa.Column(sa.Text, nullable=False)
            value = sa.Column(sa.Integer, nullable=False)
            parent = relationship(P, back_populates="children")

        self.P, self.C, self.Session = P, C, Session
        self.engine = sqla_engine(target)
        self.q_prefetch = sa.select(P).options(selectinload(P.children))
        self.q_select = sa.select(C).options(joinedload(C.parent))
        self.q_parents = sa.select(P)
        self.q_page = (sa.select(C).where(C.value == sa.bindparam("v")).order_by(C.id)
                       .limit(20))

    def prefetch(self) -> Any:
        with self.Session(self.engine) as s:
            return list(s.scalars(self.q_prefetch).all())

    def select(self) -> Any:
        with self.Session(self.engine) as s:
            return list(s.scalars(self.q_select).all())

    def lazy(self) -> Any:
        with self.Session(self.engine) as s:
            return [(p, list(p.children)) for p in s.scalars(self.q_parents).all()]

    def page(self, v: int) -> Any:
        with self.Session(self.engine) as s:
            return list(s.scalars(self.q_page, {"v": v}).all())

    def close(self) -> None:
        self.engine.dispose()


class Django(Base):
    """Django's ORM configured in-process: ``prefetch_related`` / ``select_related``, the
    default lazy related manager for lazy."""

    name = "Django"

    def setup(self, target: dict[str, Any]) -> None:
        import django
        from django.conf import settings
        if target["kind"] == "pg":
            u = urlsplit(target["url"])
            db = {"ENGINE": "django.db.backends.postgresql", "NAME": u.path.strip("/"),
                  "HOST": u.hostname, "PORT": u.port or 5432, "USER": u.username or "",
                  "PASSWORD": u.password or "",
                  "OPTIONS": {"options": f"-c search_path={SCHEMA}"}}
        else:
            init = ";".join(f"PRAGMA {k}={v}" for k, v in PRAGMAS.items())
            db = {"ENGINE": "django.db.backends.sqlite3", "NAME": target["path"],
                  "OPTIONS": {"init_command": init}}
        settings.configure(DATABASES={"default": db}, INSTALLED_APPS=[], USE_TZ=False,
                           DEBUG=False)
        django.setup()
        from django.db import models

        class DParent(models.Model):
            id = models.IntegerField(primary_key=True)
            name = models.TextField()

            class Meta:
                app_label = "bench"
                db_table = "rb_parent"
                managed = False

        class DChild(models.Model):
            id = models.IntegerField(primary_key=True)
            parent = models.ForeignKey(DParent, on_delete=models.CASCADE,
                                       related_name="children")
            name = models.TextField()
            value = models.IntegerField()

            class Meta:
                app_label = "bench"
                db_table = "rb_child"
                managed = False

        self.P, self.C = DParent, DChild

    def kids(self, p: Any) -> list[Any]:
        return list(p.children.all())

    def prefetch(self) -> Any:
        return list(self.P.objects.prefetch_related("children"))

    def select(self) -> Any:
        return list(self.C.objects.select_related("parent"))

    def lazy(self) -> Any:
        return [(p, list(p.children.all())) for p in self.P.objects.all()]

    def page(self, v: int) -> Any:
        return list(self.C.objects.filter(value=v).order_by("id")[:20])

    def close(self) -> None:
        from django.db import connections
        connections.close_all()


LIBS: dict[str, Callable[[], Any]] = {
    "raw": Raw, "storeroom": Storeroom, "storeroom-load": StoreroomLoad,
    "storeroom-objects": StoreroomObjects, "sqla-orm": SqlaOrm, "django": Django,
}
LIB_NAMES = {k: cls.name for k, cls in LIBS.items()}  # type: ignore[attr-defined]
PEERS = ("sqla-orm", "django")
OURS = ("storeroom", "storeroom-load", "storeroom-objects")
#: the cells not supported: workloads a library has no own way of doing (not run, "n/a";
#: ``store.load`` is not a lazy loader nor a query; the query sets' lazy loading is the
#: store's, measured by ``storeroom``). Every other cell runs, and an error in it fails.
SKIP: dict[str, frozenset[str]] = {"storeroom-load": frozenset({"lazy", "page"}),
                                   "storeroom-objects": frozenset({"lazy"})}


# ---------------------------------------------------------------------------------------
def _digest(obj: Any) -> str:
    return hashlib.sha1(repr(obj).encode()).hexdigest()[:16]


def measure(key: str, wl: str, target: dict[str, Any], parents: int, per: int, quick: bool,
            collect: bool = True) -> dict[str, Any]:
    """Run workload ``wl`` of library ``key`` on the database of ``target``: seconds per
    operation and the checksum. A cell listed in ``SKIP`` is refused (``ValueError``);
    any error of a library propagates (it is a failure, never a missing cell)."""
    if wl in SKIP.get(key, ()):
        raise ValueError(f"{key} does not support the {wl!r} workload (SKIP)")
    lib = LIBS[key]()
    lib.setup(target)
    base = {"lib": key, "workload": wl, "backend": target["kind"],
            "size": f"{parents}x{per}"}
    try:
        lib.prepare(wl)
        fn = getattr(lib, wl)
        args: list[Any] = page_calls(quick) if wl == "page" else [None] * iterations(
            parents, per, quick)
        call = (lambda a: fn(a)) if wl == "page" else (lambda a: fn())
        call(args[0])  # warm-up: statement caches
        if collect:
            gc.collect()
        t = time.perf_counter()
        results = [call(a) for a in args]
        elapsed = time.perf_counter() - t
        check = _digest(lib.norm(wl, results if wl == "page" else results[-1]))
    finally:
        lib.close()
    return {**base, "seconds_per_op": elapsed / len(args), "ops": len(args),
            "result": check}


# ---------------------------------------------------------------------------------------
# fresh databases (main process)

def _create_tables(url: str) -> None:
    from storeroom import open_store
    with open_store(RbChild, url) as s:  # creates rb_parent first (the FOREIGN KEY)
        s.create_tables()


def seed_sqlite(path: str, parents: int, per: int) -> None:
    """The seeded SQLite file every measurement copies."""
    _create_tables(storeroom_url({"kind": "sqlite", "path": path}))
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("BEGIN")
    c.executemany("INSERT INTO rb_parent (id, name) VALUES (?, ?)",
                  [parent_row(i) for i in range(1, parents + 1)])
    c.executemany("INSERT INTO rb_child (id, parent_id, name, value) VALUES (?, ?, ?, ?)",
                  [child_row(j, per) for j in range(1, parents * per + 1)])
    c.execute("COMMIT")
    c.execute("ANALYZE")
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()


def reset_pg(url: str, parents: int, per: int) -> None:
    """A fresh schema ``bench_rel`` holding the seeded tables."""
    import psycopg
    with psycopg.connect(url, autocommit=True) as c:
        c.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        c.execute(f"CREATE SCHEMA {SCHEMA}")
    _create_tables(pg_with_path(url))
    with psycopg.connect(pg_with_path(url), autocommit=True) as c:
        with c.cursor().copy("COPY rb_parent (id, name) FROM STDIN") as cp:
            for i in range(1, parents + 1):
                cp.write_row(parent_row(i))
        with c.cursor().copy("COPY rb_child (id, parent_id, name, value) FROM STDIN") as cp:
            for j in range(1, parents * per + 1):
                cp.write_row(child_row(j, per))
        c.execute("VACUUM ANALYZE rb_parent")
        c.execute("VACUUM ANALYZE rb_child")


def drop_pg(url: str) -> None:
    import psycopg
    with psycopg.connect(url, autocommit=True) as c:
        c.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")


def run_one(key: str, wl: str, backend: str, size: tuple[int, int], base: str,
            args: Any) -> dict[str, Any]:
    """One measurement in a fresh process on a fresh database."""
    parents, per = size
    work = tempfile.mkdtemp(dir=base)
    if backend == "pg":
        reset_pg(args.pg_url, parents, per)
        target = {"kind": "pg", "url": args.pg_url}
    else:
        path = os.path.join(work, "bench.sqlite")
        shutil.copy(os.path.join(base, f"seed-{parents}x{per}.sqlite"), path)
        target = {"kind": "sqlite", "path": path}
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", key, wl,
           json.dumps(target), f"{parents}x{per}"]
    if args.quick:
        cmd.append("--quick")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if proc.returncode != 0:
        raise SystemExit(f"{key} / {wl} / {backend} {parents}x{per} failed:\n"
                         f"{proc.stdout}\n{proc.stderr}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def versions() -> dict[str, str]:
    from importlib import metadata
    out = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    for dist in ("storeroom", "SQLAlchemy", "Django", "psycopg"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def summarise(medians: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Per cell (``backend size workload``): ratios to raw, each storeroom variant's speed
    ÷ the faster peer's, and for ``page`` the query set's time ÷ the store's."""
    out: dict[str, Any] = {}
    for cell, times in medians.items():
        row: dict[str, Any] = {}
        raw = times.get("raw")
        if raw:
            row["ratio_to_raw"] = {k: raw / t for k, t in times.items()}
        peers = {k: times[k] for k in PEERS if k in times}
        if peers:
            best = min(peers, key=peers.__getitem__)
            row["faster_peer"] = best
            row["speed_vs_faster_peer"] = {k: peers[best] / times[k] for k in OURS
                                           if k in times}
        if cell.endswith(" page") and "storeroom" in times and "storeroom-objects" in times:
            row["objects_time_vs_store"] = times["storeroom-objects"] / times["storeroom"]
        out[cell] = row
    return out


def print_report(medians: dict[str, dict[str, float]], summary: dict[str, Any],
                 keys: list[str]) -> None:
    labels = dict(WORKLOADS)
    print("\nops/s (ratio to the raw driver); one op = one whole load of the graph, or one "
          "page for `page`\n")
    print("| backend | size | workload | " + " | ".join(LIB_NAMES[k] for k in keys) + " |")
    print("|---|---|---|" + "---:|" * len(keys))
    for cell, times in medians.items():
        backend, size, wl = cell.split(" ")
        ratios = summary[cell].get("ratio_to_raw", {})
        cells = []
        for k in keys:
            if k in times:
                r = f" ({ratios[k]:.2f}x)" if k in ratios else ""
                cells.append(f"{1 / times[k]:,.1f}{r}")
            else:
                cells.append("n/a")
        print(f"| {backend} | {size} | {labels[wl]} | " + " | ".join(cells) + " |")
    print("\nstoreroom's speed ÷ the faster peer (target: at least 2x); page: the query "
          "set's time ÷ the store's (target: at most 1.15x)\n")
    print("| backend | size | workload | faster peer | " +
          " | ".join(LIB_NAMES[k] for k in OURS) + " | objects ÷ store |")
    print("|---|---|---|---|" + "---:|" * (len(OURS) + 1))
    for cell, row in summary.items():
        backend, size, wl = cell.split(" ")
        vs = row.get("speed_vs_faster_peer", {})
        peer = LIB_NAMES.get(row.get("faster_peer", ""), "n/a")
        cells = [f"{vs[k]:.2f}x" if k in vs else "n/a" for k in OURS]
        ovs = row.get("objects_time_vs_store")
        print(f"| {backend} | {size} | {labels[wl]} | {peer} | " + " | ".join(cells) +
              f" | {'n/a' if ovs is None else f'{ovs:.2f}x'} |")


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--sizes", default="", help="parents x children per parent, "
                    "comma-separated (default 100x10,1000x10)")
    ap.add_argument("--backends", default="sqlite,pg", help="sqlite,pg (pg needs a URL)")
    ap.add_argument("--pg-url", default=os.environ.get("STOREROOM_TEST_PG_URL"),
                    help="PostgreSQL URL (default $STOREROOM_TEST_PG_URL; PG is skipped "
                    "without one)")
    ap.add_argument("--repeat", type=int, default=None, help="measurements per cell "
                    "(median; default 3)")
    ap.add_argument("--only", default="", help="library keys: " + ",".join(LIBS))
    ap.add_argument("--workloads", default="", help=",".join(WL_NAMES))
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run: one measurement, one load, sizes 20x5")
    ap.add_argument("--json", default=None, help="where to write the run")
    ap.add_argument("--worker", nargs=4, metavar=("LIB", "WORKLOAD", "TARGET", "SIZE"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        key, wl, target, size = args.worker
        p, c = (int(x) for x in size.split("x"))
        print(json.dumps(measure(key, wl, json.loads(target), p, c, args.quick)))
        return None
    args.repeat = args.repeat or (1 if args.quick else 3)
    sizes = [tuple(int(x) for x in s.split("x")) for s in
             (args.sizes or ("20x5" if args.quick else "100x10,1000x10")).split(",")]
    keys = [k for k in LIBS if not args.only or k in args.only.split(",")]
    unknown = set(args.only.split(",") if args.only else ()) - set(LIBS)
    if unknown:
        ap.error(f"unknown libraries {sorted(unknown)}; choose from {','.join(LIBS)}")
    wls = [w for w in WL_NAMES if not args.workloads or w in args.workloads.split(",")]
    backends = [b for b in args.backends.split(",") if b]
    if "pg" in backends and not args.pg_url:
        print("PostgreSQL skipped: no --pg-url and no $STOREROOM_TEST_PG_URL", file=sys.stderr)
        backends.remove("pg")
    started = time.time()
    base = tempfile.mkdtemp(prefix="storeroom-relbench-")
    runs: list[dict[str, Any]] = []
    try:
        for backend in backends:
            for size in sizes:
                if backend == "sqlite":
                    seed_sqlite(os.path.join(base, f"seed-{size[0]}x{size[1]}.sqlite"), *size)
                for wl in wls:
                    for rep in range(args.repeat):
                        for key in keys:
                            if wl in SKIP.get(key, ()):
                                continue
                            m = run_one(key, wl, backend, size, base, args)  # type: ignore[arg-type]
                            m["repeat"] = rep
                            runs.append(m)
                            shown = f"{1 / m['seconds_per_op']:>10,.1f} ops/s"
                            print(f"  {backend:<6} {m['size']:<8} {wl:<9} {key:<18} {shown}",
                                  file=sys.stderr, flush=True)
        if "pg" in backends:
            drop_pg(args.pg_url)
    finally:
        shutil.rmtree(base, ignore_errors=True)

    cells: dict[str, list[dict[str, Any]]] = {}
    for m in runs:
        cells.setdefault(f"{m['backend']} {m['size']} {m['workload']}", []).append(m)
    mismatches: list[str] = []
    medians: dict[str, dict[str, float]] = {}
    for cell, ms in cells.items():
        if len({m["result"] for m in ms}) > 1:
            mismatches.append(f"{cell}: " + ", ".join(f"{m['lib']}={m['result']}"
                                                       for m in ms))
        medians[cell] = {k: statistics.median(m["seconds_per_op"] for m in ms
                                              if m["lib"] == k)
                         for k in keys if any(m["lib"] == k for m in ms)}
    summary = summarise(medians)
    print(f"\nrelations: median of {args.repeat}, each measurement in a fresh process on a "
          f"fresh database; SQLite WAL synchronous={PRAGMAS['synchronous']}")
    print_report(medians, summary, keys)
    doc = {
        "benchmark": "relations_bench",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": time.time() - started,
        "settings": {"sizes": [f"{p}x{c}" for p, c in sizes], "backends": backends,
                     "repeat": args.repeat, "quick": args.quick, "pragmas": dict(PRAGMAS),
                     "pg_url": bool(args.pg_url)},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
        "versions": versions(), "libraries": {k: LIB_NAMES[k] for k in keys},
        "workloads": {w: lbl for w, lbl in WORKLOADS if w in wls},
        "checksums_ok": not mismatches, "mismatches": mismatches,
        "not_supported": {k: sorted(v) for k, v in SKIP.items() if k in keys},
        "median_seconds_per_op": medians,
        "ops_per_second": {c: {k: 1 / t for k, t in v.items()} for c, v in medians.items()},
        "summary": summary, "runs": runs,
    }
    out = args.json or os.path.join(ROOT, ".bench", time.strftime(
        "relations-%Y%m%dT%H%M%SZ.json", time.gmtime(started)))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as fh:
        json.dump(doc, fh, indent=1)
    print(f"\nwrote {out}")
    if mismatches:
        print("\nCHECKSUM MISMATCH (libraries disagree):\n" + "\n".join(mismatches),
              file=sys.stderr)
        raise SystemExit(1)
    print("checksums: every library that ran loaded the same graph")
    return doc


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The eight SQLite workloads, storeroom against raw sqlite3 and eight peers, in one command.

    python bench/sqlite_bench.py [--rows 10000] [--repeat 3] [--stat median|min]
                                 [--synchronous NORMAL|FULL] [--only raw,storeroom]
                                 [--workloads get,page] [--quick]
                                 [--json PATH]

Every library works on the same table, ``tasks`` (integer autoincrement key, indexed
``owner``, ``title``, ``done``, ``priority``, ``created_at`` as an integer timestamp), at
the same settings: WAL and ``synchronous=NORMAL`` (``--synchronous FULL``: FULL for every
library; storeroom's own default is FULL). Each measurement runs in a fresh process
(``--worker``) on a fresh copy of one seeded database, so no library inherits another's
page cache, statement cache or identity map; the median of ``--repeat`` measurements is
reported (``--stat min``: the fastest, steadier on a machine whose speed drifts), the
libraries interleaved round-robin within each repeat so they share the machine's noise.

Every measurement also returns a checksum of what it produced: the objects it read
(normalised to plain tuples), the counts, the generated keys of what it created, and a
digest of the whole table afterwards. The run fails if two libraries disagree on any
workload, so a library cannot look fast by doing less.

The libraries: raw sqlite3 (tuples, the floor), a hand-written dataclass mapper over raw
sqlite3 (the physical reference for "objects out of rows"), storeroom (sync and async),
SQLAlchemy Core with statements built once, SQLAlchemy ORM, Pony, peewee, Django and
Tortoise. It prints ops/s, each library's ratio to raw sqlite3, storeroom ÷ the fastest
ORM (SQLAlchemy ORM, Pony, peewee, Django, Tortoise) and ÷ SQLAlchemy Core per workload,
the async store's time against the sync one, and the geometric mean of storeroom's ratios
to raw; and writes the whole run (every measurement, versions, settings) as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import hashlib
import json
import math
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

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)  # this checkout's storeroom, not an installed one

#: Applied by every library on its connections (``--synchronous`` changes the second).
PRAGMAS = {"journal_mode": "WAL", "synchronous": "NORMAL"}

#: storeroom's own DDL for the model below (``create_tables``), so every library reads and
#: writes exactly the table storeroom would create.
DDL = (
    "CREATE TABLE tasks (id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, owner TEXT NOT NULL, "
    "title TEXT NOT NULL, done BOOLEAN NOT NULL, priority INTEGER NOT NULL, "
    "created_at INTEGER NOT NULL)",
    "CREATE INDEX ix_tasks_owner ON tasks (owner)",
)
COLS = "id, owner, title, done, priority, created_at"
INSERT = "INSERT INTO tasks (owner, title, done, priority, created_at) VALUES (?, ?, ?, ?, ?)"
N_OWNERS = 50
T0 = 1_700_000_000

WORKLOADS = [
    ("get", "get by key"),
    ("create_tx", "create one at a time in one transaction"),
    ("bulk", "bulk create (1000 per batch)"),
    ("page", "filtered sorted page of 20"),
    ("iterate", "iterate all objects"),
    ("count", "count with a filter"),
    ("update", "partial update by key"),
    ("delete", "delete by key"),
]
WL_NAMES = [w for w, _ in WORKLOADS]


def task_row(i: int) -> tuple[Any, ...]:
    """The data of the ``i``-th task (without its key): owner, title, done, priority,
    created_at. Seeded rows get key ``i``; created ones are numbered after them."""
    return (f"user{i % N_OWNERS}", f"task {i}", i % 3 == 0, i % 6, T0 + 7 * i)


def owner(i: int) -> str:
    return f"user{i % N_OWNERS}"


def sizes(rows: int, quick: bool) -> dict[str, int]:
    """How many operations each workload times, for a table of ``rows`` rows."""
    return {
        "get": min(3000, rows // 3),
        "create": min(2000, rows),
        "batch": min(1000, max(1, rows // 10)),
        "batches": 10,
        "page": 20 if quick else 500,
        "count": 10 if quick else 300,
        "update": min(2000, rows // 3),
        "delete": min(2000, rows // 3),
    }


# ---------------------------------------------------------------------------------------
# the libraries. Each has setup(path) (async: asetup), close() (aclose), optionally
# prepare(workload) for untimed set-up, norm(obj) -> (id, owner, title, done,
# priority, created_at), and one method per workload (async methods for async libraries):
# get(k) -> obj, create_tx(rows) -> [ids], bulk(rows) -> None (one batch), page(owner) ->
# [objs], iterate() -> [objs], count(owner) -> int, update(k), delete(k). ``rows`` are
# task_row() tuples: turning them into the library's objects is part of the timed work.


class Raw:
    """The floor: sqlite3, hand-written SQL, tuples out, no objects."""

    name = "raw sqlite3"
    is_async = False

    def setup(self, path: str) -> None:
        self.c = sqlite3.connect(path, isolation_level=None)
        for k, v in PRAGMAS.items():
            self.c.execute(f"PRAGMA {k}={v}")
        self.cur = self.c.cursor()

    def norm(self, r: Any) -> tuple[Any, ...]:
        return (r[0], r[1], r[2], bool(r[3]), r[4], r[5])

    def get(self, k: int) -> Any:
        return self.cur.execute(f"SELECT {COLS} FROM tasks WHERE id = ?", (k,)).fetchone()

    def create_tx(self, rows: list[tuple[Any, ...]]) -> list[int]:
        cur = self.cur
        ids = []
        cur.execute("BEGIN")
        for r in rows:
            ids.append(cur.execute(INSERT, r).lastrowid)
        cur.execute("COMMIT")
        return ids

    def bulk(self, rows: list[tuple[Any, ...]]) -> None:
        self.cur.execute("BEGIN")
        self.cur.executemany(INSERT, rows)
        self.cur.execute("COMMIT")

    def page(self, who: str) -> list[Any]:
        return self.cur.execute(
            f"SELECT {COLS} FROM tasks WHERE owner = ? AND done = 0 "
            "ORDER BY priority DESC, created_at LIMIT 20", (who,)).fetchall()

    def iterate(self) -> list[Any]:
        return self.cur.execute(f"SELECT {COLS} FROM tasks").fetchall()

    def count(self, who: str) -> int:
        return self.cur.execute("SELECT count(*) FROM tasks WHERE owner = ? AND done = 1",
                                (who,)).fetchone()[0]

    def update(self, k: int) -> None:
        self.cur.execute("UPDATE tasks SET done = 1 WHERE id = ?", (k,))

    def delete(self, k: int) -> None:
        self.cur.execute("DELETE FROM tasks WHERE id = ?", (k,))

    def close(self) -> None:
        self.c.close()


@dataclasses.dataclass(slots=True)
class MTask:
    """The hand-written mapper's object."""

    id: int | None
    owner: str
    title: str
    done: bool
    priority: int
    created_at: int


def _mtask(cur: Any, r: tuple[Any, ...]) -> MTask:
    return MTask(r[0], r[1], r[2], r[3] == 1, r[4], r[5])


class Mapper(Raw):
    """A dataclass mapper written by hand over raw sqlite3: the physical reference for
    what building objects from rows (and rows from objects) costs."""

    name = "dataclass mapper"

    def setup(self, path: str) -> None:
        super().setup(path)
        self.cur.row_factory = _mtask

    def norm(self, o: Any) -> tuple[Any, ...]:
        return (o.id, o.owner, o.title, o.done, o.priority, o.created_at)

    def _objs(self, rows: list[tuple[Any, ...]]) -> list[MTask]:
        return [MTask(None, *r) for r in rows]

    def create_tx(self, rows: list[tuple[Any, ...]]) -> list[int]:
        cur = self.cur
        out = []
        cur.execute("BEGIN")
        for o in self._objs(rows):
            o.id = cur.execute(INSERT, (o.owner, o.title, o.done, o.priority, o.created_at)
                               ).lastrowid
            out.append(o.id)
        cur.execute("COMMIT")
        return out

    def bulk(self, rows: list[tuple[Any, ...]]) -> None:
        objs = self._objs(rows)
        self.cur.execute("BEGIN")
        self.cur.executemany(INSERT, [(o.owner, o.title, o.done, o.priority, o.created_at)
                                      for o in objs])
        self.cur.execute("COMMIT")

    def count(self, who: str) -> int:
        return self.c.execute("SELECT count(*) FROM tasks WHERE owner = ? AND done = 1",
                              (who,)).fetchone()[0]


# ---------------------------------------------------------------------------------------
def _storeroom_model() -> Any:
    from storeroom import Index, generated, stored

    @stored(key="id", indexes=[Index("owner")], table="tasks")
    class Task:
        id: int = generated.sequence()
        owner: str
        title: str
        done: bool
        priority: int
        created_at: int

    return Task


class Storeroom:
    """storeroom's sync store on the SQLite file."""

    name = "storeroom"
    is_async = False

    def setup(self, path: str) -> None:
        from storeroom import open_store
        self.Task = _storeroom_model()
        self.url = f"sqlite:///{path}?synchronous={PRAGMAS['synchronous']}"
        self.s = open_store(self.Task, self.url)
        # the store opens its connection and checks its table on first use: done here,
        # untimed, as raw sqlite3 and SQLAlchemy connect in their set-up
        self.s.create_tables()
        self.dm: Any = None

    def norm(self, o: Any) -> tuple[Any, ...]:
        return (o.id, o.owner, o.title, o.done, o.priority, o.created_at)

    def _items(self, rows: list[tuple[Any, ...]]) -> list[Any]:
        T = self.Task
        return [T(owner=r[0], title=r[1], done=r[2], priority=r[3], created_at=r[4])
                for r in rows]

    def get(self, k: int) -> Any:
        return self.s.read(k)

    def prepare(self, wl: str) -> None:
        """Untimed set-up of one workload: the data manager whose context creates."""
        if wl == "create_tx":
            from storeroom.context import DataManager
            self.dm = DataManager()
            self.dm.add_engine("main", self.url, default=True)
            self.dm.register_models(self.Task)

    def create_tx(self, rows: list[tuple[Any, ...]]) -> list[int]:
        with self.dm.context() as ctx:
            s = ctx.store(self.Task)
            return [s.create(x).id for x in self._items(rows)]

    def bulk(self, rows: list[tuple[Any, ...]]) -> None:
        from storeroom import Create
        self.s.edit_batch([Create(x) for x in self._items(rows)])

    def page(self, who: str) -> list[Any]:
        return self.s.search(owner=who, done=False, order_by=["-priority", "created_at"],
                             limit=20).items

    def iterate(self) -> list[Any]:
        return list(self.s.search_all())

    def count(self, who: str) -> int:
        return self.s.count(owner=who, done=True)

    def update(self, k: int) -> None:
        self.s.update(k, done=True)

    def delete(self, k: int) -> None:
        self.s.delete(k)

    def close(self) -> None:
        self.s.close()
        if self.dm is not None:
            self.dm.close()


class StoreroomAsync(Storeroom):
    """storeroom's async store (``open_async_store``) on the same file."""

    name = "storeroom async"
    is_async = True

    async def asetup(self, path: str) -> None:
        from storeroom import open_async_store
        self.Task = _storeroom_model()
        self.url = f"sqlite:///{path}?synchronous={PRAGMAS['synchronous']}"
        self.s = open_async_store(self.Task, self.url)
        await self.s.create_tables()  # as the sync store's set-up
        self.dm = None

    async def get(self, k: int) -> Any:  # type: ignore[override]
        return await self.s.read(k)

    def prepare(self, wl: str) -> None:
        if wl == "create_tx":
            from storeroom.context import AsyncDataManager
            self.dm = AsyncDataManager()
            self.dm.add_engine("main", self.url, default=True)
            self.dm.register_models(self.Task)

    async def create_tx(self, rows: list[tuple[Any, ...]]) -> list[int]:  # type: ignore[override]
        async with self.dm.context() as ctx:
            s = ctx.store(self.Task)
            return [(await s.create(x)).id for x in self._items(rows)]

    async def bulk(self, rows: list[tuple[Any, ...]]) -> None:  # type: ignore[override]
        from storeroom import Create
        await self.s.edit_batch([Create(x) for x in self._items(rows)])

    async def page(self, who: str) -> list[Any]:  # type: ignore[override]
        return (await self.s.search(owner=who, done=False, order_by=["-priority", "created_at"],
                                    limit=20)).items

    async def iterate(self) -> list[Any]:  # type: ignore[override]
        return [x async for x in self.s.search_all()]

    async def count(self, who: str) -> int:  # type: ignore[override]
        return await self.s.count(owner=who, done=True)

    async def update(self, k: int) -> None:  # type: ignore[override]
        await self.s.update(k, done=True)

    async def delete(self, k: int) -> None:  # type: ignore[override]
        await self.s.delete(k)

    async def aclose(self) -> None:
        await self.s.close()
        if self.dm is not None:
            await self.dm.close()


# ---------------------------------------------------------------------------------------
def _sqla_engine(path: str) -> Any:
    import sqlalchemy as sa
    engine = sa.create_engine(f"sqlite:///{path}")

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _: Any) -> None:
        for k, v in PRAGMAS.items():
            dbapi_conn.execute(f"PRAGMA {k}={v}")

    return engine


class SqlaCore:
    """SQLAlchemy Core, every statement built once; one autocommit connection for single
    operations, a transactional one for the workloads that need a transaction."""

    name = "SQLAlchemy Core"
    is_async = False

    def setup(self, path: str) -> None:
        import sqlalchemy as sa
        md = sa.MetaData()
        t = sa.Table("tasks", md, sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("owner", sa.Text), sa.Column("title", sa.Text),
                     sa.Column("done", sa.Boolean), sa.Column("priority", sa.Integer),
                     sa.Column("created_at", sa.Integer))
        self.engine = _sqla_engine(path)
        self.conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self.tx = self.engine.connect()
        k = sa.bindparam("k")
        who = sa.bindparam("who")
        self.q_get = sa.select(t).where(t.c.id == k)
        self.q_ins = sa.insert(t)
        self.q_page = (sa.select(t).where(t.c.owner == who, t.c.done.is_(False))
                       .order_by(t.c.priority.desc(), t.c.created_at).limit(20))
        self.q_all = sa.select(t)
        self.q_count = sa.select(sa.func.count()).select_from(t).where(
            t.c.owner == who, t.c.done.is_(True))
        self.q_upd = sa.update(t).where(t.c.id == k).values(done=True)
        self.q_del = sa.delete(t).where(t.c.id == k)

    def norm(self, r: Any) -> tuple[Any, ...]:
        return (r.id, r.owner, r.title, r.done, r.priority, r.created_at)

    @staticmethod
    def _dicts(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        return [{"owner": r[0], "title": r[1], "done": r[2], "priority": r[3],
                 "created_at": r[4]} for r in rows]

    def get(self, k: int) -> Any:
        return self.conn.execute(self.q_get, {"k": k}).first()

    def create_tx(self, rows: list[tuple[Any, ...]]) -> list[int]:
        ins, tx = self.q_ins, self.tx
        with tx.begin():
            return [tx.execute(ins, d).inserted_primary_key[0] for d in self._dicts(rows)]

    def bulk(self, rows: list[tuple[Any, ...]]) -> None:
        with self.tx.begin():
            self.tx.execute(self.q_ins, self._dicts(rows))

    def page(self, who: str) -> list[Any]:
        return self.conn.execute(self.q_page, {"who": who}).all()

    def iterate(self) -> list[Any]:
        return self.conn.execute(self.q_all).all()

    def count(self, who: str) -> int:
        return self.conn.execute(self.q_count, {"who": who}).scalar_one()

    def update(self, k: int) -> None:
        self.conn.execute(self.q_upd, {"k": k})

    def delete(self, k: int) -> None:
        self.conn.execute(self.q_del, {"k": k})

    def close(self) -> None:
        self.conn.close()
        self.tx.close()
        self.engine.dispose()


class SqlaOrm:
    """SQLAlchemy 2 ORM, a session per unit of work (the idiomatic use)."""

    name = "SQLAlchemy ORM"
    is_async = False

    def setup(self, path: str) -> None:
        import sqlalchemy as sa
        from sqlalchemy.orm import DeclarativeBase, Session

        class Base(DeclarativeBase):
            pass

        class Task(Base):
            __tablename__ = "tasks"
            id = sa.Column(sa.Integer, primary_key=True)
            owner = sa.Column(sa.Text, nullable=False, index=True)
            title = sa.Column(sa.Text, nullable=False)
            done = sa.Column(sa.Boolean, nullable=False)
            priority = sa.Column(sa.Integer, nullable=False)
            created_at = sa.Column(sa.Integer, nullable=False)

        self.Task, self.sa, self.Session = Task, sa, Session
        self.engine = _sqla_engine(path)
        self.session = Session(self.engine, expire_on_commit=False)
        T = Task
        self.q_page = (sa.select(T).where(T.owner == sa.bindparam("who"), T.done.is_(False))
                       .order_by(T.priority.desc(), T.created_at).limit(20))
        self.q_count = sa.select(sa.func.count()).select_from(T).where(
            T.owner == sa.bindparam("who"), T.done.is_(True))

    def norm(self, o: Any) -> tuple[Any, ...]:
        return (o.id, o.owner, o.title, o.done, o.priority, o.created_at)

    def _objs(self, rows: list[tuple[Any, ...]]) -> list[Any]:
        T = self.Task
        return [T(owner=r[0], title=r[1], done=r[2], priority=r[3], created_at=r[4])
                for r in rows]

    def get(self, k: int) -> Any:
        s = self.session  # one long session; populate_existing so every get reads the row
        obj = s.get(self.Task, k, populate_existing=True)
        s.commit()
        return obj

    def create_tx(self, rows: list[tuple[Any, ...]]) -> list[int]:
        with self.Session(self.engine, expire_on_commit=False) as s:
            out = []
            for o in self._objs(rows):
                s.add(o)
                s.flush()
                out.append(o.id)
            s.commit()
            return out

    def bulk(self, rows: list[tuple[Any, ...]]) -> None:
        with self.Session(self.engine) as s:
            s.add_all(self._objs(rows))
            s.commit()

    def page(self, who: str) -> list[Any]:
        with self.Session(self.engine) as s:
            return list(s.scalars(self.q_page, {"who": who}).all())

    def iterate(self) -> list[Any]:
        with self.Session(self.engine) as s:
            return list(s.scalars(self.sa.select(self.Task)).all())

    def count(self, who: str) -> int:
        with self.Session(self.engine) as s:
            return int(s.scalar(self.q_count, {"who": who}))

    def update(self, k: int) -> None:
        with self.Session(self.engine) as s:
            s.execute(self.sa.update(self.Task).where(self.Task.id == k).values(done=True))
            s.commit()

    def delete(self, k: int) -> None:
        with self.Session(self.engine) as s:
            s.execute(self.sa.delete(self.Task).where(self.Task.id == k))
            s.commit()

    def close(self) -> None:
        self.session.close()
        self.engine.dispose()


class Pony:
    name = "Pony"
    is_async = False

    def setup(self, path: str) -> None:
        import pony.orm as po
        db = po.Database()

        class Task(db.Entity):
            _table_ = "tasks"
            id = po.PrimaryKey(int, auto=True)
            owner = po.Required(str, index="ix_tasks_owner")
            title = po.Required(str)
            done = po.Required(bool)
            priority = po.Required(int)
            created_at = po.Required(int)

        db.bind(provider="sqlite", filename=path)

        @db.on_connect(provider="sqlite")
        def _pragmas(_db: Any, conn: Any) -> None:
            for k, v in PRAGMAS.items():
                conn.execute(f"PRAGMA {k}={v}")

        db.generate_mapping(create_tables=False)
        self.po, self.db, self.Task = po, db, Task

    def norm(self, o: Any) -> tuple[Any, ...]:
        return (o.id, o.owner, o.title, o.done, o.priority, o.created_at)

    def get(self, k: int) -> Any:
        with self.po.db_session:
            return self.Task.get(id=k)

    def create_tx(self, rows: list[tuple[Any, ...]]) -> list[int]:
        T, po = self.Task, self.po
        out = []
        with po.db_session:
            for r in rows:
                o = T(owner=r[0], title=r[1], done=r[2], priority=r[3], created_at=r[4])
                po.flush()
                out.append(o.id)
        return out

    def bulk(self, rows: list[tuple[Any, ...]]) -> None:
        T = self.Task
        with self.po.db_session:
            for r in rows:
                T(owner=r[0], title=r[1], done=r[2], priority=r[3], created_at=r[4])

    def page(self, who: str) -> list[Any]:
        po = self.po
        with po.db_session:
            return list(self.Task.select(lambda t: t.owner == who and not t.done)
                        .order_by(lambda t: (po.desc(t.priority), t.created_at))[:20])

    def iterate(self) -> list[Any]:
        with self.po.db_session:
            return list(self.Task.select()[:])

    def count(self, who: str) -> int:
        with self.po.db_session:
            return int(self.Task.select(lambda t: t.owner == who and t.done).count())

    def update(self, k: int) -> None:
        with self.po.db_session:
            self.Task[k].done = True

    def delete(self, k: int) -> None:
        with self.po.db_session:
            self.Task[k].delete()

    def close(self) -> None:
        self.db.disconnect()


class Peewee:
    name = "peewee"
    is_async = False

    def setup(self, path: str) -> None:
        import peewee as pw
        self.db = pw.SqliteDatabase(path, pragmas=dict(PRAGMAS))

        class Task(pw.Model):
            id = pw.AutoField()
            owner = pw.TextField(index=True)
            title = pw.TextField()
            done = pw.BooleanField()
            priority = pw.IntegerField()
            created_at = pw.IntegerField()

            class Meta:
                database = self.db
                table_name = "tasks"

        self.Task = Task
        self.db.connect()

    def norm(self, o: Any) -> tuple[Any, ...]:
        return (o.id, o.owner, o.title, o.done, o.priority, o.created_at)

    @staticmethod
    def _dicts(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        return [{"owner": r[0], "title": r[1], "done": r[2], "priority": r[3],
                 "created_at": r[4]} for r in rows]

    def get(self, k: int) -> Any:
        return self.Task.get_by_id(k)

    def create_tx(self, rows: list[tuple[Any, ...]]) -> list[int]:
        T = self.Task
        with self.db.atomic():
            return [T.create(**d).id for d in self._dicts(rows)]

    def bulk(self, rows: list[tuple[Any, ...]]) -> None:
        with self.db.atomic():
            self.Task.insert_many(self._dicts(rows)).execute()

    def page(self, who: str) -> list[Any]:
        T = self.Task
        return list(T.select().where((T.owner == who) & (T.done == False))  # noqa: E712
                    .order_by(T.priority.desc(), T.created_at).limit(20))

    def iterate(self) -> list[Any]:
        return list(self.Task.select())

    def count(self, who: str) -> int:
        T = self.Task
        return int(T.select().where((T.owner == who) & (T.done == True)).count())  # noqa: E712

    def update(self, k: int) -> None:
        self.Task.update(done=True).where(self.Task.id == k).execute()

    def delete(self, k: int) -> None:
        self.Task.delete().where(self.Task.id == k).execute()

    def close(self) -> None:
        self.db.close()


class Django:
    """Django's ORM configured in-process (``settings.configure``), no project."""

    name = "Django"
    is_async = False

    def setup(self, path: str) -> None:
        import django
        from django.conf import settings
        init = ";".join(f"PRAGMA {k}={v}" for k, v in PRAGMAS.items())
        settings.configure(
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": path,
                                   "OPTIONS": {"init_command": init}}},
            INSTALLED_APPS=[], USE_TZ=False, DEBUG=False)
        django.setup()
        from django.db import models, transaction

        class Task(models.Model):
            owner = models.TextField(db_index=True)
            title = models.TextField()
            done = models.BooleanField()
            priority = models.IntegerField()
            created_at = models.IntegerField()

            class Meta:
                app_label = "bench"
                db_table = "tasks"
                managed = False

        self.Task, self.transaction = Task, transaction

    def norm(self, o: Any) -> tuple[Any, ...]:
        return (o.id, o.owner, o.title, o.done, o.priority, o.created_at)

    def _objs(self, rows: list[tuple[Any, ...]]) -> list[Any]:
        T = self.Task
        return [T(owner=r[0], title=r[1], done=r[2], priority=r[3], created_at=r[4])
                for r in rows]

    def get(self, k: int) -> Any:
        return self.Task.objects.get(pk=k)

    def create_tx(self, rows: list[tuple[Any, ...]]) -> list[int]:
        objects = self.Task.objects
        with self.transaction.atomic():
            return [objects.create(owner=r[0], title=r[1], done=r[2], priority=r[3],
                                   created_at=r[4]).id for r in rows]

    def bulk(self, rows: list[tuple[Any, ...]]) -> None:
        self.Task.objects.bulk_create(self._objs(rows))

    def page(self, who: str) -> list[Any]:
        return list(self.Task.objects.filter(owner=who, done=False)
                    .order_by("-priority", "created_at")[:20])

    def iterate(self) -> list[Any]:
        return list(self.Task.objects.all())

    def count(self, who: str) -> int:
        return int(self.Task.objects.filter(owner=who, done=True).count())

    def update(self, k: int) -> None:
        self.Task.objects.filter(pk=k).update(done=True)

    def delete(self, k: int) -> None:
        self.Task.objects.filter(pk=k).delete()

    def close(self) -> None:
        from django.db import connections
        connections.close_all()


class Tortoise:
    """Tortoise ORM (async, over aiosqlite)."""

    name = "Tortoise"
    is_async = True

    async def asetup(self, path: str) -> None:
        from tortoise import Tortoise as T
        from tortoise import fields, models
        from tortoise.transactions import in_transaction

        class TortoiseTask(models.Model):
            id = fields.IntField(primary_key=True)
            owner = fields.TextField()
            title = fields.TextField()
            done = fields.BooleanField()
            priority = fields.IntField()
            created_at = fields.BigIntField()

            class Meta:
                table = "tasks"

        # Tortoise finds models by scanning a module: put the class into this one
        globals()["TortoiseTask"] = TortoiseTask
        await T.init(db_url=f"sqlite://{path}", modules={"models": [__name__]})
        conn = T.get_connection("default")
        for k, v in PRAGMAS.items():
            await conn.execute_script(f"PRAGMA {k}={v}")
        self.T, self.Task, self.in_transaction = T, TortoiseTask, in_transaction

    def norm(self, o: Any) -> tuple[Any, ...]:
        return (o.id, o.owner, o.title, o.done, o.priority, o.created_at)

    def _objs(self, rows: list[tuple[Any, ...]]) -> list[Any]:
        T = self.Task
        return [T(owner=r[0], title=r[1], done=r[2], priority=r[3], created_at=r[4])
                for r in rows]

    async def get(self, k: int) -> Any:
        return await self.Task.get(id=k)

    async def create_tx(self, rows: list[tuple[Any, ...]]) -> list[int]:
        T = self.Task
        async with self.in_transaction() as conn:
            return [(await T.create(owner=r[0], title=r[1], done=r[2], priority=r[3],
                                    created_at=r[4], using_db=conn)).id for r in rows]

    async def bulk(self, rows: list[tuple[Any, ...]]) -> None:
        async with self.in_transaction() as conn:
            await self.Task.bulk_create(self._objs(rows), using_db=conn)

    async def page(self, who: str) -> list[Any]:
        return await (self.Task.filter(owner=who, done=False)
                      .order_by("-priority", "created_at").limit(20))

    async def iterate(self) -> list[Any]:
        return await self.Task.all()

    async def count(self, who: str) -> int:
        return int(await self.Task.filter(owner=who, done=True).count())

    async def update(self, k: int) -> None:
        await self.Task.filter(id=k).update(done=True)

    async def delete(self, k: int) -> None:
        await self.Task.filter(id=k).delete()

    async def aclose(self) -> None:
        await self.T.close_connections()


LIBS: dict[str, Callable[[], Any]] = {
    "raw": Raw, "mapper": Mapper, "storeroom": Storeroom, "storeroom-async": StoreroomAsync,
    "sqla-core": SqlaCore, "sqla-orm": SqlaOrm, "pony": Pony, "peewee": Peewee,
    "django": Django, "tortoise": Tortoise,
}
LIB_NAMES = {key: cls.name for key, cls in LIBS.items()}  # type: ignore[attr-defined]
RAW = "raw"
STOREROOM = "storeroom"
ORMS = ["sqla-orm", "pony", "peewee", "django", "tortoise"]
CORE = "sqla-core"


# ---------------------------------------------------------------------------------------
# one measurement (in a worker process)

def _digest(obj: Any) -> str:
    return hashlib.sha1(repr(obj).encode()).hexdigest()[:16]


def table_digest(path: str) -> str:
    """A digest of every row of ``tasks`` (and the autoincrement counter), read with raw
    sqlite3 after the library closed: what each write workload left behind."""
    c = sqlite3.connect(path)
    try:
        rows = [(r[0], r[1], r[2], bool(r[3]), r[4], r[5])
                for r in c.execute(f"SELECT {COLS} FROM tasks ORDER BY id")]
        seq = c.execute("SELECT seq FROM sqlite_sequence WHERE name = 'tasks'").fetchone()
    finally:
        c.close()
    return _digest((rows, seq))


def _plan(wl: str, rows: int, quick: bool) -> tuple[list[Any], int]:
    """The arguments of each timed call of ``wl``, and how many operations they count."""
    n = sizes(rows, quick)
    if wl == "get":
        return [1 + 3 * i for i in range(n["get"])], n["get"]
    if wl == "update":
        return [2 + 3 * i for i in range(n["update"])], n["update"]
    if wl == "delete":
        return [3 + 3 * i for i in range(n["delete"])], n["delete"]
    if wl == "create_tx":
        return [[task_row(rows + 1 + i) for i in range(n["create"])]], n["create"]
    if wl == "bulk":
        b = n["batch"]
        return ([[task_row(rows + 1 + j * b + i) for i in range(b)] for j in range(n["batches"])],
                b * n["batches"])
    if wl == "page":
        return [owner(i) for i in range(n["page"])], n["page"]
    if wl == "count":
        return [owner(i) for i in range(n["count"])], n["count"]
    if wl == "iterate":
        return [None], rows
    raise ValueError(wl)


def _checksum(lib: Any, wl: str, results: list[Any]) -> Any:
    """A digest of what the timed calls returned, normalised across libraries."""
    norm = lib.norm
    if wl == "get":
        return _digest([norm(o) for o in results])
    if wl == "page":
        return _digest([[norm(o) for o in page] for page in results])
    if wl == "iterate":
        return _digest(sorted(norm(o) for o in results[0]))
    if wl == "count":
        return _digest(results)
    if wl == "create_tx":
        return _digest(results[0])
    return None  # bulk, update, delete: the table digest says it all


def measure(key: str, wl: str, path: str, rows: int, quick: bool,
            collect: bool = True) -> dict[str, Any]:
    """Run workload ``wl`` of library ``key`` on the database at ``path``: seconds per
    operation and the checksums. ``collect``: a full garbage collection before timing (a
    worker's heap is small; the smoke test, sharing one big heap, skips it)."""
    lib = LIBS[key]()
    args, ops = _plan(wl, rows, quick)
    if lib.is_async:
        elapsed, results = asyncio.run(_measure_async(lib, wl, path, args, collect))
    else:
        lib.setup(path)
        try:
            if hasattr(lib, "prepare"):
                lib.prepare(wl)
            fn = getattr(lib, wl)
            if wl in ("get", "page", "count", "iterate"):  # warm the statement caches: reads only
                fn() if wl == "iterate" else fn(args[0])
            if collect:
                gc.collect()
            if wl == "iterate":
                t = time.perf_counter()
                results = [fn()]
                elapsed = time.perf_counter() - t
            else:
                t = time.perf_counter()
                results = [fn(a) for a in args]
                elapsed = time.perf_counter() - t
            check = _checksum(lib, wl, results)
        finally:
            lib.close()
    if lib.is_async:
        check = _checksum(lib, wl, results)
    return {"lib": key, "workload": wl, "seconds_per_op": elapsed / ops, "ops": ops,
            "result": check, "table": table_digest(path)}


async def _measure_async(lib: Any, wl: str, path: str, args: list[Any],
                         collect: bool) -> tuple[float, Any]:
    await lib.asetup(path)
    try:
        if hasattr(lib, "prepare"):
            lib.prepare(wl)
        fn = getattr(lib, wl)
        if wl in ("get", "page", "count", "iterate"):
            await (fn() if wl == "iterate" else fn(args[0]))
        if collect:
            gc.collect()
        if wl == "iterate":
            t = time.perf_counter()
            results = [await fn()]
            return time.perf_counter() - t, results
        t = time.perf_counter()
        results = [await fn(a) for a in args]
        return time.perf_counter() - t, results
    finally:
        await lib.aclose()


# ---------------------------------------------------------------------------------------
# the run (in the main process)

def seed(path: str, rows: int) -> None:
    """Create the seeded database every measurement starts from (a copy of it)."""
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    for stmt in DDL:
        c.execute(stmt)
    c.execute("BEGIN")
    c.executemany(f"INSERT INTO tasks ({COLS}) VALUES (?, ?, ?, ?, ?, ?)",
                  [(i, *task_row(i)) for i in range(1, rows + 1)])
    c.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'tasks'", (rows,))
    c.execute("COMMIT")
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()


def run_one(key: str, wl: str, base: str, args: Any) -> dict[str, Any]:
    """One measurement in a fresh process, on a fresh copy of the seeded database."""
    work = tempfile.mkdtemp(dir=base)
    path = os.path.join(work, "bench.sqlite")
    shutil.copy(os.path.join(base, "seed.sqlite"), path)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", key, wl, path,
           "--rows", str(args.rows), "--synchronous", args.synchronous]
    if args.quick:
        cmd.append("--quick")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if proc.returncode != 0:
        raise SystemExit(f"{key} / {wl} failed:\n{proc.stdout}\n{proc.stderr}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def versions() -> dict[str, str]:
    from importlib import metadata
    out = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    for dist in ("storeroom", "SQLAlchemy", "pony", "peewee", "Django", "tortoise-orm",
                 "aiosqlite"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def summarise(medians: dict[str, dict[str, float]], keys: list[str]) -> dict[str, Any]:
    """Ratios per workload: every library to raw, storeroom to the best ORM and to Core,
    async to sync; and the geometric mean of storeroom's ratios to raw."""
    out: dict[str, Any] = {"per_workload": {}}
    gm: dict[str, list[float]] = {k: [] for k in keys}
    for wl, times in medians.items():
        raw = times.get(RAW)
        row: dict[str, Any] = {}
        if raw:
            row["ratio_to_raw"] = {k: raw / times[k] for k in keys if k in times}
            for k in keys:
                if k in times:
                    gm[k].append(raw / times[k])
        ours = times.get(STOREROOM)
        orms = {k: times[k] for k in ORMS if k in times}
        if ours and orms:
            best = min(orms, key=orms.__getitem__)
            row["best_orm"] = best
            row["storeroom_vs_best_orm"] = orms[best] / ours
        if ours and CORE in times:
            row["storeroom_vs_core"] = times[CORE] / ours
        if ours and "storeroom-async" in times:
            row["async_time_vs_sync"] = times["storeroom-async"] / ours
        out["per_workload"][wl] = row
    out["geomean_ratio_to_raw"] = {
        k: math.exp(sum(map(math.log, v)) / len(v)) for k, v in gm.items() if v}
    return out


def print_report(medians: dict[str, dict[str, float]], summary: dict[str, Any],
                 keys: list[str], title: str) -> None:
    labels = dict(WORKLOADS)
    print(f"\n{title}\nops/s (ratio to raw sqlite3)\n")
    names = [LIB_NAMES[k] for k in keys]
    print("| workload | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(keys))
    for wl, times in medians.items():
        ratios = summary["per_workload"][wl].get("ratio_to_raw", {})
        cells = []
        for k in keys:
            if k not in times:
                cells.append("n/a")
            elif k in ratios:
                cells.append(f"{1 / times[k]:,.0f} ({ratios[k]:.2f}x)")
            else:
                cells.append(f"{1 / times[k]:,.0f}")
        print(f"| {labels[wl]} | " + " | ".join(cells) + " |")
    print("\nstoreroom (sync) against its peers; async: the async store's time ÷ the sync "
          "store's\n")
    print("| workload | storeroom ÷ raw | ÷ best ORM (which) | ÷ SQLAlchemy Core "
          "| async time ÷ sync |")
    print("|---|---:|---:|---:|---:|")

    def f(x: Any, fmt: str = "{:.2f}x") -> str:
        return "n/a" if x is None else fmt.format(x)

    for wl in medians:
        row = summary["per_workload"][wl]
        best = row.get("best_orm")
        vs = f(row.get("storeroom_vs_best_orm"))
        if best:
            vs += f" ({LIB_NAMES[best]})"
        print(f"| {labels[wl]} | {f(row.get('ratio_to_raw', {}).get(STOREROOM))} | {vs} | "
              f"{f(row.get('storeroom_vs_core'))} | {f(row.get('async_time_vs_sync'))} |")
    print("\ngeometric mean of the ratios to raw sqlite3: " + ", ".join(
        f"{LIB_NAMES[k]} {v:.2f}x" for k, v in summary["geomean_ratio_to_raw"].items()))


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=None, help="seeded rows (default 10000)")
    ap.add_argument("--repeat", type=int, default=None, help="measurements per cell "
                    "(default 3)")
    ap.add_argument("--stat", default="median", choices=["median", "min"],
                    help="what the tables report of a cell's measurements: the median "
                    "(default) or the fastest (best of --repeat: what the code costs "
                    "when the machine does not interfere; both go into the JSON)")
    ap.add_argument("--only", default="", help="library keys, comma-separated: "
                    + ",".join(LIBS))
    ap.add_argument("--workloads", default="", help=",".join(WL_NAMES))
    ap.add_argument("--synchronous", default="NORMAL", choices=["NORMAL", "FULL"],
                    help="PRAGMA synchronous for every library (storeroom's default: FULL)")
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run: 300 rows, one measurement, fewer operations")
    ap.add_argument("--json", default=None, help="where to write the run "
                    "(default .bench/sqlite-<time>.json)")
    ap.add_argument("--worker", nargs=3, metavar=("LIB", "WORKLOAD", "DB"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.rows = args.rows or (300 if args.quick else 10000)
    args.repeat = args.repeat or (1 if args.quick else 3)
    PRAGMAS["synchronous"] = args.synchronous
    if args.worker:
        key, wl, path = args.worker
        print(json.dumps(measure(key, wl, path, args.rows, args.quick)))
        return None

    keys = [k for k in LIBS if not args.only or k in args.only.split(",")]
    wls = [w for w in WL_NAMES if not args.workloads or w in args.workloads.split(",")]
    unknown = set(args.only.split(",") if args.only else ()) - set(LIBS)
    if unknown:
        ap.error(f"unknown libraries {sorted(unknown)}; choose from {','.join(LIBS)}")
    started = time.time()
    base = tempfile.mkdtemp(prefix="storeroom-bench-")
    runs: list[dict[str, Any]] = []
    try:
        seed(os.path.join(base, "seed.sqlite"), args.rows)
        for wl in wls:
            for rep in range(args.repeat):
                for key in keys:  # interleaved, so that every library shares the noise
                    m = run_one(key, wl, base, args)
                    m["repeat"] = rep
                    runs.append(m)
                    print(f"  {wl:<10} {key:<16} {1 / m['seconds_per_op']:>12,.0f} ops/s",
                          file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)

    # the checksums: every library, every measurement, the same result and table
    mismatches = []
    for wl in wls:
        seen = {(m["result"], m["table"]) for m in runs if m["workload"] == wl}
        if len(seen) > 1:
            by = {m["lib"]: (m["result"], m["table"]) for m in runs if m["workload"] == wl}
            mismatches.append(f"{wl}: {by}")
    def cells(stat: Callable[[list[float]], float]) -> dict[str, dict[str, float]]:
        return {wl: {k: stat([m["seconds_per_op"] for m in runs
                              if m["workload"] == wl and m["lib"] == k])
                     for k in keys} for wl in wls}
    medians = cells(statistics.median)
    fastest = cells(min)
    chosen = fastest if args.stat == "min" else medians
    summary = summarise(chosen, keys)
    told = "best" if args.stat == "min" else "median"
    title = (f"SQLite {sqlite3.sqlite_version} (WAL, synchronous={args.synchronous} for "
             f"every library), {args.rows} rows, {told} of {args.repeat}, each measurement "
             "in a fresh process")
    print_report(chosen, summary, keys, title)
    doc = {
        "benchmark": "sqlite_bench", "started": time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)), "seconds": time.time() - started,
        "settings": {"rows": args.rows, "repeat": args.repeat, "statistic": args.stat,
                     "synchronous": args.synchronous,
                     "quick": args.quick, "pragmas": dict(PRAGMAS),
                     "sizes": sizes(args.rows, args.quick)},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
        "versions": versions(), "libraries": {k: LIB_NAMES[k] for k in keys},
        "workloads": dict((w, lbl) for w, lbl in WORKLOADS if w in wls),
        "checksums_ok": not mismatches, "mismatches": mismatches,
        "median_seconds_per_op": medians,
        "min_seconds_per_op": fastest,
        # of the chosen statistic (``settings.statistic``), as the printed tables
        "ops_per_second": {wl: {k: 1 / t for k, t in v.items()} for wl, v in chosen.items()},
        "summary": summary, "runs": runs,
    }
    out = args.json or os.path.join(ROOT, ".bench", time.strftime(
        "sqlite-%Y%m%dT%H%M%SZ.json", time.gmtime(started)))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as fh:
        json.dump(doc, fh, indent=1)
    print(f"\nwrote {out}")
    if mismatches:
        print("\nCHECKSUM MISMATCH (libraries disagree):\n" + "\n".join(mismatches),
              file=sys.stderr)
        raise SystemExit(1)
    print("checksums: every library returned the same results and left the same table")
    return doc


if __name__ == "__main__":
    main()

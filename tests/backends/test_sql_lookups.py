"""SQL specifics of lookups into list and nested attributes: what runs natively with the
dialect's JSON functions, what is split to local evaluation, and exact strings on
SQLite (whose JSON functions cut a string at an escaped NUL).

PostgreSQL and MySQL/MariaDB: STOREROOM_TEST_PG_URL / STOREROOM_TEST_MYSQL_URL, skipped
when absent (failed when CI=true).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from storeroom import Q, field, open_store, stored
from storeroom.backends.sql import testing
from storeroom.query import build_filter, compile_local
from tests.servers import skip_or_fail


@dataclass
class Where:
    city: str
    n: int = 0
    ok: bool = False


@stored
class Doc:
    id: int
    tags: list[str] = field(default_factory=list)
    nums: list[int] = field(default_factory=list)
    where: Where | None = None
    meta: dict[str, Any] = field(default_factory=dict)


DOCS = [
    Doc(id=1, tags=["a", "a\x00b"], nums=[1], where=Where("a\x00b", 1, True), meta={"k": 1}),
    Doc(id=2, tags=["ab"], nums=[2, 3], where=Where("a", 2), meta={"k": "a"}),
    Doc(id=3),
]


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    name = request.param
    if name == "sqlite":
        url = f"sqlite:///{tmp_path}/docs.db"
    else:
        reason = testing.unavailable_reason(name)
        if reason is not None:
            skip_or_fail(f"{name}: {reason}")
        url = testing.fresh_url(name, f"t{uuid.uuid4().hex}")
    s = open_store(Doc, url)
    for d in DOCS:
        if name == "postgres" and d.id == 1:  # jsonb holds no NUL
            d = Doc(id=1, tags=["a", "a-b"], nums=[1], where=Where("a-b", 1, True),
                    meta={"k": 1})
        s.create(d)
    yield s, name
    s.close()


NATIVE = {"sqlite": True, "postgres": True, "mysql": True}


def test_typed_paths_and_membership_are_native(store):
    s, name = store
    core = s._b.core
    for where in [Q(where__city="a"), Q(where__city__startswith="a"), Q(where__n__gte=2),
                  Q(where__ok=True), Q(where__city__in=["a", "b"]), Q(tags__contains="a"),
                  Q(nums__contains=3), Q(meta__k__isnull=True),
                  ~Q(where__n__lt=2) | Q(tags__contains="ab")]:
        node = build_filter(core.meta, where)
        assert core.split(node).all_native is NATIVE[name], where
    # a loose dict value compares by its JSON type: local
    node = build_filter(core.meta, Q(meta__k=1) & Q(where__n=1))
    split = core.split(node)
    assert split.native == build_filter(core.meta, Q(where__n=1))
    assert split.local == build_filter(core.meta, Q(meta__k=1))


def test_results_equal_local_evaluation(store):
    s, _ = store
    items = list(s.search_all(order_by="id"))
    for where in [Q(where__city="a"), Q(where__city__gt="a"), Q(where__city__contains="b"),
                  Q(tags__contains="a"), ~Q(tags__contains="a"), Q(nums__contains=3),
                  Q(where__ok=False), ~Q(where__n__in=[1, 5]), Q(where__isnull=False),
                  Q(meta__k=1), Q(meta__k__ne="a")]:
        keep = compile_local(build_filter(Doc.__storeroom__, where))
        want = [i.id for i in items if keep(i)]
        assert [i.id for i in s.search_all(where, order_by="id")] == want, where
        assert s.count(where) == len(want), where


def test_sqlite_strings_with_nul_are_exact(tmp_path):
    with open_store(Doc, f"sqlite:///{tmp_path}/nul.db") as s:
        for d in DOCS:
            s.create(d)
        # SQLite's json_extract would read "a\x00b" as "a"
        assert [d.id for d in s.search_all(where__city="a")] == [2]
        assert [d.id for d in s.search_all(tags__contains="a")] == [1]
        assert [d.id for d in s.search_all(tags__contains="a\x00b")] == [1]
        assert [d.id for d in s.search_all(where__city__lt="a\x01", order_by="id")] == [1, 2]

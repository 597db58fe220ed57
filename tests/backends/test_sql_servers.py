"""PostgreSQL and MySQL/MariaDB specifics the shared contract suite does not reach.

- case folding: the SQL each dialect uses for the i-variants lowers exactly as Python's
  ``str.lower()`` (every code point, the final sigma) wherever it is declared native;
- StoreMeta tells the truth: every declared native operator compiles into the SQL that
  runs on the server, and what is declined is declined (MySQL non-ASCII i-needles,
  PostgreSQL NUL values, MySQL decimals);
- MySQL's PAD SPACE / ``_ci`` collations never leak through;
- PostgreSQL refuses NUL in text with a ``ValidationError`` (rule ``nul``);
- a connection killed on the server gives a clear ``BackendError`` (or a transparent
  reconnect), and the store works again on the next call;
- URL spellings and engines for ``DataManager.add_engine``.

Servers: STOREROOM_TEST_PG_URL / STOREROOM_TEST_MYSQL_URL (defaults: .ci/services.sh);
skipped when absent, failed when CI=true.
"""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

import pytest

from storeroom import Q, ValidationError, field, open_async_store, open_store, stored
from storeroom.backends.sql import testing
from storeroom.errors import BackendError
from storeroom.model import meta_of
from storeroom.query import build_filter
from tests.servers import skip_or_fail

SERVERS = ["postgres", "mysql"]


def _require(server: str) -> str:
    reason = testing.unavailable_reason(server)
    if reason is not None:
        skip_or_fail(f"{server}: {reason}")
    return testing.base_url(server)


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> str:
    _require(request.param)
    return str(request.param)


@pytest.fixture
def url(server: str) -> str:
    return testing.fresh_url(server, f"t{uuid.uuid4().hex}")


@stored
class Doc:
    id: str
    title: str = ""
    tag: str = field(default="", unique=True)
    n: int = 0
    dec: Decimal = Decimal("0")
    raw: bytes = b""
    extra: dict[str, object] = field(default_factory=dict)


# -- case folding -------------------------------------------------------------------------
def _all_chars() -> list[str]:
    # every assigned code point (unassigned, private-use and surrogate ones lower to
    # themselves in Python and in the servers' tables alike; leaving them out keeps the
    # sweep to ~150,000 rows instead of 1,100,000)
    import unicodedata
    return [c for c in map(chr, range(1, 0x110000))
            if unicodedata.category(c) not in ("Cn", "Co", "Cs")]


def test_pg_icu_lower_is_python_lower() -> None:
    import psycopg

    from storeroom.backends.sql.dialects import PG_LOWER_COLLATION
    base = _require("postgres")
    parts = urlsplit(base)
    with psycopg.connect(urlunsplit(("postgresql", parts.netloc, parts.path, "", "")),
                         autocommit=True) as conn:
        chars = _all_chars()
        bad = []
        for start in range(0, len(chars), 50000):
            chunk = chars[start:start + 50000]
            rows = conn.execute(f'SELECT x, lower(x COLLATE "{PG_LOWER_COLLATION}") '
                                "FROM unnest(%s::text[]) AS x", (chunk,)).fetchall()
            bad += [x for x, low in rows if x.lower() != low]
        assert bad == []
        # context: the final sigma, U+0130, combining marks
        words = ["ΑΣ", "ΑΣ ", "ΣΑ", "Α.Σ", "aΣ_b", "AΣ\u0301", "İ", "İa", "ΣΣ", "ΌΣΟΣ", "ǅ", "ẞ"]
        rows = conn.execute(f'SELECT x, lower(x COLLATE "{PG_LOWER_COLLATION}") '
                            "FROM unnest(%s::text[]) AS x", (words,)).fetchall()
        assert [low for _, low in rows] == [w.lower() for w in words]


def test_mysql_lower_differs_from_python_only_outside_ascii() -> None:
    """The MySQL i-variants are native for ASCII needles only: that is exact when no code
    point whose LOWER() differs from Python's lowers to or from an ASCII character."""
    import pymysql
    base = _require("mysql")
    parts = urlsplit(base)
    conn = pymysql.connect(host=parts.hostname, port=parts.port, user=parts.username or "root",
                           password=parts.password or "", charset="utf8mb4", autocommit=True)
    name = f"lower_{uuid.uuid4().hex[:8]}"
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
            cur.execute(f"CREATE TABLE `{name}`.c (i INT PRIMARY KEY, x VARCHAR(4) "
                        "CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin)")
            cur.executemany(f"INSERT INTO `{name}`.c VALUES (%s, %s)",
                            [(ord(c), c) for c in _all_chars()])
            cur.execute(f"SELECT i, LOWER(REPLACE(x, '\u0130', 'i\u0307')) FROM `{name}`.c")
            bad = [(i, low) for i, low in cur.fetchall() if chr(i).lower() != low]
            cur.execute(f"DROP DATABASE `{name}`")
    finally:
        conn.close()
    assert bad, "MariaDB's LOWER() now matches Python: the i-variants could all be native"
    touching_ascii = [(hex(i), low) for i, low in bad
                      if any(ord(ch) < 128 for ch in chr(i).lower() + low)]
    assert touching_ascii == []


# -- StoreMeta tells the truth -------------------------------------------------------------
SAMPLES = {
    "eq": ("title", "a%b_c\\d"), "ne": ("title", "x"), "lt": ("n", 3), "lte": ("n", 3),
    "gt": ("title", "b"), "gte": ("title", "b"), "in": ("n", [1, 2]),
    "not_in": ("title", ["a", "b"]), "contains": ("title", "50%_"),
    "icontains": ("title", "MiLk"), "startswith": ("title", "a_"),
    "istartswith": ("title", "AB"), "endswith": ("title", "\\"),
    "iendswith": ("title", "Z"), "iexact": ("title", "Hello"), "isnull": ("title", False),
    "range": ("n", (1, 5)),
}


def _sql_of(store, where) -> tuple[str, bool]:  # type: ignore[no-untyped-def]
    backend = store._b
    node = build_filter(meta_of(Doc), where, None, {})
    split = backend.split(node)
    sql, _ = backend.core.where_sql("select", split.native)
    return sql[0], split.all_native


def test_every_declared_native_operator_runs_on_the_server(server: str, url: str) -> None:
    with open_store(Doc, url) as s:
        assert s.meta.native_ops == frozenset(SAMPLES)
        for op in s.meta.native_ops:
            name, value = SAMPLES[op]
            sql, all_native = _sql_of(s, Q(**{f"{name}__{op}": value}))
            assert all_native, op
            assert f"{name} " in sql.split("WHERE", 1)[1] or f"({name}" in sql or \
                f"(doc.{name}" in sql or f"doc.{name}" in sql, (op, sql)
        # the i-variants fold the column on the server, the needle in Python
        sql, _ = _sql_of(s, Q(title__icontains="MiLk"))
        assert "lower(" in sql.lower() and "like" in sql.lower()
        if server == "postgres":
            assert 'COLLATE "und-x-icu"' in sql
        # and the results are those of local evaluation
        for t in ["milk", "MILK shake", "silk", "a%b_c\\d", "Hello", "hello!", "ab", "a_b", "z\\"]:
            s.create(Doc(id=t, title=t, tag=t))
        for op, (name, value) in SAMPLES.items():
            where = Q(**{f"{name}__{op}": value})
            from storeroom import matches
            want = sorted(d.id for d in s.search_all() if matches(where, d))
            assert sorted(d.id for d in s.search_all(where)) == want, op


def test_declined_values_are_evaluated_locally(server: str, url: str) -> None:
    with open_store(Doc, url) as s:
        for t in ["ÉCOLE", "école", "İ", "i̇x", "ΑΣ", "ας", "plain"]:
            s.create(Doc(id=t, title=t, tag=t))
        cases = {"école": ["ÉCOLE", "école"], "σ": [], "ς": ["ΑΣ", "ας"], "i̇": ["İ", "i̇x"]}
        for needle, want in cases.items():
            where = Q(title__icontains=needle)
            _, native = _sql_of(s, where)
            assert native is (server == "postgres"), needle  # MySQL: non-ASCII needle
            assert sorted(d.id for d in s.search_all(where)) == sorted(want), needle
        if server == "postgres":
            _, native = _sql_of(s, Q(title="a\x00"))
            assert not native
            assert s.count(title="a\x00") == 0 and s.count(title__ne="a\x00") == 7
        else:
            _, native = _sql_of(s, Q(dec__gt=Decimal("1")))
            assert not native  # decimals are stored as exact text on MySQL


def test_no_padding_or_case_folding_leaks(server: str, url: str) -> None:
    with open_store(Doc, url) as s:
        s.create(Doc(id="a", title="a", tag="a"))
        s.create(Doc(id="a ", title="a ", tag="a "))  # distinct keys and unique values
        s.create(Doc(id="A", title="A", tag="A"))
        assert s.read("a ").title == "a "
        assert [d.id for d in s.search_all(title="a")] == ["a"]
        assert [d.id for d in s.search_all(title="a ")] == ["a "]
        assert [d.id for d in s.search_all(title__startswith="a")] == ["a", "a "]
        assert [d.id for d in s.search_all(order_by="title")] == ["A", "a", "a "]
        assert s.count(title__gt="a") == 1
        assert s.count(title__iexact="A") == 2


# -- values ------------------------------------------------------------------------------
def test_pg_refuses_nul_in_text(url: str, server: str) -> None:
    with open_store(Doc, url) as s:
        if server == "mysql":
            s.create(Doc(id="x", title="a\x00b", tag="t"))
            assert s.read("x").title == "a\x00b"
            return
        with pytest.raises(ValidationError) as exc:
            s.create(Doc(id="x", title="a\x00b", tag="t"))
        assert exc.value.errors[0]["field"] == "title"
        assert exc.value.errors[0]["rule"] == "nul"
        with pytest.raises(ValidationError):
            s.create(Doc(id="y", extra={"k": "\x00"}))
        s.create(Doc(id="z", extra={"k": "\\u0000"}))  # a backslash, not a NUL
        assert s.read("z").extra == {"k": "\\u0000"}
        assert s.read("x") is None


def test_values_round_trip(url: str) -> None:
    with open_store(Doc, url) as s:
        d = s.create(Doc(id="1", title="", dec=Decimal("1.10"), raw=b"", n=2**63 - 1,
                         extra={"a": [1, {"b": None}]}))
        got = s.read("1")
        assert got == d and str(got.dec) == "1.10" and got.raw == b""


def test_unique_violation_is_conflict_and_batches_are_one_statement(url: str) -> None:
    from storeroom import Conflict, Create
    with open_store(Doc, url) as s:
        s.create(Doc(id="1", tag="t"))
        with pytest.raises(Conflict):
            s.create(Doc(id="2", tag="t"))
        res = s.edit_batch([Create(Doc(id=str(i), tag=f"u{i}")) for i in range(10, 210)])
        assert all(r.ok for r in res) and s.count() == 201
        res = s.edit_batch([Create(Doc(id="x1", tag="v1")), Create(Doc(id="x2", tag="t"))])
        assert [r.ok for r in res] == [True, False] and res[1].code == "duplicate_key"


# -- connection loss -----------------------------------------------------------------------
def _kill(server: str, marker: str) -> int:
    """Kill, on the server, every connection of the test namespace ``marker``."""
    import psycopg
    import pymysql
    parts = urlsplit(testing.base_url(server))
    if server == "postgres":
        with psycopg.connect(urlunsplit(("postgresql", parts.netloc, parts.path, "", "")),
                             autocommit=True) as conn:
            rows = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE application_name = %s", (marker,)).fetchall()
            return len(rows)
    conn = pymysql.connect(host=parts.hostname, port=parts.port, user=parts.username or "root",
                           password=parts.password or "", autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM information_schema.processlist WHERE db = %s", (marker,))
            ids = [r[0] for r in cur.fetchall()]
            for i in ids:
                cur.execute(f"KILL {int(i)}")
            return len(ids)
    finally:
        conn.close()


def _marked(server: str, url: str) -> tuple[str, str]:
    if server == "postgres":
        marker = f"sr_{uuid.uuid4().hex[:12]}"
        return url + f"&application_name={marker}", marker
    return url, urlsplit(url).path.strip("/")


def test_killed_connection_gives_clear_error_then_recovers(server: str, url: str) -> None:
    url, marker = _marked(server, url)
    with open_store(Doc, url) as s:
        s.create(Doc(id="1"))
        assert _kill(server, marker) >= 1
        try:
            s.read("1")  # a clear error, or a transparent reconnect
        except BackendError as exc:
            assert "connection" in str(exc).lower()
        assert s.read("1") is not None
        s.create(Doc(id="2", tag="2"))
        assert s.count() == 2


async def test_killed_connection_async(server: str, url: str) -> None:
    url, marker = _marked(server, url)
    async with open_async_store(Doc, url) as s:
        await s.create(Doc(id="1"))
        assert await asyncio.to_thread(_kill, server, marker) >= 1
        try:
            await s.read("1")
        except BackendError as exc:
            assert "connection" in str(exc).lower()
        assert await s.read("1") is not None
        assert await s.count() == 1


# -- URLs and engines ----------------------------------------------------------------------
def test_url_spellings(server: str, url: str) -> None:
    alias = {"postgres": ("postgresql://", "postgres://"),
             "mysql": ("mysql://", "mariadb://")}[server]
    with open_store(Doc, url.replace(*alias, 1)) as s:
        s.create(Doc(id="1"))
        assert s.meta.backend == ("postgresql" if server == "postgres" else "mysql")
    with open_store(Doc, url) as s:
        assert s.read("1") is not None


async def test_engines_for_the_context_layer(server: str, url: str) -> None:
    from storeroom.backends.sql import create_sql_engine
    engine = create_sql_engine(url, is_async=False)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    engine.dispose()
    aengine = create_sql_engine(url, is_async=True)
    async with aengine.connect() as conn:
        assert (await conn.exec_driver_sql("SELECT 1")).scalar() == 1
    await aengine.dispose()

"""The safe's per-connection read cache: hits, invalidation by other connections and
processes, the same connection's own writes, transactions, aliasing, and a bounded race."""

from __future__ import annotations

import multiprocessing as mp
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from storeroom.safe import Safe
from tests.safe.conftest import child_env


def _cache(safe: Safe) -> dict[str, Any]:
    return safe._local.state.cache  # type: ignore[no-any-return]


def test_a_read_is_cached_and_served_without_sql(safe: Safe) -> None:
    safe["k"] = {"a": [1]}
    assert safe["k"] == {"a": [1]}
    assert "k" in _cache(safe)
    # a hit runs no statement: a broken cursor would show otherwise
    st = safe._local.state
    real, st.cur = st.cur, None
    try:
        assert safe["k"] == {"a": [1]}
        assert safe.get("k") == {"a": [1]}
    finally:
        st.cur = real


def test_a_write_by_another_process_is_seen_by_the_next_get(safe: Safe) -> None:
    safe["k"] = "old"
    assert safe["k"] == "old"
    assert "k" in _cache(safe)
    code = "import sys; from storeroom.safe import Safe; Safe(sys.argv[1])['k'] = 'new'"
    subprocess.run([sys.executable, "-c", code, safe.path], check=True, env=child_env(),
                   timeout=60)
    assert safe["k"] == "new"
    assert safe.get("k") == "new"


def test_a_forked_child_write_is_seen_and_the_child_does_not_use_the_parents_cache(
    safe: Safe,
) -> None:
    safe["k"] = 1
    assert safe["k"] == 1
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_bump, args=(safe, q))
    p.start()
    p.join(60)
    assert p.exitcode == 0
    assert q.get(timeout=10) == 1  # the child read the file, not a stale copy
    assert safe["k"] == 2


def _child_bump(safe: Safe, q: Any) -> None:
    q.put(safe["k"])
    safe["k"] = safe["k"] + 1


def test_a_write_on_another_thread_is_seen(safe: Safe) -> None:
    safe["k"] = "old"
    assert safe["k"] == "old"
    t = threading.Thread(target=lambda: safe.__setitem__("k", "new"))
    t.start()
    t.join()
    assert safe["k"] == "new"


def test_own_writes_update_the_cache_and_keep_it(safe: Safe) -> None:
    safe["a"] = 1
    safe["b"] = 2
    assert safe["a"] == 1 and safe["b"] == 2
    safe["a"] = 10  # own commit: "b" stays cached, "a" follows the write
    assert safe["a"] == 10
    assert safe["b"] == 2 and "b" in _cache(safe)
    del safe["a"]
    assert "a" not in safe and safe.get("a") is None
    with pytest.raises(KeyError):
        safe["a"]
    safe["a"] = 3
    assert safe.pop("a") == 3
    assert safe.get("a", "gone") == "gone"
    safe.update(b=20)
    assert safe["b"] == 20
    assert safe.setdefault("c", 5) == 5 and safe["c"] == 5
    safe.clear()
    assert safe.get("b") is None and safe.get("c") is None


def test_returned_values_are_never_aliases_of_the_cache(safe: Safe) -> None:
    value = {"tags": ["x"]}
    safe["k"] = value
    value["tags"].append("changed after set")
    got = safe["k"]
    assert got == {"tags": ["x"]}
    got["tags"].append("changed after get")
    assert safe["k"] == {"tags": ["x"]}
    assert safe.get("k") is not safe.get("k")


def test_a_rolled_back_transaction_leaves_the_cached_value(safe: Safe) -> None:
    safe["k"] = "committed"
    assert safe["k"] == "committed"
    with pytest.raises(RuntimeError), safe.transaction() as t:
        t["k"] = "rolled back"
        assert t["k"] == "rolled back"
        assert safe["k"] == "rolled back"  # the same thread joins the transaction
        raise RuntimeError
    assert safe["k"] == "committed"
    with safe.transaction() as t:
        t["k"] = "second"
    assert safe["k"] == "second"


def _writer(path: str, n: int) -> None:
    safe = Safe(path, durability="normal")
    for i in range(1, n + 1):
        safe["counter"] = i
        safe[f"other{i % 7}"] = i


def test_race_a_reader_never_goes_back_and_ends_at_the_last_write(tmp_path: Path) -> None:
    """Bounded: another process writes an increasing counter (a few hundred commits) while
    this one reads it in a loop; every read must be at least the previous one (a stale
    cache entry would go back or stall), and the read after the writer ends is the last."""
    path = str(tmp_path / "race.db")
    safe = Safe(path, durability="normal")
    safe["counter"] = 0
    n = 400
    p = mp.get_context("spawn").Process(target=_writer, args=(path, n))
    p.start()
    last, reads, deadline = 0, 0, time.monotonic() + 30
    while p.is_alive() and time.monotonic() < deadline:
        v = safe["counter"]
        assert v >= last
        last, reads = v, reads + 1
    p.join(30)
    assert p.exitcode == 0
    assert safe["counter"] == n
    assert safe.get("other0") == max(i for i in range(1, n + 1) if i % 7 == 0)
    assert reads > 0
    safe.close()

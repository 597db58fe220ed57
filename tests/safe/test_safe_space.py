"""The free-space floor: writes refuse before writing, reads keep working."""

from __future__ import annotations

from pathlib import Path

import pytest

from storeroom.safe import DiskFullError, Safe, SafeError


def test_writes_raise_reads_work(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Safe(path) as ok:
        ok.update(a=1, b=2)
    full = Safe(path, min_free_bytes=10**18)
    assert full.min_free_bytes == 10**18
    writes = [
        lambda: full.__setitem__("c", 3),
        lambda: full.__delitem__("a"),
        lambda: full.update(c=3),
        lambda: full.pop("a"),
        lambda: full.popitem(),
        lambda: full.setdefault("c", 3),
        lambda: full.clear(),
    ]
    for write in writes:
        with pytest.raises(DiskFullError, match="min_free_bytes"):
            write()
    with pytest.raises(DiskFullError):
        with full.transaction() as t:
            t["c"] = 3
    assert isinstance(DiskFullError("x"), SafeError)
    # reads keep working, and nothing was written
    assert dict(full) == {"a": 1, "b": 2}
    assert full["a"] == 1 and full.get("c") is None and len(full) == 2 and "b" in full
    full.close()


def test_zero_floor_disables_the_check(tmp_path: Path) -> None:
    with Safe(tmp_path / "s.db", min_free_bytes=0) as s:
        s["a"] = 1
        assert s["a"] == 1

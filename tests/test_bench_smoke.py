"""Smoke test of ``bench/sqlite_bench.py``: tiny tables, so that the harness cannot rot.

In this process, raw sqlite3, the mapper and both storeroom stores run every workload and
every peer runs two (reads and creates: its set-up, its objects, its generated keys), and
all must agree on every checksum; Django (configurable once per process) runs in one short
end-to-end run of the command, which checks the fresh-process path and the JSON it writes.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "sqlite_bench.py"
ROWS = 60

for mod in ("sqlalchemy", "pony", "peewee", "tortoise", "django"):
    pytest.importorskip(mod)


@pytest.fixture(scope="module")
def bench() -> Any:
    spec = importlib.util.spec_from_file_location("sqlite_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["sqlite_bench"] = module  # Tortoise finds its models by module name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("sqlite_bench", None)


def test_every_library_agrees_on_every_workload(bench: Any, tmp_path: Path) -> None:
    seed = tmp_path / "seed.sqlite"
    bench.seed(str(seed), ROWS)
    everything = ["raw", "mapper", "storeroom", "storeroom-async"]
    peers = [k for k in bench.LIBS if k not in everything and k != "django"]
    for wl in bench.WL_NAMES:
        seen = {}
        for key in everything + (peers if wl in ("get", "create_tx") else []):
            path = tmp_path / f"{key}-{wl}.sqlite"
            shutil.copy(seed, path)
            m = bench.measure(key, wl, str(path), ROWS, True, collect=False)
            assert m["seconds_per_op"] > 0 and m["ops"] > 0
            seen[key] = (m["result"], m["table"])
            os.remove(path)
        assert len(set(seen.values())) == 1, (wl, seen)
        if wl in ("get", "page", "iterate", "count", "create_tx"):
            assert seen["raw"][0] is not None  # the results themselves are compared


def test_a_library_that_does_less_is_caught(bench: Any, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    class Lazy(bench.Raw):  # type: ignore[name-defined,misc]
        def update(self, k: int) -> None:
            if k % 2:
                super().update(k)

        def page(self, who: str) -> list[Any]:
            return list(super().page(who)[:-1])

    monkeypatch.setitem(bench.LIBS, "lazy", Lazy)
    seed = tmp_path / "seed.sqlite"
    bench.seed(str(seed), ROWS)
    for wl, field in (("update", "table"), ("page", "result")):
        got = {}
        for key in ("raw", "lazy"):
            path = tmp_path / f"{key}-{wl}.sqlite"
            shutil.copy(seed, path)
            got[key] = bench.measure(key, wl, str(path), ROWS, True, collect=False)[field]
        assert got["raw"] != got["lazy"], wl


def test_the_command_writes_the_run_as_json(bench: Any, tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    doc = bench.main(["--quick", "--rows", str(ROWS), "--only", "raw,storeroom,django",
                      "--workloads", "create_tx", "--json", str(out)])
    on_disk = json.loads(out.read_text())
    assert on_disk["checksums_ok"] is True and on_disk["mismatches"] == []
    assert doc is not None and doc["checksums_ok"] is True
    assert set(on_disk["libraries"]) == {"raw", "storeroom", "django"}
    assert set(on_disk["ops_per_second"]) == {"create_tx"}
    for wl in ("create_tx",):
        assert set(on_disk["ops_per_second"][wl]) == {"raw", "storeroom", "django"}
        assert all(v > 0 for v in on_disk["ops_per_second"][wl].values())
        row = on_disk["summary"]["per_workload"][wl]
        assert row["best_orm"] == "django"
        assert row["storeroom_vs_best_orm"] > 0
        assert row["ratio_to_raw"]["raw"] == 1.0
    assert on_disk["summary"]["geomean_ratio_to_raw"]["storeroom"] > 0
    assert {m["lib"] for m in on_disk["runs"]} == {"raw", "storeroom", "django"}
    assert on_disk["settings"]["synchronous"] == "NORMAL"
    assert on_disk["versions"]["sqlite"]

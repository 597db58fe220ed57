"""Smoke test of ``bench/relations_bench.py`` on tiny SQLite tables, so that the harness
cannot rot: in this process, the raw driver, SQLAlchemy and every storeroom variant run
every workload they support (the cells not in ``SKIP``) and agree on every checksum; an
error in a cell fails it; Django, configurable once per process, runs
in one short end-to-end run of the command (fresh processes, the JSON it writes)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "relations_bench.py"
SIZE = (6, 3)

for mod in ("sqlalchemy", "django"):
    pytest.importorskip(mod)


@pytest.fixture(scope="module")
def bench() -> Any:
    spec = importlib.util.spec_from_file_location("relations_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["relations_bench"] = module  # the models' annotations resolve in it
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("relations_bench", None)


@pytest.fixture(scope="module")
def seed(bench: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("relbench") / "seed.sqlite"
    bench.seed_sqlite(str(path), *SIZE)
    return path


def _run(bench: Any, key: str, wl: str, seed: Path, tmp: Path) -> dict[str, Any]:
    path = tmp / f"{key}-{wl}.sqlite"
    shutil.copy(seed, path)
    return dict(bench.measure(key, wl, {"kind": "sqlite", "path": str(path)}, *SIZE, True,
                              collect=False))


@pytest.mark.parametrize("wl", ["prefetch", "select", "lazy", "page"])
def test_every_library_loads_the_same_graph(bench: Any, seed: Path, tmp_path: Path,
                                            wl: str) -> None:
    seen = {}
    for key in ("raw", "sqla-orm", *bench.OURS):
        if wl in bench.SKIP.get(key, ()):
            continue
        m = _run(bench, key, wl, seed, tmp_path)
        assert m["seconds_per_op"] > 0 and m["ops"] > 0
        seen[key] = m["result"]
    assert {"raw", "sqla-orm", "storeroom"} <= set(seen)
    assert len(set(seen.values())) == 1, (wl, seen)


def test_a_library_that_loads_less_is_caught(bench: Any, seed: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    class Lazy(bench.Raw):  # type: ignore[name-defined,misc]
        def prefetch(self) -> Any:
            return [(p, kids[:-1]) for p, kids in super().prefetch()]

    monkeypatch.setitem(bench.LIBS, "lazy", Lazy)
    got = {key: _run(bench, key, "prefetch", seed, tmp_path)["result"]
           for key in ("raw", "lazy")}
    assert got["raw"] != got["lazy"]


def test_the_command_writes_the_run_as_json(bench: Any, tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    doc = bench.main(["--quick", "--sizes", "4x2", "--backends", "sqlite", "--only",
                      "django", "--workloads", "page", "--json", str(out)])
    on_disk = json.loads(out.read_text())
    assert doc is not None and on_disk["checksums_ok"] is True
    cell = on_disk["ops_per_second"]["sqlite 4x2 page"]
    assert set(cell) == {"django"} and all(v > 0 for v in cell.values())
    row = on_disk["summary"]["sqlite 4x2 page"]
    assert row["faster_peer"] == "django" and row["speed_vs_faster_peer"] == {}
    assert [m["lib"] for m in on_disk["runs"]] == ["django"]
    assert on_disk["versions"]["Django"] != "not installed"


def test_an_error_in_a_cell_fails_it_and_skipped_cells_are_refused(
        bench: Any, seed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A storeroom variant that raises (``TypeError`` included: it used to be taken for a
    missing API and reported "unavailable") fails the measurement; a cell listed as not
    supported is never measured."""
    class Broken(bench.Storeroom):  # type: ignore[name-defined,misc]
        def prefetch(self) -> Any:
            raise TypeError("a bug in storeroom")

    monkeypatch.setitem(bench.LIBS, "storeroom", Broken)
    with pytest.raises(TypeError, match="a bug in storeroom"):
        _run(bench, "storeroom", "prefetch", seed, tmp_path)
    with pytest.raises(ValueError, match="does not support"):
        _run(bench, "storeroom-load", "lazy", seed, tmp_path)

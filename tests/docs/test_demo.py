"""``./scripts/demo`` runs to the end and shows what it promises."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_demo(*args: str, tmp_path: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "STOREROOM_SECRET"}
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "demo"), *args], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.parametrize("args", [(), ("memory://",)], ids=["sqlite", "memory"])
def test_demo_tours_a_store_a_data_manager_and_the_safe(args: tuple[str, ...],
                                                         tmp_path: Path) -> None:
    out = run_demo(*args, tmp_path=tmp_path)
    # the store tour, on the URL given (a throwaway SQLite file by default)
    assert ("sqlite:///" if not args else "memory://") in out.splitlines()[0]
    for section in range(2, 13):               # (1, the model, is the code itself)
        assert f"=== {section}. " in out, section
    assert "Update FAILED code=missing_key" in out
    assert "BatchError:" in out
    # the DataManager: a service through the DAL, the user of the meta, a rollback,
    # a savepoint and on_commit, each step's code beside its result
    assert "ctx.dal.tasks.add('Buy milk')" in out
    assert "-> ('ann', ['Buy milk', 'Call the bank'])" in out
    assert "mine" in out and "-> ['Buy milk', 'Call the bank']" in out   # 'Never saved' rolled back
    assert "Never saved'" in out and "-> ['Never saved'" not in out
    assert "-> (['Fix the bike'], [])" in out                            # savepoint undone
    assert "-> ['mail: Fix the bike']" in out                            # after the commit
    # the module safe
    assert "-> 'demo.db'" in out
    assert "the failed transaction left nothing  -> 1" in out
    assert "-> ['runs', 'settings']" in out
    assert out.rstrip().endswith("are gone now.")
    # nothing left behind in the working directory
    assert list(tmp_path.iterdir()) == []

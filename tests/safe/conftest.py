"""Fixtures of the safe's tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from storeroom.safe import Safe

REPO = Path(__file__).resolve().parents[2]


def child_env(**extra: str) -> dict[str, str]:
    """Environment for a child Python that must import this checkout's ``storeroom``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


@pytest.fixture
def safe(tmp_path: Path) -> Iterator[Safe]:
    """A fresh safe file in ``tmp_path``."""
    s = Safe(tmp_path / "test.db")
    yield s
    s.close()


@pytest.fixture
def safe_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ``STOREROOM_SAFE_DIR`` at a fresh directory."""
    d = tmp_path / "safes"
    monkeypatch.setenv("STOREROOM_SAFE_DIR", str(d))
    return d

"""``python -m storeroom.safe list|get|set|del``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from storeroom.safe import Safe

from .conftest import child_env


def cli(*args: str, safe_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "storeroom.safe", *args],
        capture_output=True,
        text=True,
        env=child_env(STOREROOM_SAFE_DIR=str(safe_dir)),
        timeout=60,
        cwd=safe_dir.parent,
    )


def test_cli_by_path(tmp_path: Path) -> None:
    path = str(tmp_path / "c.db")
    with Safe(path) as safe:
        safe["num"] = 5
        safe["text"] = "hello"
    d = tmp_path / "unused"
    r = cli("set", path, "new", "a value", safe_dir=d)
    assert r.returncode == 0, r.stderr
    assert cli("list", path, safe_dir=d).stdout.splitlines() == ["new", "num", "text"]
    assert cli("get", path, "num", safe_dir=d).stdout == "5\n"
    assert cli("get", path, "text", safe_dir=d).stdout == "hello\n"
    r = cli("get", path, "nope", safe_dir=d)
    assert r.returncode == 1 and "no such key" in r.stderr
    assert cli("del", path, "num", safe_dir=d).returncode == 0
    assert cli("del", path, "num", safe_dir=d).returncode == 1
    with Safe(path) as safe:
        assert dict(safe) == {"new": "a value", "text": "hello"}


def test_cli_by_module_name(tmp_path: Path) -> None:
    d = tmp_path / "safes"
    assert cli("list", "my.module", safe_dir=d).returncode == 2  # no such safe yet
    assert cli("set", "my.module", "k", "v", safe_dir=d).returncode == 0
    assert (d / "my.module.db").exists()
    assert cli("get", "my.module", "k", safe_dir=d).stdout == "v\n"
    assert cli("list", "my.module", safe_dir=d).stdout == "k\n"


def test_cli_usage_errors(tmp_path: Path) -> None:
    d = tmp_path / "safes"
    assert cli("bogus", "x", safe_dir=d).returncode == 2
    assert cli("get", "x", safe_dir=d).returncode == 2
    assert cli("set", "bad name", "k", "v", safe_dir=d).returncode == 2

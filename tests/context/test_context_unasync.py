"""The generated sync twin of the context layer is current."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sync_twin_is_generated_from_async() -> None:
    spec = importlib.util.spec_from_file_location("unasync", ROOT / "scripts" / "unasync.py")
    assert spec is not None and spec.loader is not None
    unasync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(unasync)
    src_dir = ROOT / "storeroom" / "context" / "_async"
    sources = sorted(src_dir.glob("*.py"))
    assert sources
    for src in sources:
        dst = src_dir.with_name("_sync") / src.name
        assert dst.read_text() == unasync.transform(src.read_text()), f"stale: {dst}"
        assert "IS_ASYNC = True" not in dst.read_text()

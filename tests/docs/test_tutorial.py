"""docs/tutorial.md runs: its python blocks, in order, as one program, in a temp dir.

Run on SQLite (the URLs the page shows) and on memory (the same URLs swapped for named
memory databases), so a change of behaviour or of a name the tutorial uses fails here.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).resolve().parents[2] / "docs" / "tutorial.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
MEMORY = {"sqlite:///tasks.db": "memory://tutorial-tasks", "sqlite:///app.db": "memory://tutorial-app"}


def python_blocks(text: str) -> list[str]:
    """The ```python blocks of a markdown page, in order."""
    return BLOCK.findall(text)


def test_the_tutorial_has_the_promised_steps() -> None:
    text = TUTORIAL.read_text(encoding="utf-8")
    blocks = python_blocks(text)
    assert len(blocks) >= 10
    code = "\n".join(blocks)
    for needle in ("@stored", "open_store(", "edit_batch(", "open_async_store(", "DataManager()",
                   "dm.context(", "ctx.savepoint()", "ctx.on_commit(", "module_safe()"):
        assert needle in code, needle


@pytest.mark.parametrize("backend", ["sqlite", "memory"])
def test_tutorial_blocks_run_in_order(backend: str, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STOREROOM_SAFE_DIR", str(tmp_path / "safe"))
    monkeypatch.delenv("STOREROOM_SECRET", raising=False)
    module = type(sys)("tutorial")           # module_safe() names the safe after __name__
    monkeypatch.setitem(sys.modules, "tutorial", module)
    namespace = module.__dict__
    for i, block in enumerate(python_blocks(TUTORIAL.read_text(encoding="utf-8"))):
        if backend == "memory":
            for old, new in MEMORY.items():
                block = block.replace(old, new)
        code = compile(block, f"{TUTORIAL}:block{i + 1}", "exec")
        exec(code, namespace)  # noqa: S102 - the documentation's own code
    if backend == "sqlite":
        assert (tmp_path / "tasks.db").exists() and (tmp_path / "app.db").exists()
    assert (tmp_path / "safe" / "tutorial.db").exists()


@pytest.mark.parametrize("page", ["README.md", "docs/index.md"])
def test_the_landing_page_example_runs(page: str, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    text = (TUTORIAL.parents[1] / page).read_text(encoding="utf-8")
    [example] = python_blocks(text)
    module = type(sys)("readme")              # dataclasses look their module up
    monkeypatch.setitem(sys.modules, "readme", module)
    exec(compile(example, f"{page}:example", "exec"), module.__dict__)  # noqa: S102
    # the output the page shows in its comments
    assert "[None, None, 'missing_key']" in capsys.readouterr().out
    assert (tmp_path / "app.db").exists()

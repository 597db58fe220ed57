"""Keys are text: a ``str`` holding a lone surrogate is refused everywhere, naming the key."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from storeroom.errors import ValidationError
from storeroom.safe import Safe, SafeError

from .conftest import child_env

BAD_KEYS = ["\ud800", "a\udfffb", "\udcff", "ключ\ud83d"]


def _key_ops(m: Any, key: str) -> list[Callable[[], object]]:
    return [
        lambda: m.__setitem__(key, 1),
        lambda: m[key],
        lambda: m.get(key),
        lambda: m.get(key, 0),
        lambda: m.__delitem__(key),
        lambda: key in m,
        lambda: m.pop(key),
        lambda: m.pop(key, None),
        lambda: m.setdefault(key, 1),
        lambda: m.update({key: 1}),
        lambda: m.update([("fine", 1), (key, 2)]),
        lambda: m.update(**{key: 1}),
    ]


def _refused(op: Callable[[], object], key: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(repr(key))) as info:
        op()
    assert isinstance(info.value, ValueError)
    assert info.value.errors[0]["rule"] == "unicode"
    assert "surrogate" in str(info.value)


@pytest.mark.parametrize("key", BAD_KEYS)
def test_lone_surrogate_keys_are_refused(safe: Safe, key: str) -> None:
    safe["fine"] = 0
    for op in _key_ops(safe, key):
        _refused(op, key)
    assert dict(safe) == {"fine": 0}  # nothing written, not even by update's valid pair


@pytest.mark.parametrize("key", BAD_KEYS)
def test_lone_surrogate_keys_are_refused_in_transactions(safe: Safe, key: str) -> None:
    with safe.transaction() as t:
        t["a"] = 1
        for op in _key_ops(t, key):
            _refused(op, key)
        t["b"] = 2  # still usable
    assert dict(safe) == {"a": 1, "b": 2}


def test_str_subclass_with_a_surrogate_is_refused(safe: Safe) -> None:
    class S(str):
        pass

    _refused(lambda: safe.__setitem__(S("x\ud800"), 1), "x\ud800")
    assert len(safe) == 0


def test_surrogates_inside_values_are_fine(safe: Safe) -> None:
    safe["k"] = "\ud800 and \udcff"
    safe["ключ ✓"] = ["\udfff"]
    assert safe["k"] == "\ud800 and \udcff" and safe["ключ ✓"] == ["\udfff"]


def _cli(*args: str | bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "storeroom.safe", *args],
        capture_output=True,
        env=child_env(),
        timeout=60,
    )


def test_cli_refuses_a_key_that_is_not_text(tmp_path: Path) -> None:
    path = str(tmp_path / "c.db")
    with Safe(path) as safe:
        safe["k"] = 1
    # Bytes that are not UTF-8 reach Python as lone surrogates (surrogateescape).
    for args in (("get", path, b"\xff"), ("set", path, b"x\xff", "v"), ("del", path, b"\xff")):
        r = _cli(*args)
        assert r.returncode == 2, r
        assert b"surrogate" in r.stderr and b"Traceback" not in r.stderr
    with Safe(path) as safe:
        assert dict(safe) == {"k": 1}


def test_cli_prints_a_value_holding_a_surrogate(tmp_path: Path) -> None:
    path = str(tmp_path / "c.db")
    assert _cli("set", path, "k", b"caf\xff").returncode == 0
    with Safe(path) as safe:
        assert safe["k"] == "caf\udcff"
    r = _cli("get", path, "k")
    # the original bytes where stdout escapes surrogates (UTF-8 mode), else an escape
    assert r.returncode == 0 and r.stdout in (b"caf\xff\n", b"caf\\udcff\n"), r
    with Safe(path) as safe:
        safe["k2"] = "x\ud800"  # not a byte argv could have carried: always escaped
    r = _cli("get", path, "k2")
    assert r.returncode == 0 and r.stdout == b"x\\ud800\n", r


def test_safe_error_is_not_raised_for_keys(safe: Safe) -> None:
    with pytest.raises(ValidationError) as info:
        safe["\ud800"] = 1
    assert not isinstance(info.value, SafeError)  # bad input, not a damaged safe

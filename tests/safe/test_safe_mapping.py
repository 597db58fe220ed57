"""The mapping API of a safe: every method, keys, values, None vs missing."""

from __future__ import annotations

from collections.abc import MutableMapping
from decimal import Decimal

import pytest

from storeroom.errors import StoreroomError
from storeroom.safe import Safe, SafeError, UnpicklableError


def test_is_a_mutable_mapping(safe: Safe) -> None:
    assert isinstance(safe, MutableMapping)


def test_round_trip_exact(safe: Safe) -> None:
    value = {(None,): [1, "bar", Decimal("1.0")]}
    safe["foo"] = value
    got = safe["foo"]
    assert got == value
    assert type(got[(None,)][2]) is Decimal and str(got[(None,)][2]) == "1.0"
    assert got is not value


def test_getitem_and_get(safe: Safe) -> None:
    with pytest.raises(KeyError):
        safe["missing"]
    assert safe.get("missing") is None
    assert safe.get("missing", 42) == 42
    safe["a"] = 1
    assert safe["a"] == 1
    assert safe.get("a", 42) == 1


def test_none_is_not_missing(safe: Safe) -> None:
    safe["n"] = None
    assert "n" in safe
    assert safe["n"] is None
    assert safe.get("n", "default") is None
    assert safe.pop("n", "default") is None
    assert "n" not in safe
    assert safe.get("n", "default") == "default"


def test_overwrite_and_delete(safe: Safe) -> None:
    safe["a"] = 1
    safe["a"] = 2
    assert safe["a"] == 2
    del safe["a"]
    assert "a" not in safe
    with pytest.raises(KeyError):
        del safe["a"]


def test_len_iter_keys_values_items(safe: Safe) -> None:
    assert len(safe) == 0 and list(safe) == []
    for k, v in {"b": 2, "a": 1, "c": [3]}.items():
        safe[k] = v
    assert len(safe) == 3
    assert list(safe) == ["a", "b", "c"]  # sorted
    assert list(safe.keys()) == ["a", "b", "c"]
    assert safe.keys() == {"a", "b", "c"}
    assert list(safe.values()) == [1, 2, [3]]
    assert list(safe.items()) == [("a", 1), ("b", 2), ("c", [3])]
    assert ("a", 1) in safe.items() and ("a", 2) not in safe.items()
    assert dict(safe) == {"a": 1, "b": 2, "c": [3]}
    assert len(safe.items()) == 3


def test_iteration_is_a_snapshot(safe: Safe) -> None:
    safe.update(a=1, b=2)
    for key in safe:
        del safe[key]
    assert len(safe) == 0


def test_pop(safe: Safe) -> None:
    safe["a"] = [1]
    assert safe.pop("a") == [1]
    assert "a" not in safe
    assert safe.pop("a", "d") == "d"
    with pytest.raises(KeyError):
        safe.pop("a")


def test_popitem(safe: Safe) -> None:
    safe.update(b=2, a=1)
    assert safe.popitem() == ("a", 1)
    assert safe.popitem() == ("b", 2)
    with pytest.raises(KeyError):
        safe.popitem()


def test_setdefault(safe: Safe) -> None:
    assert safe.setdefault("a", [1]) == [1]
    assert safe.setdefault("a", [2]) == [1]
    assert safe["a"] == [1]
    assert safe.setdefault("n") is None
    assert "n" in safe


def test_update_forms(safe: Safe) -> None:
    safe.update({"a": 1})
    safe.update([("b", 2)])
    safe.update(c=3)
    safe.update({"d": 4}, e=5)

    class KeysOnly:
        def keys(self) -> list[str]:
            return ["f"]

        def __getitem__(self, k: str) -> int:
            return 6

    safe.update(KeysOnly())
    safe.update()
    assert dict(safe) == {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6}


def test_update_is_all_or_nothing(safe: Safe) -> None:
    with pytest.raises(UnpicklableError):
        safe.update({"a": 1, "b": lambda: 0})
    with pytest.raises(TypeError):
        safe.update({"a": 1, 2: 2})  # type: ignore[dict-item]
    assert len(safe) == 0


def test_clear(safe: Safe) -> None:
    safe.update(a=1, b=2)
    safe.clear()
    assert len(safe) == 0
    safe.clear()


@pytest.mark.parametrize("key", [1, 1.5, b"bytes", None, ("t",)])
def test_non_str_keys_raise_type_error(safe: Safe, key: object) -> None:
    for op in (
        lambda: safe.__setitem__(key, 1),
        lambda: safe[key],
        lambda: safe.get(key),
        lambda: safe.__delitem__(key),
        lambda: key in safe,
        lambda: safe.pop(key, None),
        lambda: safe.setdefault(key, 1),
    ):
        with pytest.raises(TypeError, match=type(key).__name__):
            op()
    assert len(safe) == 0


def test_str_subclass_key_is_a_str(safe: Safe) -> None:
    class S(str):
        pass

    safe[S("k")] = 1
    assert safe["k"] == 1 and list(safe) == ["k"] and type(list(safe)[0]) is str


def test_unpicklable_value_writes_nothing(safe: Safe) -> None:
    safe["a"] = 1
    with pytest.raises(UnpicklableError, match="function") as info:
        safe["a"] = lambda: 0
    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, SafeError) and isinstance(info.value, StoreroomError)
    with pytest.raises(UnpicklableError):
        safe["b"] = (x for x in [1])
    assert dict(safe) == {"a": 1}


def test_mutating_a_read_value_changes_nothing(safe: Safe) -> None:
    safe["l"] = [1, 2]
    got = safe["l"]
    got.append(3)
    assert safe["l"] == [1, 2]
    safe["l"] = got
    assert safe["l"] == [1, 2, 3]


def test_empty_and_unicode_keys_and_big_values(safe: Safe) -> None:
    big = bytes(range(256)) * 4096  # 1 MiB
    safe[""] = "empty"
    safe["ключ ✓"] = big
    assert safe[""] == "empty" and safe["ключ ✓"] == big


def test_reopen_sees_data(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with Safe(tmp_path / "x.db") as s:
        s["a"] = {"deep": [1]}
    with Safe(tmp_path / "x.db", durability="normal") as s:
        assert s["a"] == {"deep": [1]}
        s["b"] = 2
    s2 = Safe(tmp_path / "x.db")
    assert dict(s2) == {"a": {"deep": [1]}, "b": 2}
    s2.close()
    assert s2["b"] == 2  # reopens after close()
    s2.close()


def test_bad_durability(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        Safe(tmp_path / "x.db", durability="fast")  # type: ignore[arg-type]


def test_not_a_safe_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(SafeError):
        Safe(junk)["a"]
    import sqlite3

    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(SafeError, match="not a safe"):
        Safe(other)["a"] = 1


def test_pickle_a_safe(safe: Safe) -> None:
    import pickle

    safe["a"] = 1
    clone = pickle.loads(pickle.dumps(safe))
    assert clone.path == safe.path and clone["a"] == 1
    clone.close()


def test_repr(safe: Safe) -> None:
    assert "test.db" in repr(safe)
    with safe.transaction() as t:
        assert "open" in repr(t)

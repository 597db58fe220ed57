"""Explicit transactions: all or nothing."""

from __future__ import annotations

import pytest

from storeroom.safe import Safe, TransactionClosedError


def test_commit(safe: Safe) -> None:
    with safe.transaction() as t:
        t["a"] = 1
        t["b"] = 2
    assert dict(safe) == {"a": 1, "b": 2}


def test_rollback_on_exception(safe: Safe) -> None:
    safe["keep"] = 0
    with pytest.raises(RuntimeError):
        with safe.transaction() as t:
            t["a"] = 1
            del t["keep"]
            t.update(b=2)
            raise RuntimeError("boom")
    assert dict(safe) == {"keep": 0}


def test_transaction_is_a_mapping(safe: Safe) -> None:
    safe.update(x=1, y=2)
    with safe.transaction() as t:
        assert t["x"] == 1 and t.get("nope", 5) == 5 and "y" in t and len(t) == 2
        t["z"] = 3
        assert t["z"] == 3  # sees its own writes
        del t["x"]
        with pytest.raises(KeyError):
            del t["x"]
        with pytest.raises(KeyError):
            t["x"]
        assert t.pop("y") == 2
        assert t.setdefault("w", 4) == 4
        assert list(t) == ["w", "z"] and dict(t.items()) == {"w": 4, "z": 3}
        assert list(t.values()) == [4, 3]
        t.update({"v": 0})
        assert t.popitem() == ("v", 0)
    assert dict(safe) == {"w": 4, "z": 3}


def test_transaction_clear_rolls_back(safe: Safe) -> None:
    safe.update(a=1)
    with pytest.raises(ValueError):
        with safe.transaction() as t:
            t.clear()
            assert len(t) == 0
            raise ValueError
    assert dict(safe) == {"a": 1}


def test_closed_transaction_refuses(safe: Safe) -> None:
    with safe.transaction() as t:
        t["a"] = 1
    with pytest.raises(TransactionClosedError):
        t["b"] = 2
    with pytest.raises(TransactionClosedError):
        t["a"]
    assert dict(safe) == {"a": 1}


def test_nested_transactions_are_savepoints(safe: Safe) -> None:
    with safe.transaction() as outer:
        outer["a"] = 1
        with pytest.raises(KeyError):
            with safe.transaction() as inner:
                inner["b"] = 2
                raise KeyError("inner fails")
        assert "b" not in outer
        with safe.transaction() as inner:
            inner["c"] = 3
        safe.update(d=4)  # update() inside a transaction nests too
    assert dict(safe) == {"a": 1, "c": 3, "d": 4}


def test_safe_ops_in_the_block_join_the_transaction(safe: Safe) -> None:
    with pytest.raises(RuntimeError):
        with safe.transaction():
            safe["a"] = 1
            assert safe["a"] == 1
            raise RuntimeError
    assert "a" not in safe


def test_unpicklable_inside_transaction_keeps_it_usable(safe: Safe) -> None:
    from storeroom.safe import UnpicklableError

    with safe.transaction() as t:
        t["a"] = 1
        with pytest.raises(UnpicklableError):
            t["b"] = lambda: 0
        t["c"] = 3
    assert dict(safe) == {"a": 1, "c": 3}


def test_other_connections_do_not_see_uncommitted(safe: Safe) -> None:
    other = Safe(safe.path)
    with safe.transaction() as t:
        t["a"] = 1
        assert "a" not in other
    assert other["a"] == 1
    other.close()

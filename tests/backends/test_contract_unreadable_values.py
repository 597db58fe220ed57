"""A stored value that does not convert to its attribute's type (another program, or an
older model, wrote text where a date belongs) is storeroom's ``BackendError`` with the
converter's exception as its cause, on every backend, for a read and a search; the
items around it read as ever."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from storeroom import stored
from storeroom.errors import BackendError


@stored(table="unread")
class AsText:
    id: str
    at: str | None = None


@stored(table="unread")
class AsDate:
    """``AsText``'s table read with a date where the text was written."""

    id: str
    at: datetime | None = None


async def test_a_value_that_does_not_convert_is_a_backend_error(
        store_factory: Any, request: pytest.FixtureRequest) -> None:
    old = store_factory(AsText)
    await old._call("create_tables")
    await old.create(AsText(id="good", at=None))
    await old.create(AsText(id="bad", at="not a date"))
    s = store_factory(AsDate)
    if s.meta.backend == "memory":
        # known gap: the memory backend keeps the Python objects an older model wrote and
        # hands the text out in the datetime attribute (its ``_evolve`` handles added
        # attributes, not changed types); strict, so that closing the gap is noticed
        request.applymarker(pytest.mark.xfail(
            strict=True, raises=pytest.fail.Exception,
            reason="memory: an older model's value of another type is handed out as is"))
    await s._call("create_tables")
    assert (await s.read("good")).at is None
    with pytest.raises(BackendError, match="could not be read") as err:
        await s.read("bad")
    assert err.value.__cause__ is not None
    assert not isinstance(err.value.__cause__, BackendError)
    with pytest.raises(BackendError, match="could not be read"):
        await s.all()
    with pytest.raises(BackendError, match="could not be read"):  # a filtered page
        await s.search(id="bad")

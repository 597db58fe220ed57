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
        store_factory: Any) -> None:
    old = store_factory(AsText)
    await old._call("create_tables")
    await old.create(AsText(id="good", at=None))
    await old.create(AsText(id="bad", at="not a date"))
    s = store_factory(AsDate)
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

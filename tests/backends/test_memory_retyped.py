"""The memory backend keeps the Python values it was given; a model opened on a named
memory table with another type for an attribute than the model that wrote its items
reads them into its own type (``_Converter``), as a SQL decoder converts a column: a
value that converts is handed out converted, one that does not is a ``BackendError``;
the writing model, and stores whose types never changed, read as before."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import pytest

from storeroom import open_store, stored
from storeroom.errors import BackendError


@stored(table="retyped")
class AsText:
    id: str
    at: str | None = None
    n: int = 0


@stored(table="retyped")
class AsDate:
    id: str
    at: datetime | None = None
    n: int = 0


def _url() -> str:
    return f"memory://retyped-{uuid.uuid4().hex}"


def test_a_value_that_converts_is_read_in_the_new_type() -> None:
    url = _url()
    old = open_store(AsText, url)
    old.create(AsText(id="iso", at="2024-05-01T12:00:00+00:00"))
    old.create(AsText(id="bad", at="not a date"))
    new = open_store(AsDate, url)
    assert new.read("iso").at == datetime(2024, 5, 1, 12, tzinfo=UTC)
    with pytest.raises(BackendError, match="could not be read"):
        new.read("bad")
    # the writing model still reads its own text; the stored value is unchanged
    assert old.read("iso").at == "2024-05-01T12:00:00+00:00"
    assert old.read("bad").at == "not a date"
    # an attribute whose type did not change is not in the way
    assert [i.id for i in new.search_all(id="iso")] == ["iso"]


def test_a_store_opened_before_the_change_notices_it() -> None:
    url = _url()
    old = open_store(AsText, url)
    old.create(AsText(id="a", at="x"))
    assert old.read("a").at == "x"
    new = open_store(AsDate, url)
    new.create(AsDate(id="b", at=datetime(2024, 1, 1, tzinfo=UTC)))
    # the older store gets a datetime where its model has text: not silently handed out
    with pytest.raises(BackendError, match="could not be read"):
        old.read("b")
    with pytest.raises(BackendError, match="could not be read"):
        new.read("a")


def test_in_a_transaction_and_across_threads() -> None:
    url = _url()
    old = open_store(AsText, url)
    old.create(AsText(id="bad", at="not a date"))
    new = open_store(AsDate, url)
    with new.transaction():
        new.create(AsDate(id="good"))
        with pytest.raises(BackendError, match="could not be read"):
            new.read("bad")
        assert new.read("good").at is None
    errors: list[BaseException] = []

    def reader() -> None:
        for _ in range(50):
            try:
                new.read("bad")
            except BackendError:
                continue
            errors.append(AssertionError("read without an error"))

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors


def test_filters_and_orders_over_a_retyped_attribute() -> None:
    """A filter or order on the retyped attribute compares converted values; an
    unconvertible value the filter would keep (or cannot compare) fails the search with
    storeroom's error, never a bare TypeError; one it passes over is not in the way."""
    url = _url()
    old = open_store(AsText, url)
    old.create(AsText(id="iso", at="2024-05-01T12:00:00+00:00", n=1))
    old.create(AsText(id="bad", at="not a date", n=2))
    new = open_store(AsDate, url)
    after = datetime(2020, 1, 1, tzinfo=UTC)
    for call in (lambda: list(new.search_all(at__gt=after)),
                 lambda: new.count(at__gt=after),
                 lambda: new.search(order_by=["at"])):
        with pytest.raises(BackendError, match="could not be read"):
            call()
    assert [i.id for i in new.search_all(n=1)] == ["iso"]
    assert new.count(n=1) == 1
    assert [i.at for i in new.search_all(n=1, at__gt=after)] == [
        datetime(2024, 5, 1, 12, tzinfo=UTC)]

"""SQL: ``@stored`` checks are CHECK constraints named ``ck_<table>_<check>`` and unique
sets unique indexes ``uq_<table>_<cols>`` (alembic's naming convention); the database
itself refuses a violating row, and its error reaches the user as storeroom's."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from storeroom import Conflict, Q, ValidationError, open_store, stored


@stored(unique_together=[("owner", "title")],
        checks={"positive": Q(priority__gte=0), "kind": Q(kind__in=["a", "b"])})
class Card:
    id: int
    owner: str = ""
    title: str = ""
    priority: int = 0
    kind: str = "a"


def test_checks_and_unique_sets_are_named_constraints_the_database_enforces(tmp_path) -> None:
    s = open_store(Card, f"sqlite:///{tmp_path}/c.db")
    try:
        s.create(Card(id=1, owner="ann", title="x"))
        assert s._b.native_checks and not s._checks  # the store front does not evaluate them
        engine = sa.create_engine(f"sqlite:///{tmp_path}/c.db")
        insp = sa.inspect(engine)
        assert {c["name"] for c in insp.get_check_constraints("card")} == {
            "ck_card_positive", "ck_card_kind"}
        assert [(i["name"], i["unique"]) for i in insp.get_indexes("card")] == [
            ("uq_card_owner_title", 1)]
        with engine.begin() as conn, pytest.raises(sa.exc.IntegrityError, match="ck_card_kind"):
            conn.execute(sa.text("INSERT INTO card VALUES (2, 'bob', 'y', 0, 'c')"))
        engine.dispose()
        with pytest.raises(ValidationError) as e:
            s.update(1, kind="z")
        assert e.value.errors[0]["rule"] == "kind"
        assert e.value.__cause__ is not None
        with pytest.raises(Conflict):
            s.create(Card(id=3, owner="ann", title="x"))
    finally:
        s.close()

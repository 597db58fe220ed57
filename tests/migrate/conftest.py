"""A database of its own per test on SQLite, PostgreSQL and MariaDB (a file, a schema, a
database: see ``storeroom.backends.sql.testing``), for the naming and migration tests."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from storeroom.backends.sql import testing
from tests.servers import skip_or_fail

DIALECTS = ["sqlite", "postgres", "mysql"]


@pytest.fixture(params=DIALECTS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A storeroom URL of an empty database private to the test."""
    server = str(request.param)
    if server == "sqlite":
        return f"sqlite:///{tmp_path}/db.sqlite"
    reason = testing.unavailable_reason(server)
    if reason is not None:
        skip_or_fail(f"{server}: {reason}")
    return testing.fresh_url(server, f"m{uuid.uuid4().hex}")


def sync_engine(url: str):  # noqa: ANN201 - a SQLAlchemy Engine
    """A plain SQLAlchemy engine on ``url`` (for reflection in the tests)."""
    import sqlalchemy as sa

    from storeroom.context.urls import driver_url
    return sa.create_engine(driver_url(url, False))

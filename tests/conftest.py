"""Shared test configuration."""

from __future__ import annotations

import gc
import logging
import os
import sys
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

# One profile for every property test: deterministic enough for CI, fast locally. Under
# CI=true the examples are derived from each test's source (derandomize, which implies no
# example database), so a failure recurs on every run and locally with CI=true; a failure
# also prints its @reproduce_failure blob.
settings.register_profile(
    "storeroom",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=os.environ.get("CI", "").lower() == "true",
    print_blob=True,
)
settings.load_profile("storeroom")


# Leaked pooled connections fail the suite -------------------------------------------------
# SQLAlchemy reports a connection that was never returned to its pool when the garbage
# collector finds it: an error on the ``sqlalchemy.pool`` logger and (async dialects) an
# SAWarning, which pyproject's filterwarnings turns into an error. The warning alone is not
# enough: it is raised inside a finalizer, whenever the collector runs. So every such log
# record fails the test during which it appeared, and any left at the end fail the session.
class LeakedConnections(logging.Handler):
    """Collects SQLAlchemy's reports of pooled connections found by the garbage collector."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "non-checked-in connection" in message:
            self.leaks.append(message)


_LEAKS = LeakedConnections()
logging.getLogger("sqlalchemy.pool").addHandler(_LEAKS)


@pytest.fixture(autouse=True)
def _no_leaked_pool_connections() -> Iterator[None]:
    before = len(_LEAKS.leaks)
    yield
    leaked = _LEAKS.leaks[before:]
    if leaked:
        pytest.fail("a pooled connection was never returned (store or context not closed?):\n"
                    + "\n".join(leaked), pytrace=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before = len(_LEAKS.leaks)
    gc.collect()
    leaked = _LEAKS.leaks[before:]
    if leaked:
        print("\nconnections leaked outside any test (collected at the end):\n"
              + "\n".join(leaked), file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

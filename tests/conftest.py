"""Shared test configuration."""

from __future__ import annotations

import os

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

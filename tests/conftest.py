"""Shared test configuration."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# One profile for every property test: deterministic enough for CI, fast locally.
settings.register_profile(
    "storeroom",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=os.environ.get("CI", "").lower() == "true",
)
settings.load_profile("storeroom")

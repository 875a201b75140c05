"""Shared test set-up: hypothesis profiles and paths to the real data sets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=100, deadline=None)
# CI runs on 2 cores with a 10-minute budget for the whole suite: fewer examples.
# derandomized: CI runs the same examples every time, so a rare case the fuzz suite has not
# met yet cannot fail one submission and pass the next (the dev profile keeps exploring)
settings.register_profile(
    "ci", max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PERSONA_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the real data sets (``../shared/data``). In CI (``CI`` set) a missing folder
    fails the test; on a developer's machine the test skips and says how to enable it."""
    if not SHARED_DATA.is_dir():
        message = (f"real data sets not found at {SHARED_DATA}; put the project's shared/data "
                   "folder there or set PERSONA_SHARED_DATA to its path")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return SHARED_DATA

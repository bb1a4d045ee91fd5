"""Fixtures of the closed-loop tests."""

from __future__ import annotations

import pytest
from loop_support import build_small_world

from cx_pipelines.world.simulator import WorldTruth


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> WorldTruth:
    """The truth of a 2,000-customer world (seed 3), read as the simulator reads it."""
    return build_small_world(tmp_path_factory.mktemp("loop-world") / "cx")

"""A small synthetic world shared by the world tests (generated once per session)."""

from __future__ import annotations

import pytest
from world_support import World, build_world


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """3,000 customers, seed 11."""
    return build_world(tmp_path_factory.mktemp("world"), customers=3_000, seed=11)

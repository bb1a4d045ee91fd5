"""Shared fixtures: every test runs against its own CX_HOME, so runs never see each other's state."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def cx_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh CX_HOME (source database, warehouse, Dagster and MLflow state) for one test."""
    home = tmp_path / "cx"
    home.mkdir()
    monkeypatch.setenv("CX_HOME", str(home))
    monkeypatch.delenv("CX_SOURCE_URL", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return home


@pytest.fixture
def postgres_url() -> str:
    """URL of a PostgreSQL database for tests (CX_TEST_POSTGRES_URL); skipped when none is set."""
    url = os.environ.get("CX_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("CX_TEST_POSTGRES_URL is not set (.ci/run starts a server and sets it)")
    return url

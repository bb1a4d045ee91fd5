"""Shared fixtures: every test runs against its own CX_HOME, so runs never see each other."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
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


@contextmanager
def home_environment(home: Path) -> Iterator[None]:
    """Point CX_HOME (and the Dagster and MLflow state inside it) at ``home`` for a while."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CX_HOME", str(home))
        patch.delenv("CX_SOURCE_URL", raising=False)
        patch.setenv("DAGSTER_HOME", str(home / "dagster"))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        yield


@dataclass(frozen=True)
class MaterialisedWorld:
    home: Path
    run_id: str
    check_passed: dict[tuple[str, str], bool]  # (asset, check) -> outcome in that run

    def environment(self) -> AbstractContextManager[None]:
        """Point the process at this world's CX_HOME while the block runs."""
        return home_environment(self.home)


@pytest.fixture(scope="session")
def materialised_world(tmp_path_factory: pytest.TempPathFactory) -> MaterialisedWorld:
    """A 600-customer synthetic bank with every asset materialised in one Dagster run.

    Shared by the slow end-to-end tests (pipeline, notebooks, UI) so the run happens once
    per test process; 600 customers give every model enough responders to train.
    """
    from cx_pipelines import config
    from cx_pipelines.defs.runs import materialize
    from cx_pipelines.world import generate_world

    home = tmp_path_factory.mktemp("materialised") / "cx"
    with home_environment(home):
        generate_world(customers=600, seed=11, source_url=config.source_url())
        result = materialize("*")
        assert result.success, f"materialize('*') failed steps: {result.get_failed_step_keys()}"
    outcomes = {
        (evaluation.asset_key.to_user_string(), evaluation.check_name): evaluation.passed
        for evaluation in result.get_asset_check_evaluations()
    }
    return MaterialisedWorld(home=home, run_id=result.run_id, check_passed=outcomes)

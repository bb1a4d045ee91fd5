"""Where runtime state lives: everything under CX_HOME unless the environment says otherwise.

Paths are read from the environment on every call, so tests and scripts can point
one process at several homes in turn.
"""

from __future__ import annotations

import os
from pathlib import Path


def cx_home() -> Path:
    """The folder that holds every file a run writes (``CX_HOME``, default ``./.cx``)."""
    return Path(os.environ.get("CX_HOME", ".cx")).resolve()


def source_url() -> str:
    """SQLAlchemy URL of the source system (``CX_SOURCE_URL``, default SQLite in CX_HOME)."""
    return os.environ.get("CX_SOURCE_URL") or f"sqlite:///{cx_home() / 'source.db'}"


def warehouse_dir() -> Path:
    """Folder of the Parquet files, one per materialised table asset."""
    return cx_home() / "warehouse"


def catalog_path() -> Path:
    """DuckDB file holding one view per warehouse table."""
    return cx_home() / "warehouse.duckdb"


def dagster_home() -> Path:
    """The Dagster instance folder (``DAGSTER_HOME``, default ``$CX_HOME/dagster``)."""
    return Path(os.environ.get("DAGSTER_HOME") or cx_home() / "dagster").resolve()


def mlflow_tracking_uri() -> str:
    """MLflow tracking and registry (``MLFLOW_TRACKING_URI``, default SQLite in CX_HOME)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{cx_home() / 'mlflow.db'}"


def mlflow_artifact_root() -> Path:
    """Where MLflow keeps artefacts when the tracking store is the embedded default."""
    return cx_home() / "mlartifacts"


def world_dir() -> Path:
    """Ground truth of the synthetic world, kept apart from the source tables."""
    return cx_home() / "world"


def exports_dir() -> Path:
    """Files handed to action-taking systems."""
    return cx_home() / "exports"


def ensure_dagster_home() -> Path:
    """Create the Dagster instance folder and export DAGSTER_HOME so Dagster finds it."""
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    settings = home / "dagster.yaml"
    if not settings.exists():  # an instance of our own: local storage, nothing sent anywhere
        settings.write_text("telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(home)
    return home

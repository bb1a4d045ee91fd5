"""Where runtime state lives: everything under CX_HOME unless the environment says otherwise.

Paths are read from the environment on every call, so tests and scripts can point
one process at several homes in turn.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

NOW_VARIABLE = "CX_NOW"


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


def decision_log_dir() -> Path:
    """The real-time service's decision log: ``CX_DECISION_LOG_DIR``, default
    ``$CX_HOME/decision_log``."""
    configured = os.environ.get("CX_DECISION_LOG_DIR")
    return Path(configured) if configured else cx_home() / "decision_log"


def ensure_dagster_home() -> Path:
    """Create the Dagster instance folder and export DAGSTER_HOME so Dagster finds it."""
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    settings = home / "dagster.yaml"
    if not settings.exists():  # an instance of our own: local storage, nothing sent anywhere
        settings.write_text("telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


class ClockError(ValueError):
    """``CX_NOW`` is set to something that is not an ISO date or timestamp."""


def now() -> datetime:
    """The platform's "now" as a naive UTC datetime: ``CX_NOW`` when set, else the wall clock.

    ``CX_NOW`` takes an ISO date (``2027-01-07``, midnight) or timestamp
    (``2027-01-07T12:00:00``, UTC unless it names an offset). Whatever asks "is this in the
    future?" (e.g. ``interaction_results`` quarantining ``responded_at`` after now) asks
    here, so a simulation (``cx simulate`` sets it to each cycle's simulated date) can run
    past today while a real deployment keeps the wall clock.
    """
    text = os.environ.get(NOW_VARIABLE, "").strip()
    if not text:
        return datetime.now(UTC).replace(tzinfo=None)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ClockError(
            f"{NOW_VARIABLE}={text!r} is not an ISO date or timestamp (e.g. 2027-01-07 or "
            "2027-01-07T12:00:00)"
        ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment

"""A thin MLflow resource of our own: where tracking and the registry live."""

from __future__ import annotations

import dagster as dg

from cx_pipelines import config
from cx_pipelines.ml import registry


class MlflowResource(dg.ConfigurableResource):
    """MLflow tracking and model registry (default: SQLite in CX_HOME; any server by URI)."""

    tracking_uri: str | None = None

    def uri(self) -> str:
        """The configured URI, else MLFLOW_TRACKING_URI, else the SQLite store in CX_HOME."""
        return self.tracking_uri or config.mlflow_tracking_uri()

    def configure(self) -> str:
        return registry.configure(self.uri())

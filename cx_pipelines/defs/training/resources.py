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


def mlflow_run_metadata(
    tracking_uri: str, *, experiment_id: str, run_id: str, artifact_uri: str
) -> dict[str, dg.MetadataValue]:
    """Links to an MLflow run for the asset's page.

    With a tracking server, ``mlflow_run`` is a clickable URL of the run. With the embedded
    SQLite store there is no server to link to: ``mlflow_run`` is the path of the run's
    artefact folder (model, plots, tables), and ``mlflow_ui`` says how to open the run
    (``mlflow ui --backend-store-uri sqlite:///...`` then the URL shown).
    """
    metadata = {"mlflow_run_id": dg.MetadataValue.text(run_id)}
    link = registry.ui_link(tracking_uri, experiment_id, run_id)
    if tracking_uri.startswith(("http://", "https://")):
        metadata["mlflow_run"] = dg.MetadataValue.url(link)
        return metadata
    folder = registry.local_artifact_folder(artifact_uri)
    metadata["mlflow_run"] = (
        dg.MetadataValue.path(str(folder)) if folder else dg.MetadataValue.text(artifact_uri)
    )
    metadata["mlflow_ui"] = dg.MetadataValue.text(link)
    return metadata

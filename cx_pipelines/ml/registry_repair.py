"""Keeping the embedded MLflow store whole: after a killed registration, and after a move.

* A process killed while registering can leave a model version without its tags (the
  ``metric_value`` tag is written last of them) and its run "RUNNING" forever.
  :func:`remove_interrupted_versions` deletes such versions, and marks failed such runs,
  once the process that made them is gone (runs carry its id as the ``cx.pid`` tag).
* MLflow stores artefact locations as absolute URIs. When CX_HOME is copied or moved,
  :func:`reroot_artifacts` rewrites them from the old ``mlartifacts`` folder to the new
  one, so runs, versions and models load from where the store now is.

No imports of :mod:`cx_pipelines.ml.registry` (it calls these): functions take a client.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import sqlalchemy as sa
from mlflow import MlflowClient
from mlflow.entities import RunStatus

from cx_pipelines.recovery import process_is_alive

PID_TAG = "cx.pid"
HOST_TAG = "cx.host"
COMPLETE_TAG = "metric_value"
"""The last tag registration writes; a version without it was interrupted."""

_LOCATIONS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "storage_location"),
    ("model_versions", "source"),
)
"""Columns of MLflow's SQL store that hold artefact URIs."""


def process_tags() -> dict[str, str]:
    """Tags naming the process that writes a run, so a later one can tell it died."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def _writer_gone(tags: dict[str, str]) -> bool:
    if tags.get(HOST_TAG, socket.gethostname()) != socket.gethostname():
        return False
    pid = tags.get(PID_TAG)
    return pid is None or not process_is_alive(int(pid))


def remove_interrupted_versions(mlflow_client: MlflowClient, model_name: str) -> list[str]:
    """Delete versions of ``model_name`` left incomplete by a dead process; mark runs failed."""
    removed = []
    for version in mlflow_client.search_model_versions(f"name='{model_name}'"):
        if COMPLETE_TAG in version.tags:
            continue
        run_tags = mlflow_client.get_run(version.run_id).data.tags if version.run_id else {}
        if not _writer_gone(run_tags):
            continue  # still being registered by a live process
        mlflow_client.delete_model_version(model_name, version.version)
        removed.append(str(version.version))
    return removed


def fail_orphaned_runs(mlflow_client: MlflowClient, experiment_id: str) -> list[str]:
    """Mark failed the runs still RUNNING whose process is gone; return their ids."""
    failed = []
    for run in mlflow_client.search_runs(
        [experiment_id], filter_string="attributes.status = 'RUNNING'"
    ):
        if PID_TAG in run.data.tags and _writer_gone(run.data.tags):
            mlflow_client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.FAILED))
            failed.append(run.info.run_id)
    return failed


def reroot_artifacts(database: Path, *, experiment: str, artifact_root: Path) -> str | None:
    """Point every artefact URI of the SQLite store at ``artifact_root`` if it moved.

    The experiment ``experiment`` was created with its artefacts at the old root; when that
    differs from ``artifact_root`` every URI under the old root is rewritten. Returns the
    old root when something was rewritten.
    """
    engine = sa.create_engine(f"sqlite:///{database}")
    new_root = artifact_root.as_uri()
    try:
        with engine.begin() as connection:
            old_root = connection.execute(
                sa.text("SELECT artifact_location FROM experiments WHERE name = :name"),
                {"name": experiment},
            ).scalar()
            if not old_root or old_root == new_root or not old_root.startswith("file:"):
                return None
            for table, column in _LOCATIONS:
                connection.execute(
                    sa.text(
                        f"UPDATE {table} SET {column} = :new || substr({column}, :cut) "
                        f"WHERE {column} = :old OR {column} LIKE :prefix ESCAPE '\\'"
                    ),
                    {
                        "new": new_root,
                        "old": old_root,
                        "cut": len(old_root) + 1,
                        "prefix": _like_escape(old_root) + "/%",
                    },
                )
    finally:
        engine.dispose()
    return old_root


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

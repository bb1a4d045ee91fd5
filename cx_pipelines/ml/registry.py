"""MLflow tracking and model registry: log a training run, register a version, and decide
between the ``champion`` and a ``challenger`` by the spec's metric on the same holdout.

Plain MLflow calls, no Dagster. By default tracking and registry live in a SQLite file in
CX_HOME with artefacts under ``$CX_HOME/mlartifacts``; ``MLFLOW_TRACKING_URI`` points
everything at a server instead. Models are stored with cloudpickle because they are our
own classes (a fitted pipeline plus the columns it expects); load only models that this
registry produced.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from cx_pipelines import config
from cx_pipelines.ml import registry_repair
from cx_pipelines.ml.specs import ModelSpec

CHAMPION = "champion"
CHALLENGER = "challenger"
EXPERIMENT = "cx-pipelines"
FINGERPRINT_TAG = "cx.training_fingerprint"
"""Version tag: hash of the training data, the spec and the parameters that made it."""


class RegistryError(RuntimeError):
    """The registry holds no version where one was expected, or a version lacks its metric."""


_INITIALISED: set[str] = set()


def _initialise_sqlite_store(uri: str) -> None:
    """Create (migrate) a SQLite store under a file lock, once per process.

    Dagster's multiprocess executor starts several training steps at once; without the
    lock each would run MLflow's schema migrations on the same new file concurrently.
    """
    database = Path(uri.removeprefix("sqlite:///"))
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{database}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            MlflowClient(tracking_uri=uri, registry_uri=uri).search_experiments(max_results=1)
            if database.resolve().parent == config.cx_home():
                # A copied or moved CX_HOME: artefact URIs still name the old folder.
                registry_repair.reroot_artifacts(
                    database, experiment=EXPERIMENT, artifact_root=config.mlflow_artifact_root()
                )
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def configure(tracking_uri: str | None = None) -> str:
    """Point MLflow at ``tracking_uri`` (default: CX_HOME's SQLite store) and return it."""
    uri = tracking_uri or config.mlflow_tracking_uri()
    if uri.startswith("sqlite:///") and uri not in _INITIALISED:
        _initialise_sqlite_store(uri)
        _INITIALISED.add(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def client(tracking_uri: str | None = None) -> MlflowClient:
    uri = configure(tracking_uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def ensure_experiment(name: str = EXPERIMENT, *, tracking_uri: str | None = None) -> str:
    """Id of experiment ``name``, created with artefacts under CX_HOME for a local store."""
    mlflow_client = client(tracking_uri)
    experiment = mlflow_client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    uri = tracking_uri or config.mlflow_tracking_uri()
    location = None
    if not uri.startswith(("http://", "https://", "databricks")):
        root = config.mlflow_artifact_root()
        root.mkdir(parents=True, exist_ok=True)
        location = root.as_uri()
    try:
        return mlflow_client.create_experiment(name, artifact_location=location)
    except MlflowException:
        # Another process created it between our lookup and our create.
        experiment = mlflow_client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


@dataclass(frozen=True)
class RegisteredVersion:
    """What one training run left in MLflow."""

    model_name: str
    version: str
    run_id: str
    experiment_id: str
    model_uri: str
    metric: str
    metric_value: float
    artifact_uri: str = ""
    reused: bool = False
    """True when no new version was registered: this one was trained on the same inputs."""
    reason: str = ""

    def run_link(self, tracking_uri: str | None = None) -> str:
        """A URL of the run in the MLflow UI (server) or how to open it (local store)."""
        uri = tracking_uri or config.mlflow_tracking_uri()
        return ui_link(uri, self.experiment_id, self.run_id)


def local_artifact_folder(artifact_uri: str) -> Path | None:
    """The folder of a run's artefacts when they are on this machine (``file:`` URI or path)."""
    if artifact_uri.startswith("file:"):
        return Path(url2pathname(urlparse(artifact_uri).path))
    if artifact_uri.startswith("/"):
        return Path(artifact_uri)
    return None


def ui_link(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """The run's page in the MLflow UI: a URL for a server, how to open it for a local store."""
    path = f"#/experiments/{experiment_id}/runs/{run_id}"
    if tracking_uri.startswith(("http://", "https://")):
        return f"{tracking_uri.rstrip('/')}/{path}"
    return f"mlflow ui --backend-store-uri {tracking_uri}  →  http://127.0.0.1:5000/{path}"


def _finite_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    result = {}
    for name, value in metrics.items():
        number = float(value)
        if not np.isfinite(number):
            raise RegistryError(f"metric {name!r} is {number}; refusing to log a non-finite metric")
        result[name] = number
    return result


def training_fingerprint(
    spec: ModelSpec, *, frames: Mapping[str, pd.DataFrame], params: Mapping[str, Any]
) -> str:
    """A hash of everything that decides a trained model: the training tables (values,
    columns, types), the spec and the run parameters (seed, as-of date)."""
    digest = hashlib.sha256()
    declaration = {k: v for k, v in dataclasses.asdict(spec).items() if k != "source"}
    digest.update(json.dumps([declaration, dict(params)], sort_keys=True, default=str).encode())
    for name in sorted(frames):
        frame = frames[name]
        digest.update(f"{name}:{list(frame.columns)}:{list(map(str, frame.dtypes))}".encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _version_with_fingerprint(
    mlflow_client: MlflowClient, spec: ModelSpec, fingerprint: str
) -> RegisteredVersion | None:
    """The complete registered version trained on exactly these inputs, if there is one."""
    name = spec.registered_name
    matches = [
        version
        for version in mlflow_client.search_model_versions(f"name='{name}'")
        if version.tags.get(FINGERPRINT_TAG) == fingerprint
        and registry_repair.COMPLETE_TAG in version.tags
    ]
    if not matches:
        return None
    version = max(matches, key=lambda item: int(item.version))
    run = mlflow_client.get_run(version.run_id)
    return RegisteredVersion(
        model_name=name,
        version=str(version.version),
        run_id=version.run_id,
        experiment_id=run.info.experiment_id,
        model_uri=f"models:/{name}/{version.version}",
        metric=spec.metric,
        metric_value=float(version.tags[registry_repair.COMPLETE_TAG]),
        artifact_uri=run.info.artifact_uri,
        reused=True,
        reason=f"registration skipped: training data, spec and parameters are unchanged since "
        f"version {version.version} (fingerprint {fingerprint[:12]}); version "
        f"{version.version} is reused",
    )


def log_and_register(
    *,
    spec: ModelSpec,
    model: Any,
    input_example: pd.DataFrame,
    metrics: Mapping[str, float],
    params: Mapping[str, Any] | None = None,
    plots: Mapping[str, bytes] | None = None,
    tables: Mapping[str, pd.DataFrame] | None = None,
    tags: Mapping[str, str] | None = None,
    tracking_uri: str | None = None,
    fingerprint: str | None = None,
) -> RegisteredVersion:
    """Log one training run (parameters, metrics, plots, model with signature and input
    example), register it as a new version of ``spec.registered_name``, and alias it
    ``challenger``. Promotion to ``champion`` is :func:`promote`'s job.

    With a ``fingerprint`` (:func:`training_fingerprint`) equal to a registered version's,
    nothing is logged or registered: that version is returned with ``reused`` and the
    reason. Versions a killed process left half-registered are removed first.
    """
    if spec.metric not in metrics:
        raise RegistryError(f"metrics lack the spec's promotion metric {spec.metric!r}")
    values = _finite_metrics(metrics)
    experiment_id = ensure_experiment(tracking_uri=tracking_uri)
    mlflow_client = client(tracking_uri)
    registry_repair.fail_orphaned_runs(mlflow_client, experiment_id)
    registry_repair.remove_interrupted_versions(mlflow_client, spec.registered_name)
    if fingerprint is not None:
        existing = _version_with_fingerprint(mlflow_client, spec, fingerprint)
        if existing is not None:
            champion = version_for_alias(spec.registered_name, CHAMPION, tracking_uri=tracking_uri)
            if champion != existing.version:
                mlflow_client.set_registered_model_alias(
                    spec.registered_name, CHALLENGER, existing.version
                )
            return existing
    example = input_example.head(5).reset_index(drop=True)
    signature = infer_signature(example, np.asarray(model.predict(example)))
    run_params = {f"estimator.{key}": value for key, value in spec.estimator_params.items()}
    run_params.update(
        {
            "spec": spec.name,
            "kind": spec.kind,
            "target": spec.target,
            "estimator.class": spec.estimator_class,
            "estimator.calibration": spec.calibration,
            "estimator.meta_learner": spec.meta_learner or "",
            "metric": spec.metric,
        }
    )
    run_params.update(params or {})
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"train-{spec.name}") as run:
        mlflow.log_params({key: str(value)[:500] for key, value in run_params.items()})
        mlflow.log_metrics(values)
        mlflow.set_tags({"cx.spec": spec.name, **registry_repair.process_tags(), **(tags or {})})
        with tempfile.TemporaryDirectory() as folder:
            for name, image in (plots or {}).items():
                path = Path(folder) / f"{name}.png"
                path.write_bytes(image)
                mlflow.log_artifact(str(path), artifact_path="plots")
            for name, table in (tables or {}).items():
                path = Path(folder) / f"{name}.csv"
                table.to_csv(path, index=False)
                mlflow.log_artifact(str(path), artifact_path="tables")
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            input_example=example,
            registered_model_name=spec.registered_name,
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
            pip_requirements=["scikit-learn", "pandas", "numpy", "cx-pipelines"],
        )
    version = str(info.registered_model_version)
    if fingerprint is not None:
        mlflow_client.set_model_version_tag(
            spec.registered_name, version, FINGERPRINT_TAG, fingerprint
        )
    mlflow_client.set_model_version_tag(spec.registered_name, version, "metric", spec.metric)
    # Written last of the tags: a version without it was interrupted (registry_repair).
    mlflow_client.set_model_version_tag(
        spec.registered_name, version, registry_repair.COMPLETE_TAG, repr(values[spec.metric])
    )
    mlflow_client.set_registered_model_alias(spec.registered_name, CHALLENGER, version)
    return RegisteredVersion(
        model_name=spec.registered_name,
        version=version,
        run_id=run.info.run_id,
        experiment_id=experiment_id,
        model_uri=f"models:/{spec.registered_name}/{version}",
        metric=spec.metric,
        metric_value=values[spec.metric],
        artifact_uri=run.info.artifact_uri,
    )


def version_for_alias(
    model_name: str, alias: str, *, tracking_uri: str | None = None
) -> str | None:
    """The version behind ``alias`` of ``model_name``, or None when there is none."""
    mlflow_client = client(tracking_uri)
    try:
        return str(mlflow_client.get_model_version_by_alias(model_name, alias).version)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def load_model(model_name: str, version_or_alias: str, *, tracking_uri: str | None = None) -> Any:
    """Load a registered model by version number or alias (``champion``, ``challenger``)."""
    configure(tracking_uri)
    separator = "@" if not str(version_or_alias).isdigit() else "/"
    uri = f"models:/{model_name}{separator}{version_or_alias}"
    try:
        return mlflow.sklearn.load_model(uri)
    except MlflowException as error:
        raise RegistryError(f"cannot load {uri}: {error.message}") from error


def version_tag(model_name: str, version: str, key: str, *, tracking_uri: str | None = None) -> str:
    tags = client(tracking_uri).get_model_version(model_name, version).tags
    if key not in tags:
        raise RegistryError(f"{model_name} version {version} has no tag {key!r}")
    return tags[key]


def set_version_tags(
    model_name: str, version: str, tags: Mapping[str, str], *, tracking_uri: str | None = None
) -> None:
    mlflow_client = client(tracking_uri)
    for key, value in tags.items():
        mlflow_client.set_model_version_tag(model_name, version, key, str(value))


def delete_version_tags(
    model_name: str, version: str, keys: Sequence[str], *, tracking_uri: str | None = None
) -> None:
    """Remove the tags ``keys`` of a version (those it has)."""
    mlflow_client = client(tracking_uri)
    present = mlflow_client.get_model_version(model_name, version).tags
    for key in keys:
        if key in present:
            mlflow_client.delete_model_version_tag(model_name, version, key)


@dataclass(frozen=True)
class PromotionDecision:
    """Whether a challenger replaces the champion, and why, in words a reviewer can check."""

    promote: bool
    reason: str
    metric: str
    challenger_version: str
    challenger_value: float
    champion_version: str | None
    champion_value: float | None


def decide_promotion(
    spec: ModelSpec,
    *,
    challenger_version: str,
    challenger_value: float,
    champion_version: str | None,
    champion_value: float | None,
    difference_upper: float | None = None,
) -> PromotionDecision:
    """First version becomes champion; later ones only when better by the spec's metric
    (rule ``point``) or, with rule ``not_credibly_worse`` and ``difference_upper`` (the
    upper quantile of the paired bootstrap of challenger minus champion, better-direction),
    unless that quantile is at or below the required margin (credibly worse)."""
    decision = {
        "metric": spec.metric,
        "challenger_version": challenger_version,
        "challenger_value": challenger_value,
        "champion_version": champion_version,
        "champion_value": champion_value,
    }
    if not np.isfinite(challenger_value):
        return PromotionDecision(
            promote=False, reason=f"challenger {spec.metric} is {challenger_value}", **decision
        )
    if champion_version is None or champion_value is None:
        return PromotionDecision(
            promote=True,
            reason=f"no champion yet; version {challenger_version} "
            f"({spec.metric} {challenger_value:.4f}) becomes champion",
            **decision,
        )
    if champion_version == challenger_version:
        return PromotionDecision(
            promote=False, reason=f"version {challenger_version} is already champion", **decision
        )
    better = "higher" if spec.direction == "maximize" else "lower"
    comparison = (
        f"challenger v{challenger_version} {spec.metric} {challenger_value:.4f} vs champion "
        f"v{champion_version} {champion_value:.4f} on the same holdout "
        f"({better} is better, required margin {spec.min_improvement:g})"
    )
    if challenger_value == champion_value:
        return PromotionDecision(
            promote=False,
            reason=f"champion stays: {comparison}; the challenger only reproduces the champion",
            **decision,
        )
    if spec.promotion_rule == "not_credibly_worse" and difference_upper is not None:
        bootstrap = (
            f"; paired bootstrap: the {spec.promotion_confidence:g} quantile of challenger − "
            f"champion is {difference_upper:.4g}"
        )
        if difference_upper > spec.min_improvement:
            return PromotionDecision(
                promote=True,
                reason=f"promoted (not credibly worse): {comparison}{bootstrap}",
                **decision,
            )
        return PromotionDecision(
            promote=False,
            reason=f"champion stays (challenger credibly worse): {comparison}{bootstrap}",
            **decision,
        )
    if spec.is_better(challenger_value, champion_value):
        return PromotionDecision(promote=True, reason=f"promoted: {comparison}", **decision)
    return PromotionDecision(promote=False, reason=f"champion stays: {comparison}", **decision)


def promote(model_name: str, version: str, *, tracking_uri: str | None = None) -> None:
    """Alias ``version`` as champion; the challenger alias is dropped once it has won."""
    mlflow_client = client(tracking_uri)
    mlflow_client.set_registered_model_alias(model_name, CHAMPION, version)
    if version_for_alias(model_name, CHALLENGER, tracking_uri=tracking_uri) == version:
        mlflow_client.delete_registered_model_alias(model_name, CHALLENGER)

"""Shared by the training assets: run config, as-of date, plots as metadata, and the
champion/challenger step every supervised model asset goes through.

:func:`supervised_model_asset` builds a model asset from what differs per model (its spec,
inputs and a function training a :class:`Challenger`); the asset then scores the current
champion on the *same* holdout, registers the challenger (alias ``challenger``) with both
figures as version tags, and returns the challenger's evaluation table. With too little
data it registers nothing and records why (:func:`not_trained`).
"""

import base64
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import dagster as dg
import pandas as pd

from cx_pipelines import warehouse
from cx_pipelines.defs.training.resources import MlflowResource, mlflow_run_metadata
from cx_pipelines.features.observation import observation_end
from cx_pipelines.ml import model_cards, registry
from cx_pipelines.ml.errors import EvaluationError, InsufficientDataError, TrainingDataError
from cx_pipelines.ml.evaluation import Report
from cx_pipelines.ml.specs import ModelSpec, load_spec
from cx_pipelines.ml.supervised.base import class_counts, require_examples

GROUP = "models"
KINDS = {"scikit-learn", "mlflow"}
# Fewest examples of each outcome (and arm, for uplift) the holdout needs to judge a model.
MIN_HOLDOUT_EXAMPLES = 5
CHAMPION_TAGS = ("champion_version", "champion_metric_value", "champion_error")
"""Version tags describing the champion on the holdout of the run that trained a version."""


class TrainingConfig(dg.Config):
    """Seed of every random choice in training, and the as-of date (None: end of the data)."""

    random_state: int = 0
    as_of: str | None = None


def as_of_date(transactions: pd.DataFrame, as_of: str | None) -> pd.Timestamp:
    """Last instant of the observation window (inclusive)."""
    return observation_end(transactions, as_of=as_of) - pd.Timedelta(seconds=1)


def contacts_until(as_of: pd.Timestamp, configured_as_of: str | None) -> pd.Timestamp:
    """Latest contact a model trains on: the as-of date when one is configured; by default
    (the end of the data) no limit, so results of decisions taken after the last transaction
    (the closed loop's contacts, dated after the world's end) are learned from too."""
    return as_of if configured_as_of is not None else pd.Timestamp.max


def images_markdown(plots: dict[str, bytes]) -> dg.MetadataValue:
    """Plots embedded as base64 PNG images, shown on the asset's page."""
    parts = [
        f"**{name}**\n\n![{name}](data:image/png;base64,{base64.b64encode(image).decode()})"
        for name, image in plots.items()
    ]
    return dg.MetadataValue.md("\n\n".join(parts))


def require_holdout_classes(labels: pd.Series, *, spec: ModelSpec, what: str) -> None:
    """The holdout must hold both outcomes to judge the model (and compare it to the champion)."""
    require_examples(
        class_counts(labels.astype(int).to_numpy()),
        minimum=MIN_HOLDOUT_EXAMPLES,
        where=f"holdout of {spec.registered_name}",
        what=what,
        needed="the model cannot be judged against the champion, so no version is "
        "registered; more history (a longer or larger book) is needed",
    )


@dataclass
class Challenger:
    """A freshly trained model, judged on its holdout, ready to be registered.

    ``champion_score`` computes the spec's metric of another (the champion) model on the
    same holdout; ``table`` is the asset's output (the model version is added to it);
    ``windows`` (training and holdout periods) and ``baseline`` (what the report's
    ``baseline_<metric>`` measured) go on the model card.
    """

    model: Any
    holdout: pd.DataFrame
    report: Report
    champion_score: Callable[[Any], float]
    params: dict[str, Any]
    table: pd.DataFrame
    windows: dict[str, str] = field(default_factory=dict)
    baseline: str = "baseline"


def champion_on_holdout(
    spec: ModelSpec, score: Callable[[Any], float], *, tracking_uri: str
) -> dict[str, str]:
    """Version tags describing the current champion's metric on this run's holdout."""
    version = registry.version_for_alias(
        spec.registered_name, registry.CHAMPION, tracking_uri=tracking_uri
    )
    if version is None:
        return {}
    try:
        model = registry.load_model(spec.registered_name, version, tracking_uri=tracking_uri)
        value = float(score(model))
    except (TrainingDataError, EvaluationError, registry.RegistryError) as error:
        return {"champion_version": version, "champion_error": str(error)[:500]}
    except (ImportError, AttributeError) as error:
        # A champion pickled by an older release (another module layout) cannot be loaded:
        # the challenger replaces it, as for any champion that cannot score this holdout.
        return {"champion_version": version, "champion_error": f"cannot load: {error}"[:500]}
    return {"champion_version": version, "champion_metric_value": repr(value)}


def register(
    context: dg.AssetExecutionContext,
    *,
    spec: ModelSpec,
    model: Any,
    input_example: pd.DataFrame,
    report: Report,
    champion: dict[str, str],
    mlflow: MlflowResource,
    params: dict[str, Any],
    card: model_cards.ModelCard | None = None,
    fingerprint: str | None = None,
) -> dict[str, Any]:
    """Log and register the challenger with its model card (or reuse the version trained on
    the same inputs); return the asset metadata describing it."""
    uri = mlflow.configure()
    summary = {f"training.{key}": value for key, value in model.training_summary().items()}
    version = registry.log_and_register(
        spec=spec,
        model=model,
        input_example=input_example,
        metrics=report.metrics,
        params={**params, **summary},
        plots=report.plots,
        tables=report.tables,
        tags={"dagster.run_id": context.run.run_id},
        tracking_uri=uri,
        fingerprint=fingerprint,
    )
    if version.reused:
        context.log.info(f"{spec.registered_name}: {version.reason}")
        # This run's champion comparison replaces the one of the run that registered it.
        registry.delete_version_tags(
            spec.registered_name, version.version, CHAMPION_TAGS, tracking_uri=uri
        )
    registry.set_version_tags(spec.registered_name, version.version, champion, tracking_uri=uri)
    if card is not None:
        model_cards.log_card(card, run_id=version.run_id, version=version.version, tracking_uri=uri)
    context.log.info(
        f"{spec.registered_name} v{version.version}: {spec.metric} {version.metric_value:.4f}"
        f"; champion {champion or 'none yet'}"
    )
    metadata: dict[str, Any] = {
        "model_name": spec.registered_name,
        "model_version": version.version,
        "registration": version.reason or f"registered new version {version.version}",
        "metric": spec.metric,
        "metric_value": version.metric_value,
        "champion_version": champion.get("champion_version", "none"),
        "champion_metric_value": float(champion["champion_metric_value"])
        if "champion_metric_value" in champion
        else None,
        **mlflow_run_metadata(
            uri,
            experiment_id=version.experiment_id,
            run_id=version.run_id,
            artifact_uri=version.artifact_uri,
        ),
        "trained": True,
        "training": dg.MetadataValue.json(model.training_summary()),
        "holdout_metrics": dg.MetadataValue.json(report.metrics),
        "plots": images_markdown(report.plots),
        "model_card": dg.MetadataValue.json(asdict(card)) if card is not None else None,
    }
    return {key: value for key, value in metadata.items() if value is not None}


def not_trained(
    context: dg.AssetExecutionContext,
    *,
    spec: ModelSpec,
    error: InsufficientDataError,
    mlflow: MlflowResource,
) -> dg.Output[pd.DataFrame]:
    """The outcome of a run with too little data: no new version, the reason on the asset.

    The run goes on: the promotion check warns, and ``customer_scores`` leaves this model's
    scores empty (or keeps using an earlier champion) and records why.
    """
    champion = registry.version_for_alias(
        spec.registered_name, registry.CHAMPION, tracking_uri=mlflow.configure()
    )
    reason = f"{spec.registered_name} not trained: {error}"
    context.log.warning(reason)
    table = pd.DataFrame(
        {"model_name": [spec.registered_name], "trained": [False], "reason": [reason]}
    )
    return dg.Output(
        table,
        metadata={
            "model_name": spec.registered_name,
            "trained": False,
            "not_trained_reason": dg.MetadataValue.text(reason),
            "class_counts": dg.MetadataValue.json(error.counts),
            "needed": dg.MetadataValue.text(error.needed),
            "champion_version": champion or "none",
        },
    )


def train_and_register(
    context: dg.AssetExecutionContext,
    *,
    spec: ModelSpec,
    train: Callable[[], Challenger],
    mlflow: MlflowResource,
    fingerprint: str | None = None,
) -> dg.Output[pd.DataFrame]:
    """Train the challenger, score the champion on its holdout, register it; or say why not."""
    try:
        challenger = train()
        champion = champion_on_holdout(spec, challenger.champion_score, tracking_uri=mlflow.uri())
        card = model_cards.build_card(
            spec,
            metrics=challenger.report.metrics,
            holdout=challenger.holdout,
            windows=challenger.windows,
            estimator=type(challenger.model).__name__,
            baseline=challenger.baseline,
            truth=model_cards.world_truth(),
        )
        metadata = register(
            context,
            spec=spec,
            model=challenger.model,
            input_example=challenger.model.input_frame(challenger.holdout),
            report=challenger.report,
            champion=champion,
            mlflow=mlflow,
            params=challenger.params,
            card=card,
            fingerprint=fingerprint,
        )
    except InsufficientDataError as error:
        return not_trained(context, spec=spec, error=error, mlflow=mlflow)
    table = challenger.table.assign(model_version=metadata["model_version"])
    return dg.Output(table, metadata=metadata)


TrainFunction = Callable[[ModelSpec, TrainingConfig, Mapping[str, pd.DataFrame]], Challenger]

SIDE_INPUTS = {"offer_history": "interaction_results"}
"""Tables that training reads from the warehouse beside a declared input (campaign results are
appended to the contact history), so that they count in the training fingerprint too."""


def fingerprinted_frames(frames: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The declared input tables plus the side inputs that training will read with them."""
    side = {
        table: warehouse.read_table(table)
        for declared, table in SIDE_INPUTS.items()
        if declared in frames and warehouse.table_exists(table)
    }
    return {**frames, **side}


def supervised_model_asset(
    *, name: str, spec_name: str, inputs: list[str], description: str, train: TrainFunction
) -> dg.AssetsDefinition:
    """A model asset reading the warehouse tables ``inputs`` and training with ``train``."""

    @dg.asset(
        name=name,
        group_name=GROUP,
        kinds=KINDS,
        description=description,
        ins={table: dg.AssetIn(dagster_type=pd.DataFrame) for table in inputs},
    )
    def _model_asset(
        context: dg.AssetExecutionContext,
        config: TrainingConfig,
        mlflow: MlflowResource,
        **frames: pd.DataFrame,
    ) -> dg.Output[pd.DataFrame]:
        spec = load_spec(spec_name)
        fingerprint = registry.training_fingerprint(
            spec, frames=fingerprinted_frames(frames), params=config.model_dump()
        )
        return train_and_register(
            context,
            spec=spec,
            train=lambda: train(spec, config, frames),
            mlflow=mlflow,
            fingerprint=fingerprint,
        )

    return _model_asset

"""Shared by the training assets: run config, as-of date, plots as metadata, and the
champion/challenger step every supervised model asset goes through.

:func:`supervised_model_asset` builds a model asset from what differs per model (its spec,
inputs and a function training a :class:`Challenger`); the asset then scores the current
champion on the *same* holdout, registers the challenger (alias ``challenger``) with both
figures as version tags, and returns the challenger's evaluation table. With too little
data it registers nothing and records why (:func:`not_trained`).

With the spec's ``holdout.refit`` the version registered is the judged spec refitted on
training + holdout rows (:func:`refitted`): the holdout figures on its card are those of the
judged fit, and its tag ``fitted_through`` makes the next gate judge it only on newer rows.
"""

import base64
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from cx_pipelines import warehouse
from cx_pipelines.defs.training.resources import MlflowResource, mlflow_run_metadata
from cx_pipelines.features.observation import observation_end
from cx_pipelines.ml import model_cards, registry
from cx_pipelines.ml.errors import EvaluationError, InsufficientDataError, TrainingDataError
from cx_pipelines.ml.evaluation import Report
from cx_pipelines.ml.paired_bootstrap import RowMetric, paired_difference
from cx_pipelines.ml.specs import ModelSpec, load_spec
from cx_pipelines.ml.supervised.base import class_counts, require_examples

GROUP = "models"
KINDS = {"scikit-learn", "mlflow"}
# Fewest examples of each outcome (and arm, for uplift) the holdout needs to judge a model.
MIN_HOLDOUT_EXAMPLES = 5
CHAMPION_TAGS = (
    "champion_version",
    "champion_metric_value",
    "champion_error",
    "gate_challenger_value",
    "gate_rows",
    "gate_rows_rule",
    "gate_difference_upper",
    "gate_share_worse",
)
"""Version tags describing the champion on the holdout of the run that trained a version."""
FITTED_THROUGH_TAG = "fitted_through"
"""Tag of a version refitted on its holdout too: the latest contact it was fitted on. The
next gate judges it (and its challenger) only on holdout rows after that, never on rows it
has seen."""


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
    # Row-wise judging (both needed): a model's holdout predictions, and the spec's metric of
    # predictions on some holdout rows. They let the gate compare champion and challenger on
    # the rows the champion has not seen, and bootstrap the difference.
    predict: Callable[[Any], np.ndarray] | None = None
    row_metric: RowMetric | None = None
    # The same spec fitted on training + holdout rows (the spec's holdout.refit).
    refit: Callable[[], Any] | None = None


def champion_on_holdout(
    spec: ModelSpec,
    score: Callable[[Any], float],
    *,
    tracking_uri: str,
    challenger: Challenger | None = None,
    random_state: int = 0,
) -> dict[str, str]:
    """Version tags describing the current champion's metric on this run's holdout; with a
    row-wise ``challenger``, both figures on the rows the champion has not been fitted on
    (:func:`gate_tags`)."""
    version = registry.version_for_alias(
        spec.registered_name, registry.CHAMPION, tracking_uri=tracking_uri
    )
    if version is None:
        return {}
    try:
        model = registry.load_model(spec.registered_name, version, tracking_uri=tracking_uri)
        if challenger is not None and challenger.predict and challenger.row_metric:
            seen = (
                registry.client(tracking_uri)
                .get_model_version(spec.registered_name, version)
                .tags.get(FITTED_THROUGH_TAG)
            )
            tags = gate_tags(spec, challenger, model, seen, random_state=random_state)
            return {"champion_version": version, **tags}
        value = float(score(model))
    except (TrainingDataError, EvaluationError, registry.RegistryError) as error:
        return {"champion_version": version, "champion_error": str(error)[:500]}
    except (ImportError, AttributeError) as error:
        # A champion pickled by an older release (another module layout) cannot be loaded:
        # the challenger replaces it, as for any champion that cannot score this holdout.
        return {"champion_version": version, "champion_error": f"cannot load: {error}"[:500]}
    return {"champion_version": version, "champion_metric_value": repr(value)}


def unseen_rows(holdout: pd.DataFrame, seen_through: str | None) -> tuple[np.ndarray, str]:
    """Holdout rows after the champion's last fitted contact (all rows when it was not
    refitted on a holdout, or when no row is newer), and the rule that chose them."""
    everything = np.arange(len(holdout))
    if seen_through is None or "contacted_at" not in holdout:
        return everything, "whole holdout"
    newer = np.flatnonzero(pd.to_datetime(holdout["contacted_at"]) > pd.Timestamp(seen_through))
    if len(newer) == 0:
        return everything, f"whole holdout (no row after the champion's {seen_through})"
    return newer, f"holdout rows after the champion's last fitted contact {seen_through}"


def gate_tags(
    spec: ModelSpec,
    challenger: Challenger,
    champion: Any,
    seen_through: str | None,
    *,
    random_state: int = 0,
) -> dict[str, str]:
    """Both models' metric on the holdout rows the champion has not seen; with the rule
    ``not_credibly_worse``, the paired bootstrap of their difference on those rows."""
    if challenger.predict is None or challenger.row_metric is None:
        raise TypeError("gate_tags judges a row-wise challenger: it needs predict and row_metric")
    rows, rule = unseen_rows(challenger.holdout, seen_through)
    mine = np.asarray(challenger.predict(challenger.model), dtype=float)
    theirs = np.asarray(challenger.predict(champion), dtype=float)
    metric = challenger.row_metric
    tags = {
        "champion_metric_value": repr(float(metric(theirs, rows))),
        "gate_challenger_value": repr(float(metric(mine, rows))),
        "gate_rows": str(len(rows)),
        "gate_rows_rule": rule[:250],
    }
    if spec.promotion_rule == "not_credibly_worse":

        def defined(predictions: np.ndarray, drawn: np.ndarray) -> float:
            try:
                return metric(predictions, drawn)
            except EvaluationError:
                return float("nan")  # a resample the metric is undefined on

        difference = paired_difference(
            defined,
            mine,
            theirs,
            rows=rows,
            resamples=spec.promotion_resamples,
            confidence=spec.promotion_confidence,
            maximize=spec.direction == "maximize",
            random_state=random_state,
        )
        tags["gate_difference_upper"] = repr(difference.upper)
        tags["gate_share_worse"] = repr(difference.share_worse)
    return tags


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


def refitted(
    spec: ModelSpec, challenger: Challenger
) -> tuple[Any, dict[str, str], list[str], dict[str, str]]:
    """(model to register, card windows, card notes, version tags): the judged model, or with
    the spec's ``holdout.refit`` the same spec refitted on training + holdout rows, so the
    champion learns from the newest results too. Its holdout figures stay those of the judged
    fit (a refitted model has no unseen rows to be judged on); the card says so."""
    if not spec.refit or challenger.refit is None:
        return challenger.model, dict(challenger.windows), [], {}
    model = challenger.refit()
    through = str(pd.to_datetime(challenger.holdout["contacted_at"]).max())
    windows = {
        **challenger.windows,
        "evaluated_fit": "training window only; holdout metrics are of that fit",
        "registered_fit": "refitted on training + holdout rows after the evaluation",
        "registered_fit_end": through,
    }
    notes = [
        f"The holdout metrics are those of the spec fitted on the training window "
        f"({challenger.params.get('training_rows', '?')} rows); the registered model is the same "
        f"spec refitted on training + holdout ({getattr(model, 'training_rows_', '?')} rows, "
        f"through {through}), "
        "which has not been judged on unseen rows. The next gate judges it only on rows after "
        f"{through}."
    ]
    return model, windows, notes, {FITTED_THROUGH_TAG: through}


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
        champion = champion_on_holdout(
            spec, challenger.champion_score, tracking_uri=mlflow.uri(), challenger=challenger
        )
        registered, windows, notes, refit_tags = refitted(spec, challenger)
        card = model_cards.build_card(
            spec,
            metrics=challenger.report.metrics,
            holdout=challenger.holdout,
            windows=windows,
            estimator=type(challenger.model).__name__,
            baseline=challenger.baseline,
            notes=notes,
            truth=model_cards.world_truth(),
        )
        metadata = register(
            context,
            spec=spec,
            model=registered,
            input_example=registered.input_frame(challenger.holdout),
            report=challenger.report,
            champion={**champion, **refit_tags},
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

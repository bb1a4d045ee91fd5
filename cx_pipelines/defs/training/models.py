"""Supervised model assets: propensity, uplift and attrition, trained from the specs in
``models/``, evaluated on a time-based holdout, logged and registered in MLflow.

Each asset trains a challenger, scores the current champion on the *same* holdout,
registers the challenger (alias ``challenger``) with both figures as version tags, and
stores a small per-offer × channel (or per-decile) evaluation table. The blocking check in
``checks.py`` then promotes it or keeps the champion and says why.

Propensity is one pooled model whose features include ``offer_type`` and ``channel``
(see ``cx_pipelines.ml.propensity``): it scores every offer × channel, including pairs no
past campaign used. Interaction results fed back by campaigns (warehouse table
``interaction_results``, same columns as ``offer_history``) are appended to the history
when that table exists.
"""

import base64
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from cx_pipelines import warehouse
from cx_pipelines.defs.training.resources import MlflowResource, mlflow_run_metadata
from cx_pipelines.features.observation import observation_end
from cx_pipelines.ml import evaluation, registry, training_data
from cx_pipelines.ml.evaluation import EvaluationError, Report
from cx_pipelines.ml.propensity import (
    InsufficientDataError,
    TrainingDataError,
    class_counts,
    fit_classifier,
    require_examples,
)
from cx_pipelines.ml.specs import ModelSpec, load_spec
from cx_pipelines.ml.uplift import fit_uplift_model

GROUP = "models"
KINDS = {"scikit-learn", "mlflow"}
INTERACTION_RESULTS = "interaction_results"
# Fewest examples of each outcome (and arm, for uplift) the holdout needs to judge a model.
MIN_HOLDOUT_EXAMPLES = 5


class TrainingConfig(dg.Config):
    """Seed of every random choice in training, and the as-of date (None: end of the data)."""

    random_state: int = 0
    as_of: str | None = None


def as_of_date(transactions: pd.DataFrame, as_of: str | None) -> pd.Timestamp:
    """Last instant of the observation window (inclusive)."""
    return observation_end(transactions, as_of=as_of) - pd.Timedelta(seconds=1)


def interaction_results() -> pd.DataFrame | None:
    """Campaign results fed back into training, when the campaigns domain has produced any."""
    if warehouse.table_exists(INTERACTION_RESULTS):
        return warehouse.read_table(INTERACTION_RESULTS)
    return None


def images_markdown(plots: dict[str, bytes]) -> dg.MetadataValue:
    """Plots embedded as base64 PNG images, shown on the asset's page."""
    parts = [
        f"**{name}**\n\n![{name}](data:image/png;base64,{base64.b64encode(image).decode()})"
        for name, image in plots.items()
    ]
    return dg.MetadataValue.md("\n\n".join(parts))


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
) -> dict[str, Any]:
    """Log and register the challenger; return the asset metadata describing it."""
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
    )
    registry.set_version_tags(spec.registered_name, version.version, champion, tracking_uri=uri)
    context.log.info(
        f"{spec.registered_name} v{version.version}: {spec.metric} {version.metric_value:.4f}"
        f"; champion {champion or 'none yet'}"
    )
    metadata: dict[str, Any] = {
        "model_name": spec.registered_name,
        "model_version": version.version,
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


def contact_frames(
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    transactions: pd.DataFrame,
    offer_history: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    fraction: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, holdout) contacts with customer features, history plus interaction results."""
    features = training_data.customer_features(customers, accounts, transactions, as_of=as_of)
    contacts = training_data.contacts(offer_history, interaction_results())
    contacts = contacts[contacts["contacted_at"] <= as_of]  # nothing after the as-of date
    frame = training_data.contact_frame(contacts, features)
    return training_data.split_latest_per_campaign(frame, fraction=fraction)


def segment_table(holdout: pd.DataFrame, predicted: np.ndarray, *, target: str) -> pd.DataFrame:
    """Per offer × channel: holdout contacts, observed and predicted rate, AUC when defined."""
    rows = []
    frame = holdout.assign(_predicted=predicted)
    for (offer, channel), group in frame.groupby(["offer_type", "channel"]):
        labels = group[target].astype(int)
        rows.append(
            {
                "offer_type": offer,
                "channel": channel,
                "holdout_contacts": len(group),
                "observed_rate": labels.mean(),
                "predicted_rate": group["_predicted"].mean(),
                "auc": evaluation.auc(labels, group["_predicted"])
                if labels.nunique() == 2
                else None,
            }
        )
    return pd.DataFrame(rows)


def uplift_table(holdout: pd.DataFrame, predicted: np.ndarray, *, target: str) -> pd.DataFrame:
    """Per offer × channel: contacts, observed uplift (null without both arms), predicted."""
    rows = []
    frame = holdout.assign(_predicted=predicted)
    for (offer, channel), group in frame.groupby(["offer_type", "channel"]):
        treated = group.loc[group["treated"], target].astype(int)
        control = group.loc[~group["treated"], target].astype(int)
        rows.append(
            {
                "offer_type": offer,
                "channel": channel,
                "holdout_contacts": len(group),
                "observed_uplift": treated.mean() - control.mean()
                if len(treated) and len(control)
                else None,
                "predicted_uplift": group["_predicted"].mean(),
            }
        )
    return pd.DataFrame(rows)


@dg.asset(group_name=GROUP, kinds=KINDS)
def propensity_models(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    mlflow: MlflowResource,
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    transactions: pd.DataFrame,
    offer_history: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    """Calibrated response propensity per offer type × channel (one pooled MLflow model)."""
    spec = load_spec("propensity")
    try:
        return _train_propensity(
            context, spec, config, mlflow, customers, accounts, transactions, offer_history
        )
    except InsufficientDataError as error:
        return not_trained(context, spec=spec, error=error, mlflow=mlflow)


def _train_propensity(
    context: dg.AssetExecutionContext,
    spec: ModelSpec,
    config: TrainingConfig,
    mlflow: MlflowResource,
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    transactions: pd.DataFrame,
    offer_history: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    """Train, judge and register the propensity challenger (raises InsufficientDataError)."""
    as_of = as_of_date(transactions, config.as_of)
    train, holdout = contact_frames(
        customers,
        accounts,
        transactions,
        offer_history,
        as_of=as_of,
        fraction=spec.holdout_fraction,
    )
    train, holdout = train[train["treated"]], holdout[holdout["treated"]]
    model = fit_classifier(train, spec, random_state=config.random_state)
    require_holdout_classes(holdout[spec.target], spec=spec, what="treated contacts' responses")
    predicted = model.predict_probability(holdout)
    report = evaluation.classifier_report(holdout[spec.target], predicted, name="propensity")
    champion = champion_on_holdout(
        spec,
        lambda champ: evaluation.auc(holdout[spec.target], champ.predict_probability(holdout)),
        tracking_uri=mlflow.uri(),
    )
    table = segment_table(holdout, predicted, target=spec.target)
    report.tables["offer_channel"] = table
    metadata = register(
        context,
        spec=spec,
        model=model,
        input_example=model.input_frame(holdout),
        report=report,
        champion=champion,
        mlflow=mlflow,
        params={"as_of": str(as_of), "training_rows": len(train), "features": model.features},
    )
    return dg.Output(table.assign(model_version=metadata["model_version"]), metadata=metadata)


@dg.asset(group_name=GROUP, kinds=KINDS)
def uplift_model(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    mlflow: MlflowResource,
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    transactions: pd.DataFrame,
    offer_history: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    """Incremental response to an offer (meta-learner on randomised treatment/control history)."""
    spec = load_spec("uplift")
    try:
        return _train_uplift(
            context, spec, config, mlflow, customers, accounts, transactions, offer_history
        )
    except InsufficientDataError as error:
        return not_trained(context, spec=spec, error=error, mlflow=mlflow)


def _train_uplift(
    context: dg.AssetExecutionContext,
    spec: ModelSpec,
    config: TrainingConfig,
    mlflow: MlflowResource,
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    transactions: pd.DataFrame,
    offer_history: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    """Train, judge and register the uplift challenger (raises InsufficientDataError)."""
    as_of = as_of_date(transactions, config.as_of)
    train, holdout = contact_frames(
        customers,
        accounts,
        transactions,
        offer_history,
        as_of=as_of,
        fraction=spec.holdout_fraction,
    )
    model = fit_uplift_model(train, spec, random_state=config.random_state)
    require_holdout_classes(holdout[spec.target], spec=spec, what="contacts' responses")
    require_holdout_classes(holdout["treated"], spec=spec, what="treated (1) / control (0) arms")
    predicted = model.predict(holdout)
    outcomes, treated = holdout[spec.target], holdout["treated"]
    report = evaluation.uplift_report(outcomes, treated, predicted, name="uplift")
    champion = champion_on_holdout(
        spec,
        lambda champ: evaluation.qini_coefficient(outcomes, treated, champ.predict(holdout)),
        tracking_uri=mlflow.uri(),
    )
    table = uplift_table(holdout, predicted, target=spec.target)
    report.tables["offer_channel"] = table
    metadata = register(
        context,
        spec=spec,
        model=model,
        input_example=model.input_frame(holdout),
        report=report,
        champion=champion,
        mlflow=mlflow,
        params={"as_of": str(as_of), "training_rows": len(train), "features": model.features},
    )
    return dg.Output(table.assign(model_version=metadata["model_version"]), metadata=metadata)


@dg.asset(group_name=GROUP, kinds=KINDS)
def attrition_model(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    mlflow: MlflowResource,
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    transactions: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    """Risk that an active customer makes no purchase in the next 90 days (calibrated)."""
    spec = load_spec("attrition")
    try:
        return _train_attrition(context, spec, config, mlflow, customers, accounts, transactions)
    except InsufficientDataError as error:
        return not_trained(context, spec=spec, error=error, mlflow=mlflow)


def _train_attrition(
    context: dg.AssetExecutionContext,
    spec: ModelSpec,
    config: TrainingConfig,
    mlflow: MlflowResource,
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    transactions: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    """Train, judge and register the attrition challenger (raises InsufficientDataError)."""
    as_of = as_of_date(transactions, config.as_of)
    train, holdout = training_data.attrition_split(
        customers, accounts, transactions, world_end=as_of, window_days=spec.holdout_days
    )
    model = fit_classifier(train, spec, random_state=config.random_state)
    require_holdout_classes(holdout[spec.target], spec=spec, what="customers' attrition")
    predicted = model.predict_probability(holdout)
    report = evaluation.classifier_report(holdout[spec.target], predicted, name="attrition")
    champion = champion_on_holdout(
        spec,
        lambda champ: evaluation.auc(holdout[spec.target], champ.predict_probability(holdout)),
        tracking_uri=mlflow.uri(),
    )
    metadata = register(
        context,
        spec=spec,
        model=model,
        input_example=model.input_frame(holdout),
        report=report,
        champion=champion,
        mlflow=mlflow,
        params={
            "training_cutoff": str(as_of - timedelta(days=2 * spec.holdout_days)),
            "holdout_cutoff": str(as_of - timedelta(days=spec.holdout_days)),
            "training_rows": len(train),
            "features": model.features,
        },
    )
    table = report.tables["gains"].assign(model_version=metadata["model_version"])
    return dg.Output(table, metadata=metadata)


SUPERVISED_ASSETS = [propensity_models, uplift_model, attrition_model]
SPEC_OF_ASSET = {
    "propensity_models": "propensity",
    "uplift_model": "uplift",
    "attrition_model": "attrition",
}

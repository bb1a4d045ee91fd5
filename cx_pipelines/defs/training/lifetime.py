"""Buy-till-you-die score assets: hit-and-run, dormancy and future spend, each evaluated on a
time-based holdout (fit up to end − holdout days, judged on what happened after) and logged
to MLflow as a run with its holdout metrics beside a simple baseline."""

import tempfile
from datetime import timedelta
from pathlib import Path

import dagster as dg
import mlflow as mlflow_client
import pandas as pd

from cx_pipelines.defs.training.challenger import (
    GROUP,
    TrainingConfig,
    as_of_date,
    images_markdown,
)
from cx_pipelines.defs.training.resources import MlflowResource, mlflow_run_metadata
from cx_pipelines.defs.training.scores import usable_champion
from cx_pipelines.ml import evaluation, lifetime, registry, training_data
from cx_pipelines.ml.errors import EvaluationError
from cx_pipelines.ml.specs import ModelSpec, load_spec
from cx_pipelines.ml.supervised import score_frame
from cx_pipelines.ml.supervised.dormancy import dormancy_windows

LIFETIME_KINDS = {"python", "mlflow"}


def log_evaluation(
    spec: ModelSpec,
    metrics: dict[str, float],
    params: dict[str, str],
    mlflow: MlflowResource,
    plots: dict[str, bytes] | None = None,
    *,
    skipped: str | None = None,
) -> dict[str, dg.MetadataValue]:
    """Log the holdout evaluation as an MLflow run; return metadata linking it.

    ``skipped`` says why there are no holdout metrics (too little history to judge): the
    scores are still produced, since BTYD models need no holdout to be fitted.
    """
    uri = mlflow.configure()
    experiment_id = registry.ensure_experiment(tracking_uri=uri)
    with mlflow_client.start_run(
        experiment_id=experiment_id, run_name=f"evaluate-{spec.name}"
    ) as run:
        mlflow_client.log_params(
            {"spec": spec.name, "estimator.class": spec.estimator_class, **params}
        )
        mlflow_client.log_metrics({key: float(value) for key, value in metrics.items()})
        mlflow_client.set_tags({"cx.spec": spec.name})
        if skipped:
            mlflow_client.set_tag("cx.holdout_evaluation", f"not evaluated: {skipped}"[:500])
        with tempfile.TemporaryDirectory() as folder:
            for name, image in (plots or {}).items():
                path = Path(folder) / f"{name}.png"
                path.write_bytes(image)
                mlflow_client.log_artifact(str(path), artifact_path="plots")
    metadata = {
        "holdout_metrics": dg.MetadataValue.json(metrics),
        **mlflow_run_metadata(
            uri,
            experiment_id=experiment_id,
            run_id=run.info.run_id,
            artifact_uri=run.info.artifact_uri,
        ),
    }
    if _metric_key(spec) in metrics:
        metadata[f"holdout_{spec.metric}"] = dg.MetadataValue.float(
            float(metrics[_metric_key(spec)])
        )
    if skipped:
        metadata["holdout_evaluation"] = dg.MetadataValue.text(f"not evaluated: {skipped}")
    if plots:
        metadata["plots"] = images_markdown(plots)
    return metadata


def hit_and_run_evaluation(
    transactions: pd.DataFrame, *, cutoff: pd.Timestamp, as_of: pd.Timestamp
) -> tuple[dict[str, float], dict[str, bytes]]:
    """AUC (and the recency baseline's) of one-time buyers returning after ``cutoff``, gains."""
    holdout = training_data.hit_and_run_holdout(transactions, cutoff=cutoff, as_of=as_of)
    returned, probability = holdout["returned"], holdout["probability_ever_again"]
    metrics = {
        "auc": evaluation.auc(returned, probability),
        "baseline_auc": evaluation.auc(returned, -holdout["T"]),
        "holdout_customers": float(len(holdout)),
        "holdout_return_rate": float(returned.mean()),
    }
    return metrics, {"gains": evaluation.gains_plot(returned, probability, title="hit-and-run")}


def dormancy_evaluation(
    transactions: pd.DataFrame, *, cutoff: pd.Timestamp, dormant_days: int, horizon_days: int
) -> tuple[dict[str, float], dict[str, bytes]]:
    """AUC, calibration and gains of reactivation after ``cutoff``, beside a recency baseline."""
    holdout = training_data.dormancy_holdout(
        transactions, cutoff=cutoff, dormant_days=dormant_days, horizon_days=horizon_days
    )
    reactivated = holdout["reactivated"]
    report = evaluation.classifier_report(
        reactivated, holdout["probability_reactivation"], name="dormancy"
    )
    metrics = dict(report.metrics)
    metrics["baseline_auc"] = evaluation.auc(reactivated, -holdout["days_since_last_spend"])
    return metrics, report.plots


def _metric_key(spec: ModelSpec) -> str:
    return "mae" if spec.metric == "mean_absolute_error" else spec.metric


def champion_scores(
    context: dg.AssetExecutionContext,
    spec: ModelSpec,
    mlflow: MlflowResource,
    tables: dict[str, pd.DataFrame],
    *,
    as_of: pd.Timestamp,
) -> tuple[pd.DataFrame | None, dict[str, dg.MetadataValue]]:
    """The family's rows at ``as_of`` scored by the registered champion, with metadata naming
    it; (None, why not) when there is no usable champion (too little data to register one)."""
    uri = mlflow.configure()
    found, reason = usable_champion(context, spec.name, tracking_uri=uri)
    if found is None:
        return None, {"champion_missing": dg.MetadataValue.text(str(reason))}
    model, version = found
    frame = score_frame(model, spec, tables, as_of=as_of)
    run_id = registry.client(uri).get_model_version(spec.registered_name, version).run_id
    used = f"{spec.registered_name}/{version} ({type(model).__name__})"
    return frame, {"model_used": dg.MetadataValue.text(used), "mlflow_run_id": run_id}


def fallback_metadata(
    spec: ModelSpec,
    mlflow: MlflowResource,
    metrics: dict[str, float],
    params: dict[str, str],
    plots: dict[str, bytes],
    *,
    skipped: str | None,
    why: dict[str, dg.MetadataValue],
) -> dict[str, dg.MetadataValue]:
    """Metadata of scores from an MBG/NBD fitted in this run (no champion to use)."""
    metadata = log_evaluation(spec, metrics, params, mlflow, plots, skipped=skipped)
    metadata["model_used"] = dg.MetadataValue.text(
        f"MBG/NBD fitted in this run (no usable {spec.registered_name} champion)"
    )
    return metadata | why


@dg.asset(group_name=GROUP, kinds=LIFETIME_KINDS, deps=["hit_and_run_model"])
def hit_and_run_scores(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    mlflow: MlflowResource,
    rfm_summary: pd.DataFrame,
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    transactions: pd.DataFrame,
    offer_history: pd.DataFrame,
    interactions: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    """One-time buyers ranked by the probability of buying again (champion model, else MBG/NBD)."""
    spec = load_spec("hit_and_run")
    as_of = as_of_date(transactions, config.as_of)
    tables = {
        "customers": customers,
        "accounts": accounts,
        "transactions": transactions,
        "offer_history": offer_history,
        "interactions": interactions,
    }
    scored, why = champion_scores(context, spec, mlflow, tables, as_of=as_of)
    if scored is not None:
        frame = scored[["customer_id"]].assign(probability_ever_again=scored["probability"])
        why["score"] = dg.MetadataValue.text(
            f"P(buys again within {spec.holdout_days} days), from the champion"
        )
        return dg.Output(lifetime.rank_by(frame, "probability_ever_again"), metadata=why)
    scores = lifetime.hit_and_run_scores(rfm_summary)
    cutoff = as_of - timedelta(days=spec.holdout_days)
    metrics, plots, skipped = {}, {}, None
    try:
        metrics, plots = hit_and_run_evaluation(transactions, cutoff=cutoff, as_of=as_of)
    except EvaluationError as error:
        skipped = str(error)
    params = {"holdout_start": str(cutoff), "as_of": str(as_of)}
    metadata = fallback_metadata(spec, mlflow, metrics, params, plots, skipped=skipped, why=why)
    metadata["score"] = dg.MetadataValue.text("P(ever buys again), MBG/NBD")
    return dg.Output(scores, metadata=metadata)


@dg.asset(group_name=GROUP, kinds=LIFETIME_KINDS, deps=["dormancy_model"])
def dormancy_scores(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    mlflow: MlflowResource,
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    transactions: pd.DataFrame,
    offer_history: pd.DataFrame,
    interactions: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    """Accounts without spending for 90 days ranked by the chance they spend within 90 days."""
    spec = load_spec("dormancy")
    dormant_days, horizon_days = dormancy_windows(spec)
    as_of = as_of_date(transactions, config.as_of)
    tables = {
        "customers": customers,
        "accounts": accounts,
        "transactions": transactions,
        "offer_history": offer_history,
        "interactions": interactions,
    }
    scored, why = champion_scores(context, spec, mlflow, tables, as_of=as_of)
    if scored is not None:
        frame = scored[["account_id", "customer_id", "days_since_last_spend"]].assign(
            probability_reactivation=scored["probability"]
        )
        return dg.Output(lifetime.rank_by(frame, "probability_reactivation"), metadata=why)
    scores = lifetime.dormancy_scores(
        transactions, as_of=as_of, dormant_days=dormant_days, horizon_days=horizon_days
    )
    cutoff = as_of - timedelta(days=spec.holdout_days)
    metrics, plots, skipped = {}, {}, None
    try:
        metrics, plots = dormancy_evaluation(
            transactions, cutoff=cutoff, dormant_days=dormant_days, horizon_days=horizon_days
        )
    except EvaluationError as error:
        skipped = str(error)
    params = {"holdout_start": str(cutoff)}
    metadata = fallback_metadata(spec, mlflow, metrics, params, plots, skipped=skipped, why=why)
    return dg.Output(scores, metadata=metadata)


@dg.asset(group_name=GROUP, kinds=LIFETIME_KINDS)
def spend_forecast(
    config: TrainingConfig,
    mlflow: MlflowResource,
    rfm_summary: pd.DataFrame,
    transactions: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    """Expected transactions, spend and discounted CLV per customer over the next 12 months."""
    spec = load_spec("spend_forecast")
    params = spec.estimator_params
    as_of = as_of_date(transactions, config.as_of)
    forecast = lifetime.spend_forecast(
        rfm_summary,
        periods=int(params.get("periods", 12)),
        discount_rate=float(params.get("monthly_discount_rate", 0.01)),
        period_length=float(params.get("period_length_weeks", 4.345)),
    )
    cutoff = as_of - timedelta(days=spec.holdout_days)
    metrics = lifetime.evaluate_spend_forecast(
        transactions, calibration_period_end=cutoff, observation_period_end=as_of
    )
    metadata = log_evaluation(spec, metrics, {"holdout_start": str(cutoff)}, mlflow)
    return dg.Output(forecast, metadata=metadata)


LIFETIME_ASSETS = [hit_and_run_scores, dormancy_scores, spend_forecast]

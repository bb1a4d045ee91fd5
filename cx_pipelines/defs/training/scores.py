"""``customer_scores``: every model's output joined per customer, with the versions used.

Columns: ``propensity__<offer>__<channel>`` and ``uplift__<offer>__<channel>`` for every
offer type × channel, ``uplift_sd__<offer>__<channel>`` (the posterior standard deviation of
the uplift, null for a model without a posterior; targeting's Thompson draws read it),
``attrition_risk``, ``probability_ever_again`` (hit-and-run),
``dormant_account_reactivation`` (best dormant account), the spend forecast
(``expected_transactions``, ``expected_spend``, ``clv``, ``probability_alive``),
``<model>_model_version`` (``cx_propensity/3``) and ``<score>_mlflow_run`` for the BTYD
scores. A score is null where the model does not apply (attrition and spend for customers
who never bought, hit-and-run for customers with more than one purchase, reactivation for
customers with no dormant account) and, for every customer, where the model has no champion
because there was too little data to train it: then its ``<model>_model_version`` is null
and the asset's ``missing_scores`` metadata gives the reason.

Propensity and uplift depend on the customer's contact pressure
(``recent_treated_contacts``), so they are scored *as of the decision date* the campaigns
use (``CX_DECISION_DATE``, else the day after the data): the treated contacts of the 28
days before it, from ``offer_history``, ``interaction_results`` and the exports' decision
logs (contacts whose results have not come back yet). The column ``recent_treated_contacts``
and the metadata ``scored_for_decision_date`` say which pressure the scores saw; the loop
re-materialises this asset on every decision date.
"""

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from cx_pipelines import config as cx_config
from cx_pipelines.defs.decision_date import decision_date as decision_date_of
from cx_pipelines.defs.training.challenger import GROUP, KINDS, TrainingConfig, as_of_date
from cx_pipelines.defs.training.models import SPEC_OF_ASSET, interaction_results
from cx_pipelines.defs.training.resources import MlflowResource
from cx_pipelines.ml import registry, training_data
from cx_pipelines.ml.specs import load_spec
from cx_pipelines.ml.supervised import attrition, propensity, uplift
from cx_pipelines.source_schema import OFFER_CHANNELS, OFFER_TYPES

ASSET_OF_SPEC = {spec: asset for asset, spec in SPEC_OF_ASSET.items()}


def champion(spec_name: str, *, tracking_uri: str) -> tuple[object, str] | None:
    """The champion model of a spec and its version, or None when there is none."""
    name = load_spec(spec_name).registered_name
    version = registry.version_for_alias(name, registry.CHAMPION, tracking_uri=tracking_uri)
    if version is None:
        return None
    return registry.load_model(name, version, tracking_uri=tracking_uri), version


def not_trained_reason(context: dg.AssetExecutionContext, spec_name: str) -> str | None:
    """The reason the latest run of the model's training asset trained nothing, if it did."""
    event = context.instance.get_latest_materialization_event(dg.AssetKey(ASSET_OF_SPEC[spec_name]))
    if event is None or event.asset_materialization is None:
        return None
    entry = event.asset_materialization.metadata.get("not_trained_reason")
    return str(entry.value) if entry is not None else None


def usable_champion(
    context: dg.AssetExecutionContext, spec_name: str, *, tracking_uri: str
) -> tuple[tuple[object, str] | None, str | None]:
    """(champion model and version, None), or (None, why this model's scores are missing).

    When the latest training run found too little data, an older champion was trained on
    data the book no longer holds (another data set loaded, a shrunken book), so it is not
    used either.
    """
    name = load_spec(spec_name).registered_name
    reason = not_trained_reason(context, spec_name)
    version = registry.version_for_alias(name, registry.CHAMPION, tracking_uri=tracking_uri)
    if reason is not None:
        if version is not None:
            reason += f" (champion v{version} was trained on earlier data and is not used)"
        return None, reason
    found = champion(spec_name, tracking_uri=tracking_uri)
    if found is None:
        asset_name = ASSET_OF_SPEC[spec_name]
        return None, f"{name} has no champion; materialise {asset_name} and let its gate pass"
    return found, None


def offer_channel_columns(prefix: str) -> list[str]:
    """``<prefix>__<offer>__<channel>`` for every offer type × channel."""
    return [f"{prefix}__{offer}__{channel}" for offer in OFFER_TYPES for channel in OFFER_CHANNELS]


def lifetime_run_id(context: dg.AssetExecutionContext, asset_name: str) -> str:
    """MLflow run of the latest materialisation of a BTYD score asset ("unknown" if none)."""
    event = context.instance.get_latest_materialization_event(dg.AssetKey(asset_name))
    if event is None or event.asset_materialization is None:
        return "unknown"
    entry = event.asset_materialization.metadata.get("mlflow_run_id")
    return str(entry.value) if entry is not None else "unknown"


def pending_contacts(exports_dir: Path, known: pd.Series) -> pd.DataFrame:
    """Treated contacts in the exports' decision logs whose results are not in ``known``
    (contact ids of the contact history): decided, sent, not yet answered."""
    frames = []
    for path in sorted(exports_dir.glob("*/*/decisions.parquet")):
        columns = ["contact_id", "customer_id", "group", "decided_at"]
        frame = pq.read_table(path, columns=columns).to_pandas()
        frames.append(frame[frame["group"] == "treated"])
    if not frames:
        return pd.DataFrame(columns=["customer_id", "treated", "contacted_at"])
    log = pd.concat(frames, ignore_index=True)
    log = log[~log["contact_id"].astype(str).isin(known.dropna().astype(str))]
    return pd.DataFrame(
        {
            "customer_id": log["customer_id"].to_numpy(),
            "treated": True,
            "contacted_at": pd.to_datetime(log["decided_at"]).to_numpy(),
        }
    )


def contact_pressure_history(offer_history: pd.DataFrame) -> pd.DataFrame:
    """Every treated contact the platform knows of: history, results and pending exports."""
    results = interaction_results()
    known = pd.concat(
        [frame["contact_id"] for frame in (offer_history, results) if frame is not None
         and "contact_id" in frame],
        ignore_index=True,
    )  # fmt: skip
    history = training_data.contacts(offer_history, results)
    pending = pending_contacts(cx_config.exports_dir(), known)
    return pd.concat([history[pending.columns.tolist()], pending], ignore_index=True)


@dg.asset(
    group_name=GROUP,
    kinds=KINDS | {"pandas"},
    deps=["propensity_models", "uplift_model", "attrition_model"],
)
def customer_scores(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    mlflow: MlflowResource,
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    transactions: pd.DataFrame,
    offer_history: pd.DataFrame,
    hit_and_run_scores: pd.DataFrame,
    dormancy_scores: pd.DataFrame,
    spend_forecast: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    """One row per customer: every model's score (champions) and the model versions used."""
    uri = mlflow.configure()
    as_of = as_of_date(transactions, config.as_of)
    features = training_data.customer_features(customers, accounts, transactions, as_of=as_of)
    decision_date = pd.Timestamp(decision_date_of(transactions))
    features = training_data.contact_recency(
        features, contact_pressure_history(offer_history), at=decision_date
    )
    models, missing = {}, {}
    for name in ("propensity", "uplift", "attrition"):
        models[name], reason = usable_champion(context, name, tracking_uri=uri)
        if reason is not None:
            missing[name] = reason
    for reason in missing.values():
        context.log.warning(f"customer_scores without this model's scores: {reason}")

    frame = pd.DataFrame(
        {
            "customer_id": features["customer_id"].to_numpy(),
            training_data.RECENCY_FEATURE: features[training_data.RECENCY_FEATURE].to_numpy(),
        }
    )
    for prefix, name, scorer in (
        ("propensity", "propensity", propensity.score_offer_channels),
        ("uplift", "uplift", uplift.score_offer_channels),
        ("uplift_sd", "uplift", uplift.score_offer_channel_spread),
    ):
        model = models[name][0] if models[name] else None
        if model is None or (prefix == "uplift_sd" and not model.reports_spread):
            for column in offer_channel_columns(prefix):
                frame[column] = np.nan
            continue
        frame = frame.merge(
            scorer(model, features, offer_types=OFFER_TYPES, channels=OFFER_CHANNELS),
            on="customer_id",
        )
    frame["attrition_risk"] = np.nan
    if models["attrition"] is not None:
        attrition_features = training_data.customer_features(
            customers, accounts, transactions, as_of=as_of, open_accounts_only=False
        )
        risk = attrition.attrition_risk(models["attrition"][0], attrition_features)
        frame["attrition_risk"] = risk.reindex(frame["customer_id"]).to_numpy()
    hit_and_run = hit_and_run_scores.set_index("customer_id")["probability_ever_again"]
    frame["probability_ever_again"] = frame["customer_id"].map(hit_and_run)
    reactivation = dormancy_scores.groupby("customer_id")["probability_reactivation"].max()
    frame["dormant_account_reactivation"] = frame["customer_id"].map(reactivation)
    forecast = spend_forecast.set_index("customer_id")
    for column in ("expected_transactions", "expected_spend", "clv", "probability_alive"):
        frame[column] = frame["customer_id"].map(forecast[column])
    versions = {
        f"{name}_model_version": f"cx_{name}/{found[1]}" if found else None
        for name, found in models.items()
    }
    # BTYD scores are refitted on every run rather than registered; their MLflow
    # evaluation run identifies what was used.
    for asset_name in ("hit_and_run_scores", "dormancy_scores", "spend_forecast"):
        versions[f"{asset_name}_mlflow_run"] = lifetime_run_id(context, asset_name)
    for column, value in versions.items():
        frame[column] = value
    return dg.Output(
        frame,
        metadata={
            **{
                key: dg.MetadataValue.text(value or "none: scores missing")
                for key, value in versions.items()
            },
            "missing_scores": dg.MetadataValue.json(missing),
            "as_of": str(as_of),
            "scored_for_decision_date": decision_date.date().isoformat(),
            "customers_with_recent_contacts": int((frame[training_data.RECENCY_FEATURE] > 0).sum()),
            "score_columns": len(frame.columns) - 2 - len(versions),
        },
    )

"""``customer_scores``: every model's output joined per customer, with the versions used.

Columns: ``propensity__<offer>__<channel>`` and ``uplift__<offer>__<channel>`` for every
offer type × channel, ``attrition_risk``, ``probability_ever_again`` (hit-and-run),
``dormant_account_reactivation`` (best dormant account), the spend forecast
(``expected_transactions``, ``expected_spend``, ``clv``, ``probability_alive``),
``<model>_model_version`` (``cx_propensity/3``) and ``<score>_mlflow_run`` for the BTYD
scores. A score is null only where the model does not apply: attrition and spend for
customers who never bought, hit-and-run for customers with more than one purchase,
reactivation for customers with no dormant account.
"""

import dagster as dg
import pandas as pd

from cx_pipelines.defs.training.models import GROUP, KINDS, TrainingConfig, as_of_date
from cx_pipelines.defs.training.resources import MlflowResource
from cx_pipelines.ml import propensity, registry, training_data, uplift
from cx_pipelines.ml.specs import load_spec
from cx_pipelines.source_schema import OFFER_CHANNELS, OFFER_TYPES


def champion(spec_name: str, *, tracking_uri: str) -> tuple[object, str]:
    """The champion model of a spec and its version, or a clear error when there is none."""
    name = load_spec(spec_name).registered_name
    version = registry.version_for_alias(name, registry.CHAMPION, tracking_uri=tracking_uri)
    if version is None:
        raise registry.RegistryError(
            f"{name} has no champion; materialise its training asset and let its promotion "
            "check pass first"
        )
    return registry.load_model(name, version, tracking_uri=tracking_uri), version


def lifetime_run_id(context: dg.AssetExecutionContext, asset_name: str) -> str:
    """MLflow run of the latest materialisation of a BTYD score asset ("unknown" if none)."""
    event = context.instance.get_latest_materialization_event(dg.AssetKey(asset_name))
    if event is None or event.asset_materialization is None:
        return "unknown"
    entry = event.asset_materialization.metadata.get("mlflow_run_id")
    return str(entry.value) if entry is not None else "unknown"


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
    hit_and_run_scores: pd.DataFrame,
    dormancy_scores: pd.DataFrame,
    spend_forecast: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    """One row per customer: every model's score (champions) and the model versions used."""
    uri = mlflow.configure()
    as_of = as_of_date(transactions, config.as_of)
    features = training_data.customer_features(customers, accounts, transactions, as_of=as_of)
    propensity_model, propensity_version = champion("propensity", tracking_uri=uri)
    uplift_model, uplift_version = champion("uplift", tracking_uri=uri)
    attrition_model, attrition_version = champion("attrition", tracking_uri=uri)

    frame = propensity.score_offer_channels(
        propensity_model, features, offer_types=OFFER_TYPES, channels=OFFER_CHANNELS
    )
    frame = frame.merge(
        uplift.score_offer_channels(
            uplift_model, features, offer_types=OFFER_TYPES, channels=OFFER_CHANNELS
        ),
        on="customer_id",
    )
    attrition_features = training_data.customer_features(
        customers, accounts, transactions, as_of=as_of, open_accounts_only=False
    )
    frame["attrition_risk"] = (
        pd.Series(
            attrition_model.predict_probability(attrition_features),
            index=attrition_features["customer_id"].to_numpy(),
        )
        .reindex(frame["customer_id"])
        .to_numpy()
    )
    frame.loc[
        ~frame["customer_id"].isin(
            attrition_features.loc[attrition_features["purchases_total"] > 0, "customer_id"]
        ),
        "attrition_risk",
    ] = None  # never bought: attrition is undefined, not 0
    hit_and_run = hit_and_run_scores.set_index("customer_id")["probability_ever_again"]
    frame["probability_ever_again"] = frame["customer_id"].map(hit_and_run)
    reactivation = dormancy_scores.groupby("customer_id")["probability_reactivation"].max()
    frame["dormant_account_reactivation"] = frame["customer_id"].map(reactivation)
    forecast = spend_forecast.set_index("customer_id")
    for column in ("expected_transactions", "expected_spend", "clv", "probability_alive"):
        frame[column] = frame["customer_id"].map(forecast[column])
    versions = {
        "propensity_model_version": f"cx_propensity/{propensity_version}",
        "uplift_model_version": f"cx_uplift/{uplift_version}",
        "attrition_model_version": f"cx_attrition/{attrition_version}",
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
            **{key: dg.MetadataValue.text(value) for key, value in versions.items()},
            "as_of": str(as_of),
            "score_columns": len(frame.columns) - 1 - len(versions),
        },
    )

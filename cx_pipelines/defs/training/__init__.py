"""Dagster definitions for the training domain: supervised models with MLflow champion/challenger
promotion, buy-till-you-die scores, the joined ``customer_scores``, and weekly retraining."""

import dagster as dg

from cx_pipelines.defs.training.challenger import GROUP
from cx_pipelines.defs.training.checks import PROMOTION_CHECKS
from cx_pipelines.defs.training.lifetime import LIFETIME_ASSETS
from cx_pipelines.defs.training.lifetime_models import LIFETIME_MODEL_ASSETS
from cx_pipelines.defs.training.models import SUPERVISED_ASSETS
from cx_pipelines.defs.training.resources import MlflowResource
from cx_pipelines.defs.training.scores import customer_scores
from cx_pipelines.defs.training.sensors import retrain_on_new_results

model_retraining = dg.define_asset_job(
    "model_retraining",
    selection=dg.AssetSelection.groups(GROUP),
    description="Retrain every model (with interaction results fed back), gate, and rescore.",
)

weekly_model_retraining = dg.ScheduleDefinition(
    name="weekly_model_retraining",
    job=model_retraining,
    cron_schedule="0 3 * * 1",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every Monday 03:00 UTC: retrain, promote only challengers that beat champions.",
)

defs = dg.Definitions(
    assets=[*SUPERVISED_ASSETS, *LIFETIME_ASSETS, customer_scores, *LIFETIME_MODEL_ASSETS],
    asset_checks=PROMOTION_CHECKS,
    jobs=[model_retraining],
    schedules=[weekly_model_retraining],
    sensors=[retrain_on_new_results],
    resources={"mlflow": MlflowResource()},
)

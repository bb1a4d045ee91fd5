"""Dagster definitions for the decisioning domain: strategy catalog and population decisions."""

import dagster as dg

from cx_pipelines.defs.decisioning.assets import (
    GROUP,
    StrategyRepository,
    every_customer_is_decided,
    periodic_review_decisions,
    strategies_pass_validation_and_golden_cases,
    strategy_catalog,
)
from cx_pipelines.defs.decisioning.intelligence import (
    customer_intelligence_record,
    every_customer_has_a_record_per_channel,
)
from cx_pipelines.defs.decisioning.online import OnlineStoreResource, online_features

periodic_review_job = dg.define_asset_job(
    "periodic_review",
    selection=dg.AssetSelection.groups(GROUP),
    description="Validate every strategy, then decide the whole population (seed 004 FIG. 2).",
)

periodic_review_schedule = dg.ScheduleDefinition(
    name="monthly_periodic_review",
    job=periodic_review_job,
    cron_schedule="0 3 1 * *",  # a routine evaluation date: the 1st of every month, 03:00
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

defs = dg.Definitions(
    assets=[strategy_catalog, periodic_review_decisions],
    asset_checks=[strategies_pass_validation_and_golden_cases, every_customer_is_decided],
    jobs=[periodic_review_job],
    schedules=[periodic_review_schedule],
    resources={"strategies": StrategyRepository()},
)
defs = dg.Definitions.merge(
    defs,
    dg.Definitions(
        assets=[customer_intelligence_record, online_features],
        asset_checks=[every_customer_has_a_record_per_channel],
        resources={"online_store": OnlineStoreResource()},
    ),
)

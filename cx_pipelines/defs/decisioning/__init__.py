"""Dagster definitions for the decisioning domain: strategy catalog and population decisions."""

import dagster as dg

from cx_pipelines.defs.decisioning.assets import (
    StrategyRepository,
    every_customer_is_decided,
    periodic_review_decisions,
    strategies_pass_validation_and_golden_cases,
    strategy_catalog,
)

defs = dg.Definitions(
    assets=[strategy_catalog, periodic_review_decisions],
    asset_checks=[strategies_pass_validation_and_golden_cases, every_customer_is_decided],
    resources={"strategies": StrategyRepository()},
)

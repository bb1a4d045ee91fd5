"""Dagster definitions for the feedback domain: interaction results (with their inbox sensor
and checks) and the strategy-performance cube."""

import dagster as dg

from cx_pipelines.defs.feedback.assets import interaction_results, strategy_performance
from cx_pipelines.defs.feedback.checks import FEEDBACK_CHECKS
from cx_pipelines.defs.feedback.sensors import inbox_sensor, interaction_results_job

defs = dg.Definitions(
    assets=[interaction_results, strategy_performance],
    asset_checks=FEEDBACK_CHECKS,
    jobs=[interaction_results_job],
    sensors=[inbox_sensor],
)

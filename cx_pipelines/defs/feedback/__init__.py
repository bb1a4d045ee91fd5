"""Dagster definitions for the feedback domain: interaction results, their sensor and checks."""

import dagster as dg

from cx_pipelines.defs.feedback.assets import interaction_results
from cx_pipelines.defs.feedback.checks import FEEDBACK_CHECKS
from cx_pipelines.defs.feedback.sensors import inbox_sensor, interaction_results_job

defs = dg.Definitions(
    assets=[interaction_results],
    asset_checks=FEEDBACK_CHECKS,
    jobs=[interaction_results_job],
    sensors=[inbox_sensor],
)

"""Dagster definitions for the sources domain: validated ingestion of the source system."""

import dagster as dg

from cx_pipelines.defs.sources.assets import quarantined_rows, source_assets
from cx_pipelines.defs.sources.checks import quarantine_rate_checks
from cx_pipelines.defs.sources.resources import QuarantinePolicy, SourceDatabase

defs = dg.Definitions(
    assets=[*source_assets, quarantined_rows],
    asset_checks=quarantine_rate_checks,
    resources={"source_database": SourceDatabase(), "quarantine_policy": QuarantinePolicy()},
)

__all__ = ["QuarantinePolicy", "SourceDatabase", "defs"]

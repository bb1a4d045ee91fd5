"""Dagster definitions for the features domain: KPIs, segments, clusters, purchase patterns."""

import dagster as dg

from cx_pipelines.defs.features.assets import FEATURE_ASSETS
from cx_pipelines.defs.features.checks import FEATURE_CHECKS

defs = dg.Definitions(assets=FEATURE_ASSETS, asset_checks=FEATURE_CHECKS)

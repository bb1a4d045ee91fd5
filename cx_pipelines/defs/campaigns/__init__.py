"""Dagster definitions for the campaigns domain: catalog, targeting lists and exports."""

import dagster as dg

from cx_pipelines.defs.campaigns.assets import (
    campaign_catalog,
    campaign_settings_from_environment,
    campaign_targets,
)
from cx_pipelines.defs.campaigns.checks import (
    campaigns_validate,
    exports_reconcile_with_targets,
    one_offer_per_customer_within_caps,
)
from cx_pipelines.defs.campaigns.exports import campaign_exports

CAMPAIGN_ASSETS = [campaign_catalog, campaign_targets, campaign_exports]
CAMPAIGN_CHECKS = [
    campaigns_validate,
    one_offer_per_customer_within_caps,
    exports_reconcile_with_targets,
]

defs = dg.Definitions(
    assets=CAMPAIGN_ASSETS,
    asset_checks=CAMPAIGN_CHECKS,
    resources={"campaign_settings": campaign_settings_from_environment()},
)

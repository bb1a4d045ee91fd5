"""Campaigns and optimised targeting lists (SPEC S5, S6). Plain Python, no Dagster.

* :mod:`.catalog` — campaign YAML files (``strategies/campaigns/``), validated with
  file and line in every error; :mod:`.rules` — their eligibility rule form.
* :mod:`.optimiser` — :func:`assign`: one campaign per customer under the caps, with a
  certified optimality gap (Lagrangian prices, greedy repair, dual bound).
* :mod:`.population`, :mod:`.exploration`, :mod:`.draws` — what targeting reads, the
  bounded exploration of immature offer x channel pairs, deterministic random draws.
* :mod:`.targeting` — :func:`target`: the ranked lists with treated/control, selection
  probabilities and reason traces; :mod:`.exports` — the atomic batch decision log.
"""

from cx_pipelines.campaigns.catalog import (
    Campaign,
    CampaignError,
    CampaignValidationError,
    check_campaigns,
    load_campaigns,
)
from cx_pipelines.campaigns.optimiser import Assignment, assign
from cx_pipelines.campaigns.targeting import Targeting, TargetingSettings, target

__all__ = [
    "Assignment",
    "Campaign",
    "CampaignError",
    "CampaignValidationError",
    "Targeting",
    "TargetingSettings",
    "assign",
    "check_campaigns",
    "load_campaigns",
    "target",
]

"""What every policy of a cycle decides over: the same customers, eligibility and caps.

Rebuilt from the warehouse exactly as ``campaign_targets`` builds them (the campaigns
package's population attributes, campaign rules, the policy strategy's contact caps and
decline suppression, the day's control draws at the campaigns' control share, or the
experiment's while one that states it is active), so the oracle, random and propensity-only
policies face the learned policy's constraints and nothing else. Model scores are
knowledge, not a constraint: the learned policy may explore pairs its models do not score,
and so may the oracle; only the propensity-only policy needs a propensity score to value a
pair.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from cx_pipelines import warehouse
from cx_pipelines.loop.policies import CampaignEconomics

POLICY_STRATEGY = "omnichannel.yaml"
"""The strategy whose engagement policies ``campaign_targets`` applies (its default)."""


@dataclass(frozen=True)
class TargetingInputs:
    """Customers (rows) × active campaigns (columns) of one decision date."""

    customer_ids: np.ndarray
    economics: CampaignEconomics
    eligible: np.ndarray  # the campaign's rule holds and the contact policy allows it
    p_response: np.ndarray  # champion propensity (NaN where unscored)
    uplift: np.ndarray  # champion uplift (NaN where unscored)
    control: np.ndarray  # the day's control draw (a decided row here would be held out)


def economics_of(campaigns: list) -> CampaignEconomics:
    """The optimiser's view of a list of campaigns (``cx_pipelines.campaigns.Campaign``)."""
    return CampaignEconomics(
        campaign_id=tuple(c.campaign_id for c in campaigns),
        offer_type=tuple(c.offer for c in campaigns),
        channel=tuple(c.channel for c in campaigns),
        margin=np.array([c.margin_per_response for c in campaigns], dtype=float),
        cost=np.array([c.cost_per_contact for c in campaigns], dtype=float),
        budget=np.array([c.budget for c in campaigns], dtype=float),
        volume_cap=np.array([c.volume_cap for c in campaigns], dtype=float),
        control_share=np.array([c.control_share for c in campaigns], dtype=float),
    )


def strategies_folder(strategies_dir: Path | None = None) -> Path:
    """The strategies folder the decisioning assets use (``CX_STRATEGIES_DIR`` …)."""
    from cx_pipelines.defs.decisioning.assets import default_strategies_dir

    return Path(strategies_dir or default_strategies_dir())


def experiments_folder(strategies: Path) -> Path:
    """Where ``campaign_targets`` reads experiments (``CX_EXPERIMENTS_DIR`` …)."""
    from cx_pipelines.defs.campaigns.assets import EXPERIMENTS_VARIABLE

    configured = os.environ.get(EXPERIMENTS_VARIABLE)
    return Path(configured) if configured else strategies / "campaigns" / "experiments"


def _optional(name: str) -> pd.DataFrame | None:
    return warehouse.read_table(name) if warehouse.table_exists(name) else None


def population_inputs(day: date) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(population attributes, customer_scores, contact history) as targeting reads them."""
    from cx_pipelines.campaigns.population import (
        contact_history,
        population_attributes,
        service_contacts,
    )

    scores = warehouse.read_table("customer_scores")
    population = population_attributes(
        warehouse.read_table("customers"),
        warehouse.read_table("accounts"),
        warehouse.read_table("transactions"),
        as_of=pd.Timestamp(day),
        customer_scores=scores,
        segments=_optional("customer_segments"),
    )
    history = contact_history(
        warehouse.read_table("offer_history"), _optional("interaction_results"), service_contacts()
    )
    return population, scores, history


def eligibility(
    campaigns: list, population: pd.DataFrame, scores: pd.DataFrame, history: pd.DataFrame, *,
    day: date, strategy,
) -> TargetingInputs:  # fmt: skip
    """Eligibility and model scores of ``campaigns`` over ``population`` on ``day``."""
    from cx_pipelines.campaigns.draws import uniform
    from cx_pipelines.campaigns.population import contact_policy
    from cx_pipelines.campaigns.targeting import control_salt, score_matrix

    ids = population["customer_id"].to_numpy()
    rule_ok = np.column_stack(
        [c.eligibility.evaluate(population) for c in campaigns] or [np.zeros(len(ids), bool)]
    )
    policy = contact_policy(
        ids,
        campaigns,
        history,
        decision_date=pd.Timestamp(day),
        caps=[(cap.channel, cap.max, cap.period_days) for cap in strategy.contact_caps],
        decline_limit=strategy.decline_limit,
    )
    propensity = score_matrix(scores, ids, campaigns, "propensity")
    uplift = score_matrix(scores, ids, campaigns, "uplift")
    allowed = rule_ok & policy.allowed  # what targeting may contact (exploration needs no score)
    draws = [uniform(ids, control_salt(c, day)) < c.control_share for c in campaigns]
    control = np.column_stack(draws) if draws else np.zeros((len(ids), 0), dtype=bool)
    return TargetingInputs(ids, economics_of(campaigns), allowed, propensity, uplift, control)


def targeting_inputs(day: date, *, strategies_dir: Path | None = None) -> TargetingInputs:
    """The campaigns active on ``day`` over the population, as ``campaign_targets`` saw them."""
    from cx_pipelines.campaigns.catalog import load_campaigns
    from cx_pipelines.campaigns.experiment import active_experiment
    from cx_pipelines.engine import load_strategy

    folder = strategies_folder(strategies_dir)
    campaigns = [c for c in load_campaigns(folder / "campaigns") if c.active_on(day)]
    experiment = active_experiment(experiments_folder(folder), day)
    if experiment is not None and experiment.control_share is not None:
        campaigns = [replace(c, control_share=experiment.control_share) for c in campaigns]
    population, scores, history = population_inputs(day)
    strategy = load_strategy(folder / POLICY_STRATEGY)
    return eligibility(campaigns, population, scores, history, day=day, strategy=strategy)

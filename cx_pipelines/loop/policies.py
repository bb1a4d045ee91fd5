"""The yardsticks of the closed loop: the true value of a targeting choice, and the oracle,
random and propensity-only policies it is compared with.

Every policy is a value matrix (customers × campaigns, NaN where a customer is not
eligible, which carries the contact policy) handed to the same optimiser,
``cx_pipelines.campaigns.optimiser.assign``, with the same costs, budgets and volume caps,
so the policies differ only in what they believe a contact is worth. Each runs twice:

* **with the campaigns' control groups** (:func:`choose_with_controls`, the yardstick the
  targets are judged on): as ``campaign_targets`` decides, the policy ranks its rows on
  ``(1 - control_share) x value`` for the treated capacity over ``1 - control_share``, the
  day's control draw (the same draw, per customer, campaign and date) holds its share of
  them out, and the lowest-valued rows go until the treated ones fit. The control share is
  part of a campaign's definition (a randomised hold-out the oracle cannot see into), so
  every policy keeps it;
* **without control groups** (:func:`choose`): every decided row treated, the best a
  policy could do if the campaigns kept no hold-out (printed beside, never the target).

What they believe a contact is worth:

* **oracle**: the true incremental profit, ``margin × (p_treated − p_control) − cost``,
  from the world's truth (with the simulator's contact fatigue): the best any policy could
  do under the caps;
* **propensity-only**: ``margin × p_response − cost`` from the champion propensity model,
  the incumbents' "propensity × value", blind to customers who would respond anyway;
* **random**: a seeded uniform score for every eligible customer, so the budget is spent
  on eligible customers at random.

A choice is always scored with :func:`true_increment` (the truth), never with the models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cx_pipelines.source_schema import OFFER_CHANNELS, OFFER_TYPES
from cx_pipelines.world.simulator import WorldTruth


@dataclass(frozen=True)
class CampaignEconomics:
    """What the optimiser needs about the competing campaigns (one entry per campaign)."""

    campaign_id: tuple[str, ...]
    offer_type: tuple[str, ...]
    channel: tuple[str, ...]
    margin: np.ndarray
    cost: np.ndarray
    budget: np.ndarray
    volume_cap: np.ndarray
    control_share: np.ndarray  # the randomised hold-out of each campaign's decided rows

    def offer_codes(self) -> np.ndarray:
        return np.array([OFFER_TYPES.index(offer) for offer in self.offer_type])

    def channel_codes(self) -> np.ndarray:
        return np.array([OFFER_CHANNELS.index(channel) for channel in self.channel])


def true_increment(
    truth: WorldTruth,
    customer_ids: np.ndarray,
    economics: CampaignEconomics,
    *,
    recent: np.ndarray,
) -> np.ndarray:
    """True expected incremental profit of treating customer i with campaign j (n × m),
    with the simulator's fatigue from ``recent`` treated contacts."""
    rows = truth.positions(customer_ids)
    offers, channels = economics.offer_codes(), economics.channel_codes()
    result = np.empty((len(rows), len(offers)))
    for column, (offer, channel) in enumerate(zip(offers, channels, strict=True)):
        offer_column = np.full(len(rows), offer)
        treated = truth.treated_probability(rows, offer_column, np.full(len(rows), channel), recent)
        control = truth.control_probability(rows, offer_column)
        result[:, column] = economics.margin[column] * (treated - control) - economics.cost[column]
    return result


def action_values(
    truth: WorldTruth,
    actions: pd.DataFrame,
    economics: CampaignEconomics,
    *,
    recent: np.ndarray,
) -> np.ndarray:
    """True incremental profit of each action (rows ``customer_id``, ``campaign_id``)."""
    increment = true_increment(truth, actions["customer_id"].to_numpy(), economics, recent=recent)
    columns = pd.Index(economics.campaign_id).get_indexer(actions["campaign_id"])
    if (columns < 0).any():
        unknown = sorted(set(actions["campaign_id"][columns < 0]))
        raise ValueError(f"actions name campaigns {unknown} that the economics do not hold")
    return increment[np.arange(len(actions)), columns]


def choice_value(increment: np.ndarray, choice: np.ndarray) -> float:
    """Total true incremental profit of a choice (campaign index per customer, −1 none)."""
    chosen = choice >= 0
    return float(increment[np.flatnonzero(chosen), choice[chosen]].sum())


def with_eligibility(values: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """``values`` where the customer may receive the campaign, NaN elsewhere."""
    return np.where(eligible, values, np.nan)


def oracle_values(increment: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """The oracle targets on the true incremental profit."""
    return with_eligibility(increment, eligible)


def propensity_values(
    p_response: np.ndarray, economics: CampaignEconomics, eligible: np.ndarray
) -> np.ndarray:
    """Propensity-only targeting: expected margin of a response minus the cost of contact
    (pairs without a propensity score are left out)."""
    return with_eligibility(p_response * economics.margin - economics.cost, eligible)


def random_values(eligible: np.ndarray, *, seed: int) -> np.ndarray:
    """Random targeting: a seeded positive score per eligible pair, so caps decide who."""
    rng = np.random.default_rng(seed)
    return with_eligibility(rng.uniform(1e-6, 1.0, eligible.shape), eligible)


def choose(values: np.ndarray, economics: CampaignEconomics) -> np.ndarray:
    """The optimiser's choice (campaign index per customer, −1 none) under the caps."""
    from cx_pipelines.campaigns.optimiser import assign

    return assign(
        values, cost=economics.cost, budget=economics.budget, volume_cap=economics.volume_cap
    ).choice


def choose_with_controls(
    values: np.ndarray, economics: CampaignEconomics, control: np.ndarray
) -> np.ndarray:
    """The treated choice (campaign index per customer, −1 none or held out) when each
    campaign's decided rows keep its control group: ``control`` (customers × campaigns) is
    the day's draw, ``uniform(customer, salt) < control_share`` (the module docstring)."""
    from cx_pipelines.campaigns.optimiser import assign, capacities
    from cx_pipelines.campaigns.targeting import fit_treated

    customers, campaigns = values.shape
    kept = 1 - economics.control_share
    treated_capacity = capacities(
        cost=economics.cost,
        budget=economics.budget,
        volume_cap=economics.volume_cap,
        customers=customers,
    )
    decided = assign(
        kept * values,
        cost=np.zeros(campaigns),
        budget=np.full(campaigns, np.inf),
        volume_cap=np.floor(treated_capacity / np.maximum(kept, 1e-9)),
    ).choice
    no_exploration = np.zeros(customers, dtype=bool)
    decided = fit_treated(decided, no_exploration, control, values, treated_capacity)
    held_out = (decided >= 0) & control[np.arange(customers), np.maximum(decided, 0)]
    return np.where(held_out, -1, decided)

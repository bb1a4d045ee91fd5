"""A bounded, recorded share of contacts for offer x channel pairs with little history.

Maturity ramp: a campaign's pair (offer, channel) with ``n`` positives (treated contacts
that responded, in ``offer_history`` plus ``interaction_results``) has maturity
``m = min(1, n / mature_positives)``. The campaign explores
``E = max_share * (1 - m) * min(capacity, eligible)`` of its decided rows in expectation:
each eligible customer is drawn for it with probability ``q = E / eligible`` — at most
``max_share`` — so a pair nobody has tried gets ``max_share`` of its capacity, and the
share falls linearly to 0 as positives accumulate. Per customer the probabilities of all
campaigns are scaled down to sum to at most ``max_per_customer``. One uniform per customer
(:func:`cx_pipelines.campaigns.draws.uniform`, salted with the decision date) picks at most
one exploration campaign: the first whose cumulative probability exceeds it. Explored
contacts are chosen at random among the eligible, *not* by the models' scores, so the loop
learns the pair without the models' bias; their probability is logged with every row.

Candidates (``worth``): the eligible customers whose *optimistic* value of the contact is
positive. Targeting passes ``p_response x margin - cost > 0``: the incremental response of
a contact, ``p_treated - p_control``, is never above ``p_treated`` (the propensity), so where
even a response that would have happened anyway does not pay for the contact, no uplift
can, and exploring there buys data about contacts no policy should make. Pairs without a
propensity score keep every eligible customer. The expected share is taken of
``min(capacity, candidates)``, so a pair with few worthwhile customers explores few.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cx_pipelines.campaigns.catalog import Campaign
from cx_pipelines.campaigns.draws import uniform


@dataclass(frozen=True)
class ExplorationPlan:
    positives: np.ndarray  # (campaigns,) positives of each campaign's pair
    maturity: np.ndarray  # (campaigns,) in [0, 1]
    share: np.ndarray  # (campaigns,) expected share of capacity explored
    probability: np.ndarray  # customers x campaigns: q, the exploration draw probability
    explored: np.ndarray  # (customers,) campaign drawn for exploration, -1 = none


def pair_positives(history: pd.DataFrame, campaigns: list[Campaign]) -> np.ndarray:
    """Treated contacts that responded, per campaign's offer x channel."""
    positive = history[history["treated"] & history["responded"]]
    counts = positive.groupby(["offer_type", "channel"]).size()
    return np.array([int(counts.get((c.offer, c.channel), 0)) for c in campaigns], dtype=np.int64)


def plan_exploration(
    customer_ids: np.ndarray,
    eligible: np.ndarray,
    campaigns: list[Campaign],
    positives: np.ndarray,
    capacity: np.ndarray,
    *,
    salt: str,
    max_share: float,
    mature_positives: int,
    max_per_customer: float,
    worth: np.ndarray | None = None,
) -> ExplorationPlan:
    """Draw who explores which campaign (see the module docstring)."""
    if not 0 <= max_share <= 0.5 or not 0 <= max_per_customer <= 1:
        raise ValueError(
            f"exploration share must be in [0, 0.5] and per customer in [0, 1], "
            f"got {max_share} and {max_per_customer}"
        )
    maturity = np.minimum(1.0, positives / max(mature_positives, 1))
    share = max_share * (1.0 - maturity)
    if worth is not None:
        eligible = eligible & worth
    counts = eligible.sum(axis=0)
    expected = share * np.minimum(capacity, counts)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_customer = np.where(counts > 0, expected / counts, 0.0)
    probability = np.where(eligible, per_customer[None, :], 0.0)
    total = probability.sum(axis=1)
    scale = np.where(total > max_per_customer, max_per_customer / np.maximum(total, 1e-300), 1.0)
    probability *= scale[:, None]
    explored = np.full(len(customer_ids), -1, dtype=np.int64)
    if len(campaigns) and len(customer_ids):
        draw = uniform(customer_ids, salt)
        cumulative = np.cumsum(probability, axis=1)
        hit = draw[:, None] < cumulative
        first = hit.argmax(axis=1)
        explored = np.where(hit.any(axis=1), first, -1)
    return ExplorationPlan(
        positives=positives,
        maturity=maturity,
        share=share,
        probability=probability,
        explored=explored,
    )

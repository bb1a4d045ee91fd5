"""Offer response: the true probabilities and the past randomised campaigns drawn from them.

Without treatment a customer takes up an offer with probability
``p_control = logistic(base[offer] + f(customer))``, where ``f`` reads only what the
source system shows: customer type, age, income, region, whether the customer already
holds the product, how many products it holds and how much it spends. Control customers
are not contacted, so ``p_control`` does not depend on the channel. Treatment adds a
heterogeneous uplift on the log-odds scale, ``p_treated = logistic(logit(p_control) + u)``,
with ``u`` positive for some groups and channels (young customers on mobile, seniors in
the branch) and zero or negative for others (seniors by email, delinquent customers
offered credit, customers pestered about a product they already hold).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from cx_pipelines.source_schema import (
    CUSTOMER_TYPES,
    OFFER_CHANNELS,
    OFFER_TYPES,
    PRODUCT_TYPES,
    REGIONS,
)
from cx_pipelines.world import population as pop
from cx_pipelines.world.customers import CHECKING, Accounts, Customers


@dataclass(frozen=True)
class Campaign:
    """One past campaign: an offer on a channel to a random sample, part held out as control."""

    campaign_id: str
    offer_type: str
    channel: str
    week: float
    sample_share: float
    treated_share: float


@dataclass
class Response:
    """True response probabilities of one block: control (customers × offers) and treated
    (customers × offers × channels)."""

    p_control: np.ndarray
    p_treated: np.ndarray


@dataclass
class OfferHistory:
    """Contacts of one block, in campaign order."""

    campaign: np.ndarray  # index into the campaign list
    owner: np.ndarray
    treated: np.ndarray
    week: np.ndarray
    responded: np.ndarray
    revenue: np.ndarray


def plan_campaigns(seed: int) -> list[Campaign]:
    """The world's past campaigns: distinct (offer, channel) pairs at spread-out dates."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    pairs = pop.offer_columns()
    chosen = rng.choice(len(pairs), size=pop.CAMPAIGNS, replace=False)
    campaigns = []
    for number, (pair, week) in enumerate(zip(chosen, pop.CAMPAIGN_WEEKS, strict=True), start=1):
        offer, channel = pairs[pair]
        campaigns.append(
            Campaign(
                campaign_id=f"C{number:02d}_{offer}_{channel}",
                offer_type=offer,
                channel=channel,
                week=float(week + rng.uniform(-2.0, 2.0)),
                sample_share=float(rng.uniform(*pop.CAMPAIGN_SAMPLE_SHARE)),
                treated_share=pop.CAMPAIGN_TREATED_SHARE,
            )
        )
    return campaigns


def campaigns_as_dicts(campaigns: list[Campaign]) -> list[dict]:
    return [asdict(campaign) for campaign in campaigns]


def _logistic(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-values))


def response_probabilities(
    customers: Customers, accounts: Accounts, *, purchases: np.ndarray
) -> Response:
    """True response probabilities from the customer's observable attributes."""
    count = len(customers)
    held = accounts.holdings(count)
    products = held.sum(axis=1)
    activity = np.log1p(purchases) - pop.ACTIVITY_CENTRE
    delinquent = np.zeros(count, dtype=bool)
    delinquent[accounts.owner[accounts.days_past_due > 0]] = True
    log_income = np.log(np.maximum(customers.annual_income, 1_000) / 50_000)
    kind = customers.customer_type
    type_effect = np.array([pop.OFFER_TYPE_EFFECT[t] for t in CUSTOMER_TYPES])[kind]
    region_effect = np.array([pop.REGION_EFFECT[r] for r in REGIONS])[customers.region]

    logit_control = np.empty((count, len(OFFER_TYPES)))
    holds_offer = np.empty((count, len(OFFER_TYPES)), dtype=bool)
    for column, offer in enumerate(OFFER_TYPES):
        age_term = -(((customers.age - pop.OFFER_AGE_PEAK[offer]) / pop.OFFER_AGE_WIDTH) ** 2)
        product = PRODUCT_TYPES.index(pop.OFFER_PRODUCT[offer])
        holds_offer[:, column] = held[:, product] if offer != "overdraft" else False
        holds_term = pop.HOLDS_PRODUCT_EFFECT[offer] * holds_offer[:, column]
        if offer == "overdraft":
            holds_term = np.where(held[:, CHECKING], 0.0, pop.NO_CHECKING_OVERDRAFT_EFFECT)
        logit_control[:, column] = (
            pop.OFFER_BASE_LOGIT[offer]
            + type_effect[:, column]
            + age_term
            + pop.OFFER_INCOME_EFFECT[offer] * log_income
            + region_effect
            + holds_term
            + pop.PRODUCTS_EFFECT * products
            + pop.ACTIVITY_EFFECT[offer] * activity
        )

    type_channel = np.array([pop.UPLIFT_TYPE_CHANNEL[t] for t in CUSTOMER_TYPES])[kind]
    uplift = np.empty((count, len(OFFER_TYPES), len(OFFER_CHANNELS)))
    for column, offer in enumerate(OFFER_TYPES):
        for lane, channel in enumerate(OFFER_CHANNELS):
            digital = channel in pop.DIGITAL_OFFER_CHANNELS
            uplift[:, column, lane] = (
                pop.UPLIFT_CHANNEL[channel] * pop.UPLIFT_OFFER_SCALE[offer]
                + type_channel[:, lane]
                + pop.UPLIFT_HOLDS_PRODUCT * holds_offer[:, column]
                + pop.UPLIFT_DELINQUENT.get(offer, 0.0) * delinquent
                + (pop.UPLIFT_DIGITAL_ACTIVITY * activity if digital else 0.0)
            )
    return Response(
        p_control=_logistic(logit_control),
        p_treated=_logistic(logit_control[:, :, None] + uplift),
    )


def draw_offer_history(
    rng: np.random.Generator,
    customers: Customers,
    response: Response,
    campaigns: list[Campaign],
) -> OfferHistory:
    """Sample, randomise and answer every campaign for the customers of one block."""
    parts: list[tuple[np.ndarray, ...]] = []
    for number, campaign in enumerate(campaigns):
        offer = OFFER_TYPES.index(campaign.offer_type)
        lane = OFFER_CHANNELS.index(campaign.channel)
        eligible = customers.joined_week < campaign.week
        chosen = np.flatnonzero(eligible & (rng.random(len(customers)) < campaign.sample_share))
        treated = rng.random(len(chosen)) < campaign.treated_share
        probability = np.where(
            treated, response.p_treated[chosen, offer, lane], response.p_control[chosen, offer]
        )
        responded = rng.random(len(chosen)) < probability
        income_factor = (np.maximum(customers.annual_income[chosen], 1_000) / 60_000) ** 0.2
        value = pop.OFFER_VALUE[campaign.offer_type] * income_factor
        value = value * rng.lognormal(0.0, 0.3, len(chosen))
        revenue = np.where(responded, np.round(value, 2), 0.0)
        week = campaign.week + rng.random(len(chosen)) * 3 / 7
        parts.append((np.full(len(chosen), number), chosen, treated, week, responded, revenue))
    columns = [np.concatenate(values) for values in zip(*parts, strict=True)]
    order = np.lexsort((columns[0], columns[1]))  # by customer, then campaign
    return OfferHistory(*(column[order] for column in columns))

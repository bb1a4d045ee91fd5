"""Spending transactions from a buy-till-you-die process (BG/NBD with gamma-gamma spend).

Each customer's clock starts at its first purchase in the world (time 0 of the BG/NBD
model). While alive it buys as a Poisson process of rate λ per week; after each repeat
purchase it drops out with probability p. Each purchase spends z ~ Gamma(p, ν) (mean p/ν).

Sampling is exact and needs no loop: with N ~ Poisson(λT) purchases in (0, T] and
J ~ Geometric(p) purchases until dropout, the customer makes x = min(J, N) repeat
purchases, whose times are the first x order statistics of N uniforms on (0, T], drawn
as normalised exponential spacings (the remaining N + 1 − x spacings sum to a gamma).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cx_pipelines.source_schema import CUSTOMER_TYPES, MERCHANT_CATEGORIES, TRANSACTION_CHANNELS
from cx_pipelines.world import population as pop
from cx_pipelines.world.customers import (
    CHECKING,
    CREDIT_CARD,
    WEEKS_PER_YEAR,
    Accounts,
    Customers,
    _pick,
)


@dataclass
class Purchases:
    """Purchase times of one block (first purchases included) and each customer's fate."""

    owner: np.ndarray  # position of the customer in the block, sorted
    week: np.ndarray
    dropped_out_week: np.ndarray  # per customer, NaN while alive at the end
    count: np.ndarray  # per customer, purchases in the world


def draw_purchases(rng: np.random.Generator, customers: Customers) -> Purchases:
    """Draw purchase times and dropouts for every customer of the block."""
    count = len(customers)
    start = customers.first_purchase_week
    buys_in_world = start <= pop.WORLD_WEEKS
    horizon = np.where(buys_in_world, pop.WORLD_WEEKS - start, 0.0)
    poisson = rng.poisson(customers.purchase_rate * horizon)
    until_dropout = rng.geometric(customers.dropout_probability)
    repeat = np.minimum(poisson, until_dropout)
    dropped = buys_in_world & (until_dropout <= poisson)

    owner = np.repeat(np.arange(count), repeat)
    padded = np.concatenate([[0.0], np.cumsum(rng.exponential(size=len(owner)))])
    ends = np.cumsum(repeat)
    before = padded[ends - repeat]
    within = padded[1:] - np.repeat(before, repeat)
    total = padded[ends] - before + rng.gamma(poisson - repeat + 1.0)
    repeat_week = start[owner] + within / np.repeat(total, repeat) * horizon[owner]

    dropped_out_week = np.full(count, np.nan)
    dropped_out_week[dropped] = repeat_week[ends[dropped] - 1]

    first_owner = np.flatnonzero(buys_in_world)
    all_owner = np.concatenate([first_owner, owner])
    all_week = np.concatenate([start[first_owner], repeat_week])
    order = np.lexsort((all_week, all_owner))
    return Purchases(
        owner=all_owner[order],
        week=all_week[order],
        dropped_out_week=dropped_out_week,
        count=repeat + buys_in_world,
    )


@dataclass
class Transactions:
    """Spending transactions of one block; ``account`` is the position in the block's accounts."""

    owner: np.ndarray
    account: np.ndarray
    week: np.ndarray
    amount: np.ndarray
    merchant_category: np.ndarray
    channel: np.ndarray


def _category_logits(rng: np.random.Generator, customers: Customers) -> np.ndarray:
    preference = np.array([pop.CATEGORY_PREFERENCE[t] for t in CUSTOMER_TYPES])
    logits = preference[customers.customer_type] + 0.5 * rng.standard_normal(
        (len(customers), len(MERCHANT_CATEGORIES))
    )
    for number, members in enumerate(pop.CATEGORY_BUNDLES.values(), start=1):
        columns = [MERCHANT_CATEGORIES.index(category) for category in members]
        rows = np.flatnonzero(customers.bundle == number)
        logits[np.ix_(rows, columns)] += pop.BUNDLE_BOOST
    return logits


def draw_transactions(
    rng: np.random.Generator, customers: Customers, purchases: Purchases, accounts: Accounts
) -> Transactions:
    """Turn purchases into transactions: amount, merchant category, channel and account."""
    owner = purchases.owner
    years = purchases.week[:, None] / WEEKS_PER_YEAR
    amount = rng.gamma(pop.BTYD.p, 1 / customers.spend_scale[owner])

    category_trend = np.array([pop.CATEGORY_TREND_PER_YEAR[c] for c in MERCHANT_CATEGORIES])
    category_logits = _category_logits(rng, customers)[owner] + years * category_trend
    category = _pick(rng, category_logits)

    channel_preference = np.array([pop.CHANNEL_PREFERENCE[t] for t in CUSTOMER_TYPES])
    channel_trend = np.array([pop.CHANNEL_TREND_PER_YEAR[c] for c in TRANSACTION_CHANNELS])
    online = np.zeros(len(MERCHANT_CATEGORIES))
    for name, boost in pop.ONLINE_CATEGORIES.items():
        online[MERCHANT_CATEGORIES.index(name)] = boost
    channel_logits = channel_preference[customers.customer_type[owner]] + years * channel_trend
    channel_logits[:, TRANSACTION_CHANNELS.index("ecommerce")] += online[category]
    channel = _pick(rng, channel_logits)

    count = len(customers)
    card = accounts.spending_account(count, CREDIT_CARD)
    checking = accounts.spending_account(count, CHECKING)
    card_share = np.where(card < 0, 0.0, np.where(checking < 0, 1.0, rng.beta(2.0, 2.0, count)))
    on_card = rng.random(len(owner)) < card_share[owner]
    account = np.where(on_card, card[owner], checking[owner])
    return Transactions(
        owner=owner,
        account=account,
        week=purchases.week,
        amount=np.maximum(np.round(amount, 2), 0.01),
        merchant_category=category,
        channel=channel,
    )

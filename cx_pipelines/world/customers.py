"""Customers and their accounts: who they are, what they hold, what they owe.

A customer's latent buying rate λ, dropout probability p and spend scale ν are drawn
first from the population distributions; the customer type is drawn second, with
log-odds that depend on those latents, so types differ in behaviour while the marginal
BG/NBD and gamma-gamma mixtures stay exactly as published in ``population.json``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cx_pipelines.source_schema import CUSTOMER_TYPES, PRODUCT_TYPES, REGIONS
from cx_pipelines.world import population as pop

WEEKS_PER_YEAR = 365.25 / 7
CREDIT_CARD, CHECKING, SAVINGS, MORTGAGE, PERSONAL_LOAN = range(len(PRODUCT_TYPES))


@dataclass
class Customers:
    """One block of customers: observable attributes and latent behaviour, as arrays."""

    customer_id: np.ndarray
    customer_type: np.ndarray  # index into CUSTOMER_TYPES
    region: np.ndarray  # index into REGIONS
    age: np.ndarray
    annual_income: np.ndarray
    joined_week: np.ndarray  # weeks from WORLD_START, negative when joined before the world
    purchase_rate: np.ndarray  # λ per week
    dropout_probability: np.ndarray  # p
    spend_scale: np.ndarray  # gamma-gamma ν
    first_purchase_week: np.ndarray  # start of the customer's BG/NBD clock in the world
    bundle: np.ndarray  # index into ("none", *CATEGORY_BUNDLES)

    def __len__(self) -> int:
        return len(self.customer_id)


@dataclass
class Accounts:
    """Accounts of one block; ``owner`` is the position of the customer in the block."""

    owner: np.ndarray
    product: np.ndarray  # index into PRODUCT_TYPES
    opened_week: np.ndarray
    closed: np.ndarray
    balance: np.ndarray
    credit_limit: np.ndarray  # NaN when the product has no limit
    days_past_due: np.ndarray
    interest_rate: np.ndarray

    def holdings(self, customers: int) -> np.ndarray:
        """customers × products matrix: True where the customer holds an open account."""
        held = np.zeros((customers, len(PRODUCT_TYPES)), dtype=bool)
        held[self.owner[~self.closed], self.product[~self.closed]] = True
        return held

    def spending_account(self, customers: int, product: int) -> np.ndarray:
        """Position of each customer's account of ``product`` (−1 when none)."""
        position = np.full(customers, -1, dtype=np.int64)
        rows = np.flatnonzero(self.product == product)
        position[self.owner[rows]] = rows
        return position


def _pick(rng: np.random.Generator, logits: np.ndarray) -> np.ndarray:
    """One category per row, with softmax(``logits``) probabilities (inverse CDF)."""
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    cumulative = np.cumsum(weights, axis=1, out=weights)
    threshold = rng.random(len(logits)) * cumulative[:, -1]
    return np.minimum((cumulative < threshold[:, None]).sum(axis=1), logits.shape[1] - 1)


def draw_customers(rng: np.random.Generator, *, first_id: int, count: int) -> Customers:
    """Draw ``count`` customers with ids from ``first_id``."""
    btyd = pop.BTYD
    rate = rng.gamma(btyd.r, 1 / btyd.alpha, size=count)
    dropout = rng.beta(btyd.a, btyd.b, size=count)
    spend_scale = rng.gamma(btyd.q, 1 / btyd.v, size=count)
    latents = np.column_stack(
        [
            pop.standardised_log_gamma(rate, btyd.r, btyd.alpha),
            pop.standardised_beta(dropout, btyd.a, btyd.b),
            -pop.standardised_log_gamma(spend_scale, btyd.q, btyd.v),  # higher = spends more
        ]
    )
    coupling = np.array([pop.TYPE_COUPLING[t] for t in CUSTOMER_TYPES])
    shares = np.log([pop.TYPE_SHARES[t] for t in CUSTOMER_TYPES])
    customer_type = _pick(rng, shares + latents @ coupling.T)

    region = rng.choice(len(REGIONS), size=count, p=[pop.REGION_SHARES[r] for r in REGIONS])
    low, high = np.array([pop.TYPE_AGE_RANGE[t] for t in CUSTOMER_TYPES]).T
    age = np.floor(low[customer_type] + rng.random(count) * (high - low + 1)[customer_type])
    median = np.array([pop.TYPE_MEDIAN_INCOME[t] for t in CUSTOMER_TYPES])[customer_type]
    region_factor = np.array([pop.REGION_INCOME_FACTOR[r] for r in REGIONS])[region]
    income = (
        median * region_factor * np.exp(0.45 * rng.standard_normal(count) + 0.25 * latents[:, 2])
    )
    income = np.round(income, -2)

    in_window_share = np.array([pop.JOINED_IN_WINDOW_SHARE[t] for t in CUSTOMER_TYPES])
    joined_in_window = rng.random(count) < in_window_share[customer_type]
    tenure_years = np.minimum(rng.exponential(6.0, size=count), np.maximum(age - 18, 0.1))
    joined_week = np.where(
        joined_in_window,
        rng.random(count) * (pop.WORLD_WEEKS - 4),
        -(tenure_years * WEEKS_PER_YEAR) - rng.random(count),
    )
    # A new customer buys on the day it joins. A customer already on the books starts its
    # BG/NBD clock with a purchase in the first weeks of the world, independent of its
    # rate, as the model assumes of a cohort (T must not depend on λ or p).
    first_purchase = np.where(
        joined_in_window, joined_week, rng.random(count) * pop.EXISTING_FIRST_PURCHASE_WEEKS
    )
    bundle_shares = np.array([pop.BUNDLE_SHARES[t] for t in CUSTOMER_TYPES])
    bundle = _pick(rng, np.log(bundle_shares[customer_type] + 1e-12))
    return Customers(
        customer_id=np.arange(first_id, first_id + count, dtype=np.int64),
        customer_type=customer_type,
        region=region,
        age=age.astype(np.int64),
        annual_income=income,
        joined_week=joined_week,
        purchase_rate=rate,
        dropout_probability=dropout,
        spend_scale=spend_scale,
        first_purchase_week=first_purchase,
        bundle=bundle,
    )


def draw_accounts(
    rng: np.random.Generator, customers: Customers, *, dropped_out: np.ndarray
) -> Accounts:
    """Draw each customer's accounts; every customer has a checking or credit-card account."""
    holding = np.array([pop.PRODUCT_HOLDING[t] for t in CUSTOMER_TYPES])[customers.customer_type]
    held = rng.random(holding.shape) < holding
    no_spending_account = ~(held[:, CREDIT_CARD] | held[:, CHECKING])
    held[no_spending_account, CHECKING] = True
    owner, product = np.nonzero(held)
    rows = len(owner)
    income = customers.annual_income[owner]
    joined = customers.joined_week[owner]

    spending = (product == CREDIT_CARD) | (product == CHECKING)
    opened_until = np.where(spending, customers.first_purchase_week[owner], pop.WORLD_WEEKS)
    opened_until = np.maximum(np.minimum(opened_until, pop.WORLD_WEEKS), joined)
    opened_week = joined + rng.random(rows) * (opened_until - joined)

    balance = np.zeros(rows)
    credit_limit = np.full(rows, np.nan)
    is_product = {index: product == index for index in range(len(PRODUCT_TYPES))}
    noise = rng.lognormal(0.0, 1.0, size=rows)
    balance = np.where(is_product[CHECKING], income / 12 * 0.4 * noise**0.8, balance)
    balance = np.where(is_product[SAVINGS], income * 0.3 * noise, balance)
    limit = np.clip(np.round(income * rng.uniform(0.1, 0.35, rows) / 500) * 500, 500, 50_000)
    credit_limit = np.where(is_product[CREDIT_CARD], limit, credit_limit)

    delinquency = np.array([pop.DELINQUENCY_RATE[t] for t in CUSTOMER_TYPES])
    delinquency = delinquency[customers.customer_type[owner]]
    delinquency = delinquency * np.clip((50_000 / np.maximum(income, 1_000)) ** 0.3, 0.5, 2.0)
    lends = is_product[CREDIT_CARD] | is_product[MORTGAGE] | is_product[PERSONAL_LOAN]
    late = lends & (rng.random(rows) < delinquency)
    days = rng.choice(pop.DAYS_PAST_DUE, size=rows, p=pop.DAYS_PAST_DUE_WEIGHTS)
    days_past_due = np.where(late, days, 0)

    utilisation = np.where(late, rng.beta(4.0, 2.0, rows), rng.beta(1.2, 3.0, rows))
    balance = np.where(is_product[CREDIT_CARD], limit * utilisation, balance)
    remaining = rng.uniform(0.3, 1.0, rows)
    balance = np.where(
        is_product[MORTGAGE], income * rng.uniform(2.0, 4.5, rows) * remaining, balance
    )
    loan = rng.uniform(2_000, 40_000, rows) * np.minimum(1.0, income / 60_000) ** 0.5
    balance = np.where(is_product[PERSONAL_LOAN], loan * remaining, balance)

    # Customers who stopped buying often close the card or account they bought with.
    closing = np.where(spending & dropped_out[owner], 0.35, 0.03)
    closed = (rng.random(rows) < closing) & ~late
    balance = np.where(closed, 0.0, np.round(balance, 2))

    base_rate = np.array([pop.INTEREST_RATE[p] for p in PRODUCT_TYPES])[product]
    spread = np.where(is_product[CHECKING] | is_product[SAVINGS], 0.002, 0.012)
    interest_rate = np.round(np.maximum(base_rate + spread * rng.standard_normal(rows), 0.0), 4)
    return Accounts(
        owner=owner,
        product=product,
        opened_week=opened_week,
        closed=closed,
        balance=balance,
        credit_limit=credit_limit,
        days_past_due=days_past_due.astype(np.int64),
        interest_rate=interest_rate,
    )

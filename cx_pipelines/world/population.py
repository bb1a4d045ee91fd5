"""Population parameters of the synthetic bank: every constant the generative model uses.

Time is measured in weeks from ``WORLD_START``. The BG/NBD and gamma-gamma parameters
use the names of the papers (Fader, Hardie and Lee 2005): ``r, alpha, a, b`` and
``p, q, v`` (``v`` is the gamma-gamma γ). ``population.json`` written beside the ground
truth is :func:`describe_population` of these values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np

from cx_pipelines.source_schema import (
    CUSTOMER_TYPES,
    MERCHANT_CATEGORIES,
    OFFER_CHANNELS,
    OFFER_TYPES,
    PRODUCT_TYPES,
    REGIONS,
    TRANSACTION_CHANNELS,
)

WORLD_WEEKS = (datetime(2026, 9, 30, 23, 59, 59) - datetime(2024, 10, 1)).total_seconds() / (
    7 * 86_400
)
"""Length of the world in weeks (about 104.3)."""

WORLD_DAYS = 730
"""Whole days in the world: 2024-10-01 to 2026-10-01."""

LAST_MONTH_DAY = 700
"""Day of the world on which its last month (September 2026) begins."""

BLOCK_CUSTOMERS = 1_000
"""Customers drawn from one random stream; chunks are whole blocks, so chunking never
changes the data."""


@dataclass(frozen=True)
class BuyTillYouDie:
    """BG/NBD purchase and dropout process and gamma-gamma spend, per week."""

    r: float = 0.5
    alpha: float = 0.8
    a: float = 0.7
    b: float = 18.0
    p: float = 6.0
    q: float = 4.0
    v: float = 25.0


BTYD = BuyTillYouDie()


# How each customer type relates to the latent buying rate, dropout and spend. A customer's
# λ, p and ν are drawn from the population distributions first and the type second, from
# these log-odds, so the marginal BG/NBD and gamma-gamma distributions stay exactly the
# published mixtures while types still differ in rates (affluent customers spend more,
# students drop out more).
TYPE_SHARES = dict(zip(CUSTOMER_TYPES, (0.38, 0.16, 0.10, 0.10, 0.14, 0.12), strict=True))
TYPE_COUPLING = {  # (log λ, dropout p, log spend), standardised latents
    "mass_market": (0.0, 0.0, 0.0),
    "young_professional": (0.5, 0.0, 0.3),
    "affluent": (0.3, -0.3, 1.0),
    "student": (0.2, 0.6, -0.8),
    "senior": (-0.4, -0.4, 0.0),
    "small_business": (0.6, 0.0, 0.6),
}
TYPE_AGE_RANGE = {
    "mass_market": (22, 75),
    "young_professional": (24, 38),
    "affluent": (35, 72),
    "student": (18, 26),
    "senior": (62, 90),
    "small_business": (28, 68),
}
TYPE_MEDIAN_INCOME = {
    "mass_market": 42_000,
    "young_professional": 68_000,
    "affluent": 160_000,
    "student": 12_000,
    "senior": 34_000,
    "small_business": 95_000,
}
REGION_SHARES = dict(zip(REGIONS, (0.22, 0.20, 0.20, 0.18, 0.20), strict=True))
REGION_INCOME_FACTOR = dict(zip(REGIONS, (0.95, 0.9, 1.0, 1.05, 1.15), strict=True))
EXISTING_FIRST_PURCHASE_WEEKS = 8.0
"""Customers on the books before the world make their first purchase in its first 8 weeks."""
JOINED_IN_WINDOW_SHARE = {t: 0.3 for t in CUSTOMER_TYPES} | {"student": 0.55, "senior": 0.1}

# Probability of holding each product (PRODUCT_TYPES order) by customer type.
PRODUCT_HOLDING = {
    "mass_market": (0.50, 0.92, 0.40, 0.18, 0.15),
    "young_professional": (0.70, 0.95, 0.45, 0.22, 0.25),
    "affluent": (0.85, 0.95, 0.80, 0.40, 0.08),
    "student": (0.35, 0.90, 0.20, 0.00, 0.05),
    "senior": (0.45, 0.95, 0.70, 0.10, 0.05),
    "small_business": (0.75, 1.00, 0.50, 0.15, 0.30),
}
DELINQUENCY_RATE = dict(zip(CUSTOMER_TYPES, (0.06, 0.03, 0.01, 0.09, 0.02, 0.05), strict=True))
DAYS_PAST_DUE = (5, 15, 30, 60, 90, 120)
DAYS_PAST_DUE_WEIGHTS = (0.25, 0.25, 0.25, 0.12, 0.08, 0.05)
INTEREST_RATE = dict(zip(PRODUCT_TYPES, (0.219, 0.001, 0.035, 0.052, 0.089), strict=True))

# Spending: category preferences (MERCHANT_CATEGORIES order) by type, on the log-odds scale.
# groceries dining travel fuel electronics apparel entertainment health utilities home
CATEGORY_PREFERENCE = {
    "mass_market": (1.2, 0.5, -0.5, 0.6, -0.2, 0.2, 0.2, 0.1, 0.6, 0.3),
    "young_professional": (0.8, 1.1, 0.5, 0.2, 0.4, 0.6, 0.7, -0.2, 0.3, 0.1),
    "affluent": (0.9, 1.0, 1.0, 0.2, 0.3, 0.6, 0.5, 0.3, 0.4, 0.6),
    "student": (0.9, 0.9, -0.3, -0.5, 0.6, 0.5, 1.0, -0.5, -0.2, -0.6),
    "senior": (1.3, 0.3, 0.1, 0.2, -0.6, 0.0, -0.1, 1.0, 0.8, 0.5),
    "small_business": (0.4, 0.8, 0.7, 0.9, 0.6, -0.1, 0.0, -0.3, 0.9, 0.5),
}
CATEGORY_TREND_PER_YEAR = dict(
    zip(
        MERCHANT_CATEGORIES,
        (0.0, 0.25, 0.35, -0.35, 0.2, -0.15, 0.1, 0.15, 0.0, -0.1),
        strict=True,
    )
)
# Interests that make categories co-occur: a customer has at most one bundle.
CATEGORY_BUNDLES = {
    "family": ("groceries", "home", "health", "utilities"),
    "lifestyle": ("dining", "entertainment", "travel", "apparel"),
    "commuter": ("fuel", "groceries"),
    "tech": ("electronics", "entertainment"),
}
BUNDLE_BOOST = 1.2
BUNDLE_SHARES = {  # none family lifestyle commuter tech
    "mass_market": (0.35, 0.25, 0.1, 0.2, 0.1),
    "young_professional": (0.3, 0.05, 0.35, 0.1, 0.2),
    "affluent": (0.3, 0.2, 0.4, 0.05, 0.05),
    "student": (0.3, 0.0, 0.3, 0.05, 0.35),
    "senior": (0.4, 0.45, 0.1, 0.05, 0.0),
    "small_business": (0.35, 0.1, 0.15, 0.3, 0.1),
}
CHANNEL_PREFERENCE = {  # pos ecommerce atm branch mobile
    "mass_market": (1.5, 0.5, 0.2, -0.6, 0.3),
    "young_professional": (1.0, 1.1, -0.6, -1.5, 1.2),
    "affluent": (1.4, 1.0, -0.8, -0.8, 0.6),
    "student": (0.8, 1.0, 0.0, -2.0, 1.4),
    "senior": (1.6, -0.3, 0.5, 0.4, -0.8),
    "small_business": (1.2, 1.0, -0.5, 0.2, 0.5),
}
CHANNEL_TREND_PER_YEAR = dict(zip(TRANSACTION_CHANNELS, (0.0, 0.3, -0.4, -0.5, 0.5), strict=True))
ONLINE_CATEGORIES = {"electronics": 1.0, "travel": 1.2, "apparel": 0.5, "entertainment": 0.5}
"""Extra log-odds of the ecommerce channel for categories bought online."""

# Channel interactions: session channel preferences (INTERACTION_CHANNELS order).
SESSION_CHANNEL_PREFERENCE = {  # web mobile_app call_centre branch atm email
    "mass_market": (0.5, 0.6, 0.3, 0.1, 0.0, 0.2),
    "young_professional": (0.6, 1.5, -0.5, -1.0, -0.5, 0.3),
    "affluent": (0.7, 0.8, 0.3, 0.4, -1.0, 0.3),
    "student": (0.2, 1.8, -1.0, -1.5, 0.0, -0.3),
    "senior": (-0.3, -1.0, 1.0, 1.2, 0.3, 0.2),
    "small_business": (0.9, 0.6, 0.6, 0.5, -0.5, 0.4),
}
SESSION_KINDS = ("browse", "service", "offer")
SESSION_KIND_SHARES = (0.55, 0.27, 0.18)
SESSION_KIND_CHANNELS = {
    "browse": ("web", "mobile_app", "branch"),
    "service": ("web", "mobile_app", "call_centre", "branch", "atm"),
    "offer": OFFER_CHANNELS,
}
SESSIONS_PER_CUSTOMER = 7.5
SESSIONS_KEPT_AFTER_DROPOUT = 0.3
JOURNEY = {
    "view_after_login": 0.6,
    "start_after_view": 0.35,
    "complete_by_channel": {"web": 0.5, "mobile_app": 0.4, "branch": 0.8},
    "complaint_after_service": 0.12,
    "complaint_if_delinquent": 0.35,
    "decline_if_not_accepted": 0.6,
}

# Inbound events (a sample of what a bank's event feed carries).
EVENT_RATES = {"credit_request": 0.10, "address_change": 0.08, "bankruptcy": 0.002}

# Offers: logistic response model. p_control does not depend on the channel (control
# customers are not contacted); the uplift is added on the log-odds scale.
OFFER_BASE_LOGIT = dict(zip(OFFER_TYPES, (-3.4, -3.8, -3.2, -4.6, -3.6), strict=True))
OFFER_PRODUCT = dict(
    zip(
        OFFER_TYPES,
        ("credit_card", "personal_loan", "savings", "mortgage", "checking"),
        strict=True,
    )
)
OFFER_VALUE = dict(zip(OFFER_TYPES, (180.0, 450.0, 120.0, 2_500.0, 90.0), strict=True))
OFFER_TYPE_EFFECT = {  # credit_card personal_loan savings mortgage overdraft
    "mass_market": (0.0, 0.2, -0.2, 0.0, 0.3),
    "young_professional": (0.5, 0.3, 0.1, 0.6, 0.1),
    "affluent": (0.2, -0.6, 0.6, 0.5, -0.8),
    "student": (0.4, -0.2, -0.5, -2.0, 0.8),
    "senior": (-0.6, -0.6, 0.5, -1.2, -0.5),
    "small_business": (0.3, 0.5, 0.0, 0.2, 0.4),
}
OFFER_AGE_PEAK = dict(zip(OFFER_TYPES, (30.0, 32.0, 60.0, 36.0, 25.0), strict=True))
OFFER_AGE_WIDTH = 20.0
OFFER_INCOME_EFFECT = dict(zip(OFFER_TYPES, (0.2, -0.2, 0.5, 0.8, -0.5), strict=True))
REGION_EFFECT = dict(zip(REGIONS, (-0.1, 0.0, 0.05, 0.1, 0.15), strict=True))
HOLDS_PRODUCT_EFFECT = dict(zip(OFFER_TYPES, (-1.2, -1.0, -0.8, -2.0, 0.0), strict=True))
NO_CHECKING_OVERDRAFT_EFFECT = -2.5
PRODUCTS_EFFECT = 0.15
ACTIVITY_EFFECT = dict(zip(OFFER_TYPES, (0.3, 0.1, 0.1, 0.1, 0.2), strict=True))
ACTIVITY_CENTRE = 3.0
"""Activity is log(1 + spending transactions in the window); 3.0 is about 19 transactions."""

UPLIFT_CHANNEL = dict(zip(OFFER_CHANNELS, (0.5, 0.8, 0.6, 1.0, 1.1), strict=True))
UPLIFT_OFFER_SCALE = dict(zip(OFFER_TYPES, (1.0, 0.9, 0.8, 0.7, 0.9), strict=True))
# Log-odds added to the uplift by type and channel: email mobile_app web call_centre branch
UPLIFT_TYPE_CHANNEL = {
    "mass_market": (0.0, 0.0, 0.0, 0.0, 0.0),
    "young_professional": (0.2, 0.5, 0.5, -0.6, -0.5),
    "affluent": (-0.6, 0.1, 0.2, 0.3, 0.5),
    "student": (-0.2, 0.6, 0.5, -0.8, -0.6),
    "senior": (-1.0, -1.2, -0.6, 0.5, 0.6),
    "small_business": (0.3, 0.0, 0.3, 0.2, 0.0),
}
UPLIFT_HOLDS_PRODUCT = -0.9
UPLIFT_DELINQUENT = {"credit_card": -1.2, "personal_loan": -1.2}
UPLIFT_DIGITAL_ACTIVITY = 0.25
DIGITAL_OFFER_CHANNELS = ("email", "mobile_app", "web")

CAMPAIGNS = 6
CAMPAIGN_WEEKS = (10.0, 26.0, 42.0, 58.0, 74.0, 90.0)
CAMPAIGN_SAMPLE_SHARE = (0.12, 0.25)
CAMPAIGN_TREATED_SHARE = 0.8


def offer_columns() -> list[tuple[str, str]]:
    """(offer type, channel) pairs in the order of the ground-truth columns."""
    return [(offer, channel) for offer in OFFER_TYPES for channel in OFFER_CHANNELS]


def describe_population(*, customers: int, seed: int, campaigns: list[dict[str, Any]]) -> dict:
    """The population parameters as written to ``population.json``."""
    from cx_pipelines.world import WORLD_END, WORLD_START

    btyd = asdict(BTYD)
    return {
        "time_unit": "weeks",
        "bg_nbd": {key: btyd[key] for key in ("r", "alpha", "a", "b")},
        "gamma_gamma": {key: btyd[key] for key in ("p", "q", "v")},
        "customer_type": {
            "shares_before_coupling": TYPE_SHARES,
            "coupling_log_rate_dropout_log_spend": TYPE_COUPLING,
        },
        "response": {
            "link": "logistic",
            "p_control": "logistic(base[offer] + type[offer] + age + income + region + holds"
            " + products + activity); independent of channel",
            "p_treated": "logistic(logit(p_control) + uplift[offer, channel, customer])",
            "base_logit": OFFER_BASE_LOGIT,
            "type_effect": {
                kind: dict(zip(OFFER_TYPES, row, strict=True))
                for kind, row in OFFER_TYPE_EFFECT.items()
            },
            "age_peak": OFFER_AGE_PEAK,
            "age_width": OFFER_AGE_WIDTH,
            "log_income_effect": OFFER_INCOME_EFFECT,
            "region_effect": REGION_EFFECT,
            "holds_product_effect": HOLDS_PRODUCT_EFFECT,
            "products_effect": PRODUCTS_EFFECT,
            "activity_effect": ACTIVITY_EFFECT,
            "uplift_channel": UPLIFT_CHANNEL,
            "uplift_offer_scale": UPLIFT_OFFER_SCALE,
            "uplift_type_channel": UPLIFT_TYPE_CHANNEL,
            "uplift_holds_product": UPLIFT_HOLDS_PRODUCT,
            "uplift_delinquent": UPLIFT_DELINQUENT,
            "uplift_digital_activity": UPLIFT_DIGITAL_ACTIVITY,
            "offer_value": OFFER_VALUE,
        },
        "campaigns": campaigns,
        "customers": customers,
        "seed": seed,
        "world_start": WORLD_START.isoformat(),
        "world_end": WORLD_END.isoformat(),
    }


def standardised_log_gamma(values: np.ndarray, shape: float, rate: float) -> np.ndarray:
    """(log x − E log x) / sd log x for x ~ Gamma(shape, rate), from the exact moments."""
    from scipy.special import digamma, polygamma

    mean = digamma(shape) - np.log(rate)
    return (np.log(values) - mean) / np.sqrt(polygamma(1, shape))


def standardised_beta(values: np.ndarray, a: float, b: float) -> np.ndarray:
    """(x − E x) / sd x for x ~ Beta(a, b)."""
    mean = a / (a + b)
    variance = a * b / ((a + b) ** 2 * (a + b + 1))
    return (values - mean) / np.sqrt(variance)

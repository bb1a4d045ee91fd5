"""Seeded simulation of RFM tables from known BTYD parameters, for tests and benchmarks.

Vectorised without simulating individual purchases: given a customer's rate lambda and
observation length, the number of purchases in (0, T] is Poisson, the number before
dropout is geometric, and the time of the k-th of n uniform purchase times is
T * Beta(k, n - k + 1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_DAYS_PER_WEEK = 7.0


def _ages(rng: np.random.Generator, n_customers: int, max_days: int) -> np.ndarray:
    """Observation length T per customer in weeks, a whole number of days in [1, max_days]."""
    return rng.integers(1, max_days + 1, size=n_customers) / _DAYS_PER_WEEK


def _last_purchase_time(rng: np.random.Generator, x: np.ndarray, n: np.ndarray, span: np.ndarray):
    """Time of the x-th of n uniform purchase times on (0, span], rounded down to days."""
    t_x = np.zeros(len(x))
    has = x > 0
    t_x[has] = span[has] * rng.beta(x[has], n[has] - x[has] + 1)
    return np.floor(t_x * _DAYS_PER_WEEK) / _DAYS_PER_WEEK


def _frame(x, t_x, T, rng, spend: tuple[float, float, float] | None) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(1, len(x) + 1, dtype="int64"),
            "frequency": x.astype("int64"),
            "recency": t_x,
            "T": T,
        }
    )
    if spend is not None:
        p, q, v = spend
        nu = rng.gamma(q, 1.0 / v, size=len(x))
        has = x > 0
        monetary = np.zeros(len(x))
        # The mean of x Gamma(p, nu) values is Gamma(p x, x nu).
        monetary[has] = rng.gamma(p * x[has], 1.0 / (x[has] * nu[has]))
        frame["monetary_value"] = monetary
    return frame


def simulate_beta_geo(
    n_customers: int,
    *,
    r: float,
    alpha: float,
    a: float,
    b: float,
    max_days: int = 730,
    modified: bool = False,
    spend: tuple[float, float, float] | None = None,
    random_state: int = 0,
) -> pd.DataFrame:
    """RFM table (weeks, day resolution) from BG/NBD, or MBG/NBD with ``modified=True``.

    ``spend=(p, q, v)`` adds a Gamma-Gamma ``monetary_value``.
    """
    rng = np.random.default_rng(random_state)
    T = _ages(rng, n_customers, max_days)
    rate = rng.gamma(r, 1.0 / alpha, size=n_customers)
    dropout = np.clip(rng.beta(a, b, size=n_customers), 1e-12, 1.0)
    n = rng.poisson(rate * T)
    # Repeat purchases made before dropping out: BG/NBD can drop out after each repeat
    # purchase; MBG/NBD also right after the first purchase.
    before_dropout = rng.geometric(dropout) - (1 if modified else 0)
    x = np.minimum(n, before_dropout)
    t_x = _last_purchase_time(rng, x, n, T)
    return _frame(x, t_x, T, rng, spend)


def simulate_pareto_nbd(
    n_customers: int,
    *,
    r: float,
    alpha: float,
    s: float,
    beta: float,
    max_days: int = 730,
    spend: tuple[float, float, float] | None = None,
    random_state: int = 0,
) -> pd.DataFrame:
    """RFM table (weeks, day resolution) from Pareto/NBD."""
    rng = np.random.default_rng(random_state)
    T = _ages(rng, n_customers, max_days)
    rate = rng.gamma(r, 1.0 / alpha, size=n_customers)
    death_rate = rng.gamma(s, 1.0 / beta, size=n_customers)
    alive_for = np.minimum(rng.exponential(1.0 / death_rate), T)
    x = rng.poisson(rate * alive_for)
    t_x = _last_purchase_time(rng, x, x, alive_for)
    return _frame(x, t_x, T, rng, spend)

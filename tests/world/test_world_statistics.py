"""The generated source data follow the ground truth they were drawn from.

Each check is a z-test of an observed total against its expectation under the truth
(|z| < 4), or an exact identity the generative model implies.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, special, stats
from world_support import World

from cx_pipelines.world import WORLD_END

Z_LIMIT = 4.0


def z_score(observed: np.ndarray, expected: np.ndarray) -> float:
    residual = np.asarray(observed, dtype=float) - np.asarray(expected, dtype=float)
    return residual.mean() / (residual.std(ddof=1) / np.sqrt(len(residual)))


def purchase_history(world: World) -> pd.DataFrame:
    transactions = world.tables["transactions"]
    history = transactions.groupby("customer_id")["occurred_at"].agg(["count", "min", "max"])
    truth = world.truth.set_index("customer_id")
    return truth.join(history, how="left").fillna({"count": 0})


def test_purchases_per_customer_match_the_bg_nbd_truth(world: World) -> None:
    history = purchase_history(world).dropna(subset=["first_purchase_at"])
    weeks = (pd.Timestamp(WORLD_END) - history["first_purchase_at"]).dt.total_seconds() / 604_800
    rate = history["purchase_rate"].to_numpy()
    dropout = history["dropout_probability"].to_numpy()
    # E[min(J, N)] = Σ_k P(J ≥ k) P(N ≥ k), J ~ Geometric(p), N ~ Poisson(λT)
    k = np.arange(1, 2_000)[:, None]
    expected_repeat = ((1 - dropout) ** (k - 1) * stats.poisson.sf(k - 1, rate * weeks)).sum(0)
    repeat = history["count"].to_numpy() - 1
    assert abs(z_score(repeat, expected_repeat)) < Z_LIMIT
    # P(alive at T) = E[(1 − p)^N] = exp(−λ p T)
    alive = history["alive_at_end"].to_numpy()
    assert abs(z_score(alive, np.exp(-rate * dropout * weeks))) < Z_LIMIT


def test_dropout_happens_right_after_the_last_purchase(world: World) -> None:
    history = purchase_history(world)
    assert (history["count"] == history["purchases"]).all()
    dropped = history[~history["alive_at_end"]]
    assert len(dropped) > 100
    assert (dropped["dropped_out_at"] == dropped["max"]).all()


def test_buying_rates_follow_the_published_gamma_mixture(world: World) -> None:
    bg_nbd = world.population["bg_nbd"]
    rates = world.truth["purchase_rate"]
    fit = stats.kstest(rates, stats.gamma(bg_nbd["r"], scale=1 / bg_nbd["alpha"]).cdf)
    assert fit.pvalue > 0.001
    dropouts = world.truth["dropout_probability"]
    assert stats.kstest(dropouts, stats.beta(bg_nbd["a"], bg_nbd["b"]).cdf).pvalue > 0.001


def test_spend_per_transaction_matches_the_gamma_gamma_truth(world: World) -> None:
    transactions = world.tables["transactions"]
    truth = world.truth.set_index("customer_id")
    expected = truth["expected_spend"].loc[transactions["customer_id"]].to_numpy()
    assert abs(z_score(transactions["amount"], expected)) < Z_LIMIT
    gamma_gamma = world.population["gamma_gamma"]
    scale = truth["spend_scale"]
    assert np.allclose(truth["expected_spend"], gamma_gamma["p"] / scale)


def test_campaign_responses_match_the_true_probabilities(world: World) -> None:
    offers = world.tables["offer_history"]
    truth = world.truth.set_index("customer_id")
    probability = np.empty(len(offers))
    for position, contact in enumerate(offers.itertuples()):
        arm = "treated" if contact.treated else "control"
        column = f"p_{arm}__{contact.offer_type}__{contact.channel}"
        probability[position] = truth.at[contact.customer_id, column]
    for treated in (True, False):
        arm = offers["treated"].to_numpy() == treated
        observed = offers["responded"].to_numpy()[arm].sum()
        expected = probability[arm].sum()
        spread = np.sqrt((probability[arm] * (1 - probability[arm])).sum())
        assert abs(observed - expected) / spread < Z_LIMIT
    assert 0.7 < offers["treated"].mean() < 0.9
    responded = offers["responded"]
    assert (offers.loc[responded, "revenue"] > 0).all()
    assert (offers.loc[~responded, "revenue"] == 0).all()


def test_treatment_lifts_response_on_average(world: World) -> None:
    offers = world.tables["offer_history"]
    rates = offers.groupby("treated")["responded"].mean()
    assert rates[True] > rates[False]


def bg_nbd_negative_log_likelihood(parameters, repeat, recency, age) -> float:
    """Fader, Hardie and Lee (2005), equation 6, on log parameters."""
    r, alpha, a, b = np.exp(parameters)
    common = (
        special.gammaln(r + repeat)
        - special.gammaln(r)
        + r * np.log(alpha)
        + special.gammaln(a + b)
        + special.gammaln(b + repeat)
        - special.gammaln(b)
        - special.gammaln(a + b + repeat)
    )
    alive = -(r + repeat) * np.log(alpha + age)
    dropped = np.where(
        repeat > 0,
        np.log(a)
        - np.log(np.maximum(b + repeat - 1, 1e-12))
        - (r + repeat) * np.log(alpha + recency),
        -np.inf,
    )
    return -(common + np.logaddexp(alive, dropped)).sum()


def test_a_bg_nbd_fit_of_the_transactions_recovers_the_population(world: World) -> None:
    history = purchase_history(world).dropna(subset=["first_purchase_at"])
    week = pd.Timedelta(weeks=1)
    repeat = history["count"].to_numpy() - 1
    recency = ((history["max"] - history["min"]) / week).to_numpy()
    age = ((pd.Timestamp(WORLD_END) - history["min"]) / week).to_numpy()
    fit = optimize.minimize(
        bg_nbd_negative_log_likelihood,
        np.zeros(4),
        args=(repeat, recency, age),
        method="Nelder-Mead",
        options={"maxiter": 4_000, "xatol": 1e-6, "fatol": 1e-6},
    )
    estimate = dict(zip(["r", "alpha", "a", "b"], np.exp(fit.x), strict=True))
    for name, value in world.population["bg_nbd"].items():
        assert estimate[name] == pytest.approx(value, rel=0.3), name


def gamma_gamma_negative_log_likelihood(parameters, count, mean) -> float:
    """Fader, Hardie and Lee (2005), spend model: mean spend of ``count`` transactions."""
    p, q, v = np.exp(parameters)
    return -(
        special.gammaln(p * count + q)
        - special.gammaln(p * count)
        - special.gammaln(q)
        + q * np.log(v)
        + (p * count - 1) * np.log(mean)
        + p * count * np.log(count)
        - (p * count + q) * np.log(v + count * mean)
    ).sum()


def test_a_gamma_gamma_fit_of_the_amounts_recovers_the_population(world: World) -> None:
    spend = world.tables["transactions"].groupby("customer_id")["amount"].agg(["count", "mean"])
    fit = optimize.minimize(
        gamma_gamma_negative_log_likelihood,
        np.zeros(3),
        args=(spend["count"].to_numpy(), spend["mean"].to_numpy()),
        method="Nelder-Mead",
        options={"maxiter": 4_000, "xatol": 1e-6, "fatol": 1e-6},
    )
    estimate = dict(zip(["p", "q", "v"], np.exp(fit.x), strict=True))
    for name, value in world.population["gamma_gamma"].items():
        assert estimate[name] == pytest.approx(value, rel=0.3), name

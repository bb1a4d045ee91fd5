"""BTYD predictions: independent formulas agree; probabilities are bounded and monotone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import integrate
from scipy.special import gammaln, hyp2f1

from cx_pipelines.ml.btyd import (
    BetaGeoModel,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
)
from cx_pipelines.ml.btyd.base import DistinctColumn


def _with_params(model_class, **params):
    model = model_class()
    model.params_ = pd.Series(params, dtype="float64")
    return model


def _rows(frequency, recency, T) -> pd.DataFrame:
    frequency, recency, T = np.broadcast_arrays(
        np.asarray(frequency, dtype="float64"),
        np.asarray(recency, dtype="float64"),
        np.asarray(T, dtype="float64"),
    )
    return pd.DataFrame(
        {
            "customer_id": np.arange(len(frequency)),
            "frequency": frequency,
            "recency": recency,
            "T": T,
        }
    )


BG = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PARETO = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}


def test_beta_geo_conditional_expectation_agrees_with_the_untransformed_formula():
    model = _with_params(BetaGeoModel, **BG)
    rows = _rows([2, 1, 0, 7], [30.43, 1.71, 0.0, 35.0], [38.86, 38.86, 38.86, 38.86])
    got = model.expected_transactions(rows, future_t=39).to_numpy()
    r, alpha, a, b = BG.values()
    x, t_x, T, t = rows["frequency"], rows["recency"], rows["T"], 39.0
    # Fader, Hardie and Lee (2005) eq. 10, as printed.
    bracket = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(
        r + x, b + x, a + b + x - 1, t / (alpha + T + t)
    )
    alive = 1 + (x > 0) * a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x)
    expected = (a + b + x - 1) / (a - 1) * bracket / alive
    assert got == pytest.approx(expected.to_numpy(), rel=1e-9)
    new = model.expected_transactions_new_customer(t=np.array([10.0, 39.0, 78.0]))
    z = np.array([10.0, 39.0, 78.0])
    printed = (
        (a + b - 1)
        / (a - 1)
        * (1 - (alpha / (alpha + z)) ** r * hyp2f1(r, b, a + b - 1, z / (alpha + z)))
    )
    assert new == pytest.approx(printed, rel=1e-9)


def test_pareto_nbd_likelihood_agrees_with_direct_integration_over_the_death_time():
    model = ParetoNBDModel()
    r, alpha, s, beta = PARETO.values()
    for x, t_x, T in [(0, 0.0, 30.0), (3, 12.0, 30.0), (12, 29.5, 30.0)]:

        def integrand(tau, x=x):
            return (alpha + tau) ** -(r + x) * (beta + tau) ** -(s + 1)

        integral = integrate.quad(integrand, t_x, T, epsabs=0, epsrel=1e-12)[0]
        head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        direct = head + np.log((alpha + T) ** -(r + x) * (beta + T) ** -s + s * integral)
        statistics, _ = model._statistics(_rows([x], [t_x], [T]))
        assert isinstance(statistics[0], DistinctColumn)
        got = model._log_likelihood(np.array(list(PARETO.values())), *statistics)[0]
        assert got == pytest.approx(direct, rel=1e-9)


@pytest.mark.parametrize("params", [PARETO, {"r": 0.5, "alpha": 2.0, "s": 0.7, "beta": 40.0}])
def test_pareto_nbd_stays_finite_for_very_large_frequencies(params):
    model = _with_params(ParetoNBDModel, **params)
    rows = _rows([500, 2000, 20000], [99.0, 99.9, 100.0], [100.0, 100.0, 100.0])
    alive = model.expected_probability_alive(rows)
    assert np.isfinite(alive).all() and alive.between(0, 1).all()
    expected = model.expected_transactions(rows, future_t=10)
    assert np.isfinite(expected).all() and (expected > 0).all()


@pytest.mark.parametrize(
    "model_class, params",
    [(BetaGeoModel, BG), (ModifiedBetaGeoModel, BG), (ParetoNBDModel, PARETO)],
)
def test_probability_alive_is_a_probability_and_rises_with_recency(model_class, params):
    model = _with_params(model_class, **params)
    recency = np.linspace(0.5, 38.0, 40)
    for frequency in (1, 3, 10):
        alive = model.expected_probability_alive(_rows(frequency, recency, 38.0)).to_numpy()
        assert ((alive >= 0) & (alive <= 1)).all()
        assert (np.diff(alive) > 0).all()
    one_time = model.expected_probability_alive(_rows(0, 0.0, [1.0, 10.0, 50.0])).to_numpy()
    if model_class is BetaGeoModel:
        assert (one_time == 1).all()  # BG/NBD: no dropout before the first repeat purchase
    else:
        assert (np.diff(one_time) < 0).all()


def test_modified_beta_geo_one_time_buyer_formula():
    model = _with_params(ModifiedBetaGeoModel, **BG)
    T = np.array([1.0, 10.0, 50.0])
    got = model.expected_probability_ever_again(_rows(0, 0.0, T)).to_numpy()
    r, alpha, a, b = BG.values()
    assert got == pytest.approx(1 / (1 + a / b * ((alpha + T) / alpha) ** r))


def test_pareto_probability_ever_again_agrees_with_integration():
    model = _with_params(ParetoNBDModel, **PARETO)
    rows = _rows([0, 4], [0.0, 20.0], [5.0, 38.0])
    got = model.expected_probability_ever_again(rows).to_numpy()
    alive = model.expected_probability_alive(rows).to_numpy()
    r, alpha, s, beta = PARETO.values()
    for i, (x, T) in enumerate([(0, 5.0), (4, 38.0)]):
        k, A, B = r + x, alpha + T, beta + T
        share = integrate.quad(
            lambda u, k=k, A=A, B=B: k / A * (1 + u / A) ** -(k + 1) * (1 + u / B) ** -s,
            0,
            np.inf,
        )[0]
        assert got[i] == pytest.approx(alive[i] * share, rel=1e-7)


def test_probability_of_a_transaction_grows_with_the_horizon_and_is_bounded_by_alive():
    model = _with_params(BetaGeoModel, **BG)
    rows = _rows([2, 5], [10.0, 30.0], [38.0, 38.0])
    alive = model.expected_probability_alive(rows).to_numpy()
    short = model.expected_probability_of_transaction(rows, future_t=4).to_numpy()
    long = model.expected_probability_of_transaction(rows, future_t=52).to_numpy()
    assert (short > 0).all() and (short < long).all() and (long < alive).all()


def test_gamma_gamma_spend_and_undiscounted_clv():
    spend_model = _with_params(GammaGammaModel, p=6.25, q=3.74, v=15.44)
    rows = _rows([0, 1, 10], [0.0, 5.0, 30.0], [38.0, 38.0, 38.0]).assign(
        monetary_value=[0.0, 20.0, 50.0]
    )
    spend = spend_model.expected_average_spend(rows).to_numpy()
    assert spend[0] == pytest.approx(6.25 * 15.44 / 2.74)  # population mean for no repeat purchases
    assert spend[2] == pytest.approx(6.25 * (15.44 + 500) / (62.5 + 2.74))
    transactions = _with_params(BetaGeoModel, **BG)
    clv = spend_model.expected_customer_lifetime_value(
        transactions, rows, periods=6, period_length=4, discount_rate=0
    )
    total = transactions.expected_transactions(rows, future_t=24).to_numpy() * spend
    assert clv.to_numpy() == pytest.approx(total)
    discounted = spend_model.expected_customer_lifetime_value(
        transactions, rows, periods=6, period_length=4, discount_rate=0.05
    )
    assert (discounted.to_numpy() < clv.to_numpy()).all()

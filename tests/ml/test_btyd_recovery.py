"""Fitting simulated customers recovers the parameters they were simulated from."""

from __future__ import annotations

import numpy as np
import pytest

from cx_pipelines.ml.btyd import (
    BetaGeoModel,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
)
from cx_pipelines.ml.btyd.simulation import simulate_beta_geo, simulate_pareto_nbd

BG = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}


def _assert_recovered(model, truth: dict[str, float]) -> None:
    estimate = model.params_[list(truth)].to_numpy()
    error = model.standard_errors_[list(truth)].to_numpy()
    assert np.isfinite(error).all()
    # Seeded data: within four standard errors (the errors themselves are checked here too:
    # far too small errors would fail this, far too large ones the 25% bound).
    deviation = np.abs(estimate - np.array(list(truth.values())))
    assert (deviation < 4 * error).all(), (deviation / error).round(2)
    assert (error / estimate < 0.25).all()


def test_beta_geo_recovers_its_parameters():
    data = simulate_beta_geo(20_000, **BG, random_state=11)
    _assert_recovered(BetaGeoModel().fit(data), BG)


def test_modified_beta_geo_recovers_its_parameters():
    data = simulate_beta_geo(20_000, **BG, modified=True, random_state=12)
    _assert_recovered(ModifiedBetaGeoModel().fit(data), BG)


def test_pareto_nbd_recovers_its_parameters():
    truth = {"r": 0.55, "alpha": 10.0, "s": 0.6, "beta": 12.0}
    data = simulate_pareto_nbd(20_000, **truth, random_state=13)
    _assert_recovered(ParetoNBDModel().fit(data), truth)


def test_gamma_gamma_recovers_its_parameters():
    data = simulate_beta_geo(20_000, **BG, spend=(6.0, 4.0, 15.0), random_state=14)
    _assert_recovered(GammaGammaModel().fit(data), {"p": 6.0, "q": 4.0, "v": 15.0})


def test_simulated_customers_predict_their_own_holdout_on_average():
    """Expected transactions in the next year match a continuation of the simulation."""
    data = simulate_beta_geo(20_000, **BG, random_state=15)
    model = BetaGeoModel().fit(data)
    new_customer = model.expected_transactions_new_customer(t=52.0)
    # Average repeat transactions of simulated customers observed for about a year.
    year = simulate_beta_geo(200_000, **BG, max_days=364, random_state=16)
    observed = year.loc[year["T"] >= 51.5, "frequency"].mean()
    assert new_customer == pytest.approx(observed, rel=0.1)

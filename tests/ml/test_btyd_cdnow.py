"""The BTYD models reproduce the published CDNOW fits (2,357 customers, 39-week calibration)."""

from __future__ import annotations

import pandas as pd
import pytest

from cx_pipelines.datasets import read_cdnow
from cx_pipelines.ml.btyd import BetaGeoModel, GammaGammaModel, ParetoNBDModel
from cx_pipelines.ml.rfm import rfm_summary


@pytest.fixture(scope="module")
def cdnow_rfm() -> pd.DataFrame:
    return rfm_summary(
        read_cdnow(),
        datetime_col="date",
        monetary_value_col="dollar_value",
        observation_period_end="1997-09-30",
    )


def _rounded(model, digits: int) -> dict[str, float]:
    return {name: round(float(value), digits) for name, value in model.params_.items()}


def test_beta_geo_matches_fader_hardie_lee_2005(cdnow_rfm):
    model = BetaGeoModel().fit(cdnow_rfm)
    assert _rounded(model, 3) == {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    assert round(model.log_likelihood_, 1) == -9582.4
    assert model.converged_
    assert (model.standard_errors_ > 0).all()


def test_pareto_nbd_matches_fader_hardie_2005(cdnow_rfm):
    model = ParetoNBDModel().fit(cdnow_rfm)
    assert _rounded(model, 3) == {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
    assert round(model.log_likelihood_, 1) == -9595.0


def test_gamma_gamma_matches_fader_hardie_lee_rfm_and_clv(cdnow_rfm):
    model = GammaGammaModel().fit(cdnow_rfm)
    assert model.n_customers_ == 946
    assert _rounded(model, 2) == {"p": 6.25, "q": 3.74, "v": 15.44}


def test_fitting_uses_sufficient_statistics_without_changing_the_result(cdnow_rfm):
    doubled = pd.concat(
        [cdnow_rfm, cdnow_rfm.assign(customer_id=cdnow_rfm["customer_id"] + 10_000)]
    )
    single = BetaGeoModel().fit(cdnow_rfm)
    both = BetaGeoModel().fit(doubled)
    assert both.params_.to_numpy() == pytest.approx(single.params_.to_numpy(), rel=1e-4)
    assert both.log_likelihood_ == pytest.approx(2 * single.log_likelihood_, rel=1e-8)
    # Twice the customers, standard errors shrink by sqrt(2).
    ratio = (single.standard_errors_ / both.standard_errors_).to_numpy()
    assert ratio == pytest.approx([2**0.5] * 4, rel=0.02)

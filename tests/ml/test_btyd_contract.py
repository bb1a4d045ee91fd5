"""The data contract of the BTYD models: exact errors for bad input, never a silent NaN."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

from cx_pipelines.ml.btyd import (
    BetaGeoModel,
    BTYDNotFittedError,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
)

TRANSACTION_MODELS = [BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel]


def _data(**overrides) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 4],
            "frequency": [0, 2, 5, 1],
            "recency": [0.0, 10.0, 30.0, 3.0],
            "T": [20.0, 30.0, 40.0, 10.0],
            "monetary_value": [0.0, 12.5, 30.0, 8.0],
        }
    )
    for column, values in overrides.items():
        frame[column] = values
    return frame


@pytest.mark.parametrize("model_class", TRANSACTION_MODELS)
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"customer_id": [1, 2, 2, 4]}, "Column customer_id has duplicate entries"),
        ({"frequency": [0, -2, 5, 1]}, "Column frequency has negative entries"),
        ({"recency": [0.0, -1.0, 30.0, 3.0]}, "Column recency has negative entries"),
        ({"T": [20.0, 30.0, 25.0, 10.0]}, "Column recency has entries greater than T"),
        (
            {"recency": [4.0, 10.0, 30.0, 3.0]},
            "Column recency has entries greater than 0 where frequency is 0",
        ),
        ({"frequency": [0, 2.5, 5, 1]}, "Column frequency has non-integer entries"),
        ({"T": [20.0, np.nan, 40.0, 10.0]}, "Column T has missing or non-numeric entries"),
        ({"customer_id": [1, None, 3, 4]}, "Column customer_id has missing entries"),
    ],
)
def test_fit_refuses_data_that_breaks_the_contract(model_class, overrides, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        model_class().fit(_data(**overrides))


@pytest.mark.parametrize("model_class", TRANSACTION_MODELS)
def test_missing_column_empty_and_single_customer_data_are_refused(model_class):
    with pytest.raises(ValueError, match="^Required column recency is missing$"):
        model_class().fit(_data().drop(columns="recency"))
    with pytest.raises(ValueError, match="^Data has no rows"):
        model_class().fit(_data().iloc[:0])
    with pytest.raises(
        ValueError, match="needs at least 2 customers to estimate its parameters, got 1"
    ):
        model_class().fit(_data().iloc[[1]])


@pytest.mark.parametrize("model_class", TRANSACTION_MODELS)
def test_all_zero_frequency_cannot_identify_the_rates(model_class):
    data = _data(frequency=[0, 0, 0, 0], recency=[0.0, 0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="^All customers have frequency 0"):
        model_class().fit(data)


def test_gamma_gamma_needs_repeat_buyers_with_positive_spend():
    no_repeat = _data(frequency=[0, 0, 0, 0], recency=[0.0] * 4, monetary_value=[0.0] * 4)
    with pytest.raises(ValueError, match="^No customer has frequency > 0"):
        GammaGammaModel().fit(no_repeat)
    with pytest.raises(ValueError, match="^Column monetary_value has entries <= 0 where frequency"):
        GammaGammaModel().fit(_data(monetary_value=[0.0, 0.0, 30.0, 8.0]))
    with pytest.raises(ValueError, match="^Column monetary_value has negative entries$"):
        GammaGammaModel().fit(_data(monetary_value=[0.0, -1.0, 30.0, 8.0]))


def test_predicting_before_fitting_says_so():
    with pytest.raises(BTYDNotFittedError, match="not fitted yet"):
        BetaGeoModel().expected_probability_alive(_data())


def test_unknown_initial_parameter_names_are_refused():
    with pytest.raises(ValueError, match=r"initial_params has unknown names \['gamma'\]"):
        BetaGeoModel(initial_params={"gamma": 1.0}).fit(_data())


@pytest.mark.parametrize("model_class", TRANSACTION_MODELS)
def test_tiny_data_fit_gives_finite_parameters_and_warns_instead_of_nan(model_class):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = model_class().fit(_data().iloc[[0, 1]])
    assert np.isfinite(model.params_).all()
    assert np.isfinite(model.log_likelihood_)
    messages = " ".join(str(warning.message) for warning in caught)
    if model.standard_errors_.isna().any():
        assert "standard errors are set to NaN" in messages
    if not model.converged_:
        assert "stopped before converging" in messages
    assert model.expected_probability_alive().between(0, 1).all()

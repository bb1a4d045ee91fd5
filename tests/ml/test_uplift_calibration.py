"""Offer × channel recalibration of the logistic s-learner and its cross-validated penalty."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cx_pipelines.ml.errors import TrainingDataError
from cx_pipelines.ml.supervised.logistic_uplift import LogisticSLearner
from cx_pipelines.ml.supervised.uplift import UpliftModel
from cx_pipelines.ml.supervised.uplift_calibration import PairCalibration

COLUMNS = ["offer_type", "channel", "customer_type", "age"]
CATEGORICAL = ("offer_type", "channel", "customer_type")
OFFER_BASE = {"card": -1.5, "mortgage": -3.0}
OFFER_EFFECT = {"card": 0.1, "mortgage": 1.6}
CHANNEL_EFFECT = {"email": 0.0, "branch": 0.4}


def contacts(size: int, seed: int) -> pd.DataFrame:
    """Randomised contacts where the mortgage offer's effect on the log-odds is far from the
    card's, so a heavy penalty pulls the mortgage uplift towards the card's (too small)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "offer_type": rng.choice(list(OFFER_BASE), size),
            "channel": rng.choice(list(CHANNEL_EFFECT), size),
            "customer_type": rng.choice(["student", "affluent"], size),
            "age": rng.uniform(18, 80, size),
            "customer_id": rng.integers(0, size // 2, size),
        }
    )
    frame["treated"] = rng.random(size) < 0.7
    base = frame["offer_type"].map(OFFER_BASE) - ((frame["age"] - 40) / 30) ** 2
    effect = frame["offer_type"].map(OFFER_EFFECT) + frame["channel"].map(CHANNEL_EFFECT)
    effect = effect + 0.3 * (frame["customer_type"] == "affluent")
    frame["true_uplift"] = 1 / (1 + np.exp(-(base + effect))) - 1 / (1 + np.exp(-base))
    logit = base + frame["treated"] * effect
    frame["responded"] = rng.random(size) < 1 / (1 + np.exp(-logit))
    return frame


def fitted(frame: pd.DataFrame, **params) -> UpliftModel:
    model = UpliftModel(
        learner="logistic_s_learner", categorical_features=CATEGORICAL, booster_params=params
    )
    return model.fit(
        frame[COLUMNS], frame["responded"], treatment=frame["treated"], groups=frame["customer_id"]
    )


def mortgage_error(model: UpliftModel, test: pd.DataFrame) -> float:
    mortgage = test[test["offer_type"] == "mortgage"]
    return float(model.predict(mortgage[COLUMNS]).mean() - mortgage["true_uplift"].mean())


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    return contacts(16_000, seed=1), contacts(16_000, seed=2)


def test_the_calibration_corrects_a_pair_the_penalty_shrank(data):
    train, test = data
    shrunk = fitted(train, C=0.0005)
    calibrated = fitted(train, C=0.0005, calibration="offer_channel")
    # The heavy penalty leaves the mortgage uplift far too small; the cross-fitted
    # correction recovers most of it, and the cross-validation chose a real correction.
    assert mortgage_error(shrunk, test) < -0.02
    assert abs(mortgage_error(calibrated, test)) < 0.4 * abs(mortgage_error(shrunk, test))
    selection = calibrated.training_summary()["selection"]
    assert selection["calibration"]["prior_sd"] > 0.03
    assert selection["calibration"]["effect_slope"].keys() == {"card", "mortgage"}
    # Both arms stay probabilities.
    treated, control = calibrated.predict_arms(test[COLUMNS])
    assert ((treated > 0) & (treated < 1) & (control > 0) & (control < 1)).all()


def test_a_model_that_is_already_calibrated_is_left_nearly_alone(data):
    train, test = data
    plain = fitted(train, C=1.0)
    calibrated = fitted(train, C=1.0, calibration="offer_channel")
    shifts = calibrated.training_summary()["selection"]["calibration"]["effect_shift"]
    assert max(abs(v) for v in shifts.values()) < 0.15
    difference = calibrated.predict(test[COLUMNS]) - plain.predict(test[COLUMNS])
    assert np.abs(difference).mean() < 0.01


def test_the_penalty_is_chosen_by_cross_validated_likelihood(data):
    train, _ = data
    model = fitted(train.head(8_000), C=[0.0001, 1.0])
    selection = model.training_summary()["selection"]
    assert selection["C"] == 1.0
    likelihood = selection["cross_validated_log_likelihood"]
    assert likelihood["1.0"] > likelihood["0.0001"]


def test_a_pair_or_level_the_calibration_never_saw_gets_only_the_corrections_it_has():
    calibration = PairCalibration(
        offers=("card", "mortgage"),
        channels=("branch", "email"),
        control_offer=np.array([0.0, 0.5]),
        effect_offer=np.array([0.0, 1.0]),
        effect_channel=np.array([0.2, 0.0]),
        effect_pair=np.zeros((2, 2)),
        slope_offer=np.array([0.0, 0.0]),
        prior_sd=0.3,
    )
    control = np.full(3, 0.1)
    treated = np.full(3, 0.2)
    new_treated, new_control = calibration.adjust(
        ["mortgage", "mortgage", "loan"], ["branch", "web", "branch"], treated, control
    )
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    # mortgage/branch: offer shift 0.5 on both arms, effect + 1.0 + 0.2
    np.testing.assert_allclose(logit(new_control[0]), logit(0.1) + 0.5)
    np.testing.assert_allclose(logit(new_treated[0]), logit(0.2) + 0.5 + 1.0 + 0.2)
    # an unknown channel: the offer's corrections only
    np.testing.assert_allclose(logit(new_treated[1]), logit(0.2) + 0.5 + 1.0)
    # an unknown offer on a known channel: the channel's effect correction only
    np.testing.assert_allclose(new_control[2], 0.1)
    np.testing.assert_allclose(logit(new_treated[2]), logit(0.2) + 0.2)


def test_cross_fitting_folds_keep_each_customer_together():
    learner = LogisticSLearner(categorical=(), params={"calibration_folds": 3}, random_state=0)
    groups = np.repeat(np.arange(50), 4)
    folds = learner._folds(len(groups), groups)
    assert set(np.unique(folds)) == {0, 1, 2}
    assert (pd.Series(folds).groupby(groups).nunique() == 1).all()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"calibration": "isotonic"}, "calibration must be one of"),
        ({"calibration": "offer_channel", "calibration_folds": 1}, "at least 2"),
        ({"C": []}, "C must be a positive number"),
        ({"C": [0.1, -1.0]}, "C must be a positive number"),
    ],
)
def test_bad_calibration_settings_are_a_clear_error(data, params, message):
    train, _ = data
    with pytest.raises(TrainingDataError, match=message):
        fitted(train.head(2_000), **params)


def test_a_model_pickled_before_the_calibration_existed_still_scores(data):
    train, test = data
    model = fitted(train.head(4_000), C=0.1, calibration="offer_channel")
    logistic = model.components_["logistic"][0]
    for name in ("calibration_", "C_", "cross_validation_"):
        delattr(logistic, name)
    treated, control = model.predict_arms(test[COLUMNS].head(100))
    assert np.isfinite(treated - control).all()
    assert model.training_summary()["selection"]["C"] == 0.1

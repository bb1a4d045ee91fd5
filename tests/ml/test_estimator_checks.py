"""scikit-learn's estimator checks on the supervised model families, and the conventions of the
estimators the checks cannot drive (uplift needs a treatment arm, the BTYD ranking a column)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from cx_pipelines.ml.supervised import (
    ESTIMATOR_OF_KIND,
    AttritionClassifier,
    BTYDRankingClassifier,
    CalibratedBoostingClassifier,
    DormancyClassifier,
    HitAndRunClassifier,
    PropensityClassifier,
    UpliftModel,
)

SMALL = {"max_iter": 10, "max_leaf_nodes": 7, "min_samples_leaf": 2}


@pytest.mark.slow
@parametrize_with_checks(
    [
        # Every family subclasses CalibratedBoostingClassifier without changing its code;
        # the three instances cover the three calibration paths.
        CalibratedBoostingClassifier(booster_params=SMALL, calibration="none"),
        HitAndRunClassifier(booster_params=SMALL, calibration="isotonic"),
        PropensityClassifier(booster_params=SMALL, calibration="sigmoid", random_state=3),
    ]
)
def test_supervised_classifiers_pass_scikit_learn_checks(estimator, check):
    check(estimator)


def test_every_classifier_family_is_registered_under_its_spec_kind():
    assert {
        "propensity": PropensityClassifier,
        "attrition": AttritionClassifier,
        "hit_and_run": HitAndRunClassifier,
        "dormancy": DormancyClassifier,
    } == ESTIMATOR_OF_KIND


def _campaign(size: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"income": rng.normal(size=size), "segment": rng.choice(["a", "b"], size)})
    treated = rng.random(size) < 0.7
    logit = -1.0 + 0.8 * frame["income"] + treated * (0.5 + 0.8 * (frame["segment"] == "a"))
    frame["responded"] = rng.random(size) < 1 / (1 + np.exp(-logit))
    frame["treated"] = treated
    return frame


@pytest.mark.parametrize("learner", ["s_learner", "t_learner", "x_learner", "dr_learner"])
def test_uplift_model_follows_the_estimator_conventions(learner):
    # parametrize_with_checks cannot drive it: fit needs the treatment arm besides X and y.
    frame = _campaign(1_500, seed=4)
    model = UpliftModel(
        learner=learner, categorical_features=("segment",), booster_params=SMALL, random_state=2
    )
    assert clone(model).get_params() == model.get_params()
    with pytest.raises(NotFittedError):
        model.predict(frame)
    inputs = frame[["income", "segment"]].astype({"segment": object})
    assert model.fit(inputs, frame["responded"], treatment=frame["treated"]) is model
    learned = {name for name in vars(model) if name.endswith("_") and not name.startswith("_")}
    assert {"components_", "features_", "treated_share_", "class_counts_"} <= learned
    assert not any(name.startswith("_") for name in vars(model))
    uplift = model.predict(inputs)
    assert uplift.shape == (len(frame),) and np.isfinite(uplift).all()
    # Segment "a" gets the larger effect in truth; the learner must see it.
    assert uplift[inputs["segment"] == "a"].mean() > uplift[inputs["segment"] == "b"].mean()
    again = clone(model).fit(inputs, frame["responded"], treatment=frame["treated"])
    np.testing.assert_allclose(again.predict(inputs), uplift)


def test_btyd_ranking_reads_its_column_and_follows_the_conventions():
    frame = pd.DataFrame({"btyd_probability_in_horizon": [0.1, 0.7, 0.4], "other": [1, 2, 3]})
    model = BTYDRankingClassifier()
    with pytest.raises(NotFittedError):
        model.predict_proba(frame)
    assert model.fit(frame, [0, 1, 0]) is model
    np.testing.assert_allclose(model.predict_proba(frame)[:, 1], [0.1, 0.7, 0.4])
    assert list(model.predict(frame)) == [0, 1, 0]
    assert model.features == ["btyd_probability_in_horizon"]
    assert clone(model).get_params() == {"column": "btyd_probability_in_horizon"}

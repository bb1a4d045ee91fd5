"""Propensity classifier: recovers a known response model, stays calibrated, rejects bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from cx_pipelines.ml import evaluation
from cx_pipelines.ml.errors import InsufficientDataError, TrainingDataError
from cx_pipelines.ml.specs import load_spec
from cx_pipelines.ml.supervised.classifier import fit_classifier
from cx_pipelines.ml.supervised.propensity import score_offer_channels

OFFERS = ("card", "loan")
CHANNELS = ("email", "web")


def simulate_contacts(size: int, seed: int) -> pd.DataFrame:
    """Contacts whose response probability depends on income, activity, offer and channel."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(size),
            "offer_type": rng.choice(OFFERS, size),
            "channel": rng.choice(CHANNELS, size),
            "customer_type": rng.choice(["student", "affluent", "mass_market"], size),
            "annual_income": rng.lognormal(10.5, 0.5, size),
            "purchases_90d": rng.poisson(3, size).astype(float),
            "noise": rng.normal(size=size),
        }
    )
    logit = (
        -2.5
        + 0.8 * (frame["offer_type"] == "loan")
        - 0.6 * (frame["channel"] == "email")
        + 0.9 * (frame["customer_type"] == "affluent")
        + 0.25 * frame["purchases_90d"]
        + 0.4 * (np.log(frame["annual_income"]) - 10.5)
    )
    frame["true_probability"] = 1 / (1 + np.exp(-logit))
    frame["responded"] = rng.random(size) < frame["true_probability"]
    return frame


@pytest.fixture(scope="module")
def spec():
    base = load_spec("propensity")
    return dataclasses.replace(
        base,
        include=("offer_type", "channel", "customer_type", "annual_income", "purchases_*", "noise"),
        categorical=("offer_type", "channel", "customer_type"),
    )


def test_model_is_close_to_the_oracle_and_calibrated(spec):
    train = simulate_contacts(30_000, seed=1)
    holdout = simulate_contacts(20_000, seed=2)
    model = fit_classifier(train, spec, random_state=0)
    predicted = model.predict_probability(holdout)
    model_auc = evaluation.auc(holdout["responded"], predicted)
    oracle_auc = evaluation.auc(holdout["responded"], holdout["true_probability"])
    assert model_auc >= 0.97 * oracle_auc
    assert evaluation.expected_calibration_error(holdout["responded"], predicted) < 0.02


def test_fitting_is_seeded(spec):
    train = simulate_contacts(4_000, seed=3)
    first = fit_classifier(train, spec, random_state=5).predict_probability(train.head(50))
    second = fit_classifier(train, spec, random_state=5).predict_probability(train.head(50))
    np.testing.assert_array_equal(first, second)


def test_scores_every_offer_and_channel_and_handles_unseen_categories(spec):
    train = simulate_contacts(4_000, seed=4)
    model = fit_classifier(train, spec, random_state=0)
    customers = train.drop(columns=["offer_type", "channel"]).head(20).copy()
    customers.loc[0, "customer_type"] = "never_seen"
    scores = score_offer_channels(model, customers, offer_types=OFFERS, channels=CHANNELS)
    assert list(scores.columns) == ["customer_id"] + [
        f"propensity__{offer}__{channel}" for offer in OFFERS for channel in CHANNELS
    ]
    assert scores.notna().all().all()
    assert scores["propensity__loan__web"].mean() > scores["propensity__card__email"].mean()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda frame: frame.drop(columns=["responded"]), "target column 'responded' is missing"),
        (lambda frame: frame.assign(responded=False), "only the value 0"),
        (
            lambda frame: frame.assign(responded=np.where(frame.index == 3, None, 1)),
            "missing values",
        ),
        (lambda frame: frame.assign(noise="text"), "declare it under features.categorical"),
        (lambda frame: frame.iloc[0:0], "is empty"),
    ],
)
def test_bad_training_data_is_a_clear_error(spec, mutate, message):
    with pytest.raises(TrainingDataError, match=message):
        fit_classifier(mutate(simulate_contacts(500, seed=6)), spec)


def test_scoring_data_without_a_feature_is_a_clear_error(spec):
    model = fit_classifier(simulate_contacts(2_000, seed=7), spec)
    with pytest.raises(TrainingDataError, match=r"feature columns \['noise'\] are missing"):
        model.predict_probability(simulate_contacts(10, seed=8).drop(columns=["noise"]))


def _with_positives(frame: pd.DataFrame, positives: int) -> pd.DataFrame:
    """``frame`` with exactly ``positives`` responders (the first rows), the rest not."""
    return frame.assign(responded=np.arange(len(frame)) < positives)


def test_too_few_positives_is_a_clear_error_naming_model_counts_and_need(spec):
    frame = _with_positives(simulate_contacts(300, seed=9), 2)
    with pytest.raises(InsufficientDataError) as caught:
        fit_classifier(frame, spec)
    message = str(caught.value)
    assert "'propensity'" in message and "2 positive, 298 negative" in message
    assert f"at least {spec.min_class_examples} of each" in message
    assert "cx_propensity is not trained" in message
    assert caught.value.counts == {"positive": 2, "negative": 298}


@pytest.mark.parametrize(
    ("positives", "calibration", "folds"),
    [(25, "isotonic", 2), (20, "isotonic", 2), (19, "none", 0)],
)
def test_a_rare_class_calibrates_on_fewer_folds_or_not_at_all(spec, positives, calibration, folds):
    frame = _with_positives(simulate_contacts(400, seed=10), positives)
    model = fit_classifier(frame, dataclasses.replace(spec, min_class_examples=10))
    summary = model.training_summary()
    assert (summary["calibration"], summary["calibration_folds"]) == (calibration, folds)
    assert summary["class_counts"] == {"positive": positives, "negative": 400 - positives}
    assert len(summary["notes"]) == 1 and str(positives) in summary["notes"][0]
    assert np.isfinite(model.predict_probability(frame)).all()


def test_plenty_of_both_outcomes_keeps_the_specs_calibration_without_notes(spec):
    model = fit_classifier(simulate_contacts(2_000, seed=11), spec)
    summary = model.training_summary()
    assert (summary["calibration"], summary["calibration_folds"]) == ("isotonic", 3)
    assert summary["notes"] == [] and summary["dropped_features"] == []


def test_a_feature_without_any_value_is_left_out_and_said_so(spec):
    frame = simulate_contacts(2_000, seed=12).assign(annual_income=np.nan)
    model = fit_classifier(frame, spec)
    assert "annual_income" not in model.features
    assert model.training_summary()["dropped_features"] == ["annual_income"]
    assert np.isfinite(model.predict_probability(frame)).all()

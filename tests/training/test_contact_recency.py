"""Contact pressure (``recent_treated_contacts``): point in time for training rows, the same
figure for scoring on a decision date, and response models that learn fatigue from it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cx_pipelines.defs.training.scores import contact_pressure_history, pending_contacts
from cx_pipelines.ml import training_data
from cx_pipelines.ml.errors import TrainingDataError
from cx_pipelines.ml.specs import ModelSpec, load_spec
from cx_pipelines.ml.supervised import propensity, uplift
from cx_pipelines.ml.supervised.classifier import fit_classifier
from cx_pipelines.ml.supervised.uplift import fit_uplift_model

FEATURE = training_data.RECENCY_FEATURE


def _history(rows: list[tuple[int, str, bool]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [row[0] for row in rows],
            "contacted_at": pd.to_datetime([row[1] for row in rows]),
            "treated": [row[2] for row in rows],
        }
    )


def test_only_treated_contacts_in_the_window_strictly_before_count():
    history = _history(
        [
            (1, "2026-01-01", True),  # 28 days before 01-29: inside the window
            (1, "2025-12-31", True),  # 29 days before: outside
            (1, "2026-01-20", False),  # control: never a contact
            (1, "2026-01-29", True),  # at the query time: not before it
            (1, "2026-02-05", True),  # after it
            (2, "2026-01-25", True),  # another customer
        ]
    )
    counts = training_data.recent_treated_contacts(
        history, np.array([1, 2, 3]), pd.Timestamp("2026-01-29")
    )
    assert counts.tolist() == [1, 1, 0]


def test_a_training_row_never_counts_itself_or_a_later_contact():
    history = _history(
        [
            (1, "2026-01-01", True),
            (1, "2026-01-08", True),
            (1, "2026-01-15", False),
            (2, "2026-01-08", True),
        ]
    )
    frame = training_data.with_contact_recency(history)
    assert frame[FEATURE].tolist() == [0.0, 1.0, 2.0, 0.0]
    later = pd.concat([history, _history([(1, "2026-01-10", True), (1, "2026-01-20", True)])])
    again = training_data.with_contact_recency(later.reset_index(drop=True))
    assert again[FEATURE].iloc[:4].tolist() == [0.0, 1.0, 3.0, 0.0], (
        "01-10 counts for 01-15; 01-20 is later"
    )
    with pytest.raises(TrainingDataError, match="lacks columns"):
        training_data.with_contact_recency(history.drop(columns="treated"))


def test_training_rows_and_scoring_on_their_date_agree():
    rng = np.random.default_rng(3)
    days = pd.Timestamp("2026-10-01") + pd.to_timedelta(rng.integers(0, 90, 400), unit="D")
    history = pd.DataFrame(
        {
            "customer_id": rng.integers(1, 30, 400),
            "contacted_at": days,
            "treated": rng.random(400) < 0.8,
        }
    )
    trained = training_data.with_contact_recency(history)
    for _, row in trained.sample(25, random_state=1).iterrows():
        features = pd.DataFrame({"customer_id": [row["customer_id"]]})
        scored = training_data.contact_recency(features, history, at=row["contacted_at"])
        assert scored[FEATURE].iloc[0] == row[FEATURE]


def test_pending_exported_contacts_count_until_their_results_arrive(cx_home, tmp_path):
    from cx_pipelines import config

    decisions = pd.DataFrame(
        {
            "contact_id": ["a", "b", "c"],
            "customer_id": [7, 7, 8],
            "group": ["treated", "treated", "control"],
            "decided_at": pd.to_datetime(["2026-10-01", "2026-10-08", "2026-10-08"]),
        }
    )
    folder = config.exports_dir() / "card_app" / "run1"
    folder.mkdir(parents=True)
    decisions.to_parquet(folder / "decisions.parquet", index=False)
    pending = pending_contacts(config.exports_dir(), pd.Series(["a"]))  # a came back already
    assert pending["customer_id"].tolist() == [7]
    assert pending["contacted_at"].tolist() == [pd.Timestamp("2026-10-08")]
    offer_history = pd.DataFrame(
        {
            "contact_id": ["a"],
            "customer_id": [7],
            "offer_type": ["card"],
            "channel": ["app"],
            "treated": [True],
            "contacted_at": pd.to_datetime(["2026-10-01"]),
            "responded": [False],
        }
    )
    history = contact_pressure_history(offer_history)
    counts = training_data.recent_treated_contacts(
        history, np.array([7, 8]), pd.Timestamp("2026-10-15")
    )
    assert counts.tolist() == [2, 0], "a from the history, b pending; a is not counted twice"


def _fatigued_contacts(rows: int, seed: int) -> pd.DataFrame:
    """Contacts whose treated response falls with recent contacts (log-odds −0.8 each)."""
    rng = np.random.default_rng(seed)
    recent = rng.integers(0, 4, rows).astype(float)
    treated = rng.random(rows) < 0.7
    income = rng.normal(60_000, 15_000, rows)
    log_odds = -2.0 + np.where(treated, 1.2 - 0.8 * recent, 0.0)
    return pd.DataFrame(
        {
            "offer_type": rng.choice(["card", "loan"], rows),
            "channel": rng.choice(["app", "email"], rows),
            "annual_income": income,
            FEATURE: recent,
            "treated": treated,
            "responded": rng.random(rows) < 1 / (1 + np.exp(-log_odds)),
        }
    )


def _spec(name: str) -> ModelSpec:
    spec = load_spec(name)
    assert FEATURE in spec.include, f"models/{name}.yaml should include {FEATURE}"
    return spec


def test_the_response_models_learn_that_pressure_lowers_uplift_and_propensity():
    frame = _fatigued_contacts(5_000, seed=4)
    customers = pd.DataFrame({"customer_id": [1, 2], "annual_income": [60_000.0, 60_000.0]})
    rested = customers.assign(**{FEATURE: [0.0, 0.0]})
    tired = customers.assign(**{FEATURE: [3.0, 3.0]})

    model = fit_uplift_model(frame, _spec("uplift"), random_state=0)
    assert FEATURE in model.features
    scores = {
        name: uplift.score_offer_channels(model, data, offer_types=["card"], channels=["app"])
        for name, data in (("rested", rested), ("tired", tired))
    }
    column = "uplift__card__app"
    assert (scores["rested"][column] > scores["tired"][column] + 0.1).all()
    assert (scores["tired"][column] < 0.05).all(), "three recent contacts leave ~no uplift"

    treated = frame[frame["treated"]]
    classifier = fit_classifier(treated, _spec("propensity"), random_state=0)
    by_pressure = [
        propensity.score_offer_channels(classifier, data, offer_types=["card"], channels=["app"])
        for data in (rested, tired)
    ]
    assert (by_pressure[0]["propensity__card__app"] > by_pressure[1]["propensity__card__app"]).all()

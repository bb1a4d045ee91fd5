"""The closed-loop benchmark's design spread (``DesignSpread``) against replays: doubly
robust with the TRUE probabilities as its direct model, over logs whose campaign draws,
arms and outcomes are drawn again from the truth, spreads as the formula says, from one
log's rows (actions the log took with a small campaign probability stand for the many it
could have taken)."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cx_pipelines.loop import off_policy
from cx_pipelines.loop.candidate import ArmDesign, CandidatePolicy
from cx_pipelines.source_schema import OFFER_CHANNELS, OFFER_TYPES

OFFER, CHANNEL, MARGIN, COST, SHARE = "personal_loan", "web", 450.0, 2.0, 0.2
REPLAYS = 200


@pytest.fixture
def closed_loop(monkeypatch):
    """The closed-loop benchmark's module (it lives in benchmarks/, not in the package)."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "benchmarks"))
    return importlib.import_module("closed_loop")


def true_probabilities(truth, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows = truth.positions(ids)
    offer = np.full(len(ids), OFFER_TYPES.index(OFFER))
    channel = np.full(len(ids), OFFER_CHANNELS.index(CHANNEL))
    treated = truth.treated_probability(rows, offer, channel, np.zeros(len(ids)))
    return treated, truth.control_probability(rows, offer)


def drawn_log(ids, reach, treated, control, rng) -> pd.DataFrame:
    """One run: each customer decided for the campaign with probability ``reach``, control
    with ``SHARE``, answered from the truth."""
    decided = rng.random(len(ids)) < reach
    held_out = rng.random(len(ids)) < SHARE
    responded = rng.random(len(ids)) < np.where(held_out, control, treated)
    return pd.DataFrame(
        {
            "customer_id": ids,
            "campaign_id": "loan",
            "offer_type": OFFER,
            "channel": CHANNEL,
            "group": np.where(held_out, "control", "treated"),
            "selection_probability": reach * np.where(held_out, SHARE, 1 - SHARE),
            "responded": responded.astype(int),
            "exploration": reach < 1,
        }
    )[decided]


@pytest.mark.slow
def test_design_spread_is_the_spread_of_doubly_robust_with_the_true_model(small_world, closed_loop):
    ids = small_world.customer_id
    treated, control = true_probabilities(small_world, ids)
    # half the customers the logger's optimiser gives the campaign, half only exploration does
    reach = np.where(np.arange(len(ids)) % 2 == 0, 1.0, 0.3)
    actions = pd.DataFrame(
        {"customer_id": ids, "campaign_id": "loan", "offer_type": OFFER, "channel": CHANNEL,
         "p_response": treated, "uplift": treated - control}
    )  # fmt: skip
    true_value = MARGIN * (treated - control) - COST
    policy = CandidatePolicy(
        actions, ids, {"loan": MARGIN}, {"loan": COST}, ("loan",), np.zeros(len(ids))
    )
    design = ArmDesign({"loan": SHARE}, {"loan": False}, set())
    rng = np.random.default_rng(11)
    values, spreads = [], []
    for _ in range(REPLAYS):
        log = drawn_log(ids, reach, treated, control, rng)
        setting = closed_loop.CandidateSetting(
            log, "run", None, design, policy, ids, np.zeros(len(ids)), true_value,
            np.ones(len(ids), bool),
        )  # fmt: skip
        spreads.append(closed_loop.design_spread(setting, small_world).standard_deviation)
        values.append(off_policy.evaluate(log, actions, **setting.options)["doubly_robust"].value)
    values = np.asarray(values)
    # the true model's residuals have mean zero: the replays centre on the truth
    assert abs(values.mean() - true_value.sum()) < 3 * values.std(ddof=1) / np.sqrt(REPLAYS)
    # one log's formula estimates the replays' spread (sd of a 200-draw sd: about 5 %)
    assert np.mean(spreads) == pytest.approx(values.std(ddof=1), rel=0.15)
    # and the explored half is what makes it wide: without the 1 / reach it would be far less
    assert np.mean(spreads) > 1.3 * np.sqrt(
        np.sum(
            MARGIN**2 * (treated * (1 - treated) / (1 - SHARE) + control * (1 - control) / SHARE)
        )
    )

"""Thompson draws: targeting on a posterior draw of each customer's uplift."""

from __future__ import annotations

import json
from datetime import timedelta

import campaign_support as synthetic
import numpy as np
import pandas as pd
import pytest

from cx_pipelines.source_schema import OFFER_CHANNELS, OFFER_TYPES


def with_spread(score_frame: pd.DataFrame, sd: float) -> pd.DataFrame:
    spread = {
        f"uplift_sd__{o}__{c}": np.full(len(score_frame), sd)
        for o in OFFER_TYPES for c in OFFER_CHANNELS
    }  # fmt: skip
    return score_frame.assign(**spread)


@pytest.fixture(scope="module")
def inputs():
    frame = synthetic.population(600)
    return frame, synthetic.scores(frame), synthetic.history(frame, {("credit_card", "email"): 80})


DECIDED = ["customer_id", "campaign_id", "group", "rank", "selection_probability", "uplift"]


def test_without_a_spread_the_draws_are_the_mean(inputs) -> None:
    frame, score_frame, contacts = inputs
    campaigns = synthetic.competing_campaigns()
    plain = synthetic.run(frame, score_frame, contacts, campaigns).targets
    for scores in (score_frame, with_spread(score_frame, 0.0)):  # no column, or sd 0
        drawn = synthetic.run(frame, scores, contacts, campaigns, thompson_scale=1.0).targets
        pd.testing.assert_frame_equal(drawn[DECIDED], plain[DECIDED])


def test_draws_move_the_lists_within_the_caps_and_are_recorded(inputs) -> None:
    frame, score_frame, contacts = inputs
    campaigns = synthetic.competing_campaigns()
    scores = with_spread(score_frame, 0.02)
    plain = synthetic.run(frame, scores, contacts, campaigns).targets
    result = synthetic.run(frame, scores, contacts, campaigns, thompson_scale=1.0)
    drawn = result.targets
    assert not drawn["customer_id"].duplicated().any()
    for campaign in campaigns[:4]:
        rows = drawn[drawn["campaign_id"] == campaign.campaign_id]
        treated = rows[rows["group"] == "treated"]
        assert len(treated) <= campaign.volume_cap
        assert len(treated) * campaign.cost_per_contact <= campaign.budget + 1e-9
    pairs = set(zip(drawn["customer_id"], drawn["campaign_id"], strict=True))
    before = set(zip(plain["customer_id"], plain["campaign_id"], strict=True))
    assert 0 < len(pairs - before) < len(pairs)  # the draws change some decisions, not all
    # the mean uplift is what the row reports; the draw it was decided on is in the trace
    optimiser = drawn[~drawn["exploration"]]
    trace = [json.loads(t)["thompson"] for t in optimiser["trace"]]
    draw = np.array([t["uplift_draw"] for t in trace])
    assert {t["uplift_sd"] for t in trace} == {0.02}
    assert not np.allclose(draw, optimiser["uplift"].round(6))
    # ranked on the draws: within a campaign the drawn value falls with the rank
    for _, rows in optimiser.groupby("campaign_id"):
        drawn_value = [json.loads(t)["thompson"]["uplift_draw"] for t in rows["trace"]]
        assert np.all(np.diff(drawn_value) <= 1e-6)
    again = synthetic.run(frame, scores, contacts, campaigns, thompson_scale=1.0).targets
    pd.testing.assert_frame_equal(again, drawn)
    later = synthetic.run(
        frame, scores, contacts, campaigns, thompson_scale=1.0,
        decision_date=synthetic.DAY + timedelta(days=7),
    ).targets  # fmt: skip
    assert set(zip(later["customer_id"], later["campaign_id"], strict=True)) != pairs


def test_the_logged_probability_is_the_chance_of_being_decided() -> None:
    """Customers alike: a contact worth -1 on average with sd 2 is decided when its draw is
    positive; the logged probabilities weight the decided rows back to everyone (Horvitz–
    Thompson), the property off-policy evaluation rests on."""
    size = 4_000
    frame = synthetic.population(size, seed=3)
    scores = pd.DataFrame({"customer_id": frame["customer_id"]})
    for o in OFFER_TYPES:
        for c in OFFER_CHANNELS:
            scores[f"propensity__{o}__{c}"] = 0.05
            scores[f"uplift__{o}__{c}"] = 0.005  # x margin 100 - cost 1.5 = -1.0
            scores[f"uplift_sd__{o}__{c}"] = 0.02  # value sd 2.0: P(draw > 0) = 0.31
    campaign = synthetic.campaign(
        "card_email", "credit_card", "email", cost_per_contact=1.5, volume_cap=np.inf
    )
    empty = synthetic.history(frame, {})
    targets = synthetic.run(
        frame, scores, empty, [campaign], thompson_scale=1.0, exploration_share=0.0
    ).targets
    arm = np.where(targets["group"] == "control", 0.2, 0.8)
    chance = targets["selection_probability"].to_numpy() / arm
    assert ((chance > 0) & (chance <= 1)).all()
    weighted = float((1.0 / chance).sum())
    spread = np.sqrt(float(((1.0 - chance) / chance**2).sum()))
    assert abs(weighted - size) < 4 * spread
    assert abs(len(targets) / size - 0.31) < 0.04
    assert abs(chance.mean() - 0.31) < 0.15  # decided rows: their draws were more often high


def test_a_negative_scale_is_refused(inputs) -> None:
    frame, score_frame, contacts = inputs
    with pytest.raises(ValueError, match="thompson_scale"):
        synthetic.run(
            frame, with_spread(score_frame, 0.01), contacts, synthetic.competing_campaigns(),
            thompson_scale=-1.0,
        )  # fmt: skip

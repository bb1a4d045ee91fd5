"""The yardstick policies under the campaigns' control groups."""

from __future__ import annotations

import numpy as np

from cx_pipelines.loop import policies
from cx_pipelines.loop.policies import CampaignEconomics


def economics(share: float) -> CampaignEconomics:
    return CampaignEconomics(
        campaign_id=("A", "B", "C"),
        offer_type=("credit_card", "savings", "mortgage"),
        channel=("email", "web", "branch"),
        margin=np.array([100.0, 50.0, 400.0]),
        cost=np.array([1.0, 2.0, 10.0]),
        budget=np.array([np.inf, np.inf, 400.0]),  # 40 contacts
        volume_cap=np.array([60.0, 80.0, np.inf]),
        control_share=np.full(3, share),
    )


def instance(seed: int, share: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    values = rng.normal(5.0, 4.0, (500, 3))
    values[rng.random(values.shape) < 0.2] = np.nan  # not eligible
    return values, rng.random(values.shape) < share


def test_the_control_draw_is_held_out_and_the_treated_rows_fill_the_caps() -> None:
    capacity = np.array([60, 80, 40])
    for seed in range(20):
        values, control = instance(seed, 0.2)
        choice = policies.choose_with_controls(values, economics(0.2), control)
        treated = np.flatnonzero(choice >= 0)
        assert not control[treated, choice[treated]].any()  # no drawn control is contacted
        assert np.isfinite(values[treated, choice[treated]]).all()  # only eligible pairs
        counts = np.bincount(choice[treated], minlength=3)
        assert (counts <= capacity).all()
        # the lists are decided long enough that the hold-out does not empty the caps
        assert (counts >= 0.8 * capacity).all(), counts
        # and it costs value against the same lists without a hold-out
        free = policies.choose(values, economics(0.2))
        assert policies.choice_value(np.nan_to_num(values), choice) < policies.choice_value(
            np.nan_to_num(values), free
        )


def test_without_a_control_share_it_is_the_plain_choice() -> None:
    values, _ = instance(7, 0.0)
    none = np.zeros(values.shape, dtype=bool)
    assert np.array_equal(
        policies.choose_with_controls(values, economics(0.0), none),
        policies.choose(values, economics(0.0)),
    )

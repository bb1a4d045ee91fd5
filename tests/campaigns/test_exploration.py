"""The maturity ramp of exploration: its shares, its floor, its bounds."""

from __future__ import annotations

import numpy as np
import pytest

from cx_pipelines.campaigns import exploration
from cx_pipelines.campaigns.exploration import plan_exploration

IDS = np.arange(1, 4_001, dtype=np.int64)
CAMPAIGNS = ["untried", "half", "mature"]  # plan_exploration only counts them


def plan(*, floor_share: float | None = None, positives=(0, 25, 80), max_per_customer=0.5):
    eligible = np.ones((len(IDS), 3), dtype=bool)
    eligible[::2, 2] = False  # the mature pair reaches half the customers
    return plan_exploration(
        IDS,
        eligible,
        CAMPAIGNS,
        np.array(positives),
        np.array([400.0, 400.0, 400.0]),
        salt="explore:2026-10-01",
        max_share=0.1,
        mature_positives=50,
        max_per_customer=max_per_customer,
        floor_share=floor_share,
    )


def test_the_share_falls_with_positives_and_ends_at_maturity_without_a_floor():
    result = plan(floor_share=0.0)
    np.testing.assert_allclose(result.maturity, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(result.share, [0.1, 0.05, 0.0])
    assert not (result.explored == 2).any() and (result.probability[:, 2] == 0).all()
    # expected explored rows = share x capacity, spread over the eligible customers
    np.testing.assert_allclose(result.probability[:, :2].sum(axis=0), [40.0, 20.0])


def test_a_floor_keeps_mature_pairs_explored_at_a_bounded_share():
    result = plan(floor_share=0.5)
    np.testing.assert_allclose(result.share, [0.1, 0.05, 0.05])
    mature = result.probability[:, 2]
    assert mature.sum() == pytest.approx(0.05 * 400)
    assert (mature[::2] == 0).all() and (mature[1::2] > 0).all()  # only where eligible
    drawn = int((result.explored == 2).sum())
    assert 5 <= drawn <= 40  # about 20 expected
    # never above max_share per customer and campaign, the per-customer cap holds
    assert result.probability.max() <= 0.1 + 1e-12
    assert (result.probability.sum(axis=1) <= 0.5 + 1e-12).all()


def test_the_module_floor_is_the_default(monkeypatch):
    monkeypatch.setattr(exploration, "EXPLORATION_FLOOR", 0.25)
    np.testing.assert_allclose(plan().share, [0.1, 0.05, 0.025])


def test_a_floor_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="exploration floor must be in \\[0, 1\\], got 1.5"):
        plan(floor_share=1.5)


def test_per_customer_probabilities_are_scaled_to_the_cap():
    # unscaled a customer's draws sum to 0.01 + 0.01 (+ 0.02 where the mature pair reaches)
    result = plan(floor_share=1.0, max_per_customer=0.02)
    total = result.probability.sum(axis=1)
    np.testing.assert_allclose(total, 0.02)
    np.testing.assert_allclose(result.probability[1::2], [[0.005, 0.005, 0.01]] * 2_000)
    assert (result.explored >= 0).mean() == pytest.approx(0.02, abs=0.01)

"""The maturity ramp of exploration: its shares, its bounds, the per-customer cap."""

from __future__ import annotations

import numpy as np
import pytest

from cx_pipelines.campaigns.exploration import plan_exploration

IDS = np.arange(1, 4_001, dtype=np.int64)
CAMPAIGNS = ["untried", "half", "mature"]  # plan_exploration only counts them


def plan(*, positives=(0, 25, 80), max_share=0.1, max_per_customer=0.5):
    eligible = np.ones((len(IDS), 3), dtype=bool)
    eligible[::2, 2] = False  # the mature pair reaches half the customers
    return plan_exploration(
        IDS,
        eligible,
        CAMPAIGNS,
        np.array(positives),
        np.array([400.0, 400.0, 400.0]),
        salt="explore:2026-10-01",
        max_share=max_share,
        mature_positives=50,
        max_per_customer=max_per_customer,
    )


def test_the_share_falls_with_positives_and_ends_at_maturity():
    result = plan()
    np.testing.assert_allclose(result.maturity, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(result.share, [0.1, 0.05, 0.0])
    assert not (result.explored == 2).any() and (result.probability[:, 2] == 0).all()
    # expected explored rows = share x capacity, spread over the eligible customers
    np.testing.assert_allclose(result.probability[:, :2].sum(axis=0), [40.0, 20.0])


def test_draws_are_bounded_and_recorded_per_customer():
    result = plan()
    assert result.probability.max() <= 0.1 + 1e-12
    drawn = result.explored[result.explored >= 0]
    assert set(drawn) <= {0, 1}  # never the mature pair
    assert 30 <= len(drawn) <= 90  # 40 + 20 expected
    # a drawn customer's campaign had a positive probability for it
    rows = np.flatnonzero(result.explored >= 0)
    assert (result.probability[rows, result.explored[rows]] > 0).all()


def test_a_share_outside_its_bounds_is_refused():
    with pytest.raises(ValueError, match="exploration share must be in \\[0, 0.5\\]"):
        plan(max_share=0.6)


def test_per_customer_probabilities_are_scaled_to_the_cap():
    # unscaled a customer's draws sum to 0.01 + 0.005 (the untried and the half-mature pair)
    result = plan(max_per_customer=0.006)
    total = result.probability.sum(axis=1)
    np.testing.assert_allclose(total, 0.006)
    np.testing.assert_allclose(result.probability, [[0.004, 0.002, 0.0]] * 4_000)
    assert (result.explored >= 0).mean() == pytest.approx(0.006, abs=0.004)

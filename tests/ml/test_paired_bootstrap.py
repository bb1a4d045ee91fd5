"""Paired bootstrap of a holdout metric: identical models tie, a truly worse ranking is
credibly worse, a small difference within the noise is not."""

from __future__ import annotations

import numpy as np
import pytest

from cx_pipelines.ml import evaluation
from cx_pipelines.ml.paired_bootstrap import paired_difference


def _holdout(rows: int = 6_000, seed: int = 0):
    """A randomised holdout whose true uplift is ``effect`` (known to the test)."""
    rng = np.random.default_rng(seed)
    effect = rng.uniform(-0.02, 0.12, rows)
    treated = rng.random(rows) < 0.5
    outcome = rng.random(rows) < 0.05 + np.where(treated, effect, 0.0)
    return effect, treated, outcome, rng


def _qini(treated, outcome):
    return lambda scores, rows: evaluation.qini_coefficient(
        outcome[rows], treated[rows], scores[rows]
    )


def test_identical_models_differ_by_nothing():
    effect, treated, outcome, _ = _holdout()
    result = paired_difference(
        _qini(treated, outcome), effect, effect.copy(), resamples=50, confidence=0.95
    )
    assert result.observed == 0.0 and result.upper == 0.0 and result.share_worse == 0.0


def test_a_reversed_ranking_is_credibly_worse_and_the_true_one_is_not():
    effect, treated, outcome, _ = _holdout()
    metric = _qini(treated, outcome)
    worse = paired_difference(metric, -effect, effect, resamples=100, confidence=0.95)
    assert worse.observed < 0 and worse.upper < 0 and worse.share_worse > 0.95
    better = paired_difference(metric, effect, -effect, resamples=100, confidence=0.95)
    assert better.upper > 0 and better.share_worse < 0.05


def test_a_difference_within_the_noise_is_not_credibly_worse():
    effect, treated, outcome, rng = _holdout(rows=3_000)
    # Two estimates of the same ranking, each with its own small error.
    champion = effect + rng.normal(0, 0.01, len(effect))
    challenger = effect + rng.normal(0, 0.01, len(effect))
    result = paired_difference(
        _qini(treated, outcome), challenger, champion, resamples=200, confidence=0.95
    )
    assert 0.05 < result.share_worse < 0.95
    assert result.upper > 0


def test_resampling_stays_within_the_rows_given_and_minimize_flips_the_sign():
    values = np.arange(10, dtype=float)
    seen: list[np.ndarray] = []

    def mean_of(scores: np.ndarray, rows: np.ndarray) -> float:
        seen.append(rows)
        return float(scores[rows].mean())

    rows = np.array([7, 8, 9])
    result = paired_difference(
        mean_of, values, values - 1, resamples=20, confidence=0.9, rows=rows, maximize=False
    )
    assert all(set(drawn) <= set(rows) for drawn in seen)
    assert result.observed == -1.0 and result.share_worse == 1.0


def test_undefined_resamples_are_left_out_and_bad_input_is_named():
    calls = iter(range(1_000))

    def sometimes(scores: np.ndarray, rows: np.ndarray) -> float:
        return float("nan") if next(calls) % 4 == 2 else float(scores[rows].sum())

    result = paired_difference(sometimes, np.ones(5), np.zeros(5), resamples=40, confidence=0.9)
    assert 0 < result.resamples < 40
    with pytest.raises(ValueError, match="differ in length"):
        paired_difference(sometimes, np.ones(5), np.zeros(4), resamples=5, confidence=0.9)
    with pytest.raises(ValueError, match="no rows"):
        paired_difference(
            sometimes, np.ones(5), np.zeros(5), resamples=5, confidence=0.9, rows=np.array([])
        )

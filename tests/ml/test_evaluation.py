"""Evaluation metrics: agreement with known values and with scikit-learn, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from cx_pipelines.ml import evaluation


def _calibrated_sample(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    probabilities = rng.beta(1, 8, size=size)
    labels = rng.random(size) < probabilities
    return labels.astype(int), probabilities


def test_auc_of_a_perfect_and_a_reversed_ranking():
    labels = [0, 0, 1, 1]
    assert evaluation.auc(labels, [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert evaluation.auc(labels, [0.9, 0.8, 0.2, 0.1]) == 0.0


def test_calibrated_probabilities_have_a_small_ece_and_shifted_ones_a_large_one():
    labels, probabilities = _calibrated_sample(200_000, seed=1)
    assert evaluation.expected_calibration_error(labels, probabilities) < 0.005
    shifted = np.clip(probabilities + 0.05, 0, 1)
    assert evaluation.expected_calibration_error(labels, shifted) == pytest.approx(0.05, abs=0.005)


def test_calibration_table_follows_the_diagonal_for_calibrated_scores():
    labels, probabilities = _calibrated_sample(100_000, seed=2)
    table = evaluation.calibration_table(labels, probabilities)
    assert len(table) == 10
    np.testing.assert_allclose(table["observed_rate"], table["mean_predicted"], atol=0.01)


def test_gains_table_captures_everyone_at_the_end_and_ranks_lift():
    labels, probabilities = _calibrated_sample(50_000, seed=3)
    table = evaluation.gains_table(labels, probabilities)
    assert table["cumulative_gain"].iloc[-1] == pytest.approx(1.0)
    assert table["cumulative_lift"].iloc[-1] == pytest.approx(1.0)
    assert table["lift"].iloc[0] > 2 > table["lift"].iloc[-1]


def _uplift_sample(size: int, seed: int):
    rng = np.random.default_rng(seed)
    true_uplift = rng.uniform(-0.05, 0.25, size)
    base = 0.1
    treated = rng.random(size) < 0.5
    outcomes = rng.random(size) < base + treated * true_uplift
    return outcomes.astype(int), treated.astype(int), true_uplift


def test_qini_ranks_true_uplift_above_random_and_reversed_scores():
    outcomes, treated, true_uplift = _uplift_sample(100_000, seed=4)
    random_scores = np.random.default_rng(5).random(true_uplift.size)
    oracle = evaluation.qini_coefficient(outcomes, treated, true_uplift)
    assert oracle > 0.01
    assert abs(evaluation.qini_coefficient(outcomes, treated, random_scores)) < oracle / 5
    assert evaluation.qini_coefficient(outcomes, treated, -true_uplift) < 0
    assert evaluation.auuc(outcomes, treated, true_uplift) > evaluation.auuc(
        outcomes, treated, random_scores
    )


def test_qini_curve_ends_at_the_overall_incremental_responders():
    outcomes, treated, true_uplift = _uplift_sample(20_000, seed=6)
    curve = evaluation.qini_curve(outcomes, treated, true_uplift)
    expected = (
        outcomes[treated == 1].sum()
        - outcomes[treated == 0].sum() * (treated == 1).sum() / (treated == 0).sum()
    ) / outcomes.size
    assert curve.incremental_gain[0] == 0
    assert curve.incremental_gain[-1] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("labels", "scores", "message"),
    [
        ([0, 1, 1], [0.2, float("nan"), 0.4], "scores has 1 missing"),
        ([0, 1, 2], [0.2, 0.3, 0.4], "labels must be binary"),
        ([0, 1], [0.2, 0.3, 0.4], "labels has 2 values but the scores have 3"),
        ([1, 1, 1], [0.2, 0.3, 0.4], "both outcomes"),
        ([], [], "scores is empty"),
    ],
)
def test_bad_input_is_a_clear_error_not_a_nan(labels, scores, message):
    with pytest.raises(evaluation.EvaluationError, match=message):
        evaluation.auc(labels, scores)


def test_probabilities_outside_the_unit_interval_are_rejected():
    with pytest.raises(evaluation.EvaluationError, match=r"probabilities in \[0, 1\]"):
        evaluation.expected_calibration_error([0, 1], [0.5, 1.5])


def test_uplift_needs_both_arms():
    with pytest.raises(evaluation.EvaluationError, match="both treated and control"):
        evaluation.qini_coefficient([0, 1, 1], [1, 1, 1], [0.1, 0.2, 0.3])


def test_plots_are_png_images():
    labels, probabilities = _calibrated_sample(2_000, seed=7)
    outcomes, treated, true_uplift = _uplift_sample(2_000, seed=8)
    for image in (
        evaluation.calibration_plot(labels, probabilities),
        evaluation.gains_plot(labels, probabilities),
        evaluation.qini_plot(outcomes, treated, true_uplift, oracle_scores=true_uplift),
    ):
        assert image.startswith(b"\x89PNG")

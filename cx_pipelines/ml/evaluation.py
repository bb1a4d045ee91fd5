"""Model evaluation: discrimination, calibration, gains/lift and uplift (Qini, AUUC), plus plots.

Every function checks its input first and raises :class:`EvaluationError` naming the
argument at fault, so a NaN score or a non-binary label never turns into a silent NaN
metric. AUC and the calibration curve come from scikit-learn; the Qini curve follows
Radcliffe (2007): cumulative incremental responders when customers are targeted in
descending order of predicted uplift.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve as _sklearn_calibration_curve
from sklearn.metrics import roc_auc_score

from cx_pipelines.ml.errors import EvaluationError  # noqa: E402


def _as_scores(values: object, *, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float).ravel()
    if array.size == 0:
        raise EvaluationError(f"{name} is empty; there is nothing to evaluate")
    missing = int(np.isnan(array).sum())
    if missing:
        raise EvaluationError(f"{name} has {missing} missing (NaN) values out of {array.size}")
    if not np.isfinite(array).all():
        raise EvaluationError(f"{name} has infinite values")
    return array


def _as_binary(values: object, *, name: str, length: int) -> np.ndarray:
    series = pd.Series(np.asarray(values).ravel())
    if len(series) != length:
        raise EvaluationError(f"{name} has {len(series)} values but the scores have {length}")
    if series.isna().any():
        raise EvaluationError(f"{name} has {int(series.isna().sum())} missing values")
    numeric = pd.to_numeric(series.astype("object").replace({True: 1, False: 0}), errors="coerce")
    if numeric.isna().any() or not numeric.isin([0, 1]).all():
        bad = series[numeric.isna() | ~numeric.isin([0, 1])].unique()[:5]
        raise EvaluationError(f"{name} must be binary (0/1 or True/False); found {list(bad)}")
    return numeric.to_numpy(dtype=int)


def _both_classes(labels: np.ndarray, *, name: str) -> None:
    if labels.min() == labels.max():
        raise EvaluationError(
            f"{name} holds only the value {labels[0]}; AUC needs both outcomes in the holdout"
        )


def auc(labels: object, scores: object) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels``."""
    score_array = _as_scores(scores, name="scores")
    label_array = _as_binary(labels, name="labels", length=score_array.size)
    _both_classes(label_array, name="labels")
    return float(roc_auc_score(label_array, score_array))


def _as_probabilities(values: object, *, name: str) -> np.ndarray:
    array = _as_scores(values, name=name)
    if array.min() < 0 or array.max() > 1:
        raise EvaluationError(
            f"{name} must be probabilities in [0, 1]; "
            f"found range [{array.min():.4g}, {array.max():.4g}]"
        )
    return array


def expected_calibration_error(labels: object, probabilities: object, *, bins: int = 10) -> float:
    """Mean |observed rate - mean predicted probability| over quantile bins, weighted by size.

    Quantile bins (equal counts) keep every bin populated when probabilities are small,
    which is the usual case for offer responses.
    """
    probability_array = _as_probabilities(probabilities, name="probabilities")
    label_array = _as_binary(labels, name="labels", length=probability_array.size)
    order = np.argsort(probability_array, kind="stable")
    total = 0.0
    for chunk in np.array_split(order, min(bins, probability_array.size)):
        total += len(chunk) * abs(label_array[chunk].mean() - probability_array[chunk].mean())
    return float(total / probability_array.size)


def calibration_table(labels: object, probabilities: object, *, bins: int = 10) -> pd.DataFrame:
    """Observed rate against mean predicted probability per quantile bin (scikit-learn)."""
    probability_array = _as_probabilities(probabilities, name="probabilities")
    label_array = _as_binary(labels, name="labels", length=probability_array.size)
    observed, predicted = _sklearn_calibration_curve(
        label_array, probability_array, n_bins=bins, strategy="quantile"
    )
    return pd.DataFrame({"mean_predicted": predicted, "observed_rate": observed})


def gains_table(labels: object, scores: object, *, groups: int = 10) -> pd.DataFrame:
    """Cumulative gains and lift per score decile (decile 1 = highest scores)."""
    score_array = _as_scores(scores, name="scores")
    label_array = _as_binary(labels, name="labels", length=score_array.size)
    order = np.argsort(-score_array, kind="stable")
    overall_rate = label_array.mean()
    rows = []
    cumulative_responders = 0
    cumulative_count = 0
    for group, chunk in enumerate(np.array_split(order, min(groups, score_array.size)), start=1):
        responders = int(label_array[chunk].sum())
        cumulative_responders += responders
        cumulative_count += len(chunk)
        rate = responders / len(chunk)
        rows.append(
            {
                "group": group,
                "customers": len(chunk),
                "responders": responders,
                "response_rate": rate,
                "cumulative_share_targeted": cumulative_count / score_array.size,
                "cumulative_gain": cumulative_responders / max(label_array.sum(), 1),
                "lift": rate / overall_rate if overall_rate > 0 else float("nan"),
                "cumulative_lift": (cumulative_responders / cumulative_count) / overall_rate
                if overall_rate > 0
                else float("nan"),
            }
        )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class UpliftCurve:
    """Targeted share (0..1) against incremental responders, normalised by the population size."""

    share_targeted: np.ndarray
    incremental_gain: np.ndarray


def _uplift_inputs(
    outcomes: object, treated: object, uplift_scores: object
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    score_array = _as_scores(uplift_scores, name="uplift_scores")
    outcome_array = _as_binary(outcomes, name="outcomes", length=score_array.size)
    treated_array = _as_binary(treated, name="treated", length=score_array.size)
    if treated_array.min() == treated_array.max():
        raise EvaluationError(
            "treated holds only one group; uplift needs both treated and control customers"
        )
    return outcome_array, treated_array, score_array


def qini_curve(outcomes: object, treated: object, uplift_scores: object) -> UpliftCurve:
    """Qini curve: Q(k) = R_t(k) - R_c(k) * N_t(k) / N_c(k) over the top-k by predicted uplift.

    Values are divided by the number of customers, so curves from holdouts of different
    sizes are comparable; the curve starts at (0, 0).
    """
    outcome_array, treated_array, score_array = _uplift_inputs(outcomes, treated, uplift_scores)
    order = np.argsort(-score_array, kind="stable")
    treated_sorted = treated_array[order]
    outcome_sorted = outcome_array[order]
    treated_count = np.cumsum(treated_sorted)
    control_count = np.cumsum(1 - treated_sorted)
    treated_responders = np.cumsum(outcome_sorted * treated_sorted)
    control_responders = np.cumsum(outcome_sorted * (1 - treated_sorted))
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled_control = np.where(
            control_count > 0,
            control_responders * treated_count / np.maximum(control_count, 1),
            0.0,
        )
    gain = (treated_responders - scaled_control) / score_array.size
    share = np.arange(1, score_array.size + 1) / score_array.size
    return UpliftCurve(np.concatenate([[0.0], share]), np.concatenate([[0.0], gain]))


def qini_coefficient(outcomes: object, treated: object, uplift_scores: object) -> float:
    """Area between the Qini curve and the random-targeting diagonal (higher is better)."""
    curve = qini_curve(outcomes, treated, uplift_scores)
    random_line = curve.share_targeted * curve.incremental_gain[-1]
    return float(np.trapezoid(curve.incremental_gain - random_line, curve.share_targeted))


def auuc(outcomes: object, treated: object, uplift_scores: object) -> float:
    """Area under the uplift curve: (treated rate - control rate) in the top-k times k, normalised.

    This is the "separate rates" uplift curve of Rzepakowski & Jaroszewicz; it is
    insensitive to the treated/control ratio within the top-k.
    """
    outcome_array, treated_array, score_array = _uplift_inputs(outcomes, treated, uplift_scores)
    order = np.argsort(-score_array, kind="stable")
    treated_sorted = treated_array[order]
    outcome_sorted = outcome_array[order]
    treated_count = np.cumsum(treated_sorted)
    control_count = np.cumsum(1 - treated_sorted)
    treated_rate = np.cumsum(outcome_sorted * treated_sorted) / np.maximum(treated_count, 1)
    control_rate = np.cumsum(outcome_sorted * (1 - treated_sorted)) / np.maximum(control_count, 1)
    both = (treated_count > 0) & (control_count > 0)
    effect = np.where(both, treated_rate - control_rate, 0.0)
    share = np.arange(1, score_array.size + 1) / score_array.size
    gain = effect * share
    return float(np.trapezoid(np.concatenate([[0.0], gain]), np.concatenate([[0.0], share])))


# --- Plots (PNG bytes, rendered with the non-interactive Agg backend) ----------------------


def _figure_png(figure: object) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _new_axes(title: str):  # noqa: ANN202 - matplotlib types are not part of the public API
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4.5, 3.6))
    axes.set_title(title)
    return figure, axes


def calibration_plot(labels: object, probabilities: object, *, title: str = "Calibration") -> bytes:
    """Reliability diagram: observed rate against mean predicted probability per bin."""
    table = calibration_table(labels, probabilities)
    figure, axes = _new_axes(title)
    top = max(table["mean_predicted"].max(), table["observed_rate"].max()) * 1.05
    axes.plot([0, top], [0, top], linestyle="--", color="grey", label="perfect")
    axes.plot(table["mean_predicted"], table["observed_rate"], marker="o", label="model")
    axes.set_xlabel("mean predicted probability")
    axes.set_ylabel("observed rate")
    axes.legend()
    return _figure_png(figure)


def gains_plot(labels: object, scores: object, *, title: str = "Cumulative gains") -> bytes:
    """Cumulative share of responders captured against the share of customers targeted."""
    table = gains_table(labels, scores)
    figure, axes = _new_axes(title)
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="random")
    axes.plot(
        np.concatenate([[0], table["cumulative_share_targeted"]]),
        np.concatenate([[0], table["cumulative_gain"]]),
        marker="o",
        label="model",
    )
    axes.set_xlabel("share targeted")
    axes.set_ylabel("share of responders")
    axes.legend()
    return _figure_png(figure)


def qini_plot(
    outcomes: object,
    treated: object,
    uplift_scores: object,
    *,
    oracle_scores: object | None = None,
    title: str = "Qini curve",
) -> bytes:
    """Qini curve of the model (and of an oracle when given) against random targeting."""
    curve = qini_curve(outcomes, treated, uplift_scores)
    figure, axes = _new_axes(title)
    axes.plot([0, 1], [0, curve.incremental_gain[-1]], linestyle="--", color="grey", label="random")
    axes.plot(curve.share_targeted, curve.incremental_gain, label="model")
    if oracle_scores is not None:
        oracle = qini_curve(outcomes, treated, oracle_scores)
        axes.plot(oracle.share_targeted, oracle.incremental_gain, label="oracle")
    axes.set_xlabel("share targeted")
    axes.set_ylabel("incremental responders / customers")
    axes.legend()
    return _figure_png(figure)


# --- Reports: every metric and plot one trained model logs --------------------------------


@dataclass(frozen=True)
class Report:
    """Holdout metrics, plots (PNG bytes) and tables of one model."""

    metrics: dict[str, float]
    plots: dict[str, bytes]
    tables: dict[str, pd.DataFrame]


def classifier_report(labels: object, probabilities: object, *, name: str) -> Report:
    """AUC, calibration error, log loss and Brier score, with calibration and gains plots."""
    from sklearn.metrics import brier_score_loss, log_loss

    probability_array = _as_probabilities(probabilities, name="probabilities")
    label_array = _as_binary(labels, name="labels", length=probability_array.size)
    metrics = {
        "auc": auc(label_array, probability_array),
        "expected_calibration_error": expected_calibration_error(label_array, probability_array),
        "log_loss": float(log_loss(label_array, probability_array, labels=[0, 1])),
        "brier_score": float(brier_score_loss(label_array, probability_array)),
        "holdout_rows": float(label_array.size),
        "holdout_positive_rate": float(label_array.mean()),
    }
    return Report(
        metrics=metrics,
        plots={
            "calibration": calibration_plot(
                label_array, probability_array, title=f"{name}: calibration"
            ),
            "gains": gains_plot(label_array, probability_array, title=f"{name}: cumulative gains"),
        },
        tables={"gains": gains_table(label_array, probability_array)},
    )


def uplift_report(outcomes: object, treated: object, uplift_scores: object, *, name: str) -> Report:
    """Qini coefficient and AUUC on the holdout, with the Qini curve."""
    outcome_array, treated_array, score_array = _uplift_inputs(outcomes, treated, uplift_scores)
    metrics = {
        "qini": qini_coefficient(outcome_array, treated_array, score_array),
        "auuc": auuc(outcome_array, treated_array, score_array),
        "holdout_rows": float(score_array.size),
        "holdout_treated_share": float(treated_array.mean()),
        "observed_uplift": float(
            outcome_array[treated_array == 1].mean() - outcome_array[treated_array == 0].mean()
        ),
    }
    return Report(
        metrics=metrics,
        plots={"qini": qini_plot(outcome_array, treated_array, score_array, title=f"{name}: Qini")},
        tables={},
    )

"""What every supervised model shares: input checks, feature typing, thread limits, scoring
per offer × channel, and the boosted pipeline (ordinal encoder + gradient boosting)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder
from threadpoolctl import threadpool_limits

from cx_pipelines.ml.errors import InsufficientDataError, TrainingDataError

# Isotonic/sigmoid calibration is fitted on out-of-fold predictions: with fewer positives
# than this per fold the calibration curve is a handful of points, worse than none.
MIN_CALIBRATION_EXAMPLES_PER_FOLD = 10


def class_counts(labels: np.ndarray) -> dict[str, int]:
    """Examples of each outcome of 0/1 ``labels``."""
    positive = int(np.asarray(labels).sum())
    return {"positive": positive, "negative": int(len(labels)) - positive}


def require_examples(
    counts: dict[str, int], *, minimum: int, where: str, what: str, needed: str
) -> None:
    """Raise :class:`InsufficientDataError` if any count in ``counts`` is below ``minimum``."""
    if min(counts.values(), default=0) >= minimum:
        return
    found = ", ".join(f"{count} {name}" for name, count in counts.items())
    raise InsufficientDataError(
        f"{where}: {what} has {found}; at least {minimum} of each are needed",
        counts=counts,
        needed=needed,
    )


def present_features(inputs: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(kept, dropped): columns with at least one value, and those missing everywhere.

    A column without any value (CDNOW has no ages or incomes) teaches nothing and breaks
    the booster's binning, so it is left out and the model records that it was.
    """
    empty = inputs.columns[inputs.isna().all()].tolist()
    return [column for column in inputs.columns if column not in empty], empty


@contextmanager
def training_threads() -> Iterator[None]:
    """Limit OpenMP threads while boosting (``CX_TRAINING_THREADS``, default 1).

    Several Dagster steps train at once on a small machine; busy-waiting OpenMP pools
    oversubscribe the cores and make each fit an order of magnitude slower.
    """
    threads = int(os.environ.get("CX_TRAINING_THREADS", "1"))
    with threadpool_limits(limits=threads, user_api="openmp"):
        yield


def check_binary_target(frame: pd.DataFrame, target: str, *, where: str) -> np.ndarray:
    """The target column as 0/1 integers, or a clear error naming what is wrong."""
    if target not in frame.columns:
        raise TrainingDataError(f"{where}: target column {target!r} is missing")
    values = frame[target]
    if values.isna().any():
        raise TrainingDataError(
            f"{where}: target {target!r} has {int(values.isna().sum())} missing values"
        )
    numeric = pd.to_numeric(values.astype("object").replace({True: 1, False: 0}), errors="coerce")
    if numeric.isna().any() or not numeric.isin([0, 1]).all():
        raise TrainingDataError(f"{where}: target {target!r} must be binary (0/1 or True/False)")
    labels = numeric.to_numpy(dtype=int)
    if len(labels) and labels.min() == labels.max():
        raise InsufficientDataError(
            f"{where}: target {target!r} holds only the value {labels[0]} ({len(labels)} rows)",
            counts=class_counts(labels),
            needed="a classifier needs examples of both outcomes",
        )
    return labels


def feature_frame(
    frame: pd.DataFrame, features: Sequence[str], categorical: Sequence[str], *, where: str
) -> pd.DataFrame:
    """The model's input columns with consistent types: categorical as strings, others as floats."""
    missing = [column for column in features if column not in frame.columns]
    if missing:
        raise TrainingDataError(f"{where}: feature columns {missing} are missing")
    result = {}
    for column in features:
        values = frame[column]
        if column in categorical:
            result[column] = values.astype("string").astype(object).where(values.notna(), None)
        elif pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            result[column] = values.astype(float)
        else:
            raise TrainingDataError(
                f"{where}: feature {column!r} has type {values.dtype}; declare it under "
                "features.categorical in the model spec or exclude it"
            )
    return pd.DataFrame(result, index=frame.index)


def subsample(frame: pd.DataFrame, limit: int | None, *, random_state: int) -> pd.DataFrame:
    """At most ``limit`` rows, drawn without replacement with a fixed seed."""
    if limit is None or len(frame) <= limit:
        return frame
    return frame.sample(n=limit, random_state=random_state)


def stacked_offer_channel_scores(
    predict: Callable[[pd.DataFrame], np.ndarray],
    customers: pd.DataFrame,
    *,
    offer_types: Sequence[str],
    channels: Sequence[str],
    prefix: str,
) -> pd.DataFrame:
    """One row per customer, one column ``<prefix>__<offer>__<channel>`` per combination,
    from ``predict`` (a model's per-row score) applied to every customer × combination."""
    if "customer_id" not in customers.columns:
        raise TrainingDataError("scoring data: column 'customer_id' is missing")
    pairs = [(offer_type, channel) for offer_type in offer_types for channel in channels]
    # One stacked prediction instead of one per pair: the model's overhead is paid once.
    stacked = pd.concat(
        [customers.assign(offer_type=offer, channel=channel) for offer, channel in pairs],
        ignore_index=True,
    )
    scores = np.asarray(predict(stacked)).reshape(len(pairs), len(customers))
    result = pd.DataFrame({"customer_id": customers["customer_id"].to_numpy()})
    for row, (offer_type, channel) in enumerate(pairs):
        result[f"{prefix}__{offer_type}__{channel}"] = scores[row]
    return result


def boosted_pipeline(
    features: Sequence[str],
    categorical: Sequence[str],
    *,
    params: dict[str, Any],
    random_state: int,
    regressor: bool = False,
) -> Pipeline:
    """An unfitted pipeline: ordinal-encode the categorical columns (unknown or missing
    categories become -1, which the booster handles natively), then gradient boosting."""
    categorical = [column for column in features if column in categorical]
    numeric = [column for column in features if column not in categorical]
    encoder = ColumnTransformer(
        [
            (
                "categorical",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value",
                    unknown_value=-1,
                    encoded_missing_value=-1,
                    dtype=float,
                ),
                categorical,
            ),
            ("numeric", "passthrough", numeric),
        ],
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")
    booster_class = HistGradientBoostingRegressor if regressor else HistGradientBoostingClassifier
    booster = booster_class(
        **params, categorical_features=categorical or None, random_state=random_state
    )
    return Pipeline([("encode", encoder), ("boost", booster)])


def calibration_plan(
    method: str, folds: int, counts: dict[str, int]
) -> tuple[str, int, str | None]:
    """(method, folds, note): ``method`` on ``folds`` folds, with fewer folds or none when the
    rarer outcome is too scarce for :data:`MIN_CALIBRATION_EXAMPLES_PER_FOLD` per fold."""
    if method == "none":
        return "none", 0, None
    rarer = min(counts.values())
    usable = min(folds, rarer // MIN_CALIBRATION_EXAMPLES_PER_FOLD)
    if usable >= folds:
        return method, usable, None
    if usable >= 2:
        return (
            method,
            usable,
            f"{method} calibration on {usable} folds instead of {folds}: only {rarer} "
            "examples of the rarer outcome",
        )
    return (
        "none",
        0,
        f"not calibrated: only {rarer} examples of the rarer outcome; {method} "
        f"calibration needs at least {2 * MIN_CALIBRATION_EXAMPLES_PER_FOLD}, so "
        "probabilities may be off",
    )


class FittedModel:
    """What every fitted supervised model shares: the feature columns it reads (``features_``,
    ``categorical_``) and how the data shaped the fit (``class_counts_``,
    ``dropped_features_``, ``notes_``)."""

    features_: list[str]
    categorical_: list[str]
    class_counts_: dict[str, int]
    dropped_features_: tuple[str, ...]
    notes_: tuple[str, ...]

    @property
    def features(self) -> list[str]:
        """The columns the fitted model reads (those with values at fit time)."""
        return list(self.features_)

    @property
    def dropped_features(self) -> tuple[str, ...]:
        """Columns left out because they had no value in any training row."""
        return tuple(self.dropped_features_)

    def fit_summary(self) -> dict[str, object]:
        """Examples per outcome, features left out and notes, for ``training_summary``."""
        return {
            "class_counts": dict(self.class_counts_ or {}),
            "dropped_features": list(self.dropped_features_),
            "notes": list(self.notes_),
        }

    def input_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model's input columns of ``frame``, typed as at fit time."""
        return feature_frame(frame, self.features_, self.categorical_, where="scoring data")

"""Propensity and attrition classifiers: gradient boosting with calibrated probabilities.

The estimator is scikit-learn's ``HistGradientBoostingClassifier`` behind an ordinal
encoder for categorical columns (unknown categories become missing, which the booster
handles natively), wrapped in ``CalibratedClassifierCV`` so a predicted 0.08 means an
8% response rate. One pooled model covers every offer type and channel: ``offer_type``
and ``channel`` are categorical features, so each offer × channel gets its own response
curve while sharing what customers have in common, which a 25-way split of a few
thousand contacts per cell cannot learn. :func:`score_offer_channels` scores each
customer once per offer × channel.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder
from threadpoolctl import threadpool_limits

from cx_pipelines.ml.specs import ModelSpec


class TrainingDataError(ValueError):
    """A training or scoring frame lacks columns, has an unusable target or bad feature types."""


class InsufficientDataError(TrainingDataError):
    """Too few examples to train (or to judge) a model: not a mistake in the data, just too little.

    ``counts`` holds the examples found (e.g. ``{"positive": 2, "negative": 60}``) and
    ``needed`` what would make the model trainable; the training assets record both and
    carry on without a new version instead of failing the run.
    """

    def __init__(self, message: str, *, counts: dict[str, int], needed: str) -> None:
        super().__init__(f"{message}; {needed}")
        self.counts = counts
        self.needed = needed


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


def build_classifier(
    spec: ModelSpec,
    features: Sequence[str],
    *,
    random_state: int,
    calibrate: bool | None = None,
    calibration_folds: int | None = None,
) -> Pipeline | CalibratedClassifierCV:
    """An unfitted pipeline: ordinal-encode categoricals, boost, optionally calibrate
    (``calibration_folds`` overrides the spec's, e.g. when a class is rare)."""
    categorical = [column for column in features if column in spec.categorical]
    numeric = [column for column in features if column not in spec.categorical]
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
    booster = HistGradientBoostingClassifier(
        **spec.estimator_params,
        categorical_features=categorical or None,
        random_state=random_state,
    )
    pipeline = Pipeline([("encode", encoder), ("boost", booster)])
    method = spec.calibration if calibrate is None or calibrate else "none"
    if method == "none":
        return pipeline
    # Shuffled folds: training frames often arrive sorted (by campaign, by time), and
    # contiguous folds would calibrate each model on campaigns it never saw.
    folds = StratifiedKFold(
        n_splits=calibration_folds or spec.calibration_folds,
        shuffle=True,
        random_state=random_state,
    )
    # ensemble=False: one booster on all rows, calibrated on out-of-fold predictions, so
    # scoring costs one model rather than one per fold.
    return CalibratedClassifierCV(pipeline, method=method, cv=folds, ensemble=False)


class FittedModel:
    """What every fitted model here shares: its feature columns and how data shaped the fit.

    Subclasses are dataclasses with ``features``, ``categorical``, ``class_counts``,
    ``dropped_features`` and ``notes`` fields.
    """

    features: list[str]
    categorical: list[str]
    class_counts: dict[str, int] | None
    dropped_features: tuple[str, ...]
    notes: tuple[str, ...]

    def fit_summary(self) -> dict[str, object]:
        """Examples per outcome, features left out and notes, for :meth:`training_summary`."""
        return {
            "class_counts": dict(self.class_counts or {}),
            "dropped_features": list(self.dropped_features),
            "notes": list(self.notes),
        }

    def input_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        return feature_frame(frame, self.features, self.categorical, where="scoring data")


@dataclass
class FittedClassifier(FittedModel):
    """A fitted classifier with the feature columns it expects."""

    estimator: Pipeline | CalibratedClassifierCV
    features: list[str]
    categorical: list[str]
    training_rows: int
    # How the data shaped the model (defaults keep models pickled before these existed loadable).
    calibration: str = "unknown"
    calibration_folds: int = 0
    class_counts: dict[str, int] | None = None
    dropped_features: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def training_summary(self) -> dict[str, object]:
        """What the asset metadata and MLflow params say about how the model was fitted."""
        return {
            "calibration": self.calibration,
            "calibration_folds": self.calibration_folds,
            **self.fit_summary(),
        }

    def predict_probability(self, frame: pd.DataFrame) -> np.ndarray:
        """Probability of the positive outcome for every row of ``frame``."""
        with training_threads():
            probabilities = self.estimator.predict_proba(self.input_frame(frame))[:, 1]
        if np.isnan(probabilities).any():
            raise TrainingDataError("the model produced NaN probabilities; check the inputs")
        return probabilities

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """scikit-learn style two-column probabilities (negative, positive)."""
        positive = self.predict_probability(frame)
        return np.column_stack([1 - positive, positive])

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """The positive-class probability: what a decision strategy's model score reads."""
        return self.predict_probability(frame)


def subsample(frame: pd.DataFrame, limit: int | None, *, random_state: int) -> pd.DataFrame:
    """At most ``limit`` rows, drawn without replacement with a fixed seed."""
    if limit is None or len(frame) <= limit:
        return frame
    return frame.sample(n=limit, random_state=random_state)


def calibration_plan(spec: ModelSpec, counts: dict[str, int]) -> tuple[str, int, str | None]:
    """(method, folds, note): the spec's calibration, with fewer folds or none when the rarer
    outcome is too scarce for :data:`MIN_CALIBRATION_EXAMPLES_PER_FOLD` per fold."""
    if spec.calibration == "none":
        return "none", 0, None
    rarer = min(counts.values())
    folds = min(spec.calibration_folds, rarer // MIN_CALIBRATION_EXAMPLES_PER_FOLD)
    if folds >= spec.calibration_folds:
        return spec.calibration, folds, None
    if folds >= 2:
        return (
            spec.calibration,
            folds,
            f"{spec.calibration} calibration on {folds} folds instead of "
            f"{spec.calibration_folds}: only {rarer} examples of the rarer outcome",
        )
    return (
        "none",
        0,
        f"not calibrated: only {rarer} examples of the rarer outcome; {spec.calibration} "
        f"calibration needs at least {2 * MIN_CALIBRATION_EXAMPLES_PER_FOLD}, so "
        "probabilities may be off",
    )


def fit_classifier(
    frame: pd.DataFrame,
    spec: ModelSpec,
    *,
    random_state: int = 0,
    features: Sequence[str] | None = None,
) -> FittedClassifier:
    """Fit the spec's classifier on ``frame`` (features chosen by the spec unless given).

    Raises :class:`InsufficientDataError` when the rarer outcome has fewer than the spec's
    ``estimator.min_class_examples`` rows; calibrates on fewer folds, or not at all, when
    it is too rare for the spec's folds (said in :meth:`FittedClassifier.training_summary`).
    """
    where = f"training data for {spec.name!r}"
    if frame.empty:
        raise InsufficientDataError(
            f"{where} is empty",
            counts={"positive": 0, "negative": 0},
            needed=f"at least {spec.min_class_examples} rows of each outcome are needed",
        )
    frame = subsample(frame, spec.max_training_rows, random_state=random_state)
    labels = check_binary_target(frame, spec.target, where=where)
    counts = class_counts(labels)
    require_examples(
        counts,
        minimum=spec.min_class_examples,
        where=where,
        what=f"target {spec.target!r}",
        needed=f"{spec.registered_name} is not trained until more outcomes are recorded "
        "(or lower estimator.min_class_examples in the model spec)",
    )
    chosen = list(features) if features is not None else spec.select_features(list(frame.columns))
    categorical = [column for column in chosen if column in spec.categorical]
    inputs = feature_frame(frame, chosen, categorical, where=where)
    kept, dropped = present_features(inputs)
    if not kept:
        raise InsufficientDataError(
            f"{where}: every feature {chosen} is missing in every row",
            counts=counts,
            needed="the model needs at least one feature with values",
        )
    categorical = [column for column in kept if column in categorical]
    method, folds, note = calibration_plan(spec, counts)
    estimator = build_classifier(
        spec, kept, random_state=random_state, calibrate=method != "none", calibration_folds=folds
    )
    with training_threads():
        estimator.fit(inputs[kept], labels)
    notes = [note] if note else []
    if dropped:
        notes.append(f"features without any value left out: {', '.join(dropped)}")
    return FittedClassifier(
        estimator,
        kept,
        categorical,
        len(frame),
        calibration=method,
        calibration_folds=folds,
        class_counts=counts,
        dropped_features=tuple(dropped),
        notes=tuple(notes),
    )


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


def score_offer_channels(
    model: FittedClassifier,
    customers: pd.DataFrame,
    *,
    offer_types: Sequence[str],
    channels: Sequence[str],
    prefix: str = "propensity",
) -> pd.DataFrame:
    """One row per customer, one column ``<prefix>__<offer>__<channel>`` per combination."""
    return stacked_offer_channel_scores(
        model.predict_probability,
        customers,
        offer_types=offer_types,
        channels=channels,
        prefix=prefix,
    )

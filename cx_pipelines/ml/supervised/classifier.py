"""Gradient boosting with calibrated probabilities, as a scikit-learn estimator, and the one
function that fits it from a model spec.

:class:`CalibratedBoostingClassifier` is scikit-learn's ``HistGradientBoostingClassifier``
behind an ordinal encoder for categorical columns, wrapped in ``CalibratedClassifierCV``
(isotonic or sigmoid on shuffled stratified folds) so a predicted 0.08 means an 8% rate.
It follows scikit-learn's conventions: parameters only in ``__init__``, ``fit`` returns
``self``, learned state ends with ``_``, ``predict_proba`` gives (negative, positive).
The model families (propensity, attrition, hit-and-run, dormancy) are subclasses that
register under their spec kind; :func:`fit_classifier` picks the one a spec names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d, validate_data

from cx_pipelines.ml.errors import InsufficientDataError, TrainingDataError
from cx_pipelines.ml.specs import ModelSpec
from cx_pipelines.ml.supervised.base import (
    FittedModel,
    boosted_pipeline,
    calibration_plan,
    check_binary_target,
    class_counts,
    feature_frame,
    present_features,
    require_examples,
    subsample,
    training_threads,
)

ESTIMATOR_OF_KIND: dict[str, type[CalibratedBoostingClassifier]] = {}


class CalibratedBoostingClassifier(FittedModel, ClassifierMixin, BaseEstimator):
    """Binary gradient-boosting classifier with calibrated probabilities.

    ``X`` is a DataFrame (columns named in ``categorical_features`` are categories, the
    others numbers; a scoring frame may carry extra columns) or a numeric array. Columns
    without any value are left out (``dropped_features_``). ``min_class_examples``: fewest
    examples of the rarer class worth a model (:class:`InsufficientDataError` below it);
    calibration uses fewer folds, or none, when the rarer class is too scarce
    (``calibration_``, ``calibration_folds_``, ``notes_`` say so).
    """

    kind: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("kind"):
            ESTIMATOR_OF_KIND[cls.kind] = cls

    def __init__(
        self,
        *,
        categorical_features: Sequence[str] = (),
        booster_params: dict[str, Any] | None = None,
        calibration: str = "isotonic",
        calibration_folds: int = 3,
        min_class_examples: int = 1,
        random_state: int = 0,
    ) -> None:
        self.categorical_features = categorical_features
        self.booster_params = booster_params
        self.calibration = calibration
        self.calibration_folds = calibration_folds
        self.min_class_examples = min_class_examples
        self.random_state = random_state

    def __sklearn_tags__(self):  # noqa: ANN204 - scikit-learn's Tags type
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.classifier_tags.multi_class = False
        return tags

    # -- inputs ---------------------------------------------------------------------
    def _inputs(self, X: Any, *, reset: bool) -> pd.DataFrame:
        """``X`` as a typed DataFrame of the fitted columns (names checked like scikit-learn)."""
        if isinstance(X, pd.DataFrame):
            names = getattr(self, "feature_names_in_", None)
            if not reset and names is not None:
                missing = [str(name) for name in names if name not in X.columns]
                if missing:
                    raise TrainingDataError(f"scoring data: feature columns {missing} are missing")
                if set(names) < set(X.columns):
                    X = X[list(names)]  # a scoring frame with more columns than the model reads
            validate_data(self, X, reset=reset, skip_check_array=True)
            categorical = [c for c in X.columns if c in set(self.categorical_features)]
            return feature_frame(X, list(X.columns), categorical, where="model input")
        array = check_array(X, dtype="numeric", ensure_all_finite="allow-nan")
        validate_data(self, array, reset=reset, skip_check_array=True)
        return pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])], dtype=float)

    def _encoded_labels(self, y: Any) -> np.ndarray:
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        y = column_or_1d(np.asarray(y), warn=True)
        check_classification_targets(y)
        target_type = type_of_target(y, input_name="y")
        if target_type != "binary":
            raise ValueError(
                f"Only binary classification is supported. The type of the target is {target_type}."
            )
        self.classes_ = np.unique(y)
        if len(self.classes_) != 2:
            raise InsufficientDataError(
                f"{type(self).__name__} is binary: the target has {len(self.classes_)} "
                "class(es); a classifier needs examples of both outcomes",
                counts={str(value): int((y == value).sum()) for value in self.classes_},
                needed="examples of exactly two classes",
            )
        return (y == self.classes_[1]).astype(int)

    # -- fitting --------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> CalibratedBoostingClassifier:
        """Fit the booster (and its calibration) on ``X`` and binary ``y``; returns self."""
        inputs = self._inputs(X, reset=True)
        labels = self._encoded_labels(y)
        if len(inputs) != len(labels):
            raise ValueError(f"X has {len(inputs)} rows but y has {len(labels)}")
        counts = class_counts(labels)
        require_examples(
            counts,
            minimum=self.min_class_examples,
            where=type(self).__name__,
            what="the target",
            needed="more examples of the rarer class are needed",
        )
        kept, dropped = present_features(inputs)
        if not kept:
            raise InsufficientDataError(
                f"every feature {list(inputs.columns)} is missing in every row",
                counts=counts,
                needed="the model needs at least one feature with values",
            )
        categorical = [column for column in kept if column in set(self.categorical_features)]
        method, folds, note = calibration_plan(self.calibration, self.calibration_folds, counts)
        pipeline = boosted_pipeline(
            kept,
            categorical,
            params=dict(self.booster_params or {}),
            random_state=self.random_state,
        )
        estimator: Any = pipeline
        if method != "none":
            # Shuffled folds: training frames often arrive sorted (by campaign, by time).
            # ensemble=False: one booster on all rows, calibrated on out-of-fold predictions.
            splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.random_state)
            estimator = CalibratedClassifierCV(pipeline, method=method, cv=splitter, ensemble=False)
        with training_threads():
            estimator.fit(inputs[kept], labels)
        notes = [note] if note else []
        if dropped:
            notes.append(f"features without any value left out: {', '.join(dropped)}")
        self.estimator_ = estimator
        self.features_ = kept
        self.categorical_ = categorical
        self.training_rows_ = len(inputs)
        self.calibration_ = method
        self.calibration_folds_ = folds
        self.class_counts_ = counts
        self.dropped_features_ = tuple(dropped)
        self.notes_ = tuple(notes)
        return self

    # -- predictions ----------------------------------------------------------------
    def predict_probability(self, X: Any) -> np.ndarray:
        """Probability of the positive class (``classes_[1]``) for every row of ``X``."""
        check_is_fitted(self, "estimator_")
        inputs = self._inputs(X, reset=False)
        with training_threads():
            positive = self.estimator_.predict_proba(inputs[self.features_])[:, 1]
        if np.isnan(positive).any():
            raise TrainingDataError("the model produced NaN probabilities; check the inputs")
        return positive

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities of (``classes_[0]``, ``classes_[1]``) per row."""
        positive = self.predict_probability(X)
        return np.column_stack([1 - positive, positive])

    def predict(self, X: Any) -> np.ndarray:
        """The more likely class of every row."""
        check_is_fitted(self, "estimator_")
        return self.classes_[(self.predict_probability(X) >= 0.5).astype(int)]

    def input_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The columns the model was fitted on (``feature_names_in_``), typed."""
        check_is_fitted(self, "estimator_")
        names = [str(name) for name in self.feature_names_in_]
        categorical = [c for c in names if c in set(self.categorical_features)]
        return feature_frame(frame, names, categorical, where="scoring data")

    def training_summary(self) -> dict[str, object]:
        """What the asset metadata and MLflow params say about how the model was fitted."""
        return {
            "estimator": type(self).__name__,
            "calibration": self.calibration_,
            "calibration_folds": self.calibration_folds_,
            **self.fit_summary(),
        }

    @classmethod
    def from_spec(cls, spec: ModelSpec, *, random_state: int) -> CalibratedBoostingClassifier:
        """An unfitted estimator with the spec's parameters."""
        return cls(
            categorical_features=tuple(spec.categorical),
            booster_params=dict(spec.estimator_params),
            calibration=spec.calibration,
            calibration_folds=spec.calibration_folds,
            min_class_examples=spec.min_class_examples,
            random_state=random_state,
        )


def fit_classifier(
    frame: pd.DataFrame,
    spec: ModelSpec,
    *,
    random_state: int = 0,
    features: Sequence[str] | None = None,
) -> CalibratedBoostingClassifier:
    """Fit the spec's classifier (the estimator registered for its kind) on ``frame``.

    Features are chosen by the spec unless given. Raises :class:`InsufficientDataError`
    when the rarer outcome has fewer than the spec's ``estimator.min_class_examples`` rows;
    calibrates on fewer folds, or not at all, when it is too rare for the spec's folds.
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
    require_examples(
        class_counts(labels),
        minimum=spec.min_class_examples,
        where=where,
        what=f"target {spec.target!r}",
        needed=f"{spec.registered_name} is not trained until more outcomes are recorded "
        "(or lower estimator.min_class_examples in the model spec)",
    )
    chosen = list(features) if features is not None else spec.select_features(list(frame.columns))
    categorical = [column for column in chosen if column in spec.categorical]
    inputs = feature_frame(frame, chosen, categorical, where=where)
    if inputs.isna().all().all():
        raise InsufficientDataError(
            f"{where}: every feature {chosen} is missing in every row",
            counts=class_counts(labels),
            needed="the model needs at least one feature with values",
        )
    estimator_class = ESTIMATOR_OF_KIND.get(spec.kind, CalibratedBoostingClassifier)
    estimator = estimator_class.from_spec(spec, random_state=random_state)
    return estimator.fit(inputs, labels)

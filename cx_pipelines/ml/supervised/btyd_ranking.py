"""The pure BTYD ranking as an estimator: its probability is a column the frame already holds.

The hit-and-run and dormancy frames carry the MBG/NBD probability of a purchase within
the horizon, fitted on the history up to the frame's cutoff. Wrapping that column as a
classifier lets the pure BTYD model be judged, registered and promoted exactly like the
covariate models it competes with.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from cx_pipelines.ml.errors import TrainingDataError
from cx_pipelines.ml.supervised.base import FittedModel, class_counts, feature_frame


class BTYDRankingClassifier(FittedModel, ClassifierMixin, BaseEstimator):
    """Scores every row with its ``column`` (a BTYD probability); ``fit`` learns nothing but
    the classes and the column it reads.

    Not checked with ``parametrize_with_checks``: it reads one named column of a frame
    (a probability computed by the BTYD fit), so arbitrary numeric arrays are not inputs.
    """

    def __init__(self, *, column: str = "btyd_probability_in_horizon") -> None:
        self.column = column

    def fit(self, X: pd.DataFrame, y: Any) -> BTYDRankingClassifier:
        """Record the classes and the column read; returns self."""
        if self.column not in X.columns:
            raise TrainingDataError(f"training data lacks the BTYD column {self.column!r}")
        labels = np.asarray(y, dtype=int)
        self.classes_ = np.array([0, 1])
        self.features_ = [self.column]
        self.categorical_ = []
        self.feature_names_in_ = np.asarray([self.column], dtype=object)
        self.n_features_in_ = 1
        self.class_counts_ = class_counts(labels)
        self.dropped_features_ = ()
        self.notes_ = ("pure MBG/NBD probability of a purchase within the horizon",)
        return self

    def predict_probability(self, X: pd.DataFrame) -> np.ndarray:
        """The BTYD probability of every row, clipped to [0, 1]."""
        check_is_fitted(self, "features_")
        values = feature_frame(X, self.features_, [], where="scoring data")[self.column]
        if values.isna().any():
            raise TrainingDataError(f"scoring data: {self.column!r} has missing values")
        return np.clip(values.to_numpy(dtype=float), 0.0, 1.0)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        positive = self.predict_probability(X)
        return np.column_stack([1 - positive, positive])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[(self.predict_probability(X) >= 0.5).astype(int)]

    def training_summary(self) -> dict[str, object]:
        return {"estimator": type(self).__name__, "column": self.column, **self.fit_summary()}

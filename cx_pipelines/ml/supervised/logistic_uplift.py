"""Logistic S-learner with treatment × feature interactions (Lo 2002) for pooled uplift.

One logistic regression on the response of both arms, with the treatment flag ``t`` and
its interactions as features::

    logit P(respond) = b·x + B·(offer ⊗ x) + t · (g + c·x + C·(offer ⊗ x) + D·(channel ⊗ x))

``x`` is the customer's row encoded for a linear model: one-hot categories (unknown and
missing categories are all-zero), 0/1 columns as they are, other numbers median-imputed and
expanded in a quadratic B-spline on quantile knots (an age peak, a log-shaped income effect).
``offer ⊗ x`` repeats ``x`` (without the offer and channel columns) once per offer type
(offer-specific baselines and effects), ``channel ⊗ x`` once per channel; there is no
offer × channel term, so the effect of a pair is its offer's plus its channel's (on the
log-odds scale). The uplift is ``p(x, t=1) − p(x, t=0)``.

Why: the treatment effect lives on the log-odds scale and is additive across offer and
channel, so a model that names it (the coefficients multiplying ``t``) neither shrinks it
towards zero as boosted trees with a treatment flag do (the flag is one split among many)
nor needs both arms of every offer × channel: a pair with no history is predicted from
what its offer showed on other channels and its channel on other offers, and an L2 penalty
(``C``) shrinks what an offer or channel has shown little of towards the common terms.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder, SplineTransformer

from cx_pipelines.ml.errors import TrainingDataError

LOGISTIC_PARAMETERS = ("C", "max_iter", "tol", "n_knots")
DEFAULT_PARAMETERS: dict[str, Any] = {"C": 1.0, "max_iter": 2000, "tol": 1e-6, "n_knots": 4}


def _is_binary(column: pd.Series) -> bool:
    values = pd.unique(column.dropna())
    return len(values) > 0 and set(np.asarray(values, dtype=float)) <= {0.0, 1.0}


class InteractionDesign(BaseEstimator):
    """Sparse design ``[x, by_0 ⊗ x, ...]`` of a frame (see the module docstring)."""

    def __init__(self, *, categorical: Sequence[str] = (), n_knots: int = 4) -> None:
        self.categorical = categorical
        self.n_knots = n_knots

    def fit(self, X: pd.DataFrame) -> InteractionDesign:
        categorical = [c for c in X.columns if c in set(self.categorical)]
        rest = [c for c in X.columns if c not in categorical]
        self.categorical_ = categorical
        self.binary_ = [c for c in rest if _is_binary(X[c])]
        self.numeric_ = [c for c in rest if c not in self.binary_ and X[c].notna().any()]
        self.onehot_ = OneHotEncoder(handle_unknown="ignore", sparse_output=True)
        self.onehot_.fit(self._categories(X))
        self.imputer_ = SimpleImputer(strategy="median")
        self.splines_ = SplineTransformer(
            n_knots=self.n_knots, degree=2, knots="quantile", extrapolation="constant"
        )
        if self.numeric_:
            numbers = self.imputer_.fit_transform(X[self.numeric_].astype(float))
            self.splines_.fit(numbers)
        return self

    def _categories(self, X: pd.DataFrame) -> pd.DataFrame:
        return X[self.categorical_].astype("string").fillna("\x00missing")

    def rows(self, X: pd.DataFrame, *, without: Sequence[str] = ()) -> sp.csr_matrix:
        """``x`` of every row (leaving out the one-hot columns of the ``without`` columns)."""
        onehot = self.onehot_.transform(self._categories(X))
        keep = np.concatenate(
            [
                np.full(len(levels), column not in without)
                for column, levels in zip(self.categorical_, self.onehot_.categories_, strict=True)
            ]
            or [np.zeros(0, dtype=bool)]
        )
        blocks = [onehot[:, np.flatnonzero(keep)]]
        if self.binary_:
            blocks.append(sp.csr_matrix(X[self.binary_].astype(float).fillna(0.0).to_numpy()))
        if self.numeric_:
            numbers = self.imputer_.transform(X[self.numeric_].astype(float))
            blocks.append(sp.csr_matrix(self.splines_.transform(numbers)))
        return sp.hstack(blocks, format="csr")

    def levels(self, X: pd.DataFrame, column: str) -> sp.csr_matrix:
        """One-hot of one categorical ``column`` (rows × its training levels)."""
        position = self.categorical_.index(column)
        known = self.onehot_.categories_[position]
        values = X[column].astype("string").fillna("\x00missing").to_numpy()
        matrix = (values[:, None] == np.asarray(known, dtype=object)[None, :]).astype(float)
        return sp.csr_matrix(matrix)


def crossed(x: sp.csr_matrix, levels: sp.csr_matrix) -> sp.csr_matrix:
    """Row-wise Kronecker product: ``x`` repeated once per level, zero outside the row's."""
    return sp.hstack([x.multiply(levels[:, [k]]) for k in range(levels.shape[1])], format="csr")


class LogisticSLearner:
    """The fitted logistic S-learner: ``fit`` then ``predict_arms``."""

    def __init__(
        self,
        *,
        categorical: Sequence[str],
        params: dict[str, Any] | None,
        random_state: int,
        offer: str = "offer_type",
        channel: str = "channel",
    ) -> None:
        unknown = set(params or {}) - set(LOGISTIC_PARAMETERS)
        if unknown:
            raise TrainingDataError(
                f"parameters {sorted(unknown)} do not apply to the logistic s-learner; "
                f"use {list(LOGISTIC_PARAMETERS)}"
            )
        self.params = {**DEFAULT_PARAMETERS, **(params or {})}
        self.categorical = tuple(categorical)
        self.random_state = random_state
        self.offer, self.channel = offer, channel

    def _by(self, X: pd.DataFrame) -> list[str]:
        return [c for c in (self.offer, self.channel) if c in self.design_.categorical_]

    def _matrix(self, X: pd.DataFrame, treated: np.ndarray) -> sp.csr_matrix:
        x = self.design_.rows(X)
        by = self._by(X)
        rest = self.design_.rows(X, without=by)  # no offer x channel term: additive effects
        offer = [crossed(rest, self.design_.levels(X, by[0]))] if self.offer in by else []
        effect = [sp.csr_matrix(np.ones((len(X), 1))), x]
        effect += [crossed(rest, self.design_.levels(X, column)) for column in by]
        arm = sp.diags(treated.astype(float))
        return sp.hstack([x, *offer, arm @ sp.hstack(effect, format="csr")], format="csr")

    def fit(self, X: pd.DataFrame, outcome: np.ndarray, treated: np.ndarray) -> LogisticSLearner:
        self.design_ = InteractionDesign(
            categorical=self.categorical, n_knots=int(self.params["n_knots"])
        ).fit(X)
        self.regression_ = LogisticRegression(
            C=float(self.params["C"]),
            max_iter=int(self.params["max_iter"]),
            tol=float(self.params["tol"]),
            solver="lbfgs",
        ).fit(self._matrix(X, treated), outcome)
        return self

    def predict_arms(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """P(respond | treated), P(respond | control) per row."""
        ones, zeros = np.ones(len(X)), np.zeros(len(X))
        treated = self.regression_.predict_proba(self._matrix(X, ones))[:, 1]
        control = self.regression_.predict_proba(self._matrix(X, zeros))[:, 1]
        return treated, control

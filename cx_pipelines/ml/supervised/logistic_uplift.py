"""Logistic S-learner with treatment × feature interactions (Lo 2002) for pooled uplift.

One logistic regression on the response of both arms, with the treatment flag ``t`` and
its interactions as features::

    logit P(respond) = b·x + B·(offer ⊗ x) + t · (g + c·x + C·(offer ⊗ x) + D·(channel ⊗ x))

``x`` is the customer's row encoded for a linear model: one-hot categories (unknown and
missing categories are all-zero), 0/1 columns as they are, the ``linear`` columns (counts
whose effect is a constant step on the log-odds per unit, such as contact fatigue per
recent treated contact) as they are, other numbers median-imputed and expanded in a
quadratic B-spline on quantile knots (an age peak, a log-shaped income effect).
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

Why the ``linear`` columns: a spline is flat beyond its last knot (constant extrapolation),
so a count seen up to 2 in the history could never predict less at 3, and its quantile
knots collapse on a count that is mostly zero. A linear term extrapolates one step per
unit, the form contact fatigue takes on the log-odds. Its main term and its treatment
interaction ``t · d · count`` are penalised ``linear_penalty`` times as much as the other
coefficients (glmnet's ``penalty.factor``, Friedman, Hastie & Tibshirani 2010; here by
scaling the column by ``1 / sqrt(linear_penalty)``): one well-identified slope learned from
every row needs no shrinkage, and the default L2 would pull it towards zero and leave the
policy contacting fatigued customers. Its offer and channel interactions keep the common
penalty (a fatigue that differs by offer must be shown, not assumed), unless
``linear_by_offer_channel`` is false: then every pair shares the one slope.

Why ``level_penalty``: the common L2 penalty shrinks the levels of both arms as much as
what they do with each customer attribute. An offer's baseline level (the coefficient of
its one-hot in ``b``) is pulled towards the other offers': a rare offer's control arm (a
mortgage's take-up is a tenth of a card's, and a campaign's control rows are a tenth of its
list) is predicted too high, its treated arm stays where its many treated rows put it, and
its uplift comes out too low. The treatment effect's level (its intercept ``g`` and its
offer and channel levels in ``c``) is pulled towards zero, so a penalty heavy enough to keep
the many interactions quiet also shrinks every predicted uplift. These few level terms are
penalised ``level_penalty`` times as much as the rest (the same column scaling as
``linear_penalty``); the interactions keep the common penalty. A level learned from few
rows (a pair only explored) is then shrunk less too, so the setting is measured in the loop
(models/uplift.yaml).

Why ``effect_penalty``: a campaign's list is nine tenths treated, so what the model knows of
the treatment effect comes from the few control rows, while the baseline is learned from
every row. The effect's many attribute terms (``c·x`` and its offer and channel copies,
hundreds of coefficients) under the baseline's penalty fit noise in those control rows: the
effect comes out too spread across customers and, through the shared baseline, the control
arm of the customers the lists did not contact is predicted too high and their uplift too low.
An effect simpler than the baseline is also the usual prior in causal inference (Hahn, Murray
& Carvalho 2020: Bayesian causal forests shrink the effect towards a homogeneous one harder
than the prognostic function). So the effect's attribute terms are penalised
``effect_penalty`` times as much as the rest (the same column scaling as ``linear_penalty``);
its levels (the intercept, the offer and channel one-hots, under ``level_penalty``) and the
linear columns' common slope (fatigue) are not.

Why ``effect_by``: the effect's attribute terms are copied once per offer (``C``) and once
per channel (``D``) by default. An offer's copy is learned from that offer's control rows
alone (a few hundred per campaign), so what a rare offer does differently with each
attribute is mostly noise, and it is the largest part of the effect's terms. ``effect_by``
names which copies the effect has: ``[channel]`` keeps the channel copies (every offer's rows
on a channel pool into them) and drops the offer ones; the offer's level in the effect stays.
Measured on a loop's log by fitting the world's own functional form with more effect terms
than it has: extra per-offer copies cost the policy more than extra per-channel ones. The
shipped spec keeps both: without the offer copies the loop did worse (models/uplift.yaml).

Why ``offered_product``: whether the customer already holds the product on offer is one
attribute whose column depends on the row's offer (``holds_mortgage`` for a mortgage offer,
``holds_credit_card`` for a card). Through ``offer ⊗ x`` alone each offer must learn it from
its own rows, and a rare offer's interactions are shrunk towards nothing; a common
``holds_card`` slope in ``c·x`` applies to every offer, so what a card holder does with a
mortgage offer is learned as a card effect. ``offered_product`` maps each offer level to its
holding column, and the rows gain ``holds_offered_product`` (0 for an offer it does not
name), one 0/1 column of ``x`` like any other: its common slopes pool every offer's rows,
its offer-specific ones keep what differs.

Why a posterior (:meth:`LogisticSLearner.uplift_spread`): targeting's Thompson draws need
how sure the model is of each row's uplift. The L2-penalised fit is the mode of a posterior
with a ``N(0, C)`` prior on every coefficient (the scaled columns' prior is ``C`` in their
scale) and a flat one on the intercept; its Laplace approximation is ``N(fitted, H^-1)``
with ``H = X̃' W X̃ + I / C`` the negative log posterior's Hessian at the fit
(Bishop 2006, §4.4). The fit keeps ``H``'s Cholesky factor; the spread of a row is the
standard deviation of ``p(x, 1) - p(x, 0)`` over seeded coefficient draws. A pair with
little history, or a customer unlike the contacted ones, has a wide spread.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.linalg import solve_triangular
from scipy.special import expit as _logistic
from sklearn.base import BaseEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder, SplineTransformer

from cx_pipelines.ml.errors import TrainingDataError
from cx_pipelines.ml.supervised.uplift_calibration import (
    CalibrationRows,
    PairCalibration,
    fit_pair_calibration,
    logit,
)

LOGISTIC_PARAMETERS = (
    "C",
    "max_iter",
    "tol",
    "n_knots",
    "linear",
    "linear_penalty",
    "linear_arms",
    "linear_by_offer_channel",
    "level_penalty",
    "effect_penalty",
    "effect_by",
    "offered_product",
    "calibration",
    "calibration_folds",
    "spread_draws",
)
CALIBRATIONS = ("none", "offer_channel")
DEFAULT_PARAMETERS: dict[str, Any] = {
    "C": 1.0,
    "max_iter": 2000,
    "tol": 1e-6,
    "n_knots": 4,
    "linear": (),
    "linear_penalty": 1.0,
    "linear_arms": "both",
    "linear_by_offer_channel": True,
    "level_penalty": 1.0,
    "effect_penalty": 1.0,
    "effect_by": ("offer", "channel"),
    "offered_product": {},
    "calibration": "none",
    "calibration_folds": 3,
    "spread_draws": 0,
}


OFFERED_PRODUCT = "holds_offered_product"


def _is_binary(column: pd.Series) -> bool:
    values = pd.unique(column.dropna())
    return len(values) > 0 and set(np.asarray(values, dtype=float)) <= {0.0, 1.0}


class InteractionDesign(BaseEstimator):
    """Sparse design ``[x, by_0 ⊗ x, ...]`` of a frame (see the module docstring)."""

    def __init__(
        self,
        *,
        categorical: Sequence[str] = (),
        linear: Sequence[str] = (),
        n_knots: int = 4,
    ) -> None:
        self.categorical = categorical
        self.linear = linear
        self.n_knots = n_knots

    def fit(self, X: pd.DataFrame) -> InteractionDesign:
        categorical = [c for c in X.columns if c in set(self.categorical)]
        rest = [c for c in X.columns if c not in categorical]
        self.categorical_ = categorical
        self.linear_ = [c for c in rest if c in set(self.linear) and X[c].notna().any()]
        rest = [c for c in rest if c not in self.linear_]
        self.binary_ = [c for c in rest if _is_binary(X[c])]
        self.numeric_ = [c for c in rest if c not in self.binary_ and X[c].notna().any()]
        self.linear_medians_ = X[self.linear_].astype(float).median().to_numpy()
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

    def linear_columns(self, X: pd.DataFrame, *, scale: float = 1.0) -> sp.csr_matrix:
        """The ``linear`` columns as they are (median-imputed), times ``scale``."""
        values = X[self.linear_].astype(float).to_numpy().reshape(len(X), len(self.linear_))
        values = np.where(np.isnan(values), self.linear_medians_, values)
        return sp.csr_matrix(values * scale)

    def rows(
        self,
        X: pd.DataFrame,
        *,
        without: Sequence[str] = (),
        linear_scale: float | None = 1.0,
        scaled: Sequence[str] = (),
        level_scale: float = 1.0,
        other_scale: float = 1.0,
    ) -> sp.csr_matrix:
        """``x`` of every row (leaving out the one-hot columns of the ``without`` columns),
        its ``linear`` columns times ``linear_scale`` (a lighter penalty, module docstring;
        ``None`` leaves them out), the one-hot columns of the ``scaled`` columns times
        ``level_scale``, every other column (the customer's attributes) times
        ``other_scale``."""
        onehot = self.onehot_.transform(self._categories(X))
        pairs = list(zip(self.categorical_, self.onehot_.categories_, strict=True))
        keep = np.concatenate(
            [np.full(len(levels), column not in without) for column, levels in pairs]
            or [np.zeros(0, dtype=bool)]
        )
        if pairs and (level_scale != 1.0 or other_scale != 1.0):
            weights = np.concatenate(
                [np.full(len(levels), level_scale if column in scaled else other_scale)
                 for column, levels in pairs]
            )  # fmt: skip
            onehot = onehot @ sp.diags(weights)
        blocks = [onehot[:, np.flatnonzero(keep)]]
        # A design pickled before linear columns existed has none.
        if getattr(self, "linear_", None) and linear_scale is not None:
            blocks.append(self.linear_columns(X, scale=linear_scale))
        if self.binary_:
            binary = X[self.binary_].astype(float).fillna(0.0).to_numpy()
            blocks.append(sp.csr_matrix(binary * other_scale))
        if self.numeric_:
            numbers = self.imputer_.transform(X[self.numeric_].astype(float))
            blocks.append(sp.csr_matrix(self.splines_.transform(numbers) * other_scale))
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

    def _with_offered_product(self, X: pd.DataFrame) -> pd.DataFrame:
        """``X`` with :data:`OFFERED_PRODUCT` when ``offered_product`` maps offers to their
        holding columns (module docstring), else as it is."""
        mapping = self.params.get("offered_product")  # none in a model pickled before it
        if not mapping:
            return X
        if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
        ):
            raise TrainingDataError(
                f"offered_product must map offer levels to holding columns, got {mapping!r}"
            )
        missing = sorted({self.offer, *mapping.values()} - set(X.columns))
        if missing:
            raise TrainingDataError(f"offered_product needs the columns {missing}")
        offers = X[self.offer].astype(str).to_numpy()
        held = np.zeros(len(X))
        for offer, column in mapping.items():
            mine = offers == offer
            held[mine] = pd.to_numeric(X[column], errors="coerce").fillna(0.0).to_numpy()[mine]
        return X.assign(**{OFFERED_PRODUCT: held})

    def _matrix(self, X: pd.DataFrame, treated: np.ndarray) -> sp.csr_matrix:
        # The linear columns' common slopes (main and treatment) get the lighter penalty; their
        # offer- and channel-specific slopes keep the common one. The levels (the offer and
        # channel one-hots of both arms, the treatment's intercept) get level_penalty's.
        scale = getattr(self, "linear_scale_", 1.0)
        X = self._with_offered_product(X)
        by = self._by(X)
        level_scale = getattr(self, "level_scale_", 1.0)
        leveled = {"scaled": by, "level_scale": level_scale}
        x = self.design_.rows(X, linear_scale=scale, **leveled)
        # No offer x channel term: additive effects. The linear columns' offer- and
        # channel-specific slopes only with linear_by_offer_channel.
        crossed_linear = 1.0 if getattr(self, "linear_by_offer_channel_", True) else None
        rest = self.design_.rows(X, without=by, linear_scale=crossed_linear)
        # linear_arms "treated": the linear columns act only through the treatment (the
        # response to a contact), not on the control arm's baseline.
        both = getattr(self, "linear_arms_", "both") == "both"
        base = x if both else self.design_.rows(X, linear_scale=None, **leveled)
        base_rest = rest if both else self.design_.rows(X, without=by, linear_scale=None)
        offer = [crossed(base_rest, self.design_.levels(X, by[0]))] if self.offer in by else []
        # The treatment effect's heterogeneity (what it does with the customer's attributes,
        # in common and by offer and channel) gets effect_penalty's; its levels and the
        # linear columns' common slope do not.
        effect_scale = getattr(self, "effect_scale_", 1.0)
        if effect_scale != 1.0:
            x = self.design_.rows(X, linear_scale=scale, other_scale=effect_scale, **leveled)
            rest = rest * effect_scale
        effect = [sp.csr_matrix(np.full((len(X), 1), level_scale)), x]
        effect_by = getattr(self, "effect_by_", by)  # every one in a model pickled before it
        effect += [crossed(rest, self.design_.levels(X, c)) for c in by if c in effect_by]
        arm = sp.diags(treated.astype(float))
        return sp.hstack([base, *offer, arm @ sp.hstack(effect, format="csr")], format="csr")

    def fit(
        self,
        X: pd.DataFrame,
        outcome: np.ndarray,
        treated: np.ndarray,
        *,
        groups: np.ndarray | None = None,
    ) -> LogisticSLearner:
        """Fit on the rows; with ``C`` a list, the value whose out-of-fold log-likelihood is
        best; with ``calibration: offer_channel``, the offer × channel recalibration of the
        out-of-fold scores (:mod:`.uplift_calibration`). Folds keep a customer (``groups``)
        in one fold."""
        grid = self._penalties()
        calibration = str(self.params["calibration"])
        if calibration not in CALIBRATIONS:
            raise TrainingDataError(
                f"calibration must be one of {list(CALIBRATIONS)}, got {calibration!r}"
            )
        self.C_, self.calibration_ = grid[0], None
        self.cross_validation_: dict[str, float] = {}
        if len(grid) > 1 or calibration != "none":
            folds = self._folds(len(X), groups)
            scored = {c: self._out_of_fold(X, outcome, treated, folds, c) for c in grid}
            self.cross_validation_ = {
                str(c): _log_likelihood(*arms, outcome, treated) for c, arms in scored.items()
            }
            self.C_ = max(grid, key=lambda c: self.cross_validation_[str(c)])
            if calibration == "offer_channel":
                self.calibration_ = self._calibrate(X, outcome, treated, folds, scored[self.C_])
        return self._fit_once(X, outcome, treated, self.C_)

    def _penalties(self) -> list[float]:
        value = self.params["C"]
        grid = [float(c) for c in (value if isinstance(value, list | tuple) else [value])]
        if not grid or min(grid) <= 0:
            raise TrainingDataError(f"C must be a positive number or a list of them, got {value!r}")
        return grid

    def _folds(self, rows: int, groups: np.ndarray | None) -> np.ndarray:
        count = int(self.params["calibration_folds"])
        if count < 2:
            raise TrainingDataError(f"calibration_folds must be at least 2, got {count}")
        keys = np.arange(rows) if groups is None else np.asarray(groups)
        unique, position = np.unique(keys, return_inverse=True)
        order = np.random.default_rng(self.random_state).permutation(len(unique))
        return (order % count)[position]

    def _single(self, C: float) -> LogisticSLearner:
        params = {**self.params, "C": C, "calibration": "none"}
        return LogisticSLearner(
            categorical=self.categorical, params=params, random_state=self.random_state,
            offer=self.offer, channel=self.channel,
        )  # fmt: skip

    def _out_of_fold(self, X, outcome, treated, folds, C) -> tuple[np.ndarray, np.ndarray]:
        treated_p, control_p = np.empty(len(X)), np.empty(len(X))
        for fold in np.unique(folds):
            train, test = folds != fold, folds == fold
            if outcome[train].min() == outcome[train].max():
                raise TrainingDataError("a cross-validation fold has only one outcome")
            # The penalty per row as in the fit on every row (sklearn's C multiplies the
            # summed loss): a fold model on fewer rows would otherwise be shrunk more than the
            # model the calibration corrects.
            fold_C = C * len(X) / int(train.sum())
            model = self._single(fold_C)._fit_once(
                X[train].reset_index(drop=True), outcome[train], treated[train], fold_C
            )
            treated_p[test], control_p[test] = model.predict_arms(X[test].reset_index(drop=True))
        return treated_p, control_p

    def _calibrate(self, X, outcome, treated, folds, arms) -> PairCalibration:
        offers = tuple(sorted(X[self.offer].astype(str).unique()))
        channels = tuple(sorted(X[self.channel].astype(str).unique()))
        rows = CalibrationRows(
            offer=np.searchsorted(offers, X[self.offer].astype(str).to_numpy()),
            channel=np.searchsorted(channels, X[self.channel].astype(str).to_numpy()),
            base=logit(arms[1]),
            effect=logit(arms[0]) - logit(arms[1]),
            treated=np.asarray(treated, dtype=float),
            outcome=np.asarray(outcome, dtype=float),
        )
        return fit_pair_calibration(rows, offers=offers, channels=channels, folds=folds)

    def _fit_once(
        self, X: pd.DataFrame, outcome: np.ndarray, treated: np.ndarray, C: float
    ) -> LogisticSLearner:
        self.linear_scale_ = self._column_scale("linear_penalty")
        self.level_scale_ = self._column_scale("level_penalty")
        self.effect_scale_ = self._column_scale("effect_penalty")
        self.effect_by_ = self._effect_by()
        self.linear_by_offer_channel_ = bool(self.params["linear_by_offer_channel"])
        self.linear_arms_ = str(self.params["linear_arms"])
        if self.linear_arms_ not in ("both", "treated"):
            raise TrainingDataError(
                f"linear_arms must be 'both' or 'treated', got {self.linear_arms_!r}"
            )
        self.design_ = InteractionDesign(
            categorical=self.categorical,
            linear=tuple(self.params["linear"]),
            n_knots=int(self.params["n_knots"]),
        ).fit(self._with_offered_product(X))
        matrix = self._matrix(X, treated)
        self.regression_ = LogisticRegression(
            C=C,
            max_iter=int(self.params["max_iter"]),
            tol=float(self.params["tol"]),
            solver="lbfgs",
        ).fit(matrix, outcome)
        draws = self.params["spread_draws"]
        if not isinstance(draws, int) or draws < 0:
            raise TrainingDataError(f"spread_draws must be a whole number >= 0, got {draws!r}")
        self.posterior_ = self._posterior(matrix, C) if draws else None
        return self

    def _posterior(self, matrix: sp.csr_matrix, C: float) -> np.ndarray:
        """Upper Cholesky factor ``R`` of the posterior precision ``H = R'R`` at the fitted
        coefficients (Laplace approximation; module docstring): ``X̃' W X̃ + I / C`` with
        ``X̃ = [X, 1]``, ``W`` the fitted ``p (1 - p)``, no prior on the intercept."""
        design = sp.hstack([matrix, np.ones((matrix.shape[0], 1))], format="csr")
        fitted = self.regression_.predict_proba(matrix)[:, 1]
        weighted = design.multiply((fitted * (1.0 - fitted))[:, None]).tocsr()
        precision = np.asarray((design.T @ weighted).todense())
        prior = np.full(design.shape[1], 1.0 / C)
        prior[-1] = 1e-8  # the intercept is not penalised (lbfgs)
        precision[np.diag_indices_from(precision)] += prior
        return np.linalg.cholesky(precision).T

    def coefficient_draws(self, draws: int, *, seed: int) -> np.ndarray:
        """``draws`` coefficient vectors (columns, the intercept last) from the Laplace
        posterior ``N(fitted, H^-1)`` of a model fitted with ``spread_draws``."""
        fitted = np.r_[self.regression_.coef_[0], self.regression_.intercept_[0]]
        noise = np.random.default_rng(seed).standard_normal((len(fitted), draws))
        return fitted[:, None] + solve_triangular(self.posterior_, noise, lower=False)

    @property
    def reports_spread(self) -> bool:
        """Whether :meth:`uplift_spread` has figures: a posterior and ``spread_draws``."""
        draws = int(self.params.get("spread_draws", 0))  # none in a model pickled before it
        return draws > 0 and getattr(self, "posterior_", None) is not None

    def uplift_spread(self, X: pd.DataFrame, *, seed: int = 0, chunk: int = 100_000) -> np.ndarray:
        """Posterior standard deviation of each row's uplift ``p(x, 1) - p(x, 0)``: its
        spread over ``spread_draws`` coefficient draws (:meth:`coefficient_draws`). NaN where
        the model does not :attr:`reports_spread`. The spread is of the uncalibrated arms."""
        if not self.reports_spread:
            return np.full(len(X), np.nan)
        coefficients = self.coefficient_draws(int(self.params["spread_draws"]), seed=seed)
        slopes, intercept = coefficients[:-1], coefficients[-1]
        spread = np.empty(len(X))
        for start in range(0, len(X), chunk):
            part = X.iloc[start : start + chunk].reset_index(drop=True)
            ones, zeros = np.ones(len(part)), np.zeros(len(part))
            treated = _logistic(self._matrix(part, ones) @ slopes + intercept)
            control = _logistic(self._matrix(part, zeros) @ slopes + intercept)
            spread[start : start + len(part)] = (treated - control).std(axis=1)
        return spread

    def _effect_by(self) -> list[str]:
        """The columns (``offer``, ``channel``) whose levels each get their own copy of the
        effect's attribute terms (module docstring)."""
        value = self.params["effect_by"]
        names = {"offer": self.offer, "channel": self.channel}
        chosen = [value] if isinstance(value, str) else list(value)
        unknown = [v for v in chosen if v not in names]
        if unknown:
            raise TrainingDataError(f"effect_by takes a list of {sorted(names)}, got {value!r}")
        return [names[v] for v in chosen]

    def _column_scale(self, name: str) -> float:
        """The column scale that makes a penalty factor ``name`` of the common L2 penalty."""
        penalty = float(self.params[name])
        if penalty <= 0:
            raise TrainingDataError(f"{name} must be positive, got {penalty}")
        return 1.0 / np.sqrt(penalty)

    def predict_arms(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """P(respond | treated), P(respond | control) per row."""
        ones, zeros = np.ones(len(X)), np.zeros(len(X))
        treated = self.regression_.predict_proba(self._matrix(X, ones))[:, 1]
        control = self.regression_.predict_proba(self._matrix(X, zeros))[:, 1]
        # A model pickled before the calibration existed has none.
        calibration = getattr(self, "calibration_", None)
        if calibration is None or self.offer not in X or self.channel not in X:
            return treated, control
        offers, channels = X[self.offer].astype(str), X[self.channel].astype(str)
        return calibration.adjust(offers.to_numpy(), channels.to_numpy(), treated, control)

    def selection_summary(self) -> dict[str, object]:
        """The penalty chosen, its cross-validated log-likelihoods and the calibration."""
        summary: dict[str, object] = {"C": getattr(self, "C_", self.params["C"])}
        if getattr(self, "cross_validation_", None):
            summary["cross_validated_log_likelihood"] = {
                c: round(v, 2) for c, v in self.cross_validation_.items()
            }
        if getattr(self, "calibration_", None) is not None:
            summary["calibration"] = self.calibration_.summary()
        return summary


def _log_likelihood(
    treated_p: np.ndarray, control_p: np.ndarray, outcome: np.ndarray, treated: np.ndarray
) -> float:
    """Log-likelihood of the observed outcomes under the arm each row was in."""
    p = np.clip(np.where(np.asarray(treated) == 1, treated_p, control_p), 1e-12, 1 - 1e-12)
    return float(np.sum(np.where(np.asarray(outcome) == 1, np.log(p), np.log1p(-p))))

"""Uplift (incremental response) models: meta-learners on scikit-learn gradient boosting.

Learned from randomised treatment/control history, so the treatment propensity is the
known treated share and needs no model. Four learners (Künzel et al. 2019; Kennedy 2023):

* **S-learner**: one response model with the treatment flag as a feature; uplift =
  p(x, treated) - p(x, control). Shares the baseline structure between both arms, which
  matters when the control group is small.
* **T-learner**: one response model per arm; uplift = p(treated) - p(control).
* **X-learner**: T-learner outcome models, then regressors on the imputed individual
  effects of each arm, blended by the treated share.
* **DR-learner**: doubly-robust pseudo-outcomes from cross-fitted outcome models,
  regressed on the features; the final model averages the folds.
* **Logistic S-learner** (``logistic_s_learner``, Lo 2002): one logistic regression with
  the treatment flag and its interactions with the features, offer and channel
  (:mod:`.logistic_uplift`); the other learners use boosted trees.

:class:`UpliftModel` is a scikit-learn style estimator (parameters in ``__init__``,
``fit(X, y, treatment=...)`` returns self, learned state ends with ``_``); ``predict``
returns the expected uplift in probability points. It is not checked with
``parametrize_with_checks``: its ``fit`` needs the treatment arm besides ``X`` and ``y``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from cx_pipelines.ml.errors import InsufficientDataError, TrainingDataError
from cx_pipelines.ml.specs import ModelSpec
from cx_pipelines.ml.supervised.base import (
    FittedModel,
    boosted_pipeline,
    check_binary_target,
    feature_frame,
    present_features,
    require_examples,
    stacked_offer_channel_scores,
    subsample,
    training_threads,
)
from cx_pipelines.ml.supervised.logistic_uplift import LogisticSLearner

_REGRESSOR_PARAMETERS = (
    "learning_rate",
    "max_iter",
    "max_leaf_nodes",
    "max_depth",
    "min_samples_leaf",
    "l2_regularization",
    "max_features",
    "max_bins",
    "early_stopping",
    "n_iter_no_change",
    "validation_fraction",
)


LEARNERS = ("s_learner", "t_learner", "x_learner", "dr_learner", "logistic_s_learner")


def _regressor_params(params: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in params.items() if key in _REGRESSOR_PARAMETERS}


def _positive(model: object, inputs: pd.DataFrame) -> np.ndarray:
    return model.predict_proba(inputs)[:, 1]


class UpliftModel(FittedModel, BaseEstimator):
    """A meta-learner (``learner``: s_learner, t_learner, x_learner or dr_learner) on
    boosted outcome models; :meth:`predict` returns the expected uplift per row."""

    def __init__(
        self,
        *,
        learner: str = "s_learner",
        categorical_features: Sequence[str] = (),
        booster_params: dict[str, Any] | None = None,
        random_state: int = 0,
    ) -> None:
        self.learner = learner
        self.categorical_features = categorical_features
        self.booster_params = booster_params
        self.random_state = random_state

    def training_summary(self) -> dict[str, object]:
        """What the asset metadata and MLflow params say about how the model was fitted."""
        summary: dict[str, object] = {"meta_learner": self.learner, **self.fit_summary()}
        logistic = getattr(self, "components_", {}).get("logistic")
        if logistic and hasattr(logistic[0], "selection_summary"):
            summary["selection"] = logistic[0].selection_summary()
        return summary

    def _classifier(self, features: list[str]) -> Pipeline:
        return boosted_pipeline(
            features,
            self.categorical_,
            params=dict(self.booster_params or {}),
            random_state=self.random_state,
        )

    def _regressor(self) -> Pipeline:
        return boosted_pipeline(
            self.features_,
            self.categorical_,
            params=_regressor_params(dict(self.booster_params or {})),
            random_state=self.random_state,
            regressor=True,
        )

    def fit(self, X: pd.DataFrame, y: Any, *, treatment: Any, groups: Any = None) -> UpliftModel:
        """Fit the meta-learner on features ``X``, 0/1 outcomes ``y`` and 0/1 ``treatment``;
        ``groups`` (e.g. the customer of each row) keeps a group in one cross-fitting fold."""
        if self.learner not in LEARNERS:
            raise TrainingDataError(f"unknown meta-learner {self.learner!r}")
        outcome = np.asarray(y, dtype=int)
        treated = np.asarray(treatment, dtype=int)
        inputs = X.reset_index(drop=True)
        kept, dropped = present_features(inputs)
        if not kept:
            raise InsufficientDataError(
                "every feature is missing in every row",
                counts=arm_counts(treated, outcome),
                needed="the model needs at least one feature with values",
            )
        self.feature_names_in_ = np.asarray(list(inputs.columns), dtype=object)
        self.n_features_in_ = len(inputs.columns)
        self.features_ = kept
        self.categorical_ = [c for c in kept if c in set(self.categorical_features)]
        self.treated_share_ = float(treated.mean())
        self.training_rows_ = len(inputs)
        self.class_counts_ = arm_counts(treated, outcome)
        self.dropped_features_ = tuple(dropped)
        self.notes_ = (
            (f"features without any value left out: {', '.join(dropped)}",) if dropped else ()
        )
        with training_threads():
            self.components_ = self._fit_components(
                inputs[kept], outcome, treated, None if groups is None else np.asarray(groups)
            )
        return self

    def _fit_components(
        self,
        inputs: pd.DataFrame,
        outcome: np.ndarray,
        treated: np.ndarray,
        groups: np.ndarray | None = None,
    ) -> dict[str, list[object]]:
        is_treated = treated == 1
        if self.learner == "logistic_s_learner":
            return self._fit_logistic(inputs, outcome, is_treated, groups)
        template = self._classifier(self.features_)

        def outcome_model(mask: np.ndarray) -> Pipeline:
            if outcome[mask].min() == outcome[mask].max():
                raise TrainingDataError("one arm has only one outcome; uplift is undefined")
            return clone(template).fit(inputs[mask], outcome[mask])

        if self.learner == "s_learner":
            single = self._classifier([*self.features_, "_treated"])
            return {"single": [single.fit(inputs.assign(_treated=treated.astype(float)), outcome)]}
        if self.learner in ("t_learner", "x_learner"):
            treated_model = outcome_model(is_treated)
            control_model = outcome_model(~is_treated)
            components: dict[str, list[object]] = {
                "treated": [treated_model],
                "control": [control_model],
            }
            if self.learner == "x_learner":
                imputed_treated = outcome[is_treated] - _positive(control_model, inputs[is_treated])
                imputed_control = (
                    _positive(treated_model, inputs[~is_treated]) - outcome[~is_treated]
                )
                regressor = self._regressor()
                components["effect_treated"] = [
                    clone(regressor).fit(inputs[is_treated], imputed_treated)
                ]
                components["effect_control"] = [
                    clone(regressor).fit(inputs[~is_treated], imputed_control)
                ]
            return components
        # DR-learner with two-fold cross-fitting, stratified on arm × outcome.
        share = self.treated_share_
        folds = StratifiedKFold(n_splits=2, shuffle=True, random_state=self.random_state)
        regressor = self._regressor()
        components = {"treated": [], "control": [], "effect": []}
        for nuisance_rows, effect_rows in folds.split(inputs, treated * 2 + outcome):
            nuisance = np.zeros(len(inputs), dtype=bool)
            nuisance[nuisance_rows] = True
            treated_model = outcome_model(nuisance & is_treated)
            control_model = outcome_model(nuisance & ~is_treated)
            effect_inputs = inputs.iloc[effect_rows]
            response_treated = _positive(treated_model, effect_inputs)
            response_control = _positive(control_model, effect_inputs)
            arm = treated[effect_rows]
            observed = outcome[effect_rows]
            pseudo_outcome = (
                response_treated
                - response_control
                + arm * (observed - response_treated) / share
                - (1 - arm) * (observed - response_control) / (1 - share)
            )
            components["treated"].append(treated_model)
            components["control"].append(control_model)
            components["effect"].append(clone(regressor).fit(effect_inputs, pseudo_outcome))
        return components

    def _fit_logistic(
        self,
        inputs: pd.DataFrame,
        outcome: np.ndarray,
        is_treated: np.ndarray,
        groups: np.ndarray | None = None,
    ) -> dict[str, list[object]]:
        for arm in (is_treated, ~is_treated):
            if outcome[arm].min() == outcome[arm].max():
                raise TrainingDataError("one arm has only one outcome; uplift is undefined")
        logistic = LogisticSLearner(
            categorical=self.categorical_,
            params=dict(self.booster_params or {}),
            random_state=self.random_state,
        )
        fitted = logistic.fit(inputs, outcome, is_treated.astype(int), groups=groups)
        return {"logistic": [fitted]}

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Expected uplift: P(respond | treated) - P(respond | control), per row."""
        check_is_fitted(self, "components_")
        with training_threads():
            return self._predict(self.input_frame(X))

    def _predict(self, inputs: pd.DataFrame) -> np.ndarray:
        components = self.components_
        if self.learner == "logistic_s_learner":
            treated, control = components["logistic"][0].predict_arms(inputs)
            uplift = treated - control
        elif self.learner == "s_learner":
            model = components["single"][0]
            uplift = _positive(model, inputs.assign(_treated=1.0)) - _positive(
                model, inputs.assign(_treated=0.0)
            )
        elif self.learner == "t_learner":
            uplift = _positive(components["treated"][0], inputs) - _positive(
                components["control"][0], inputs
            )
        elif self.learner == "x_learner":
            effect_treated = components["effect_treated"][0].predict(inputs)
            effect_control = components["effect_control"][0].predict(inputs)
            share = self.treated_share_
            uplift = share * effect_control + (1 - share) * effect_treated
        else:
            uplift = np.mean([model.predict(inputs) for model in components["effect"]], axis=0)
        if np.isnan(uplift).any():
            raise TrainingDataError("the uplift model produced NaN; check the inputs")
        return uplift

    @property
    def reports_spread(self) -> bool:
        """Whether :meth:`predict_spread` has figures (a logistic s-learner fitted with
        ``spread_draws``; the boosted learners have no posterior)."""
        check_is_fitted(self, "components_")
        return (
            self.learner == "logistic_s_learner" and self.components_["logistic"][0].reports_spread
        )

    def predict_spread(self, X: pd.DataFrame) -> np.ndarray:
        """Posterior standard deviation of the uplift per row (the logistic s-learner's
        Laplace posterior); NaN where the model does not :attr:`reports_spread`."""
        if not self.reports_spread:
            return np.full(len(X), np.nan)
        with training_threads():
            logistic = self.components_["logistic"][0]
            return logistic.uplift_spread(self.input_frame(X), seed=self.random_state)

    def predict_arms(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Response probability with and without treatment (outcome models of the first stage)."""
        check_is_fitted(self, "components_")
        inputs = self.input_frame(X)
        with training_threads():
            if self.learner == "logistic_s_learner":
                return self.components_["logistic"][0].predict_arms(inputs)
            if self.learner == "s_learner":
                model = self.components_["single"][0]
                return (
                    _positive(model, inputs.assign(_treated=1.0)),
                    _positive(model, inputs.assign(_treated=0.0)),
                )
            treated = np.mean([_positive(m, inputs) for m in self.components_["treated"]], axis=0)
            control = np.mean([_positive(m, inputs) for m in self.components_["control"]], axis=0)
        return treated, control


def fit_uplift_model(
    frame: pd.DataFrame,
    spec: ModelSpec,
    *,
    treatment: str = "treated",
    random_state: int = 0,
    features: Sequence[str] | None = None,
) -> UpliftModel:
    """Fit the spec's meta-learner on randomised treatment/control rows of ``frame``."""
    where = f"training data for {spec.name!r}"
    if spec.meta_learner is None:
        raise TrainingDataError(f"{where}: the spec names no estimator.meta_learner")
    needed = (
        f"{spec.registered_name} is not trained until randomised campaigns have recorded more "
        "responses in both arms (or lower estimator.min_class_examples in the model spec)"
    )
    if frame.empty:
        raise InsufficientDataError(
            f"{where} is empty (no contacts of past campaigns)", counts={}, needed=needed
        )
    frame = subsample(frame, spec.max_training_rows, random_state=random_state)
    outcome = check_binary_target(frame, spec.target, where=where)
    treated = check_binary_target(frame, treatment, where=where)
    counts = arm_counts(treated, outcome)
    require_examples(
        counts,
        minimum=spec.min_class_examples,
        where=where,
        what=f"{spec.target!r} by {treatment!r} arm",
        needed=needed,
    )
    chosen = (
        list(features)
        if features is not None
        else spec.select_features([column for column in frame.columns if column != treatment])
    )
    categorical = [column for column in chosen if column in spec.categorical]
    inputs = feature_frame(frame, chosen, categorical, where=where)
    if inputs.isna().all().all():
        raise InsufficientDataError(
            f"{where}: every feature is missing in every row", counts=counts, needed=needed
        )
    model = UpliftModel(
        learner=spec.meta_learner,
        categorical_features=tuple(spec.categorical),
        booster_params=dict(spec.estimator_params),
        random_state=random_state,
    )
    try:
        # Cross-fitting folds keep each customer's contacts together.
        groups = frame["customer_id"].to_numpy() if "customer_id" in frame else None
        return model.fit(inputs, outcome, treatment=treated, groups=groups)
    except TrainingDataError as error:
        if isinstance(error, InsufficientDataError):
            raise
        raise TrainingDataError(f"{where}: {error}") from error


def arm_counts(treated: np.ndarray, outcome: np.ndarray) -> dict[str, int]:
    """Rows per treatment arm × outcome, named for messages (``treated_responders``, ...)."""
    counts = {}
    for arm, arm_name in ((1, "treated"), (0, "control")):
        for value, outcome_name in ((1, "responders"), (0, "non-responders")):
            counts[f"{arm_name} {outcome_name}"] = int(
                ((treated == arm) & (outcome == value)).sum()
            )
    return counts


def score_offer_channels(
    model: UpliftModel,
    customers: pd.DataFrame,
    *,
    offer_types: Sequence[str],
    channels: Sequence[str],
    prefix: str = "uplift",
) -> pd.DataFrame:
    """One row per customer, one column ``<prefix>__<offer>__<channel>`` per combination."""
    return stacked_offer_channel_scores(
        model.predict, customers, offer_types=offer_types, channels=channels, prefix=prefix
    )


def score_offer_channel_spread(
    model: UpliftModel,
    customers: pd.DataFrame,
    *,
    offer_types: Sequence[str],
    channels: Sequence[str],
    prefix: str = "uplift_sd",
) -> pd.DataFrame:
    """The posterior standard deviation of every ``uplift__<offer>__<channel>`` score, as
    ``<prefix>__<offer>__<channel>`` (:meth:`UpliftModel.predict_spread`)."""
    return stacked_offer_channel_scores(
        model.predict_spread, customers, offer_types=offer_types, channels=channels, prefix=prefix
    )

"""Uplift (incremental response) models: meta-learners on scikit-learn gradient boosting.

Learned from randomised treatment/control history, so the treatment propensity is the
known treated share and needs no model. Three learners (Künzel et al. 2019; Kennedy 2023):

* **S-learner**: one response model with the treatment flag as a feature; uplift =
  p(x, treated) - p(x, control). Shares the baseline structure between both arms, which
  matters when the control group is small.
* **T-learner**: one response model per arm; uplift = p(treated) - p(control).
* **X-learner**: T-learner outcome models, then regressors on the imputed individual
  effects of each arm, blended by the treated share.
* **DR-learner**: doubly-robust pseudo-outcomes from cross-fitted outcome models,
  regressed on the features; the final model averages the folds.

Every learner is seeded and predicts ``expected_uplift`` in probability points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

from cx_pipelines.ml.propensity import (
    FittedModel,
    InsufficientDataError,
    TrainingDataError,
    build_classifier,
    check_binary_target,
    feature_frame,
    present_features,
    require_examples,
    stacked_offer_channel_scores,
    subsample,
    training_threads,
)
from cx_pipelines.ml.specs import ModelSpec

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


def _regressor(spec: ModelSpec, classifier: Pipeline, *, random_state: int) -> Pipeline:
    """A boosted regressor with the same encoder as the outcome classifiers."""
    encoder: ColumnTransformer = clone(classifier.named_steps["encode"])
    params = {
        key: value for key, value in spec.estimator_params.items() if key in _REGRESSOR_PARAMETERS
    }
    categorical = encoder.transformers[0][2]
    booster = HistGradientBoostingRegressor(
        **params, categorical_features=list(categorical) or None, random_state=random_state
    )
    return Pipeline([("encode", encoder), ("boost", booster)])


def _positive(model: object, inputs: pd.DataFrame) -> np.ndarray:
    return model.predict_proba(inputs)[:, 1]


@dataclass
class UpliftModel(FittedModel):
    """A fitted meta-learner; :meth:`predict` returns the expected uplift per row."""

    learner: str
    features: list[str]
    categorical: list[str]
    treated_share: float
    training_rows: int
    components: dict[str, list[object]] = field(default_factory=dict)
    class_counts: dict[str, int] | None = None
    dropped_features: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def training_summary(self) -> dict[str, object]:
        """What the asset metadata and MLflow params say about how the model was fitted."""
        return {"meta_learner": self.learner, **self.fit_summary()}

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Expected uplift: P(respond | treated) - P(respond | control), per row."""
        with training_threads():
            return self._predict(self.input_frame(frame))

    def _predict(self, inputs: pd.DataFrame) -> np.ndarray:
        if self.learner == "s_learner":
            model = self.components["single"][0]
            uplift = _positive(model, inputs.assign(_treated=1.0)) - _positive(
                model, inputs.assign(_treated=0.0)
            )
        elif self.learner == "t_learner":
            uplift = _positive(self.components["treated"][0], inputs) - _positive(
                self.components["control"][0], inputs
            )
        elif self.learner == "x_learner":
            effect_treated = self.components["effect_treated"][0].predict(inputs)
            effect_control = self.components["effect_control"][0].predict(inputs)
            uplift = self.treated_share * effect_control + (1 - self.treated_share) * effect_treated
        else:
            uplift = np.mean([model.predict(inputs) for model in self.components["effect"]], axis=0)
        if np.isnan(uplift).any():
            raise TrainingDataError("the uplift model produced NaN; check the inputs")
        return uplift

    def predict_arms(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Response probability with and without treatment (outcome models of the first stage)."""
        inputs = self.input_frame(frame)
        if self.learner == "s_learner":
            with training_threads():
                model = self.components["single"][0]
                return (
                    _positive(model, inputs.assign(_treated=1.0)),
                    _positive(model, inputs.assign(_treated=0.0)),
                )
        with training_threads():
            treated = np.mean([_positive(m, inputs) for m in self.components["treated"]], axis=0)
            control = np.mean([_positive(m, inputs) for m in self.components["control"]], axis=0)
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
    with training_threads():
        return _fit_uplift_model(
            frame, spec, treatment=treatment, random_state=random_state, features=features
        )


def _fit_uplift_model(
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
    inputs = feature_frame(frame, chosen, categorical, where=where).reset_index(drop=True)
    chosen, dropped = present_features(inputs)
    if not chosen:
        raise InsufficientDataError(
            f"{where}: every feature is missing in every row", counts=counts, needed=needed
        )
    inputs = inputs[chosen]
    categorical = [column for column in chosen if column in categorical]
    treated_share = float(treated.mean())
    template = build_classifier(spec, chosen, random_state=random_state, calibrate=False)
    model = UpliftModel(
        spec.meta_learner,
        chosen,
        categorical,
        treated_share,
        len(frame),
        class_counts=counts,
        dropped_features=tuple(dropped),
        notes=(f"features without any value left out: {', '.join(dropped)}",) if dropped else (),
    )

    def outcome_model(mask: np.ndarray) -> Pipeline:
        if outcome[mask].min() == outcome[mask].max():
            raise TrainingDataError(f"{where}: one arm has only one outcome; uplift is undefined")
        return clone(template).fit(inputs[mask], outcome[mask])

    is_treated = treated == 1
    if spec.meta_learner == "s_learner":
        single = build_classifier(
            spec, [*chosen, "_treated"], random_state=random_state, calibrate=False
        )
        model.components = {
            "single": [single.fit(inputs.assign(_treated=treated.astype(float)), outcome)]
        }
        return model
    if spec.meta_learner in ("t_learner", "x_learner"):
        treated_model = outcome_model(is_treated)
        control_model = outcome_model(~is_treated)
        model.components = {"treated": [treated_model], "control": [control_model]}
        if spec.meta_learner == "x_learner":
            imputed_treated = outcome[is_treated] - _positive(control_model, inputs[is_treated])
            imputed_control = _positive(treated_model, inputs[~is_treated]) - outcome[~is_treated]
            regressor = _regressor(spec, template, random_state=random_state)
            model.components["effect_treated"] = [
                clone(regressor).fit(inputs[is_treated], imputed_treated)
            ]
            model.components["effect_control"] = [
                clone(regressor).fit(inputs[~is_treated], imputed_control)
            ]
        return model

    # DR-learner with two-fold cross-fitting, stratified on arm × outcome.
    strata = treated * 2 + outcome
    folds = StratifiedKFold(n_splits=2, shuffle=True, random_state=random_state)
    regressor = _regressor(spec, template, random_state=random_state)
    model.components = {"treated": [], "control": [], "effect": []}
    for nuisance_rows, effect_rows in folds.split(inputs, strata):
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
            + arm * (observed - response_treated) / treated_share
            - (1 - arm) * (observed - response_control) / (1 - treated_share)
        )
        model.components["treated"].append(treated_model)
        model.components["control"].append(control_model)
        model.components["effect"].append(clone(regressor).fit(effect_inputs, pseudo_outcome))
    return model


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

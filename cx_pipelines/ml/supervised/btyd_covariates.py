"""Hit-and-run and dormancy with covariates: candidates fitted on an earlier window, judged
on the later time-based holdout, the better one kept.

Three candidates compete on the same holdout rows:

* ``covariates``: the family's calibrated booster on the BTYD signal plus who the customer
  is (``cx_pipelines.ml.lifetime_features``), trained on the frame at
  (as-of − 2 × horizon) labelled by the next horizon;
* ``btyd_by_type``: a BTYD model with a covariate, one BG/NBD per customer type (fitted
  on the history up to the frame's cutoff, no labels needed);
* ``btyd``: the pure MBG/NBD probability of a purchase within the horizon (the model the
  scores used before).

All are reported beside the recency baseline; the one with the highest holdout AUC is the
challenger (on a tie the simpler wins: ``btyd``, then ``btyd_by_type``). A data set
without covariates (CDNOW: one customer type) still trains them all and says which one it
kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from cx_pipelines.ml import evaluation
from cx_pipelines.ml.errors import InsufficientDataError
from cx_pipelines.ml.specs import ModelSpec
from cx_pipelines.ml.supervised.base import class_counts, require_examples
from cx_pipelines.ml.supervised.btyd_ranking import BTYDRankingClassifier
from cx_pipelines.ml.supervised.classifier import fit_classifier

FrameBuilder = Callable[..., pd.DataFrame]
MIN_HOLDOUT_EXAMPLES = 5


@dataclass(frozen=True)
class LifetimeFamily:
    """What differs between hit-and-run and dormancy: rows, label, BTYD and recency columns."""

    kind: str
    id_column: str
    btyd_column: str
    segmented_btyd_column: str
    recency_column: str  # the baseline ranks by it, smallest first
    build: FrameBuilder  # (tables, *, spec, cutoff, label_end) -> frame


FAMILIES: dict[str, LifetimeFamily] = {}


def register_family(family: LifetimeFamily) -> LifetimeFamily:
    FAMILIES[family.kind] = family
    return family


@dataclass
class LifetimeFit:
    """The kept model, the candidates' holdout figures, and the windows it was judged on."""

    model: Any
    chosen: str
    train: pd.DataFrame
    holdout: pd.DataFrame
    predicted: np.ndarray
    report: evaluation.Report
    windows: dict[str, str]
    candidates: dict[str, float] = field(default_factory=dict)


def windows(spec: ModelSpec, as_of: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(training cutoff, holdout cutoff): as-of minus two horizons and minus one."""
    horizon = timedelta(days=spec.holdout_days)
    return as_of - 2 * horizon, as_of - horizon


def family_of(spec: ModelSpec) -> LifetimeFamily:
    if spec.kind not in FAMILIES:
        raise KeyError(f"no lifetime family for spec kind {spec.kind!r}; known: {list(FAMILIES)}")
    return FAMILIES[spec.kind]


def fit_lifetime_model(
    spec: ModelSpec,
    tables: Mapping[str, pd.DataFrame],
    *,
    as_of: pd.Timestamp,
    random_state: int = 0,
) -> LifetimeFit:
    """Fit both candidates on the earlier window, judge them on the later one, keep the better."""
    family = family_of(spec)
    train_cutoff, holdout_cutoff = windows(spec, as_of)
    train = family.build(tables, spec=spec, cutoff=train_cutoff, label_end=holdout_cutoff)
    holdout = family.build(tables, spec=spec, cutoff=holdout_cutoff, label_end=as_of)
    require_examples(
        class_counts(holdout[spec.target].to_numpy()),
        minimum=MIN_HOLDOUT_EXAMPLES,
        where=f"holdout of {spec.registered_name}",
        what=f"{spec.target!r} after {holdout_cutoff:%Y-%m-%d}",
        needed="the model cannot be judged, so no version is registered; a longer history "
        "is needed",
    )
    labels = holdout[spec.target].to_numpy()
    fitted: dict[str, Any] = {
        name: BTYDRankingClassifier(column=column).fit(train, train[spec.target])
        for name, column in (
            ("btyd", family.btyd_column),
            ("btyd_by_type", family.segmented_btyd_column),
        )
    }
    try:
        fitted["covariates"] = fit_classifier(train, spec, random_state=random_state)
    except InsufficientDataError:
        if len(train) == 0:
            raise
    predictions = {name: model.predict_probability(holdout) for name, model in fitted.items()}
    candidates = {name: evaluation.auc(labels, values) for name, values in predictions.items()}
    simplicity = {"btyd": 2, "btyd_by_type": 1, "covariates": 0}
    chosen = max(candidates, key=lambda name: (candidates[name], simplicity[name]))
    report = evaluation.classifier_report(labels, predictions[chosen], name=spec.name)
    report.metrics.update(
        {
            "btyd_auc": candidates["btyd"],
            "btyd_by_type_auc": candidates["btyd_by_type"],
            "baseline_auc": evaluation.auc(labels, -holdout[family.recency_column].to_numpy()),
            "training_rows": float(len(train)),
        }
    )
    if "covariates" in candidates:
        report.metrics["covariates_auc"] = candidates["covariates"]
    return LifetimeFit(
        model=fitted[chosen],
        chosen=chosen,
        train=train,
        holdout=holdout,
        predicted=predictions[chosen],
        report=report,
        windows={
            "training_cutoff": str(train_cutoff),
            "training_label_end": str(holdout_cutoff),
            "holdout_cutoff": str(holdout_cutoff),
            "holdout_end": str(as_of),
        },
        candidates=candidates,
    )


def score_frame(
    model: Any, spec: ModelSpec, tables: Mapping[str, pd.DataFrame], *, as_of: pd.Timestamp
) -> pd.DataFrame:
    """The family's rows at ``as_of`` with the model's ``probability`` column."""
    frame = family_of(spec).build(tables, spec=spec, cutoff=as_of, label_end=None)
    return frame.assign(probability=model.predict_probability(frame) if len(frame) else [])

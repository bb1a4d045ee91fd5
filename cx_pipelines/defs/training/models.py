"""Supervised model assets: propensity, uplift and attrition, trained from the specs in
``models/``, evaluated on a time-based holdout, logged and registered in MLflow.

Each asset trains a challenger and stores a small per-offer × channel (or per-decile)
evaluation table; ``challenger.py`` scores the current champion on the *same* holdout and
registers the challenger with both figures. The blocking check in ``checks.py`` then
promotes it or keeps the champion and says why.

Propensity is one pooled model whose features include ``offer_type`` and ``channel``
(see ``cx_pipelines.ml.supervised.propensity``): it scores every offer × channel, including pairs no
past campaign used. Interaction results fed back by campaigns (warehouse table
``interaction_results``, same columns as ``offer_history``) are appended to the history
when that table exists. Every contact carries ``recent_treated_contacts`` (the customer's
treated contacts in the 28 days before it), so the models can learn contact fatigue.
"""

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from cx_pipelines import warehouse
from cx_pipelines.defs.training.challenger import (
    Challenger,
    TrainingConfig,
    as_of_date,
    contacts_until,
    require_holdout_classes,
    supervised_model_asset,
)
from cx_pipelines.ml import evaluation, training_data
from cx_pipelines.ml.evaluation import Report
from cx_pipelines.ml.paired_bootstrap import RowMetric
from cx_pipelines.ml.specs import ModelSpec
from cx_pipelines.ml.supervised.classifier import fit_classifier
from cx_pipelines.ml.supervised.uplift import fit_uplift_model

INTERACTION_RESULTS = "interaction_results"
CONTACT_INPUTS = ["customers", "accounts", "transactions", "offer_history"]


def interaction_results() -> pd.DataFrame | None:
    """Campaign results fed back into training, when the campaigns domain has produced any."""
    if warehouse.table_exists(INTERACTION_RESULTS):
        return warehouse.read_table(INTERACTION_RESULTS)
    return None


def contact_frames(
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    transactions: pd.DataFrame,
    offer_history: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    fraction: float,
    until: pd.Timestamp | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, holdout) contacts with customer features, history plus interaction results."""
    features = training_data.customer_features(customers, accounts, transactions, as_of=as_of)
    contacts = training_data.contacts(offer_history, interaction_results())
    contacts = contacts[contacts["contacted_at"] <= (until or as_of)]  # nothing after it
    # Contact pressure at each contact, from the contacts before it (never itself).
    contacts = training_data.with_contact_recency(contacts)
    frame = training_data.contact_frame(contacts, features)
    return training_data.split_latest_per_campaign(frame, fraction=fraction)


def segment_table(holdout: pd.DataFrame, predicted: np.ndarray, *, target: str) -> pd.DataFrame:
    """Per offer × channel: holdout contacts, observed and predicted rate, AUC when defined."""
    rows = []
    frame = holdout.assign(_predicted=predicted)
    for (offer, channel), group in frame.groupby(["offer_type", "channel"]):
        labels = group[target].astype(int)
        rows.append(
            {
                "offer_type": offer,
                "channel": channel,
                "holdout_contacts": len(group),
                "observed_rate": labels.mean(),
                "predicted_rate": group["_predicted"].mean(),
                "auc": evaluation.auc(labels, group["_predicted"])
                if labels.nunique() == 2
                else None,
            }
        )
    return pd.DataFrame(rows)


def uplift_table(holdout: pd.DataFrame, predicted: np.ndarray, *, target: str) -> pd.DataFrame:
    """Per offer × channel: contacts, observed uplift (null without both arms), predicted."""
    rows = []
    frame = holdout.assign(_predicted=predicted)
    for (offer, channel), group in frame.groupby(["offer_type", "channel"]):
        treated = group.loc[group["treated"], target].astype(int)
        control = group.loc[~group["treated"], target].astype(int)
        rows.append(
            {
                "offer_type": offer,
                "channel": channel,
                "holdout_contacts": len(group),
                "observed_uplift": treated.mean() - control.mean()
                if len(treated) and len(control)
                else None,
                "predicted_uplift": group["_predicted"].mean(),
            }
        )
    return pd.DataFrame(rows)


def contact_split(
    spec: ModelSpec, config: TrainingConfig, frames: Mapping[str, pd.DataFrame]
) -> tuple[pd.Timestamp, pd.DataFrame, pd.DataFrame]:
    """(as-of date, train, holdout) contacts of a model trained on campaign contacts."""
    as_of = as_of_date(frames["transactions"], config.as_of)
    train, holdout = contact_frames(
        *(frames[name] for name in CONTACT_INPUTS),
        as_of=as_of,
        fraction=spec.holdout_fraction,
        until=contacts_until(as_of, config.as_of),
    )
    return as_of, train, holdout


def segment_baseline(train: pd.DataFrame, holdout: pd.DataFrame, values: pd.Series) -> np.ndarray:
    """Each holdout row scored with its offer × channel's training figure (``values``, indexed
    by offer_type, channel); pairs unseen in training get the overall mean."""
    keys = pd.MultiIndex.from_frame(holdout[["offer_type", "channel"]])
    return values.reindex(keys).fillna(values.mean()).to_numpy(dtype=float)


def contact_windows(as_of: pd.Timestamp, train: pd.DataFrame, holdout: pd.DataFrame) -> dict:
    """Training and holdout periods of a contact model (by contacted_at)."""
    return {
        "as_of": str(as_of),
        "training_start": str(train["contacted_at"].min()),
        "training_end": str(train["contacted_at"].max()),
        "holdout_start": str(holdout["contacted_at"].min()),
        "holdout_end": str(holdout["contacted_at"].max()),
        "holdout_rule": "latest contacts of every campaign",
    }


def contact_challenger(
    model: Any,
    *,
    as_of: pd.Timestamp,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    report: Report,
    table: pd.DataFrame,
    champion_score: Callable[[Any], float],
    baseline: str,
    predict: Callable[[Any], np.ndarray] | None = None,
    row_metric: RowMetric | None = None,
    refit: Callable[[], Any] | None = None,
) -> Challenger:
    """A contact model's challenger: its per offer × channel ``table`` also goes to MLflow."""
    report.tables["offer_channel"] = table
    params = {"as_of": str(as_of), "training_rows": len(train), "features": model.features}
    windows = contact_windows(as_of, train, holdout)
    return Challenger(
        model, holdout, report, champion_score, params, table, windows, baseline,
        predict=predict, row_metric=row_metric, refit=refit,
    )  # fmt: skip


def train_propensity(
    spec: ModelSpec, config: TrainingConfig, frames: Mapping[str, pd.DataFrame]
) -> Challenger:
    """The propensity challenger, judged on treated holdout contacts (AUC)."""
    as_of, train, holdout = contact_split(spec, config, frames)
    train, holdout = train[train["treated"]], holdout[holdout["treated"]]
    model = fit_classifier(train, spec, random_state=config.random_state)
    require_holdout_classes(holdout[spec.target], spec=spec, what="treated contacts' responses")
    predicted = model.predict_probability(holdout)
    report = evaluation.classifier_report(holdout[spec.target], predicted, name="propensity")
    rates = train.groupby(["offer_type", "channel"])[spec.target].mean()
    report.metrics["baseline_auc"] = evaluation.auc(
        holdout[spec.target], segment_baseline(train, holdout, rates)
    )
    return contact_challenger(
        model,
        as_of=as_of,
        train=train,
        holdout=holdout,
        report=report,
        table=segment_table(holdout, predicted, target=spec.target),
        champion_score=lambda champ: evaluation.auc(
            holdout[spec.target], champ.predict_probability(holdout)
        ),
        baseline="training response rate of the offer × channel",
    )


def train_uplift(
    spec: ModelSpec, config: TrainingConfig, frames: Mapping[str, pd.DataFrame]
) -> Challenger:
    """The uplift challenger, judged on holdout contacts of both arms (Qini coefficient)."""
    as_of, train, holdout = contact_split(spec, config, frames)
    model = fit_uplift_model(train, spec, random_state=config.random_state)
    require_holdout_classes(holdout[spec.target], spec=spec, what="contacts' responses")
    require_holdout_classes(holdout["treated"], spec=spec, what="treated (1) / control (0) arms")
    predicted = model.predict(holdout)
    outcomes, treated = holdout[spec.target], holdout["treated"]
    report = evaluation.uplift_report(outcomes, treated, predicted, name="uplift")
    arms = train.groupby(["offer_type", "channel", "treated"])[spec.target].mean().unstack()
    observed = arms.get(True, np.nan) - arms.get(False, np.nan)
    report.metrics["baseline_qini"] = evaluation.qini_coefficient(
        outcomes, treated, segment_baseline(train, holdout, observed.fillna(0.0))
    )
    labels, arms = outcomes.to_numpy(), treated.to_numpy()
    return contact_challenger(
        model,
        as_of=as_of,
        train=train,
        holdout=holdout,
        report=report,
        baseline="training uplift (treated − control rate) of the offer × channel",
        table=uplift_table(holdout, predicted, target=spec.target),
        champion_score=lambda champ: evaluation.qini_coefficient(
            outcomes, treated, champ.predict(holdout)
        ),
        predict=lambda any_model: any_model.predict(holdout),
        row_metric=lambda scores, rows: evaluation.qini_coefficient(
            labels[rows], arms[rows], scores[rows]
        ),
        refit=lambda: fit_uplift_model(
            pd.concat([train, holdout], ignore_index=True), spec, random_state=config.random_state
        ),
    )


def train_attrition(
    spec: ModelSpec, config: TrainingConfig, frames: Mapping[str, pd.DataFrame]
) -> Challenger:
    """The attrition challenger, judged on customers' next ``holdout_days`` (AUC)."""
    as_of = as_of_date(frames["transactions"], config.as_of)
    train, holdout = training_data.attrition_split(
        frames["customers"],
        frames["accounts"],
        frames["transactions"],
        world_end=as_of,
        window_days=spec.holdout_days,
    )
    model = fit_classifier(train, spec, random_state=config.random_state)
    require_holdout_classes(holdout[spec.target], spec=spec, what="customers' attrition")
    predicted = model.predict_probability(holdout)
    report = evaluation.classifier_report(holdout[spec.target], predicted, name="attrition")
    report.metrics["baseline_auc"] = evaluation.auc(
        holdout[spec.target], holdout["days_since_last_purchase"].fillna(0.0)
    )
    windows = {
        "training_cutoff": str(as_of - timedelta(days=2 * spec.holdout_days)),
        "holdout_cutoff": str(as_of - timedelta(days=spec.holdout_days)),
        "holdout_end": str(as_of),
    }
    params = {**windows, "training_rows": len(train), "features": model.features}
    return Challenger(
        model,
        holdout,
        report,
        lambda champ: evaluation.auc(holdout[spec.target], champ.predict_probability(holdout)),
        params,
        report.tables["gains"],
        windows,
        "days since the last purchase (longer = riskier)",
    )


propensity_models = supervised_model_asset(
    name="propensity_models",
    spec_name="propensity",
    inputs=CONTACT_INPUTS,
    description="Calibrated response propensity per offer type × channel (one pooled MLflow "
    "model).",
    train=train_propensity,
)
uplift_model = supervised_model_asset(
    name="uplift_model",
    spec_name="uplift",
    inputs=CONTACT_INPUTS,
    description="Incremental response to an offer (meta-learner on randomised treatment/control "
    "history).",
    train=train_uplift,
)
attrition_model = supervised_model_asset(
    name="attrition_model",
    spec_name="attrition",
    inputs=["customers", "accounts", "transactions"],
    description="Risk that an active customer makes no purchase in the next 90 days (calibrated).",
    train=train_attrition,
)

SUPERVISED_ASSETS = [propensity_models, uplift_model, attrition_model]
SPEC_OF_ASSET = {
    "propensity_models": "propensity",
    "uplift_model": "uplift",
    "attrition_model": "attrition",
    "hit_and_run_model": "hit_and_run",
    "dormancy_model": "dormancy",
}

"""Hit-and-run and dormancy model assets: the covariate booster and the pure MBG/NBD ranking
compete on the later time-based holdout (``cx_pipelines.ml.supervised.btyd_covariates``);
the better is registered in MLflow and goes through the same champion/challenger gate as
the supervised models. The score assets (``lifetime.py``) then rank with the champion."""

from collections.abc import Mapping

import pandas as pd

from cx_pipelines.defs.training.challenger import (
    Challenger,
    TrainingConfig,
    as_of_date,
    supervised_model_asset,
)
from cx_pipelines.ml import evaluation
from cx_pipelines.ml.specs import ModelSpec
from cx_pipelines.ml.supervised import LifetimeFit, fit_lifetime_model

LIFETIME_INPUTS = ["customers", "accounts", "transactions", "offer_history", "interactions"]


def candidates_table(spec: ModelSpec, fit: LifetimeFit) -> pd.DataFrame:
    """One row per candidate: its holdout AUC and whether it was kept, then the baseline."""
    rows = [
        {"candidate": name, "holdout_auc": value, "kept": name == fit.chosen}
        for name, value in fit.candidates.items()
    ]
    rows.append(
        {"candidate": "recency baseline", "holdout_auc": fit.report.metrics["baseline_auc"]}
    )
    return pd.DataFrame(rows).assign(model_name=spec.registered_name)


def train_lifetime(
    spec: ModelSpec, config: TrainingConfig, frames: Mapping[str, pd.DataFrame]
) -> Challenger:
    """The better of covariates and pure MBG/NBD, judged on the later window (AUC)."""
    as_of = as_of_date(frames["transactions"], config.as_of)
    fit = fit_lifetime_model(spec, frames, as_of=as_of, random_state=config.random_state)
    holdout, labels = fit.holdout, fit.holdout[spec.target]
    table = candidates_table(spec, fit)
    fit.report.tables["candidates"] = table
    params = {
        **fit.windows,
        "chosen_model": fit.chosen,
        "training_rows": len(fit.train),
        "features": fit.model.features,
    }
    return Challenger(
        fit.model,
        holdout,
        fit.report,
        lambda champ: evaluation.auc(labels, champ.predict_probability(holdout)),
        params,
        table,
        fit.windows,
        f"recency: {_recency(spec)}, smallest first",
    )


def _recency(spec: ModelSpec) -> str:
    return "T" if spec.kind == "hit_and_run" else "days since the last spend"


hit_and_run_model = supervised_model_asset(
    name="hit_and_run_model",
    spec_name="hit_and_run",
    inputs=LIFETIME_INPUTS,
    description="Hit-and-run model: P(a one-time buyer buys again within 180 days), covariates "
    "on MBG/NBD vs pure MBG/NBD, the better registered in MLflow.",
    train=train_lifetime,
)
dormancy_model = supervised_model_asset(
    name="dormancy_model",
    spec_name="dormancy",
    inputs=LIFETIME_INPUTS,
    description="Dormancy model: P(a dormant account spends within 90 days), covariates on "
    "MBG/NBD vs pure MBG/NBD, the better registered in MLflow.",
    train=train_lifetime,
)

LIFETIME_MODEL_ASSETS = [hit_and_run_model, dormancy_model]

"""Model validity: each model's holdout metric next to the oracle's (true probabilities).

Generates a synthetic bank in a temporary CX_HOME, builds the same training frames and
time-based holdouts the training assets use, fits the models from ``models/*.yaml``, and
scores the same holdout rows with the ground truth:

* propensity: AUC and expected calibration error vs scoring with the true p_treated;
* uplift: Qini coefficient vs ranking by the true p_treated − p_control;
* attrition: AUC vs the true P(no purchase in 90 days) = 1 if dropped out else exp(−λ·w);
* hit-and-run: AUC of one-time buyers returning in the last 180 days vs 1 − exp(−λ·h);
* dormancy: AUC of dormant accounts spending again in the last 90 days vs the oracle
  P(alive at the cutoff) · (1 − exp(−λ · account share · h)) (share from past spending);
* spend forecast: MAE of holdout transactions vs the oracle's expected count.

    .venv/bin/python benchmarks/model_validity.py [--customers 60000] [--seed 11]

The last line is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa


def _load(home: Path) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    engine = sa.create_engine(f"sqlite:///{home / 'source.db'}")
    names = ("customers", "accounts", "transactions", "offer_history")
    tables = {name: pd.read_sql_table(name, engine) for name in names}
    engine.dispose()
    truth = pd.read_parquet(home / "world" / "truth.parquet")
    return tables, truth


def supervised(tables: dict[str, pd.DataFrame], truth: pd.DataFrame, *, as_of) -> dict:
    from cx_pipelines.ml import evaluation, training_data
    from cx_pipelines.ml.supervised.classifier import fit_classifier
    from cx_pipelines.ml.specs import load_spec
    from cx_pipelines.ml.supervised.uplift import fit_uplift_model

    customers, accounts, transactions = (
        tables["customers"],
        tables["accounts"],
        tables["transactions"],
    )
    features = training_data.customer_features(customers, accounts, transactions, as_of=as_of)
    contacts = training_data.contact_frame(
        training_data.contacts(tables["offer_history"]), features
    )
    results: dict[str, float] = {}

    spec = load_spec("propensity")
    train, holdout = training_data.split_latest_per_campaign(
        contacts, fraction=spec.holdout_fraction
    )
    treated_train, treated_holdout = train[train["treated"]], holdout[holdout["treated"]]
    model = fit_classifier(treated_train, spec)
    predicted = model.predict_probability(treated_holdout)
    oracle = training_data.oracle_response(treated_holdout, truth)
    labels = treated_holdout[spec.target]
    results |= {
        "propensity_holdout_contacts": len(treated_holdout),
        "propensity_auc": evaluation.auc(labels, predicted),
        "propensity_oracle_auc": evaluation.auc(labels, oracle),
        "propensity_ece": evaluation.expected_calibration_error(labels, predicted),
        "propensity_oracle_ece": evaluation.expected_calibration_error(labels, oracle),
    }
    results["propensity_auc_ratio"] = results["propensity_auc"] / results["propensity_oracle_auc"]

    spec = load_spec("uplift")
    uplift = fit_uplift_model(train, spec)
    outcomes, treated = holdout[spec.target], holdout["treated"]
    results |= {
        "uplift_holdout_contacts": len(holdout),
        "uplift_qini": evaluation.qini_coefficient(outcomes, treated, uplift.predict(holdout)),
        "uplift_oracle_qini": evaluation.qini_coefficient(
            outcomes, treated, training_data.oracle_uplift(holdout, truth)
        ),
    }
    results["uplift_qini_ratio"] = results["uplift_qini"] / results["uplift_oracle_qini"]

    spec = load_spec("attrition")
    train, holdout = training_data.attrition_split(
        customers, accounts, transactions, world_end=as_of, window_days=spec.holdout_days
    )
    model = fit_classifier(train, spec)
    predicted = model.predict_probability(holdout)
    oracle = training_data.oracle_attrition(holdout, truth, window_days=spec.holdout_days)
    labels = holdout[spec.target]
    results |= {
        "attrition_holdout_customers": len(holdout),
        "attrition_auc": evaluation.auc(labels, predicted),
        "attrition_oracle_auc": evaluation.auc(labels, oracle),
        "attrition_ece": evaluation.expected_calibration_error(labels, predicted),
        "attrition_oracle_ece": evaluation.expected_calibration_error(labels, oracle),
    }
    return results


def lifetime_models(transactions: pd.DataFrame, truth: pd.DataFrame, *, as_of) -> dict:
    from cx_pipelines.ml import evaluation, lifetime, rfm, training_data

    indexed = truth.set_index("customer_id")
    rate = indexed["purchase_rate"]  # per week
    dropped_at = pd.to_datetime(indexed["dropped_out_at"])
    results: dict[str, float] = {}

    cutoff = as_of - timedelta(days=180)
    one_time = training_data.hit_and_run_holdout(transactions, cutoff=cutoff, as_of=as_of)
    weeks = float(one_time["holdout_weeks"].iloc[0])
    oracle = 1 - np.exp(-rate.reindex(one_time["customer_id"]).to_numpy() * weeks)
    results |= {
        "hit_and_run_customers": len(one_time),
        "hit_and_run_auc": evaluation.auc(one_time["returned"], one_time["probability_ever_again"]),
        "hit_and_run_oracle_auc": evaluation.auc(one_time["returned"], oracle),
    }

    cutoff = as_of - timedelta(days=90)
    occurred = pd.to_datetime(transactions["occurred_at"])
    past = transactions[occurred <= cutoff]
    dormant = training_data.dormancy_holdout(
        transactions, cutoff=cutoff, dormant_days=90, horizon_days=90
    )
    account_counts = past.groupby("account_id").size()
    account_owner = past.drop_duplicates("account_id").set_index("account_id")["customer_id"]
    owner_counts = past.groupby("customer_id").size()
    share = (
        account_counts
        / owner_counts.reindex(account_owner.reindex(account_counts.index)).to_numpy()
    )
    owner = dormant["customer_id"].to_numpy()
    alive = ~(dropped_at.reindex(owner).to_numpy() <= np.datetime64(cutoff))
    account_rate = rate.reindex(owner).to_numpy() * share.reindex(dormant["account_id"]).to_numpy()
    oracle = alive * (1 - np.exp(-account_rate * 90 / 7))
    results |= {
        "dormancy_accounts": len(dormant),
        "dormancy_auc": evaluation.auc(dormant["reactivated"], dormant["probability_reactivation"]),
        "dormancy_oracle_auc": evaluation.auc(dormant["reactivated"], oracle),
    }

    cutoff = as_of - timedelta(days=180)
    data = rfm.calibration_and_holdout_data(
        transactions, calibration_period_end=cutoff, observation_period_end=as_of
    )
    figures = lifetime.evaluate_spend_forecast(
        transactions, calibration_period_end=cutoff, observation_period_end=as_of
    )
    customers = data["customer_id"].to_numpy()
    weeks = float(data["duration_holdout"].iloc[0])
    alive = ~(dropped_at.reindex(customers).to_numpy() <= np.datetime64(cutoff))
    # Expected holdout purchase days given the truth (dropout within the holdout ignored).
    expected = alive * rate.reindex(customers).to_numpy() * weeks
    results |= {
        "spend_forecast_mae": figures["mae"],
        "spend_forecast_baseline_mae": figures["baseline_mae"],
        "spend_forecast_oracle_mae": float(
            np.mean(np.abs(expected - data["frequency_holdout"].to_numpy()))
        ),
    }
    return results


def measure(*, customers: int, seed: int, home: Path) -> dict:
    """Generate a world in ``home`` and return every model's figure beside the oracle's."""
    os.environ["CX_HOME"] = str(home)
    from cx_pipelines import config
    from cx_pipelines.world import WORLD_END, generate_world

    started = time.perf_counter()
    generate_world(customers=customers, seed=seed, source_url=config.source_url())
    tables, truth = _load(home)
    as_of = pd.Timestamp(WORLD_END)
    figures: dict[str, float] = {"customers": customers, "seed": seed}
    figures |= supervised(tables, truth, as_of=as_of)
    figures |= lifetime_models(tables["transactions"], truth, as_of=as_of)
    figures["seconds"] = time.perf_counter() - started
    return {key: float(value) for key, value in figures.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=60_000)
    parser.add_argument("--seed", type=int, default=11)
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cx-validity-") as folder:
        figures = measure(customers=arguments.customers, seed=arguments.seed, home=Path(folder))
    rows = [
        ("propensity AUC", "propensity_auc", "propensity_oracle_auc"),
        ("propensity ECE", "propensity_ece", "propensity_oracle_ece"),
        ("uplift Qini", "uplift_qini", "uplift_oracle_qini"),
        ("attrition AUC", "attrition_auc", "attrition_oracle_auc"),
        ("attrition ECE", "attrition_ece", "attrition_oracle_ece"),
        ("hit-and-run AUC", "hit_and_run_auc", "hit_and_run_oracle_auc"),
        ("dormancy AUC", "dormancy_auc", "dormancy_oracle_auc"),
        ("spend forecast MAE (transactions)", "spend_forecast_mae", "spend_forecast_oracle_mae"),
    ]
    print(f"{arguments.customers:,} customers, seed {arguments.seed}")
    print(f"{'model metric':<36}{'model':>10}{'oracle':>10}{'ratio':>8}")
    for label, model, oracle in rows:
        ratio = figures[model] / figures[oracle] if figures[oracle] else float("nan")
        print(f"{label:<36}{figures[model]:>10.4f}{figures[oracle]:>10.4f}{ratio:>8.3f}")
    print(
        f"judged: propensity AUC ratio {figures['propensity_auc_ratio']:.3f} (>= 0.95), "
        f"ECE {figures['propensity_ece']:.4f} (< 0.02), "
        f"uplift Qini ratio {figures['uplift_qini_ratio']:.3f} (>= 0.8)"
    )
    print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

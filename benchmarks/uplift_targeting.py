"""How much of the oracle's true incremental profit does each uplift estimate capture?

    python benchmarks/uplift_targeting.py --home /path/to/prepared/home [--day 2026-10-01]

An offline yardstick of the targeting value, on a prepared CX_HOME (a world with sources,
features and champion models, e.g. from ``prepare_home.py``; work on a copy, the run
writes MLflow runs nowhere but refits models in-process). For the first decision date it
builds what ``campaign_targets`` decides over (:mod:`cx_pipelines.loop.targeting_inputs`:
the same customers, eligibility, costs, budgets and caps) and hands each policy's value
matrix to the same optimiser (:func:`cx_pipelines.loop.policies.choose`). Every choice is
scored with the world's truth (true incremental profit, no fatigue on the first date).

Policies: the **oracle** (true incremental profit), the **champion** (``uplift × margin −
cost`` from ``customer_scores``, what the platform targets on today), **propensity-only**
(``p_response × margin − cost``), and for each learner refitted in-process from the
warehouse (the training frame of ``uplift_model``) ``uplift × margin − cost``; for the
learners that model both arms also ``(p_propensity − p_control) × margin − cost`` (the
champion propensity with the learner's control-arm response).

Per learner it also reports, over all offer × channel pairs and separately for the pairs
with and without history, the mean predicted and mean true uplift (calibration) and the
Spearman rank correlation of predicted with true uplift (pooled, and the mean per pair).
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

LEARNERS = {
    "s_learner": ("HistGradientBoostingClassifier", None),
    "t_learner": ("HistGradientBoostingClassifier", None),
    "x_learner": ("HistGradientBoostingClassifier", None),
    "dr_learner": ("HistGradientBoostingClassifier", None),
    "logistic_s_learner": ("LogisticRegression", {"C": 1.0}),
    "logistic_s_learner_C0.03": ("LogisticRegression", {"C": 0.03}),
    "logistic_s_learner_C0.1": ("LogisticRegression", {"C": 0.1}),
    "logistic_s_learner_C0.3": ("LogisticRegression", {"C": 0.3}),
    "logistic_s_learner_C10": ("LogisticRegression", {"C": 10.0}),
}


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="a prepared CX_HOME (a copy)")
    parser.add_argument("--day", type=date.fromisoformat, default=date(2026, 10, 1))
    parser.add_argument("--learners", nargs="*", default=list(LEARNERS), choices=list(LEARNERS))
    return parser.parse_args()


def fit(name: str, train: pd.DataFrame, spec):
    from cx_pipelines.ml.supervised.uplift import fit_uplift_model

    estimator_class, params = LEARNERS[name]
    spec = dataclasses.replace(
        spec,
        meta_learner=name.split("_C")[0] if name.startswith("logistic") else name,
        estimator_class=estimator_class,
        estimator_params=params if params is not None else spec.estimator_params,
    )
    return fit_uplift_model(train, spec, random_state=0)


def pair_matrix(model, features: pd.DataFrame, pairs: list[tuple[str, str]], *, arms: bool):
    """customers × pairs of the model's uplift, or (treated, control) arm probabilities."""
    stacked = pd.concat(
        [features.assign(offer_type=o, channel=c) for o, c in pairs], ignore_index=True
    )
    shape = (len(pairs), len(features))
    if arms:
        treated, control = model.predict_arms(stacked)
        return treated.reshape(shape).T, control.reshape(shape).T
    return np.asarray(model.predict(stacked)).reshape(shape).T


def calibration(predicted: np.ndarray, true: np.ndarray, pairs, seen: set) -> dict:
    """Mean predicted vs true uplift and rank correlations, for pairs with / without history."""
    result = {}
    for label, keep in (("with_history", True), ("without_history", False)):
        columns = [k for k, pair in enumerate(pairs) if (pair in seen) == keep]
        if not columns:
            continue
        p, t = predicted[:, columns], true[:, columns]
        per_pair = [spearmanr(p[:, k], t[:, k]).statistic for k in range(len(columns))]
        result[label] = {
            "pairs": len(columns),
            "mean_predicted": round(float(p.mean()), 5),
            "mean_true": round(float(t.mean()), 5),
            "pair_mean_abs_error": round(float(np.abs(p.mean(0) - t.mean(0)).mean()), 5),
            "spearman_pooled": round(float(spearmanr(p.ravel(), t.ravel()).statistic), 4),
            "spearman_within_pair": round(float(np.nanmean(per_pair)), 4),
        }
    return result


def main() -> None:
    args = parse()
    os.environ["CX_HOME"] = str(args.home)
    os.environ["DAGSTER_HOME"] = str(args.home / "dagster")
    from cx_pipelines import warehouse
    from cx_pipelines.defs.training.challenger import TrainingConfig
    from cx_pipelines.defs.training.models import CONTACT_INPUTS, contact_split
    from cx_pipelines.loop import policies
    from cx_pipelines.loop.targeting_inputs import targeting_inputs
    from cx_pipelines.ml import training_data
    from cx_pipelines.ml.specs import load_spec
    from cx_pipelines.source_schema import OFFER_CHANNELS, OFFER_TYPES
    from cx_pipelines.world.simulator import WorldTruth

    inputs = targeting_inputs(args.day)
    economics = inputs.economics
    truth = WorldTruth.load()
    ids = inputs.customer_ids
    no_fatigue = np.zeros(len(ids))
    increment = policies.true_increment(truth, ids, economics, recent=no_fatigue)

    def captured(values: np.ndarray) -> dict:
        choice = policies.choose(policies.with_eligibility(values, inputs.eligible), economics)
        return {
            "true_profit": round(policies.choice_value(increment, choice), 1),
            "contacts": int((choice >= 0).sum()),
        }

    figures = {
        "oracle": captured(increment),
        "champion": captured(inputs.uplift * economics.margin - economics.cost),
        "propensity_only": captured(inputs.p_response * economics.margin - economics.cost),
    }
    spec = load_spec("uplift")
    frames = {name: warehouse.read_table(name) for name in CONTACT_INPUTS}
    as_of, train, _ = contact_split(spec, TrainingConfig(), frames)
    everything = pd.concat([train, _], ignore_index=True)
    seen = set(map(tuple, everything[["offer_type", "channel"]].drop_duplicates().to_numpy()))
    features = training_data.customer_features(
        frames["customers"], frames["accounts"], frames["transactions"], as_of=as_of
    )
    features = features.set_index("customer_id").reindex(ids).reset_index()
    pairs = [(o, c) for o in OFFER_TYPES for c in OFFER_CHANNELS]
    rows = truth.positions(ids)
    true_uplift = np.column_stack(
        [
            truth.treated_probability(
                rows,
                np.full(len(ids), OFFER_TYPES.index(o)),
                np.full(len(ids), OFFER_CHANNELS.index(c)),
                no_fatigue,
            )
            - truth.control_probability(rows, np.full(len(ids), OFFER_TYPES.index(o)))
            for o, c in pairs
        ]
    )
    campaign_columns = [
        pairs.index(p) for p in zip(economics.offer_type, economics.channel, strict=True)
    ]
    print(f"world {args.home.name}: {len(ids)} customers, {len(train)} training contacts, "
          f"pairs with history {sorted(seen)}")  # fmt: skip
    print(f"{'policy':34s} {'true profit':>12s} {'contacts':>9s} {'share of oracle':>16s}")
    quality = {}
    seconds = {}
    for name in args.learners:
        began = time.process_time()
        model = fit(name, train, spec)
        seconds[name] = round(time.process_time() - began, 1)
        treated, control = pair_matrix(model, features, pairs, arms=True)
        uplift = pair_matrix(model, features, pairs, arms=False)
        quality[name] = calibration(uplift, true_uplift, pairs, seen)
        on_campaigns = uplift[:, campaign_columns]
        figures[name] = captured(on_campaigns * economics.margin - economics.cost)
        combined = inputs.p_response - control[:, campaign_columns]
        figures[f"{name}+propensity-control"] = captured(
            combined * economics.margin - economics.cost
        )
    oracle = figures["oracle"]["true_profit"]
    for name, row in figures.items():
        share = row["true_profit"] / oracle if oracle else 0.0
        row["oracle_share"] = round(share, 4)
        print(f"{name:34s} {row['true_profit']:12.1f} {row['contacts']:9d} {share:16.3f}")
    for name, table in quality.items():
        for label, row in table.items():
            print(f"{name:24s} {label:16s} " + " ".join(f"{k}={v}" for k, v in row.items()))
    print(
        json.dumps(
            {
                "world": args.home.name,
                "day": args.day.isoformat(),
                "customers": len(ids),
                "training_contacts": len(train),
                "policies": figures,
                "calibration": quality,
                "fit_cpu_seconds": seconds,
            }
        )
    )


if __name__ == "__main__":
    main()

"""Is the uplift learner limited by its data or by its form? Ceiling of the shipped learner.

    python benchmarks/uplift_ceiling.py --home /path/to/a/copy/of/a/home [--day 2026-10-01] \
        [--rows 100000] [--variants shipped C=1 ...]

On a CX_HOME (a prepared home, or a loop home after K cycles; work on a copy: nothing is
written, but the warehouse is read while it must not change) and one decision date, the
shipped uplift spec's learner is fitted twice per variant:

* **log**: on the training frame ``uplift_model`` builds from the home's contact log (the
  same contacts, features, fatigue counts and time hold-out; ``--refit`` adds the hold-out,
  as the registered model is refitted);
* **randomised**: on ``--rows`` contacts drawn from the same world as a fully randomised
  campaign would draw them: customers uniform, every offer × channel uniform, treated with
  probability ½, the fatigue count drawn from the log's counts, the response drawn from the
  world's truth (``WorldTruth``, with its fatigue). Plenty of data where the log has little.

Each fitted model's ``uplift × margin − cost`` is handed to the optimiser over the date's
campaigns, eligibility and caps (``loop.targeting_inputs``); its choice is scored with the
truth at the customers' fatigue on that date, as a share of the oracle's. Per campaign it
prints the mean predicted and mean true uplift and the calibration slope (true on
predicted, least squares) over the log's rows of that campaign and over the oracle's
chosen customers. If the randomised fit reaches the oracle and the log fit does not, the
data (its size and design) limit the policy; if neither does, the learner's form does.
The ``true-form`` variants replace the shipped learner by one that knows the world's
functional form but none of its coefficients (:class:`TrueForm`), with or without effect
terms the world does not have: if it reaches the oracle on the log, the log is not the limit.

The last line is one JSON object.

Measured (20k world w20k-s1, 100,000 randomised rows, shared machine at load ~16; share of
the oracle, log fit against randomised fit):

* 2026-10-01, the prepared home's log (16,608 contacts, 6 offer × channel pairs): shipped
  0.834 against 0.902; calibrated 0.834; C=1 0.771 against 0.859; C chosen by cross-
  validation from 0.03-1, calibrated, 0.823. The log's loss is in the three pairs without
  history (overdraft_app predicted 0.003 against 0.103 true on the oracle's customers,
  loan_call_centre 0.011 against 0.060, card_young_mobile 0.032 against 0.056).
* 2026-10-08, the log after one loop cycle (33,330 contacts): shipped 0.894 against 0.856
  (the log, targeted and three times the pairs, beats uniform randomisation); calibrated
  0.894 / 0.855; C=1 0.875 / 0.812. Calibration slopes on the log's rows 0.70-0.95.

Measured (50k, copies of main's loop homes after six cycles, ``--day 2026-11-12 --sources
log``; seeds 1 / 2 / 3): shipped (before effect_penalty) 0.799 / 0.752 / 0.734,
effect_penalty 10 0.863 / 0.816 / 0.783 (models/uplift.yaml has the other variants).

Measured (50k, the homes of ``closed_loop.py --customers 50000 --cycles 6 --seeds 1 2 3``
after six cycles, ``--day 2026-11-12 --sources log --refit``; seeds 1 / 2 / 3): shipped
0.854 / 0.804 / 0.853, true-form 0.962 / 0.960 / 0.959; seed 1 with excess effect terms,
true-form+common 0.946, +channel 0.928, +offer 0.905. The log would carry a policy past 0.9
of the oracle; the shipped learner's form is what stops short.
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
import scipy.sparse as sp

OFFERED_PRODUCT = {
    "credit_card": "holds_credit_card",
    "personal_loan": "holds_personal_loan",
    "savings": "holds_savings",
    "mortgage": "holds_mortgage",
}  # each offer's holding column (overdraft: none, it is not a product one holds)
VARIANTS = {
    "shipped": {},
    "uncalibrated": {"calibration": "none"},
    "calibrated": {"calibration": "offer_channel"},
    "C=0.1": {"C": 0.1},
    "C=0.03": {"C": 0.03},
    "level=1": {"level_penalty": 1.0},
    "level=0.1": {"level_penalty": 0.1},
    "level=0.01": {"level_penalty": 0.01},
    "C=0.03+level=0.01": {"C": 0.03, "level_penalty": 0.01},
    "C=0.01+level=0.01": {"C": 0.01, "level_penalty": 0.01},
    "C=0.3": {"C": 0.3},
    "C=1": {"C": 1.0},
    "C=10": {"C": 10.0},
    "C-by-cv": {"C": [0.03, 0.1, 0.3, 1.0]},
    "C-by-cv+calibrated": {"C": [0.03, 0.1, 0.3, 1.0], "calibration": "offer_channel"},
    "effect=3": {"effect_penalty": 3.0},
    "effect=10": {"effect_penalty": 10.0},
    "effect=30": {"effect_penalty": 30.0},
    "effect=10+level=0.1": {"effect_penalty": 10.0, "level_penalty": 0.1},
    "effect=30+level=0.1": {"effect_penalty": 30.0, "level_penalty": 0.1},
    "C=1+effect=10": {"C": 1.0, "effect_penalty": 10.0},
    "C=1+effect=30": {"C": 1.0, "effect_penalty": 30.0},
    "effect-by-offer-channel": {"effect_by": ["offer", "channel"]},
    "effect-by-channel": {"effect_by": ["channel"]},
    "effect-by-channel+effect=3": {"effect_by": ["channel"], "effect_penalty": 3.0},
    "effect-by-channel+effect=1": {"effect_by": ["channel"], "effect_penalty": 1.0},
    "effect-common": {"effect_by": []},
    "offered-product": {"offered_product": OFFERED_PRODUCT},
    "true-form": {"true_form": ""},
    "true-form+common": {"true_form": "common"},
    "true-form+channel": {"true_form": "channel"},
    "true-form+offer": {"true_form": "offer"},
    "offered-product+level=0.1": {"offered_product": OFFERED_PRODUCT, "level_penalty": 0.1},
}


def _onehot(values: pd.Series, levels: tuple[str, ...]) -> np.ndarray:
    return (values.astype(str).to_numpy()[:, None] == np.asarray(levels)[None, :]).astype(float)


def _crossed(x: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """``x`` once per level, zero outside the row's level (the learner's ``crossed``)."""
    from cx_pipelines.ml.supervised.logistic_uplift import crossed

    return crossed(sp.csr_matrix(x), sp.csr_matrix(levels)).toarray()


class TrueForm:
    """A learner that knows the world's functional form (``cx_pipelines/world/offers.py``)
    and none of its coefficients: per offer, a baseline in customer type, age and its
    square, log income, holding the offered product and activity, with region and product
    count in common; an effect with offer × channel levels, customer type × channel, holding
    the offered product, delinquency by offer, activity on digital channels and one fatigue
    step per recent treated contact. ``excess`` adds effect terms the world does not have:
    every attribute in common, by channel or by offer. An L2-penalised logistic regression
    (``C``) fits the coefficients. If this form reaches the oracle on a log where the shipped
    learner does not, the shipped learner's form, not the log, limits the policy."""

    def __init__(self, *, excess: str = "", C: float = 1.0) -> None:
        if excess not in ("", "common", "channel", "offer"):
            raise ValueError(f"excess must be '', common, channel or offer, got {excess!r}")
        self.excess, self.C = excess, C

    def _columns(self, frame: pd.DataFrame, treated: np.ndarray) -> np.ndarray:
        from cx_pipelines.source_schema import (
            CUSTOMER_TYPES,
            OFFER_CHANNELS,
            OFFER_TYPES,
            PRODUCT_TYPES,
            REGIONS,
        )

        offer = _onehot(frame["offer_type"], OFFER_TYPES)
        channel = _onehot(frame["channel"], OFFER_CHANNELS)
        kind = _onehot(frame["customer_type"], CUSTOMER_TYPES)

        def number(column: str) -> np.ndarray:
            return pd.to_numeric(frame[column], errors="coerce").fillna(0.0).to_numpy()

        age = (number("age") - 45.0) / 20.0
        income = np.log(np.maximum(number("annual_income"), 1_000) / 50_000)
        product = dict(OFFERED_PRODUCT, overdraft="holds_checking")
        holds = np.column_stack([number(product[o]) for o in OFFER_TYPES])
        holds_offer = (holds * offer).sum(axis=1)
        activity = np.log1p(number("purchases_total"))
        products = np.column_stack([number(f"holds_{p}") for p in PRODUCT_TYPES]).sum(axis=1)
        delinquent = number("delinquent")
        region = _onehot(frame["region"], REGIONS)
        customer = np.column_stack([np.ones(len(frame)), kind, age, age**2, income,
                                    holds_offer, activity])  # fmt: skip
        base = [_crossed(customer, offer), region, products[:, None]]
        digital = channel[:, :3].sum(axis=1)  # email, mobile_app, web
        credit = offer[:, :2]  # credit_card, personal_loan
        effect = [
            _crossed(offer, channel), _crossed(kind, channel),
            (holds_offer * (1 - offer[:, 4]))[:, None], credit * delinquent[:, None],
            (activity * digital)[:, None], number("recent_treated_contacts")[:, None],
        ]  # fmt: skip
        attributes = np.column_stack([kind, age, age**2, income, holds_offer, activity, region,
                                      products, delinquent])  # fmt: skip
        effect += {"": [], "common": [attributes], "channel": [_crossed(attributes, channel)],
                   "offer": [_crossed(attributes, offer)]}[self.excess]  # fmt: skip
        return np.hstack([*base, np.hstack(effect) * treated[:, None]])

    def fit(self, frame: pd.DataFrame) -> TrueForm:
        from sklearn.linear_model import LogisticRegression

        treated = frame["treated"].to_numpy(float)
        self.regression_ = LogisticRegression(C=self.C, max_iter=5000, tol=1e-6).fit(
            self._columns(frame, treated), frame["responded"].to_numpy(int)
        )
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        arms = [self._columns(frame, np.full(len(frame), t)) for t in (1.0, 0.0)]
        treated, control = (self.regression_.predict_proba(a)[:, 1] for a in arms)
        return treated - control


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="a CX_HOME (a copy)")
    parser.add_argument("--day", type=date.fromisoformat, default=date(2026, 10, 1))
    parser.add_argument("--rows", type=int, default=100_000, help="randomised contacts drawn")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", nargs="*", default=["shipped"], choices=list(VARIANTS))
    parser.add_argument("--sources", nargs="*", default=["log", "randomised"])
    parser.add_argument(
        "--refit", action="store_true",
        help="fit on the log's training rows and its hold-out (as the registered model is "
        "refitted, models/uplift.yaml refit); the randomised source is unchanged",
    )  # fmt: skip
    return parser.parse_args()


def slope(predicted: np.ndarray, true: np.ndarray) -> float | None:
    """Least-squares slope of the true uplift on the predicted (1 = calibrated spread)."""
    keep = np.isfinite(predicted) & np.isfinite(true)
    if keep.sum() < 3 or np.var(predicted[keep]) == 0:
        return None
    return round(float(np.cov(predicted[keep], true[keep])[0, 1] / np.var(predicted[keep])), 3)


def randomised_contacts(truth, features, *, rows: int, recent_pool: np.ndarray, seed: int):
    """``rows`` contacts of a fully randomised campaign over every offer × channel."""
    from cx_pipelines.source_schema import OFFER_CHANNELS, OFFER_TYPES

    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(features), rows)
    offer = rng.integers(0, len(OFFER_TYPES), rows)
    channel = rng.integers(0, len(OFFER_CHANNELS), rows)
    treated = rng.random(rows) < 0.5
    recent = rng.choice(recent_pool, rows) if len(recent_pool) else np.zeros(rows)
    positions = truth.positions(features["customer_id"].to_numpy()[pick])
    probability = np.where(
        treated,
        truth.treated_probability(positions, offer, channel, recent),
        truth.control_probability(positions, offer),
    )
    frame = features.iloc[pick].reset_index(drop=True)
    return frame.assign(
        offer_type=np.asarray(OFFER_TYPES, dtype=object)[offer],
        channel=np.asarray(OFFER_CHANNELS, dtype=object)[channel],
        treated=treated,
        responded=rng.random(rows) < probability,
        recent_treated_contacts=recent.astype(float),
    )


def main() -> None:
    args = parse()
    os.environ["CX_HOME"] = str(args.home)
    os.environ["DAGSTER_HOME"] = str(args.home / "dagster")
    from cx_pipelines import warehouse
    from cx_pipelines.defs.training.challenger import TrainingConfig
    from cx_pipelines.defs.training.models import CONTACT_INPUTS, contact_split, interaction_results
    from cx_pipelines.loop import policies
    from cx_pipelines.loop.targeting_inputs import targeting_inputs
    from cx_pipelines.ml import training_data
    from cx_pipelines.ml.specs import load_spec
    from cx_pipelines.ml.supervised.uplift import fit_uplift_model
    from cx_pipelines.world.simulator import WorldTruth

    inputs = targeting_inputs(args.day)
    economics = inputs.economics
    truth = WorldTruth.load()
    ids = inputs.customer_ids
    frames = {name: warehouse.read_table(name) for name in CONTACT_INPUTS}
    history = training_data.contacts(frames["offer_history"], interaction_results())
    recent = training_data.recent_treated_contacts(history, ids, pd.Timestamp(args.day))
    increment = policies.true_increment(truth, ids, economics, recent=recent.astype(float))
    spec = load_spec("uplift")
    as_of, train, holdout = contact_split(spec, TrainingConfig(), frames)
    log = pd.concat([train, holdout], ignore_index=True)
    features = training_data.customer_features(
        frames["customers"], frames["accounts"], frames["transactions"], as_of=as_of
    )
    scoring = features.set_index("customer_id").reindex(ids).reset_index()
    scoring = scoring.assign(recent_treated_contacts=recent.astype(float))

    def true_uplift(frame: pd.DataFrame) -> np.ndarray:
        from cx_pipelines.source_schema import OFFER_CHANNELS, OFFER_TYPES

        positions = truth.positions(frame["customer_id"].to_numpy())
        offer = frame["offer_type"].map(OFFER_TYPES.index).to_numpy()
        channel = frame["channel"].map(OFFER_CHANNELS.index).to_numpy()
        pressure = frame["recent_treated_contacts"].to_numpy(float)
        treated = truth.treated_probability(positions, offer, channel, pressure)
        return treated - truth.control_probability(positions, offer)

    def captured(values: np.ndarray) -> tuple[dict, np.ndarray]:
        choice = policies.choose(policies.with_eligibility(values, inputs.eligible), economics)
        row = {"true_profit": round(policies.choice_value(increment, choice), 1)}
        return row | {"contacts": int((choice >= 0).sum())}, choice

    oracle, oracle_choice = captured(increment)
    figures: dict[str, dict] = {"oracle": oracle}
    calibration: dict[str, dict] = {}
    seconds: dict[str, float] = {}
    sources = {"log": log if args.refit else train}
    if "randomised" in args.sources:
        sources["randomised"] = randomised_contacts(
            truth, features, rows=args.rows, seed=args.seed,
            recent_pool=log["recent_treated_contacts"].to_numpy(float),
        )  # fmt: skip
    print(f"home {args.home}, day {args.day}: {len(ids)} customers, log {len(log)} contacts "
          f"({int(log['treated'].sum())} treated), oracle {oracle['true_profit']:.0f}")  # fmt: skip
    for variant in args.variants:
        params = {**spec.estimator_params, **VARIANTS[variant]}
        variant_spec = dataclasses.replace(spec, estimator_params=params)
        for source in args.sources:
            name = f"{source}/{variant}"
            began = time.process_time()
            if "true_form" in VARIANTS[variant]:
                model = TrueForm(excess=VARIANTS[variant]["true_form"]).fit(sources[source])
            else:
                model = fit_uplift_model(sources[source], variant_spec, random_state=0)
            seconds[name] = round(time.process_time() - began, 1)
            predicted = np.column_stack(
                [
                    model.predict(scoring.assign(offer_type=o, channel=c))
                    for o, c in zip(economics.offer_type, economics.channel, strict=True)
                ]
            )
            figures[name], _ = captured(predicted * economics.margin - economics.cost)
            per_campaign = {}
            for j, campaign in enumerate(economics.campaign_id):
                pair = (log["offer_type"] == economics.offer_type[j]) & (
                    log["channel"] == economics.channel[j]
                )
                rows = log[pair]
                on_log = model.predict(rows) if len(rows) else np.zeros(0)
                truth_log = true_uplift(rows) if len(rows) else np.zeros(0)
                mine = oracle_choice == j
                true_j = (increment[:, j] + economics.cost[j]) / economics.margin[j]
                per_campaign[campaign] = {
                    "log_rows": len(rows),
                    "log_predicted": round(float(on_log.mean()), 4) if len(rows) else None,
                    "log_true": round(float(truth_log.mean()), 4) if len(rows) else None,
                    "log_slope": slope(on_log, truth_log),
                    "oracle_rows": int(mine.sum()),
                    "oracle_predicted": round(float(predicted[mine, j].mean()), 4)
                    if mine.any()
                    else None,
                    "oracle_true": round(float(true_j[mine].mean()), 4) if mine.any() else None,
                    "eligible_slope": slope(
                        predicted[inputs.eligible[:, j], j], true_j[inputs.eligible[:, j]]
                    ),
                }
            calibration[name] = per_campaign
    total = oracle["true_profit"]
    print(f"{'policy':24s} {'true profit':>12s} {'contacts':>9s} {'share of oracle':>16s}")
    for name, row in figures.items():
        row["oracle_share"] = round(row["true_profit"] / total, 4) if total else 0.0
        share = row["oracle_share"]
        print(f"{name:24s} {row['true_profit']:12.1f} {row['contacts']:9d} {share:16.3f}")
    for name, table in calibration.items():
        print(f"-- {name}: campaign, log rows, log predicted/true (slope), oracle's rows "
              "predicted/true, slope over eligible")  # fmt: skip
        for campaign, c in table.items():
            print(f"   {campaign:24s} {c['log_rows']:6d} {c['log_predicted']}/{c['log_true']} "
                  f"({c['log_slope']})  {c['oracle_rows']:5d} {c['oracle_predicted']}/"
                  f"{c['oracle_true']}  {c['eligible_slope']}")  # fmt: skip
    print(
        json.dumps(
            {
                "home": str(args.home),
                "day": args.day.isoformat(),
                "customers": len(ids),
                "log_contacts": len(log),
                "fitted_on": "train and hold-out" if args.refit else "train",
                "randomised_rows": args.rows,
                "policies": figures,
                "calibration": calibration,
                "fit_cpu_seconds": seconds,
            }
        )
    )


if __name__ == "__main__":
    main()

"""Where do the deployed lists lose against the models' own optimum? One date's targeting,
re-run with each part of the list construction switched off, scored with the truth.

    python benchmarks/list_cost.py --home /path/to/a/copy/of/a/home [--day 2026-10-01]

On a CX_HOME whose ``customer_scores`` were scored for ``--day`` (a prepared home for the
first cycle, or a loop home between its decide and retrain steps; work on a copy, nothing is
written), the campaigns active that day are targeted as ``campaign_targets`` targets them
(same population, scores, contact history and policy), and every variant's treated rows are
scored with the world's truth (fatigue from the home's exports before that day):

* **models' optimum**: ``uplift x margin - cost`` straight through the optimiser under the
  caps (no controls, no exploration): what the models are worth as lists;
* **shipped**: ``target()`` as deployed;
* **no exploration** / **no controls** / **neither**: the same with the exploration share or
  every campaign's control share set to 0;
* **oracle**: the truth through the optimiser (the benchmark's yardstick);
* **truth, shipped lists** / **truth, controls only**: ``target()`` handed the true
  uplift and treated take-up as its scores, with exploration and controls as deployed or
  controls alone: what the list design leaves of the oracle even with perfect models.

The differences split the loss between the models' optimum and the deployed lists into
exploration, controls and the rest of the list construction. The last line is one JSON
object.

Measured (share of the oracle; prepared homes for 2026-10-01; copies of main's 20k loop
homes after their first cycle, re-scored for 2026-10-08, and at their fifth decision,
2026-10-29, whose "shipped" reproduces the loop's figure to the unit; loaded machine):

| home, day | models' optimum | shipped | no explor. | no controls | truth: lists | truth: ctrl |
|---|---|---|---|---|---|---|
| w20k-s2, 10-01 | 0.776 | 0.695 | 0.717 | 0.753 | 0.869 | 0.925 |
| w20k-s3, 10-01 | 0.422 | 0.394 | 0.384 | 0.431 | 0.884 | 0.927 |
| w50k-s2, 10-01 | 0.767 | 0.718 (0.721 refilled) | 0.723 | 0.762 | 0.926 | 0.950 |
| 20k s2 loop, 10-08 | 0.732 | 0.664 | 0.671 | 0.725 | 0.903 | 0.920 |
| 20k s2 loop, 10-29 | 0.351 | 0.299 | 0.309 | 0.340 | 0.875 | 0.891 |
| 20k s3 loop, 10-29 | 0.684 | 0.611 | 0.613 | 0.682 | 0.885 | 0.893 |

("truth: lists" / "truth: ctrl": the truth as scores, shipped lists / controls only.)

* "neither" (no exploration, no controls) equals the models' optimum to the unit in every
  row: the capacity fit, ranks and arbitration lose nothing; the loss between the models
  and the lists is the control arm (0.04-0.06 of the oracle) and exploration (0.005-0.02 at
  the first date, where three pairs have no history; it *gains* 0.01 on w20k-s3, whose
  models are worse than random there; 0.007 at the second; 0.002-0.010 at the fifth, where
  loan_call_centre, slow to reach 50 positives, still explores 46 rows worth -146 on seed 2).
* Even the world's truth as scores leaves 0.87-0.93 of the oracle through the shipped lists,
  0.89-0.95 with controls alone (0.89 at the fifth date, where lists are short of their
  caps): a random 10 % of every list earns nothing, and a list limited by its value (not
  its cap) cannot refill it. Against an oracle without a control arm the 0.9 target needs
  the models within 2-5 % of the truth's targeting at the first dates, and no model can meet
  it at the fifth with these control shares.
* On the 20k seed-2 loop the uplift gate kept cycle 0's champion for 10-08 (its scores were
  identical to 10-01's, fatigue unlearned); the same learner refitted on the log
  (benchmarks/uplift_ceiling.py) reaches 0.831 there against the champion's 0.732.
* Tried and not kept: refilling the treated capacity a list's control draw left unused
  (more controls than the list was sized for) with the best unassigned customers, each with
  its own draw: +1,296 (0.003 of the oracle) on w50k-s2, +70 on w20k-s2, 3 more control rows
  on 50k. It makes a boundary row's place on a list depend on the other rows' control
  draws, which the logged selection probabilities (1 x the arm's) do not express; with it,
  tests/loop/test_off_policy_targeting.py::test_ips_and_dr_are_unbiased_and_cover_on_an_
  exploring_log kept its bias and coverage checks but failed its last one (doubly robust
  spread 10,252 against IPS 9,866 over 40 logs; main passes).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="a CX_HOME (a copy)")
    parser.add_argument("--day", type=date.fromisoformat, default=date(2026, 10, 1))
    return parser.parse_args()


def main() -> None:
    args = parse()
    os.environ["CX_HOME"] = str(args.home)
    os.environ["DAGSTER_HOME"] = str(args.home / "dagster")
    from cx_pipelines import config
    from cx_pipelines.campaigns.catalog import load_campaigns
    from cx_pipelines.campaigns.targeting import TargetingSettings, target
    from cx_pipelines.engine import load_strategy
    from cx_pipelines.loop import policies
    from cx_pipelines.loop.targeting_inputs import (
        POLICY_STRATEGY,
        eligibility,
        population_inputs,
        strategies_folder,
    )
    from cx_pipelines.world import simulator

    folder = strategies_folder()
    campaigns = [c for c in load_campaigns(folder / "campaigns") if c.active_on(args.day)]
    strategy = load_strategy(folder / POLICY_STRATEGY)
    population, scores, history = population_inputs(args.day)
    inputs = eligibility(campaigns, population, scores, history, day=args.day, strategy=strategy)
    ids, economics = inputs.customer_ids, inputs.economics
    day_runs = {
        path.parent.name
        for path in config.exports_dir().glob("*/*/decisions.parquet")
        if path.parent.name.startswith(f"{args.day:%Y-%m-%d}-")
    }
    recent = simulator.recent_contacts(
        ids,
        pd.Series(pd.Timestamp(args.day), index=range(len(ids))),
        exports_dir=config.exports_dir(),
        exclude_run_key=next(iter(day_runs), ""),
    )
    truth = simulator.WorldTruth.load()
    increment = policies.true_increment(truth, ids, economics, recent=recent)
    index = pd.Index(ids)
    columns = pd.Index(economics.campaign_id)

    def scored(targets: pd.DataFrame) -> dict:
        treated = targets[targets["group"] == "treated"]
        value = increment[
            index.get_indexer(treated["customer_id"]), columns.get_indexer(treated["campaign_id"])
        ]
        explored = treated["exploration"].to_numpy(bool)
        control = targets[targets["group"] == "control"]
        forgone = increment[
            index.get_indexer(control["customer_id"]), columns.get_indexer(control["campaign_id"])
        ]
        per_campaign = {}
        for campaign in economics.campaign_id:
            mine = (treated["campaign_id"] == campaign).to_numpy()
            held = (control["campaign_id"] == campaign).to_numpy()
            per_campaign[campaign] = (
                int(mine.sum()), int(held.sum()), round(float(value[mine].sum())),
                round(float(forgone[held].sum())),
            )  # fmt: skip
        return {
            "per_campaign": per_campaign,
            "true_profit": round(float(value.sum()), 1),
            "treated": len(treated),
            "control": len(control),
            "explored": int(explored.sum()),
            "explored_value": round(float(value[explored].sum()), 1),
            "negative_contacts": int((value < 0).sum()),
            "negative_value": round(float(value[value < 0].sum()), 1),
            "forgone_by_controls": round(float(forgone.sum()), 1),
        }

    rows = truth.positions(ids)
    known = {"customer_id": ids}
    for offer, channel, offer_code, channel_code in zip(
        economics.offer_type, economics.channel, economics.offer_codes(),
        economics.channel_codes(), strict=True,
    ):  # fmt: skip
        offers = np.full(len(ids), offer_code)
        treated = truth.treated_probability(rows, offers, np.full(len(ids), channel_code), recent)
        known[f"propensity__{offer}__{channel}"] = treated
        known[f"uplift__{offer}__{channel}"] = treated - truth.control_probability(rows, offers)
    true_scores = pd.DataFrame(known)

    def run(
        name: str, *, exploration: float | None = None, controls: bool = True, known=None
    ) -> dict:
        active = campaigns if controls else [replace(c, control_share=0.0) for c in campaigns]
        settings = TargetingSettings(decision_date=args.day)
        if exploration is not None:
            settings = replace(settings, exploration_share=exploration)
        result = target(
            active, population, scores if known is None else known, history,
            caps=[(cap.channel, cap.max, cap.period_days) for cap in strategy.contact_caps],
            decline_limit=strategy.decline_limit, settings=settings, strategy_hash="what-if",
            model_versions={}, fingerprint={"variant": name},
        )  # fmt: skip
        return scored(result.targets)

    oracle = policies.choose(policies.oracle_values(increment, inputs.eligible), economics)
    model_value = policies.with_eligibility(
        inputs.uplift * economics.margin - economics.cost, inputs.eligible
    )
    optimum = policies.choose(model_value, economics)
    figures = {
        "oracle": {"true_profit": round(policies.choice_value(increment, oracle), 1)},
        "models' optimum": {"true_profit": round(policies.choice_value(increment, optimum), 1)},
        "shipped": run("shipped"),
        "no exploration": run("no exploration", exploration=0.0),
        "no controls": run("no controls", controls=False),
        "neither": run("neither", exploration=0.0, controls=False),
        "truth, shipped lists": run("truth, shipped", known=true_scores),
        "truth, controls only": run("truth, controls", exploration=0.0, known=true_scores),
    }
    total = figures["oracle"]["true_profit"]
    print(f"home {args.home}, day {args.day}: {len(ids)} customers, oracle {total:,.0f}")
    for name, row in figures.items():
        row["oracle_share"] = round(row["true_profit"] / total, 4) if total else 0.0
        extra = ", ".join(
            f"{k} {v:,}" for k, v in row.items() if k not in ("true_profit", "per_campaign")
        )
        print(f"{name:18s} {row['true_profit']:12,.1f}  {extra}")
    print("per campaign (treated, control, true value, forgone by controls):")
    for name in ("shipped", "no exploration", "neither"):
        print(f"  {name}: {figures[name]['per_campaign']}")
    print(json.dumps({"home": str(args.home), "day": args.day.isoformat(), "policies": figures}))


if __name__ == "__main__":
    main()

"""The live experiment's test, look by look, recomputed from a closed-loop run (finished or
still going).

    python benchmarks/experiment_tests.py --home /tmp/run/seed-1/cx [--horizon 6]

A loop run with a planted challenger (``benchmarks/closed_loop.py --challenger ...``) leaves
its exports (whose manifests record the arms and the stated horizon) and
``interaction_results`` (the arms' outcomes) in its CX_HOME, and the TRUE incremental
profit of each arm per cycle in ``result.json`` beside it (``result.partial.json`` while it
runs). For every look k (runs 1..k pooled per customer) this script prints the
group-sequential test (:func:`cx_pipelines.feedback.sequential.horizon_tests`): the measured
challenger − champion per customer, its interval, z against the look's boundary, the
nominal p-value and the TRUE gain; the same with the regression-adjusted estimator (the
decisions' own predicted baselines as covariate) and the interval widths of both; the
customers still needed, from the observed z and from the TRUE gain (80 % power at the last
boundary, the same split and per-customer variance). It reads only; the last line is one
JSON object.

``--replays N`` measures the stated test's power and error rate on this log's decisions:
every replay draws the control group again (each decided row held out with its cell's
logged share, as the platform's score-blind draw does; ``--logged-controls`` keeps the
logged one) and each decided row's outcome from the world's truth (the simulator's
probability: treated with its contact fatigue at the decision, control without
contact), then runs the experiment's test look by look, with the plain estimator and the
regression-adjusted one (whose gain is in the control draw's luck: with the logged
controls kept, the two differ by a constant):

* **planted**: the real arms: the share of replays detected with the TRUE sign by each look
  (the power of the design of record), and with the other spending function beside it
  (for comparison only: the test of record is the experiment file's);
* **A/A**: each real arm split in two at random by a fresh draw per replay (so the two
  halves differ by nothing but chance, with the log's campaigns, caps, fatigue and runs):
  the share of replays in which any look crosses is the test's type-I error;
* **designs**: the same for every shorter horizon a design could have stated (the
  decisions do not depend on it), and per look the customers 80 % power needs at the
  TRUE gain, from the replays' spread and from the treated-noise floor.

``--arms`` prints where each arm's TRUE value goes per cycle (:func:`arm_yardsticks`).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from cx_pipelines import config
from cx_pipelines.campaigns.catalog import load_campaigns
from cx_pipelines.campaigns.experiment import arm_campaigns, arm_of, check_experiment_file
from cx_pipelines.feedback.experiments import (
    ExperimentRuns,
    baseline_prediction,
    decision_covariates,
    experiment_runs,
)
from cx_pipelines.feedback.sequential import OBRIEN_FLEMING, SPENDING, boundaries, horizon_tests
from cx_pipelines.loop import policies, targeting_inputs
from cx_pipelines.loop.cycle import environment
from cx_pipelines.loop.live_experiment import EXPERIMENT_ID
from cx_pipelines.source_schema import OFFER_CHANNELS, OFFER_TYPES
from cx_pipelines.world import simulator

POWER = 0.8
ARMS = ("challenger", "champion")


def truth_of(home: Path) -> list[dict]:
    for name in ("result.json", "result.partial.json"):
        if (home.parent / name).exists():
            return json.loads((home.parent / name).read_text())["experiment"]
    raise SystemExit(f"no result.json or result.partial.json beside {home}")


def needed_for(true_gain: float, row: dict, customers: int) -> float:
    """Customers (both arms) for 80 % power against the TRUE gain at the last boundary."""
    se = (row["high"] - row["low"]) / (2 * stats.norm.ppf(0.975))
    if not true_gain or not np.isfinite(se):
        return float("nan")
    final = row["final_boundary"]
    return float(np.ceil(customers * ((final + stats.norm.ppf(POWER)) * se / true_gain) ** 2))


def per_cycle(home: Path, horizon: int | None = None) -> list[dict]:
    """Each look of the sequential test, plain and adjusted, with the truth."""
    runs = experiment_runs(home / "exports")[EXPERIMENT_ID]
    horizon = horizon or runs.horizon
    if not horizon:
        raise SystemExit("the experiment states no horizon: pass --horizon (stated up front)")
    results = pd.read_parquet(home / "warehouse" / "interaction_results.parquet")
    results = results[results["test_group"].notna()]
    results = results.merge(decision_covariates(home / "exports"), on="contact_id", how="left")
    truth = truth_of(home)
    ran = sorted(runs.arm_customers["run_key"].unique())[: len(truth)]  # cycles with truth
    results = results[results["run_key"].isin(ran)]
    spending = runs.spending or OBRIEN_FLEMING
    plain = horizon_tests(results, runs, horizon=horizon, spending=spending).to_dict("records")
    adjusted = horizon_tests(
        results, runs, horizon=horizon, adjust=True, spending=spending
    ).to_dict("records")
    customers = int(runs.arm_customers.groupby("test_group")["customers"].max().sum())
    final = float(boundaries(horizon, spending=spending)[-1])
    rows = []
    for figures, test, other in zip(truth, plain, adjusted, strict=False):
        gain = figures["true_difference"]
        test["final_boundary"] = final
        rows.append(
            {
                "cycle": test["look"],
                "horizon": horizon,
                "true_gain_per_customer": gain,
                "true_per_customer_this_cycle": figures["true_profit_per_customer"],
                "measured_gain_per_customer": test["difference"],
                "low": test["low"],
                "high": test["high"],
                "z": test["z"],
                "boundary": test["boundary"],
                "nominal_p_value": test["p_value"],
                "nominal_alpha_of_boundary": test["nominal_alpha"],
                "detected": bool(test["detected"] and test["difference"] > 0),
                "covers_truth": bool(test["low"] <= gain <= test["high"]),
                "customers_still_needed_observed_z": test["customers_still_needed"],
                "customers_needed_for_true_gain": needed_for(gain, test, customers),
                "adjusted_gain_per_customer": other["difference"],
                "adjusted_low": other["low"],
                "adjusted_high": other["high"],
                "adjusted_z": other["z"],
                "adjusted_detected": bool(other["detected"] and other["difference"] > 0),
                "width_plain": test["high"] - test["low"],
                "width_adjusted": other["high"] - other["low"],
                "champion_per_customer": test["champion_profit_per_customer"],
                "challenger_per_customer": test["challenger_profit_per_customer"],
            }
        )
    return rows


def replay_inputs(home: Path, keys: list[str]) -> tuple[pd.DataFrame, pd.Series]:
    """The logged decided rows of ``keys`` with the truth's probability of a response if
    treated (with its contact fatigue at the decision) and if held out, the arm's predicted
    baseline (the adjusted estimator's covariate), and every customer's real arm (for the
    A/A splits)."""
    with environment(CX_HOME=str(home), DAGSTER_HOME=str(home / "dagster")):
        truth = simulator.WorldTruth.load()
        exports = home / "exports"
        frames = []
        for path in sorted(exports.glob("*/*/decisions.parquet")):
            frame = simulator.read_decisions(path)
            if frame["run_key"].iloc[0] not in keys:
                continue
            recent = simulator.recent_contacts(
                frame["customer_id"].to_numpy(), frame["decided_at"], exports_dir=exports,
                exclude_run_key=str(frame["run_key"].iloc[0]),
            )  # fmt: skip
            rows = truth.positions(frame["customer_id"].to_numpy())
            offers = simulator.codes(frame["offer_type"], OFFER_TYPES, column="offer_type")
            channels = simulator.codes(frame["channel"], OFFER_CHANNELS, column="channel")
            treated = (frame["group"] == "treated").to_numpy()
            frames.append(
                pd.DataFrame(
                    {"run_key": frame["run_key"], "campaign_id": frame["campaign_id"],
                     "customer_id": frame["customer_id"], "test_group": frame["test_group"],
                     "treated": treated,
                     "treated_probability": truth.treated_probability(
                         rows, offers, channels, recent
                     ),
                     "control_probability": truth.control_probability(rows, offers),
                     "baseline_prediction": baseline_prediction(frame)}
                )
            )  # fmt: skip
        experiment, _ = check_experiment_file(home / "experiments" / f"{EXPERIMENT_ID}.yaml")
        arms = pd.Series(arm_of(truth.customer_id, experiment), index=truth.customer_id)
    return pd.concat(frames, ignore_index=True), arms


ESTIMATORS = {"plain": False, "adjusted": True}
"""The estimators the replays compare: the plain cell lift, and the regression-adjusted one."""


def _looks(outcomes: pd.DataFrame, runs: ExperimentRuns, horizon: int) -> dict:
    """Per estimator: the z and difference of every look (they do not depend on the
    spending function or on a shorter horizon: only the boundaries do)."""
    figures = {}
    for name, adjust in ESTIMATORS.items():
        looks = horizon_tests(outcomes, runs, horizon=horizon, adjust=adjust)
        figures[name] = (looks["z"].to_numpy(float), looks["difference"].to_numpy(float))
    return figures


def detected_by_look(
    z: np.ndarray, difference: np.ndarray, horizon: int, spending: str, sign: np.ndarray | None
) -> np.ndarray:
    """Per replay (rows) and look (columns, up to ``horizon``): has a look so far crossed
    its boundary (with ``sign`` at the first crossing, when given)?"""
    z, difference = z[:, :horizon], difference[:, :horizon]
    crossed = np.abs(z) >= boundaries(horizon, spending=spending)[: z.shape[1]]
    first = np.where(crossed.any(axis=1), crossed.argmax(axis=1), z.shape[1])
    if sign is not None:
        at = np.minimum(first, z.shape[1] - 1)
        right = np.sign(difference[np.arange(len(z)), at]) == sign[at]
        first = np.where(right, first, z.shape[1])
    return np.arange(z.shape[1])[None, :] >= first[:, None]


def replays(
    home: Path, count: int, *, horizon: int | None = None, seed: int = 0,
    truth: list[dict] | None = None, redraw_controls: bool = True,
) -> dict:  # fmt: skip
    """Power (planted arms) and type-I error (A/A halves of each arm) of each estimator
    (:data:`ESTIMATORS`) on ``count`` redraws of this log's outcomes from the truth (see the
    module doc): by look for the stated design and both spending functions, and at the end
    of every shorter horizon a design could have stated (the decisions do not depend on
    it); per look the spread of the estimate over the redraws against the test's own
    standard error, the power one look would have at the TRUE gain, the treated-noise
    floor (:func:`treated_noise_floor`) and the customers 80 % power needs.
    ``truth``: the loop's experiment figures per cycle (default: the run's result file);
    ``redraw_controls``: every replay draws the control group again too (:func:`redraw`),
    else it keeps the logged one (the outcomes' noise alone)."""
    runs = experiment_runs(home / "exports")[EXPERIMENT_ID]
    horizon = horizon or runs.horizon
    stated = runs.spending or OBRIEN_FLEMING
    truth_rows = truth if truth is not None else truth_of(home)
    keys = sorted(runs.arm_customers["run_key"].unique())[: len(truth_rows)]
    runs = ExperimentRuns(
        runs.experiment_id, runs.arm_customers[runs.arm_customers["run_key"].isin(keys)],
        runs.economics[runs.economics["run_key"].isin(keys)], horizon, stated,
    )  # fmt: skip
    rows, arm_of_customer = replay_inputs(home, keys)
    true_gain = np.array([row["true_difference"] for row in truth_rows[: len(keys)]])
    rng = np.random.default_rng(seed)
    planted = {name: ([], []) for name in ESTIMATORS}
    null = {name: ([], []) for name in ESTIMATORS}
    true_gains = []
    for replay in range(count):
        print(f"replay {replay + 1}/{count}", file=sys.stderr, flush=True)
        outcomes = redraw(rows, rng, controls=redraw_controls)
        true_gains.append(true_gain_of(outcomes, runs, keys))
        for name, (z, difference) in _looks(outcomes, runs, horizon).items():
            planted[name][0].append(z)
            planted[name][1].append(difference)
        for arm in ("champion", "challenger"):
            members = arm_of_customer.index[arm_of_customer == arm].to_numpy()
            half = pd.Series(rng.random(len(members)) < 0.5, index=members)
            sub = outcomes[outcomes["test_group"] == arm]
            pseudo = np.where(half[sub["customer_id"]].to_numpy(), *ARMS)
            sizes = [int(half.sum()), int((~half).sum())]
            arm_customers = pd.DataFrame(
                [{"run_key": key, "test_group": name, "customers": size}
                 for key in keys for name, size in zip(ARMS, sizes, strict=True)]
            )  # fmt: skip
            aa_runs = ExperimentRuns("aa", arm_customers, runs.economics, horizon, stated)
            for name, (z, difference) in _looks(
                sub.assign(test_group=pseudo), aa_runs, horizon
            ).items():
                null[name][0].append(z)
                null[name][1].append(difference)
    planted = {name: (np.array(z), np.array(d)) for name, (z, d) in planted.items()}
    null = {name: (np.array(z), np.array(d)) for name, (z, d) in null.items()}
    sign = np.sign(true_gain)

    def rate(arrays: dict, length: int, spending: str, signed: bool) -> dict:
        return {
            name: [
                round(float(x), 4)
                for x in detected_by_look(z, d, length, spending, sign if signed else None).mean(
                    axis=0
                )
            ]
            for name, (z, d) in arrays.items()
        }

    looks = len(keys)
    stated_length = min(horizon, looks)
    spread = {name: np.std(d, axis=0, ddof=1) for name, (_, d) in planted.items()}
    bounds = boundaries(horizon, spending=stated)[:looks]
    floor = np.array(treated_noise_floor(rows, runs, keys))
    customers = int(runs.arm_customers.groupby("test_group")["customers"].max().sum())
    return {
        "replays": count, "stated_spending": stated, "horizon": horizon, "looks": looks,
        "true_gain_by_look": [round(float(x), 4) for x in true_gain],
        "redraw_controls": redraw_controls,
        "mean_true_gain_of_the_replays_by_look": [
            round(float(x), 4) for x in np.mean(true_gains, axis=0)
        ],
        "power_by_look": {
            spending: rate(planted, stated_length, spending, True) for spending in SPENDING
        },
        "a_a_replays": 2 * count,
        "a_a_rejection_by_look": {
            spending: rate(null, stated_length, spending, False) for spending in SPENDING
        },
        "power_by_design": {
            f"{spending} horizon {length}": {
                name: values[-1] for name, values in rate(planted, length, spending, True).items()
            }
            for length in range(1, looks + 1) for spending in SPENDING
        },
        "a_a_rejection_by_design": {
            f"{spending} horizon {length}": {
                name: values[-1] for name, values in rate(null, length, spending, False).items()
            }
            for length in range(1, looks + 1) for spending in SPENDING
        },
        "mean_estimate_by_look": {
            name: [round(float(x), 4) for x in d.mean(axis=0)] for name, (_, d) in planted.items()
        },
        "spread_by_look": {n: [round(float(x), 4) for x in v] for n, v in spread.items()},
        "mean_standard_error_by_look": {
            name: [round(float(x), 4) for x in (d / z).mean(axis=0)]
            for name, (z, d) in planted.items()
        },
        "single_look_power_from_true_gain": {
            name: [round(float(x), 4) for x in _power(true_gain, sd, bounds)]
            for name, sd in spread.items()
        },
        "treated_noise_floor_by_look": [round(float(x), 4) for x in floor],
        "single_look_power_at_the_floor": [
            round(float(x), 4) for x in _power(true_gain, floor, bounds)
        ],
        "customers_for_80_percent_power": {
            name: [round(float(x)) for x in _customers_needed(true_gain, sd, bounds, customers)]
            for name, sd in {**spread, "floor": floor}.items()
        },
    }  # fmt: skip


def redraw(rows: pd.DataFrame, rng: np.random.Generator, *, controls: bool) -> pd.DataFrame:
    """One replay of the log: with ``controls``, each decided row is held out again with
    its cell's logged control share (arm, run, campaign; the draw is independent of the
    scores, as the platform's is); then each row answers from the truth's probability for
    its group."""
    treated = rows["treated"].to_numpy(bool)
    if controls:
        cell = rows.groupby(["test_group", "run_key", "campaign_id"])["treated"]
        share = 1 - cell.transform("mean").to_numpy(float)
        treated = rng.random(len(rows)) >= share
    probability = np.where(treated, rows["treated_probability"], rows["control_probability"])
    return rows.assign(treated=treated, responded=rng.random(len(rows)) < probability)


def true_gain_of(outcomes: pd.DataFrame, runs: ExperimentRuns, keys: list[str]) -> np.ndarray:
    """Per look, the TRUE challenger − champion per customer of one replay's treated rows
    (the truth's expected incremental profit of each treated contact)."""
    money = outcomes.merge(runs.economics, on=["run_key", "campaign_id"], how="left")
    uplift = money["treated_probability"] - money["control_probability"]
    value = money["margin_per_response"] * uplift - money["cost_per_contact"]
    money = money.assign(value=value.where(money["treated"], 0.0))
    gains = []
    for total, customers in arm_totals_by_look(money, runs, keys, "value"):
        per_customer = total / customers
        gains.append(float(per_customer["challenger"] - per_customer["champion"]))
    return np.array(gains)


def treated_noise_floor(rows: pd.DataFrame, runs: ExperimentRuns, keys: list[str]) -> list[float]:
    """Per look, the standard error challenger − champion would have were every decided
    row's baseline known exactly (an infinite hold-out): the treated outcomes' own binomial
    noise, ``√(Σ_arm Σ_T m² p(1 − p) / n_arm²)`` with the truth's ``p``. No unbiased test on
    these outcomes does better."""
    money = rows.merge(runs.economics, on=["run_key", "campaign_id"], how="left")
    probability = money["treated_probability"]
    noise = money["margin_per_response"] ** 2 * probability * (1 - probability)
    money = money.assign(noise=noise.where(money["treated"], 0.0))
    return [
        float(np.sqrt((variance / customers**2).sum()))
        for variance, customers in arm_totals_by_look(money, runs, keys, "noise")
    ]


def arm_totals_by_look(
    rows: pd.DataFrame, runs: ExperimentRuns, keys: list[str], column: str
) -> list[tuple[pd.Series, pd.Series]]:
    """Per look k (runs 1..k pooled): each arm's sum of ``column`` over its rows, and its
    customers (the most any of those runs had)."""
    looks = []
    for look in range(1, len(keys) + 1):
        chosen = keys[:look]
        sizes = runs.arm_customers[runs.arm_customers["run_key"].isin(chosen)]
        customers = sizes.groupby("test_group")["customers"].max()
        total = rows[rows["run_key"].isin(chosen)].groupby("test_group")[column].sum()
        looks.append((total, customers))
    return looks


def _shares(counts: dict, total: int) -> dict:
    return {
        name: {s: [round(float(x) / total, 4) for x in v] for s, v in by.items()}
        for name, by in counts.items()
    }


def _customers_needed(
    gain: np.ndarray, spread: np.ndarray, bounds: np.ndarray, customers: int
) -> np.ndarray:
    """Customers (both arms, the same split and per-customer gain and noise: the campaigns'
    caps and budgets scaled with them) for one look at ``bounds`` to cross with 80 % power:
    the spread shrinks with the square root of them."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return customers * ((bounds + stats.norm.ppf(POWER)) * spread / np.abs(gain)) ** 2


def _power(gain: np.ndarray, spread: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """The chance one look at ``bounds`` crosses with the TRUE sign, were the estimate
    normal around the TRUE gain with the replays' spread."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.abs(gain) / spread
    return stats.norm.sf(bounds - z)


def arm_yardsticks(home: Path) -> list[dict]:
    """Per logged run and arm, from the truth (fatigue from the contacts so far): the arm's
    TRUE value per customer; its own myopic oracle (its customers, its share of the caps,
    its state) without and with the hold-out (the caps widened to decided rows, the
    control share forgone); what fatigue took from its treated contacts; and its oracle
    were none of its customers fatigued. An arm whose targeting is the truth earns about
    its oracle with the hold-out; if it still gains little on the other arm, its own state
    (customers spent in earlier runs) is what it lost."""
    figures = []
    with environment(CX_HOME=str(home), DAGSTER_HOME=str(home / "dagster")):
        truth = simulator.WorldTruth.load()
        experiment, _ = check_experiment_file(home / "experiments" / f"{EXPERIMENT_ID}.yaml")
        paths = sorted(config.exports_dir().glob("*/*/decisions.parquet"))
        log = pd.concat([pd.read_parquet(path) for path in paths], ignore_index=True)
        for key in sorted(log["run_key"].unique()):
            day = pd.Timestamp(key[:10]).date()
            inputs = targeting_inputs.targeting_inputs(day)
            ids = inputs.customer_ids
            recent = simulator.recent_contacts(
                ids, pd.Series(pd.Timestamp(day), index=range(len(ids))),
                exports_dir=config.exports_dir(), exclude_run_key=key,
            )  # fmt: skip
            value = policies.true_increment(truth, ids, inputs.economics, recent=recent)
            fresh = policies.true_increment(truth, ids, inputs.economics, recent=recent * 0)
            folder = targeting_inputs.strategies_folder() / "campaigns"
            campaigns = [c for c in load_campaigns(folder) if c.active_on(day)]
            arms = arm_of(ids, experiment)
            rows = log[log["run_key"] == key]
            for arm in experiment.arms:
                mine = arms == arm.name
                size = int(mine.sum())
                economics = targeting_inputs.economics_of(arm_campaigns(campaigns, arm.share))
                share = np.array([experiment.control_share or c.control_share for c in campaigns])
                eligible = inputs.eligible[mine]

                def oracle(increment: np.ndarray, econ=economics, eligible=eligible) -> np.ndarray:
                    return policies.choose(policies.oracle_values(increment, eligible), econ)

                best = policies.choice_value(value[mine], oracle(value[mine]))
                wide = replace(
                    economics, volume_cap=economics.volume_cap / (1 - share),
                    budget=economics.budget / (1 - share),
                )  # fmt: skip
                choice = oracle(value[mine], wide)
                chosen = np.flatnonzero(choice >= 0)
                held = value[mine][chosen, choice[chosen]] * (1 - share[choice[chosen]])
                unfatigued = policies.choice_value(fresh[mine], oracle(fresh[mine]))
                treated = rows[(rows["test_group"] == arm.name) & (rows["group"] == "treated")]
                at = pd.Index(ids).get_indexer(treated["customer_id"])
                column = pd.Index(economics.campaign_id).get_indexer(treated["campaign_id"])
                earned = float(value[at, column].sum())
                figures.append(
                    {
                        "run_key": key, "arm": arm.name, "customers": size,
                        "treated": len(treated), "true_per_customer": earned / size,
                        "oracle_per_customer": best / size,
                        "oracle_with_hold_out_per_customer": float(held.sum()) / size,
                        "share_of_oracle_with_hold_out": earned / float(held.sum()),
                        "treated_mean_recent": float(recent[at].mean()),
                        "fatigue_loss_per_customer": float(fresh[at, column].sum() - earned)
                        / size,
                        "oracle_unfatigued_per_customer": unfatigued / size,
                        "customers_fatigued": float(np.mean(recent[mine] > 0)),
                    }
                )  # fmt: skip
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="the loop's CX_HOME")
    parser.add_argument(
        "--horizon", type=int, help="looks stated up front (default: the experiment file's)"
    )
    parser.add_argument("--replays", type=int, default=0, help="redraws for power and A/A")
    parser.add_argument("--seed", type=int, default=0, help="seed of the replays' draws")
    parser.add_argument(
        "--logged-controls",
        action="store_true",
        help="replays keep the logged control group (redraw the outcomes only)",
    )
    parser.add_argument("--arms", action="store_true", help="each arm's TRUE value per cycle")
    arguments = parser.parse_args(argv)
    if arguments.arms:
        figures = arm_yardsticks(arguments.home)
        for row in figures:
            print(
                f"{row['run_key']} {row['arm']:<10} TRUE {row['true_per_customer']:.3f} per "
                f"customer; its own oracle {row['oracle_per_customer']:.3f}, with the hold-out "
                f"{row['oracle_with_hold_out_per_customer']:.3f} (earned "
                f"{row['share_of_oracle_with_hold_out']:.3f} of it); treated contacts' mean "
                f"recent {row['treated_mean_recent']:.2f}, fatigue took "
                f"{row['fatigue_loss_per_customer']:.3f}; oracle unfatigued "
                f"{row['oracle_unfatigued_per_customer']:.3f}; customers fatigued "
                f"{row['customers_fatigued']:.3f}"
            )
        print(json.dumps({"home": str(arguments.home), "arms": figures}, default=float))
        return 0
    if arguments.replays:
        figures = replays(
            arguments.home, arguments.replays, horizon=arguments.horizon, seed=arguments.seed,
            redraw_controls=not arguments.logged_controls,
        )  # fmt: skip
        print(
            f"TRUE gain by look {figures['true_gain_by_look']} (the replays' own: "
            f"{figures['mean_true_gain_of_the_replays_by_look']})"
        )
        for spending in SPENDING:
            note = " (the test of record)" if spending == figures["stated_spending"] else ""
            print(
                f"{spending}{note}: power by look {figures['power_by_look'][spending]}, A/A "
                f"rejection by look {figures['a_a_rejection_by_look'][spending]} "
                f"({figures['replays']} replays, {figures['a_a_replays']} A/A halves)"
            )
        for design, power in figures["power_by_design"].items():
            print(
                f"design {design}: power {power}, A/A rejection "
                f"{figures['a_a_rejection_by_design'][design]}"
            )
        for name in ESTIMATORS:
            print(
                f"{name}: mean estimate {figures['mean_estimate_by_look'][name]}, spread "
                f"{figures['spread_by_look'][name]} (the test's standard error "
                f"{figures['mean_standard_error_by_look'][name]}), one look's power from the "
                f"TRUE gain {figures['single_look_power_from_true_gain'][name]}; customers "
                f"for 80 % power {figures['customers_for_80_percent_power'][name]}"
            )
        print(
            f"treated-noise floor (every baseline known) {figures['treated_noise_floor_by_look']}"
            f": one look's power {figures['single_look_power_at_the_floor']}, customers for "
            f"80 % power {figures['customers_for_80_percent_power']['floor']}"
        )
        print(json.dumps({"home": str(arguments.home), **figures}, default=float))
        return 0
    rows = per_cycle(arguments.home, arguments.horizon)
    for row in rows:
        print(
            f"look {row['cycle']}/{row['horizon']}: challenger − champion per customer "
            f"{row['measured_gain_per_customer']:.3f} [{row['low']:.3f}, {row['high']:.3f}], "
            f"z = {row['z']:.2f} vs boundary {row['boundary']:.2f} (nominal p = "
            f"{row['nominal_p_value']:.3g}, level {row['nominal_alpha_of_boundary']:.3g}): "
            f"{'DETECTED' if row['detected'] else 'not detected'}; TRUE gain "
            f"{row['true_gain_per_customer']:.3f}"
            f"{'' if row['covers_truth'] else ' (interval misses the truth)'}; adjusted "
            f"{row['adjusted_gain_per_customer']:.3f} [{row['adjusted_low']:.3f}, "
            f"{row['adjusted_high']:.3f}], width {row['width_adjusted']:.3f} against "
            f"{row['width_plain']:.3f}; customers needed for the TRUE gain "
            f"{row['customers_needed_for_true_gain']:,.0f}"
        )
    print(json.dumps({"home": str(arguments.home), "cycles": rows}, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from cx_pipelines.feedback.experiments import decision_covariates, experiment_runs
from cx_pipelines.feedback.sequential import boundaries, horizon_tests
from cx_pipelines.loop.live_experiment import EXPERIMENT_ID

POWER = 0.8


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
    plain = horizon_tests(results, runs, horizon=horizon).to_dict("records")
    adjusted = horizon_tests(results, runs, horizon=horizon, adjust=True).to_dict("records")
    customers = int(runs.arm_customers.groupby("test_group")["customers"].max().sum())
    final = float(boundaries(horizon)[-1])
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="the loop's CX_HOME")
    parser.add_argument(
        "--horizon", type=int, help="looks stated up front (default: the experiment file's)"
    )
    arguments = parser.parse_args(argv)
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

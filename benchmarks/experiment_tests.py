"""The live experiment's test, cycle by cycle, recomputed from a finished closed-loop run.

    python benchmarks/experiment_tests.py --home /tmp/run/seed-1/cx

A loop run with a planted challenger (``benchmarks/closed_loop.py --challenger ...``) leaves
its exports (whose manifests record the arms) and ``interaction_results`` (the arms'
outcomes) in its CX_HOME, and the TRUE incremental profit of each arm per cycle in
``result.json`` beside it. This script applies the current estimator
(:func:`cx_pipelines.feedback.experiments.incremental_profit_tests`) to the runs of cycles
1..k for every k, and prints the measured challenger − champion per customer, its
interval, p-value and customers still needed next to the TRUE gain. It reads only; the
last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from cx_pipelines.feedback.experiments import ExperimentRuns, experiment_runs
from cx_pipelines.feedback.experiments import incremental_profit_tests as tests
from cx_pipelines.loop.live_experiment import EXPERIMENT_ID


def per_cycle(home: Path) -> list[dict]:
    """Cumulative test after each cycle, with the truth from the run's result.json."""
    runs = experiment_runs(home / "exports")[EXPERIMENT_ID]
    results = pd.read_parquet(home / "warehouse" / "interaction_results.parquet")
    truth = json.loads((home.parent / "result.json").read_text())["experiment"]
    keys = sorted(runs.arm_customers["run_key"].unique())  # run keys start with the date
    rows = []
    for cycle, figures in enumerate(truth, start=1):
        chosen = keys[:cycle]
        sub = ExperimentRuns(
            runs.experiment_id,
            runs.arm_customers[runs.arm_customers["run_key"].isin(chosen)],
            runs.economics[runs.economics["run_key"].isin(chosen)],
        )
        (test,) = tests(results[results["run_key"].isin(chosen)], sub).to_dict("records")
        rows.append(
            {
                "cycle": cycle,
                "true_gain_per_customer": figures["true_difference"],
                "true_per_customer_this_cycle": figures["true_profit_per_customer"],
                "measured_gain_per_customer": test["difference"],
                "low": test["low"],
                "high": test["high"],
                "p_value": test["p_value"],
                "detected": bool(test["p_value"] < 0.05 and test["difference"] > 0),
                "covers_truth": bool(test["low"] <= figures["true_difference"] <= test["high"]),
                "customers_still_needed": test["champion_customers_still_needed"]
                + test["challenger_customers_still_needed"],
                "champion_per_customer": test["champion_profit_per_customer"],
                "challenger_per_customer": test["challenger_profit_per_customer"],
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="the loop's CX_HOME")
    arguments = parser.parse_args(argv)
    rows = per_cycle(arguments.home)
    for row in rows:
        print(
            f"cycle {row['cycle']}: challenger − champion per customer measured "
            f"{row['measured_gain_per_customer']:.3f} [{row['low']:.3f}, {row['high']:.3f}], "
            f"p = {row['p_value']:.3g} ({'detected' if row['detected'] else 'not detected'}); "
            f"TRUE gain {row['true_gain_per_customer']:.3f}"
            f"{'' if row['covers_truth'] else ' (interval misses the truth)'}; "
            f"customers still needed {row['customers_still_needed']:,.0f}"
        )
    print(json.dumps({"home": str(arguments.home), "cycles": rows}, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())

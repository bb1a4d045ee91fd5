"""Targeting optimiser at scale: 1,000,000 customers x 10 campaigns with caps.

Prints seconds, peak memory (RSS) and the certified gap of
:func:`cx_pipelines.campaigns.optimiser.assign`, next to HiGHS (scipy's ``linprog``,
method "highs") solving the LP relaxation of the same kind of instance in the same run.
Each solver runs in its own child process so its peak RSS is its own. HiGHS is given the
full size only with ``--highs-customers``; by default it solves a smaller instance
(documented in the output), on which our optimiser is also run so both objectives are
compared on identical data. The last line is one JSON object.

Synthetic values (seeded): uplift ~ Beta(1.2, 30) - 0.01 per customer and campaign,
margin per response 50-400 and cost per contact 0.5-5 per campaign, 30 % of pairs not
eligible, half the campaigns with a volume cap, a third with a budget.

    python benchmarks/targeting.py [--customers 1000000] [--campaigns 10] [--seed 0]
                                   [--highs-customers 100000] [--highs-time-limit 300]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


def instance(customers: int, campaigns: int, seed: int):
    rng = np.random.default_rng(seed)
    margin = rng.uniform(50, 400, campaigns)
    cost = rng.uniform(0.5, 5, campaigns)
    value = (rng.beta(1.2, 30, (customers, campaigns)) - 0.01) * margin - cost
    value[rng.random((customers, campaigns)) < 0.3] = np.nan
    scale = customers / 1_000_000
    volume_cap = np.where(
        np.arange(campaigns) % 2 == 0, np.round(rng.uniform(20_000, 80_000, campaigns) * scale),
        np.inf,
    )  # fmt: skip
    budget = np.where(
        np.arange(campaigns) % 3 == 0, rng.uniform(50_000, 200_000, campaigns) * scale, np.inf
    )
    return value, cost, budget, volume_cap


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def solve_ours(customers: int, campaigns: int, seed: int) -> dict:
    from cx_pipelines.campaigns.optimiser import assign

    value, cost, budget, volume_cap = instance(customers, campaigns, seed)
    before = peak_rss_mb()
    started = time.perf_counter()
    result = assign(value, cost=cost, budget=budget, volume_cap=volume_cap)
    seconds = time.perf_counter() - started
    counts = np.bincount(result.choice[result.choice >= 0], minlength=campaigns)
    feasible = bool((counts <= volume_cap).all() and (counts * cost <= budget + 1e-6).all())
    return {
        "solver": "cx assign",
        "customers": customers,
        "seconds": round(seconds, 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "peak_rss_mb_before_solve": round(before, 1),
        "objective": result.objective,
        "upper_bound": result.upper_bound,
        "gap": result.gap,
        "iterations": result.iterations,
        "contacts": int(counts.sum()),
        "feasible": feasible,
    }


def solve_highs(customers: int, campaigns: int, seed: int, time_limit: float) -> dict:
    from scipy import sparse
    from scipy.optimize import linprog

    value, cost, budget, volume_cap = instance(customers, campaigns, seed)
    started = time.perf_counter()
    rows, cols = np.nonzero(~np.isnan(value) & (value > 0))  # others are never worth taking
    gains = value[rows, cols]
    variables = len(gains)
    index = np.arange(variables)
    per_customer = sparse.csr_matrix(
        (np.ones(variables), (rows, index)), shape=(customers, variables)
    )
    capped = np.flatnonzero(np.isfinite(volume_cap))
    budgeted = np.flatnonzero(np.isfinite(budget))
    per_campaign = sparse.csr_matrix(
        (np.ones(variables), (cols, index)), shape=(campaigns, variables)
    )
    matrix = sparse.vstack(
        [
            per_customer,
            per_campaign[capped],
            per_campaign[budgeted].multiply(cost[budgeted][:, None]),
        ]
    ).tocsr()
    limits = np.concatenate([np.ones(customers), volume_cap[capped], budget[budgeted]])
    result = linprog(
        -gains, A_ub=matrix, b_ub=limits, bounds=(0, 1), method="highs",
        options={"time_limit": time_limit},
    )  # fmt: skip
    seconds = time.perf_counter() - started
    return {
        "solver": "HiGHS LP relaxation (scipy linprog)",
        "customers": customers,
        "seconds": round(seconds, 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "status": int(result.status),
        "message": str(result.message),
        "finished": result.status == 0,
        "objective": -float(result.fun) if result.status == 0 else None,
        "variables": variables,
    }


def child(solver: str, customers: int, arguments: argparse.Namespace) -> dict:
    command = [
        sys.executable, __file__, "--child", solver, "--customers", str(customers),
        "--campaigns", str(arguments.campaigns), "--seed", str(arguments.seed),
        "--highs-time-limit", str(arguments.highs_time_limit),
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--campaigns", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--highs-customers", type=int, default=100_000)
    parser.add_argument("--highs-time-limit", type=float, default=300.0)
    parser.add_argument("--child", choices=["ours", "highs"])
    arguments = parser.parse_args()
    if arguments.child == "ours":
        print(json.dumps(solve_ours(arguments.customers, arguments.campaigns, arguments.seed)))
        return
    if arguments.child == "highs":
        print(json.dumps(solve_highs(arguments.customers, arguments.campaigns, arguments.seed,
                                     arguments.highs_time_limit)))  # fmt: skip
        return

    full = child("ours", arguments.customers, arguments)
    print(
        f"cx assign   {full['customers']:>9,} x {arguments.campaigns}: {full['seconds']:7.2f} s, "
        f"peak RSS {full['peak_rss_mb']:7.1f} MB, certified gap {full['gap']:.2e} "
        f"(objective {full['objective']:,.2f} <= bound {full['upper_bound']:,.2f}), "
        f"feasible {full['feasible']}"
    )
    size = arguments.highs_customers
    highs = child("highs", size, arguments)
    small = child("ours", size, arguments) if size != arguments.customers else full
    if highs["finished"]:
        ratio = small["objective"] / highs["objective"]
        print(
            f"HiGHS LP    {size:>9,} x {arguments.campaigns}: {highs['seconds']:7.2f} s, "
            f"peak RSS {highs['peak_rss_mb']:7.1f} MB, LP optimum {highs['objective']:,.2f}"
        )
        print(
            f"cx assign   {size:>9,} x {arguments.campaigns}: {small['seconds']:7.2f} s, "
            f"peak RSS {small['peak_rss_mb']:7.1f} MB, objective {small['objective']:,.2f} = "
            f"{ratio:.6%} of the HiGHS LP optimum (certified gap {small['gap']:.2e})"
        )
    else:
        ratio = None
        print(
            f"HiGHS LP    {size:>9,} x {arguments.campaigns}: did not finish ({highs['message']})"
        )
    if size != arguments.customers:
        print(
            f"(HiGHS ran on {size:,} customers, not {arguments.customers:,}: see --highs-customers)"
        )
    targets = {"gap": 1e-3, "seconds": 60.0, "peak_rss_mb": 4096.0}
    summary = {
        "benchmark": "targeting",
        "customers": arguments.customers,
        "campaigns": arguments.campaigns,
        "seed": arguments.seed,
        "seconds": full["seconds"],
        "peak_rss_mb": full["peak_rss_mb"],
        "certified_gap": full["gap"],
        "objective": full["objective"],
        "upper_bound": full["upper_bound"],
        "feasible": full["feasible"],
        "highs_customers": size,
        "highs_finished": highs["finished"],
        "highs_seconds": highs["seconds"],
        "highs_peak_rss_mb": highs["peak_rss_mb"],
        "highs_lp_objective": highs["objective"],
        "ours_on_highs_instance_seconds": small["seconds"],
        "ours_on_highs_instance_objective": small["objective"],
        "ours_over_highs_lp": ratio,
        "targets": targets,
        "meets_targets": bool(
            full["gap"] < targets["gap"]
            and full["seconds"] < targets["seconds"]
            and full["peak_rss_mb"] < targets["peak_rss_mb"]
            and full["feasible"]
        ),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

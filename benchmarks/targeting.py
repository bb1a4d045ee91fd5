"""Targeting optimiser at scale: 1,000,000 customers x 10 campaigns with caps.

Prints seconds, peak memory (RSS) and the certified gap of
:func:`cx_pipelines.campaigns.optimiser.assign`, next to HiGHS (scipy's ``linprog``,
method "highs") solving the LP relaxation of the same kind of instance in the same run,
and the same LP with budgets folded into whole-number contact capacities, which is
integral (a transportation problem) and so gives the exact optimum.
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


def _highs_lp(gains, rows, cols, customers, campaigns, caps, weights, time_limit):
    """max gains.x s.t. one per customer, sum of weights_j x_ij <= caps_j (finite ones)."""
    from scipy import sparse
    from scipy.optimize import linprog

    variables = len(gains)
    index = np.arange(variables)
    per_customer = sparse.csr_matrix(
        (np.ones(variables), (rows, index)), shape=(customers, variables)
    )
    blocks, limits = [per_customer], [np.ones(customers)]
    for cap, weight in zip(caps, weights, strict=True):
        finite = np.flatnonzero(np.isfinite(cap))
        block = sparse.csr_matrix((weight[cols], (cols, index)), shape=(campaigns, variables))
        blocks.append(block[finite])
        limits.append(cap[finite])
    started = time.perf_counter()
    result = linprog(
        -gains, A_ub=sparse.vstack(blocks).tocsr(), b_ub=np.concatenate(limits), bounds=(0, 1),
        method="highs", options={"time_limit": time_limit},
    )  # fmt: skip
    finished = result.status == 0
    return (
        time.perf_counter() - started,
        finished,
        -float(result.fun) if finished else None,
        str(result.message),
    )


def solve_highs(customers: int, campaigns: int, seed: int, time_limit: float) -> dict:
    """HiGHS on the LP relaxation with the raw budgets, and on the equivalent form with
    whole-number contact capacities, whose LP is integral: the exact optimum."""
    from cx_pipelines.campaigns.optimiser import capacities

    value, cost, budget, volume_cap = instance(customers, campaigns, seed)
    rows, cols = np.nonzero(~np.isnan(value) & (value > 0))  # others are never worth taking
    gains = value[rows, cols]
    ones = np.ones(campaigns)
    seconds, finished, objective, message = _highs_lp(
        gains, rows, cols, customers, campaigns, [volume_cap, budget], [ones, cost], time_limit
    )
    capacity = capacities(cost=cost, budget=budget, volume_cap=volume_cap, customers=customers)
    capacity = np.where(capacity >= customers, np.inf, capacity.astype(float))
    exact_seconds, exact_finished, exact, _ = _highs_lp(
        gains, rows, cols, customers, campaigns, [capacity], [ones], time_limit
    )
    return {
        "solver": "HiGHS LP relaxation (scipy linprog)",
        "customers": customers,
        "seconds": round(seconds, 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "message": message,
        "finished": finished,
        "objective": objective,
        "exact_seconds": round(exact_seconds, 3),
        "exact_finished": exact_finished,
        "exact_objective": exact,
        "variables": len(gains),
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
        if highs["exact_finished"]:
            print(
                f"HiGHS exact {size:>9,} x {arguments.campaigns}: {highs['exact_seconds']:7.2f} s, "
                f"optimum {highs['exact_objective']:,.2f} (LP of the whole-contact form, integral)"
            )
        print(
            f"cx assign   {size:>9,} x {arguments.campaigns}: {small['seconds']:7.2f} s, "
            f"peak RSS {small['peak_rss_mb']:7.1f} MB, objective {small['objective']:,.2f} = "
            f"{ratio:.6%} of the HiGHS LP optimum (certified gap {small['gap']:.2e}, "
            f"bound {small['upper_bound']:,.2f})"
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
        "highs_exact_objective": highs["exact_objective"],
        "ours_on_highs_instance_upper_bound": small["upper_bound"],
        "true_gap_on_highs_instance": (
            (highs["exact_objective"] - small["objective"]) / highs["exact_objective"]
            if highs["exact_finished"]
            else None
        ),
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

"""A live experiment tested over its whole life, with a horizon stated before it starts.

A split test that is looked at after every run and declared won the first time p < 0.05
rejects a true null far more often than 5 % (six looks: about 14 %). The experiment states
its **horizon** (the number of decision runs it lasts) up front, and every look is judged
against a **group-sequential boundary** (Lan & DeMets 1983, O'Brien–Fleming-type spending
``α(t) = 4 − 4Φ(z_{1−α/4} / √t)`` at the information fraction ``t = k / horizon``), so the
whole experiment, interim looks included, rejects a true null with probability ``α``:

* the **estimate at look k** pools runs 1..k at the customer level: a customer's
  incremental profit is the sum of its rows' contributions over those runs
  (:func:`cx_pipelines.feedback.experiments.incremental_profit_tests`), so the estimand is
  the total incremental profit per customer over the runs so far, and the correlation
  between a customer's runs (the split keeps a customer in its arm) is in the variance;
* **look k rejects** when ``|z_k| ≥ c_k``; the boundaries ``c_k`` spend almost nothing
  early (``c_1 = 5.37`` of six looks) and leave the last look close to the fixed test's
  1.96 (2.05 of six looks), so stopping early is possible only on overwhelming evidence;
* the **decision**: detected at the first look that crosses, else at the horizon; looks
  after the horizon are not tested (a new experiment must be stated).

The boundaries assume the z statistics of the looks behave like a Brownian motion sampled
at ``t = k / horizon`` (independent increments, information growing with the runs); the
tests replay A/A experiments over several runs to check the error rate holds on real logs.

The **spending function** is part of the design, stated in the experiment file with the
horizon (``spending:``), never chosen after the data: ``obrien_fleming`` (the default,
above) keeps the last look near 1.96 and makes early stopping rare; ``pocock`` (the
Lan–DeMets Pocock-type ``α(t) = α ln(1 + (e − 1) t)``) spends evenly, so every look's
boundary is about the same (2.45 of six looks): more power when an effect shows early and
then stops growing (a challenger against a champion that learns from the log), less at
the last look.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize, stats

from cx_pipelines.campaigns.experiment import SPENDING
from cx_pipelines.feedback.experiments import (
    ExperimentRuns,
    contacts_still_needed,
    experiment_runs,
    incremental_profit_tests,
)
from cx_pipelines.feedback.performance import CHAMPION

GRID_POINTS = 801
OBRIEN_FLEMING = SPENDING[0]


class HorizonError(ValueError):
    """A horizon that is not a positive number of runs, a level out of (0, 1) or an
    unknown spending function."""


def spent(t: float, alpha: float, spending: str = OBRIEN_FLEMING) -> float:
    """The alpha spent by information fraction ``t`` (two-sided): O'Brien–Fleming-type
    ``4 − 4Φ(z_{1−α/4} / √t)`` or Pocock-type ``α ln(1 + (e − 1) t)``."""
    if spending not in SPENDING:
        raise HorizonError(f"spending must be one of {', '.join(SPENDING)}, not {spending!r}")
    if t <= 0:
        return 0.0
    t = min(t, 1.0)
    if spending == "pocock":
        return float(alpha * np.log(1 + (np.e - 1) * t))
    return float(4 - 4 * stats.norm.cdf(stats.norm.ppf(1 - alpha / 4) / np.sqrt(t)))


@lru_cache(maxsize=64)
def _boundaries(horizon: int, alpha: float, spending: str) -> tuple[float, ...]:
    fractions = np.arange(1, horizon + 1) / horizon
    spend = np.diff([0.0] + [spent(t, alpha, spending) for t in fractions])
    first = float(stats.norm.ppf(1 - spend[0] / 2))
    bounds = [first]
    # sub-density of the Brownian motion W(t_1) among paths still running (|Z_1| < c_1)
    edge = first * np.sqrt(fractions[0])
    grid = np.linspace(-edge, edge, GRID_POINTS)
    weights = np.full(GRID_POINTS, grid[1] - grid[0])
    weights[[0, -1]] /= 2
    density = stats.norm.pdf(grid, scale=np.sqrt(fractions[0]))
    for k in range(1, horizon):
        sigma = np.sqrt(fractions[k] - fractions[k - 1])
        mass = density * weights

        def excess(b: float, mass=mass, sigma=sigma, grid=grid, target=spend[k]) -> float:
            """P(still running, then |W(t_k)| >= b) minus what look k may spend."""
            tails = stats.norm.cdf((-b - grid) / sigma) + stats.norm.cdf((-b + grid) / sigma)
            return float(mass @ tails) - target

        b = optimize.brentq(excess, 1e-6, 20.0)
        bounds.append(b / np.sqrt(fractions[k]))
        new_grid = np.linspace(-b, b, GRID_POINTS)
        kernel = stats.norm.pdf((new_grid[:, None] - grid[None, :]) / sigma) / sigma
        density, grid = kernel @ mass, new_grid
        weights = np.full(GRID_POINTS, grid[1] - grid[0])
        weights[[0, -1]] /= 2
    return tuple(bounds)


def boundaries(horizon: int, alpha: float = 0.05, spending: str = OBRIEN_FLEMING) -> np.ndarray:
    """Two-sided z boundaries of looks 1..``horizon`` (equally spaced information)."""
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise HorizonError(f"horizon must be a positive number of runs, got {horizon!r}")
    if not 0 < alpha < 1:
        raise HorizonError(f"alpha must be in (0, 1), got {alpha!r}")
    if spending not in SPENDING:
        raise HorizonError(f"spending must be one of {', '.join(SPENDING)}, not {spending!r}")
    return np.array(_boundaries(int(horizon), float(alpha), spending))


LOOK_COLUMNS = [
    "look", "run_key", "horizon", "difference", "low", "high", "z", "p_value", "boundary",
    "nominal_alpha", "crossed", "detected", "decided", "customers_still_needed",
    "champion_profit_per_customer", "challenger_profit_per_customer",
]  # fmt: skip


def horizon_tests(
    outcomes: pd.DataFrame, runs: ExperimentRuns, *, horizon: int, alpha: float = 0.05,
    power: float = 0.8, adjust: bool = False, challenger: str = "challenger",
    spending: str = OBRIEN_FLEMING,
) -> pd.DataFrame:  # fmt: skip
    """One row per look (runs 1..k, in run order, up to the horizon): the pooled estimate
    of challenger − champion per customer with its 95 % interval and nominal p-value, the
    look's boundary and nominal level, whether this look crosses, whether the experiment
    has detected a difference by now (first crossing, see the module doc) and whether it
    is decided (crossed, or the horizon reached). ``spending``: the design's spending
    function (the experiment file's, stated with the horizon)."""
    bounds = boundaries(horizon, alpha, spending)
    keys = sorted(runs.arm_customers["run_key"].unique())  # run keys begin with the date
    rows, detected = [], False
    for look, key in enumerate(keys[:horizon], start=1):
        chosen = keys[:look]
        sub = ExperimentRuns(
            runs.experiment_id,
            runs.arm_customers[runs.arm_customers["run_key"].isin(chosen)],
            runs.economics[runs.economics["run_key"].isin(chosen)],
        )
        tests = incremental_profit_tests(
            outcomes[outcomes["run_key"].isin(chosen)], sub, alpha=alpha, power=power,
            adjust=adjust,
        )  # fmt: skip
        (test,) = tests[tests["challenger"] == challenger].to_dict("records")
        crossed = bool(np.isfinite(test["z"]) and abs(test["z"]) >= bounds[look - 1])
        was = detected
        detected = detected or crossed
        total = test["champion_customers"] + test["challenger_customers"]
        rows.append(
            {
                "look": look, "run_key": key, "horizon": horizon,
                "difference": test["difference"], "low": test["low"], "high": test["high"],
                "z": test["z"], "p_value": test["p_value"], "boundary": bounds[look - 1],
                "nominal_alpha": float(2 * stats.norm.sf(bounds[look - 1])),
                "crossed": crossed, "detected": detected,
                "decided": bool(was or crossed or look == horizon),
                "customers_still_needed": _still_needed(test["z"], total, bounds[-1], power),
                "champion_profit_per_customer": test["champion_profit_per_customer"],
                "challenger_profit_per_customer": test["challenger_profit_per_customer"],
            }
        )  # fmt: skip
    return pd.DataFrame(rows, columns=LOOK_COLUMNS)


def experiment_horizon_tests(
    results: pd.DataFrame, exports_dir: Path, *, alpha: float = 0.05, power: float = 0.8
) -> pd.DataFrame:
    """:func:`horizon_tests` of every experiment in the exports' manifests that states a
    horizon, for each challenger arm against the champion, on the outcomes of
    ``interaction_results`` (``experiment_id`` and ``challenger`` before the look columns).
    Experiments without a horizon are left to the single-look tests."""
    columns = ["experiment_id", "challenger", *LOOK_COLUMNS]
    if "test_group" not in results:
        return pd.DataFrame(columns=columns)
    outcomes, tables = results[results["test_group"].notna()], []
    for runs in experiment_runs(exports_dir).values():
        arms = set(runs.arm_customers["test_group"])
        if not runs.horizon or CHAMPION not in arms:
            continue
        for arm in sorted(arms - {CHAMPION}):
            looks = horizon_tests(
                outcomes, runs, horizon=runs.horizon, alpha=alpha, power=power, challenger=arm,
                spending=runs.spending or OBRIEN_FLEMING,
            )  # fmt: skip
            tables.append(looks.assign(experiment_id=runs.experiment_id, challenger=arm))
    if not tables:
        return pd.DataFrame(columns=columns)
    return pd.concat(tables, ignore_index=True)[columns]


def _still_needed(z: float, customers: int, final_boundary: float, power: float) -> float:
    """Customers still needed (both arms, same split) for the observed z to reach the last
    look's boundary with ``power``: the fixed-test formula at that boundary's level."""
    level = float(2 * stats.norm.sf(final_boundary))
    return contacts_still_needed(z, customers, alpha=level, power=power)

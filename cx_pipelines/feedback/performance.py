"""The strategy-performance cube (SPEC S6) and the champion-versus-challenger test.

Every outcome in ``interaction_results`` is one decided contact of one arm: ``treated``
(contacted) or ``control`` (randomly held out, its outcome observed all the same). Per cell
of segment × test group × campaign × channel × strategy version, and for every roll-up of
those dimensions (the value ``(all)``), the cube counts contacts, responses and revenue per
arm and estimates what the contacts *caused*:

- **incremental response rate** = treated rate − control rate, with Newcombe's hybrid score
  interval (method 10 of Newcombe 1998: Wilson intervals of each rate, combined), which keeps
  its coverage for small cells and rates near 0 where the Wald interval does not;
- **incremental responses** = that difference × treated contacts (same interval, scaled);
- **incremental revenue per contact** = mean treated revenue − mean control revenue, with a
  normal (Welch) interval from the arms' variances; **incremental profit** = it × treated
  contacts − contact cost × treated contacts (cost per campaign, 0 when not given).

Cells without both arms have no incremental figures (null), never a made-up zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

DIMENSIONS = ("segment", "test_group", "campaign_id", "channel", "strategy_hash")
ALL = "(all)"
UNKNOWN = "(unknown)"
CHAMPION = "champion"


def wilson_interval(
    successes: np.ndarray, trials: np.ndarray, *, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a proportion (NaN where there are no trials)."""
    successes, trials = np.asarray(successes, float), np.asarray(trials, float)
    z = stats.norm.ppf(0.5 + confidence / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = successes / trials
        denominator = 1 + z**2 / trials
        centre = (rate + z**2 / (2 * trials)) / denominator
        half = z * np.sqrt(rate * (1 - rate) / trials + z**2 / (4 * trials**2)) / denominator
    return centre - half, centre + half


def newcombe_difference(
    successes_1: np.ndarray,
    trials_1: np.ndarray,
    successes_2: np.ndarray,
    trials_2: np.ndarray,
    *,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Difference of two proportions p1 − p2 and its Newcombe hybrid score interval."""
    with np.errstate(invalid="ignore", divide="ignore"):
        rate_1 = np.asarray(successes_1, float) / np.asarray(trials_1, float)
        rate_2 = np.asarray(successes_2, float) / np.asarray(trials_2, float)
    low_1, high_1 = wilson_interval(successes_1, trials_1, confidence=confidence)
    low_2, high_2 = wilson_interval(successes_2, trials_2, confidence=confidence)
    difference = rate_1 - rate_2
    low = difference - np.sqrt((rate_1 - low_1) ** 2 + (high_2 - rate_2) ** 2)
    high = difference + np.sqrt((high_1 - rate_1) ** 2 + (rate_2 - low_2) ** 2)
    return difference, low, high


def with_dimensions(
    results: pd.DataFrame,
    decisions: pd.DataFrame | None = None,
    customer_decisions: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Results with segment and test group (their own, else the decision log row's, else the
    customer's ``customer_decisions`` record, else ``(unknown)``) and the decision's scores."""
    frame = results.copy()
    for column in ("segment", "test_group", "p_response", "uplift"):
        if column not in frame.columns:
            frame[column] = None if column in DIMENSIONS else np.nan
    if decisions is not None and len(decisions):
        logged = decisions.set_index(decisions["contact_id"].astype(str))
        keys = frame["contact_id"].astype(str)
        for column in ("segment", "test_group", "p_response", "uplift"):
            if column in logged.columns:
                found = keys.map(logged[column]).to_numpy()
                frame[column] = frame[column].where(frame[column].notna(), found)
    if customer_decisions is not None and len(customer_decisions):
        known = customer_decisions.drop_duplicates("customer_id").set_index("customer_id")
        for column in ("segment", "test_group"):
            if column in known.columns:
                filler = frame["customer_id"].map(known[column])
                frame[column] = frame[column].where(frame[column].notna(), filler)
    for column in DIMENSIONS:
        values = frame[column].astype(object)
        frame[column] = values.where(values.notna(), UNKNOWN).astype(str)
    return frame


def _arm_sums(frame: pd.DataFrame, contact_cost: Mapping[str, float]) -> pd.DataFrame:
    """Additive per-arm sums at the finest grain (what every roll-up is summed from)."""
    treated = frame["treated"].astype(bool)
    cost = frame["campaign_id"].map(lambda campaign: contact_cost.get(campaign, 0.0))
    revenue = frame["revenue"].astype(float).fillna(0.0)
    responded = frame["responded"].astype(bool)
    parts = pd.DataFrame(
        {
            **{column: frame[column] for column in DIMENSIONS},
            "treated_contacts": treated.astype(int),
            "control_contacts": (~treated).astype(int),
            "treated_responses": (treated & responded).astype(int),
            "control_responses": (~treated & responded).astype(int),
            "treated_revenue": revenue.where(treated, 0.0),
            "control_revenue": revenue.where(~treated, 0.0),
            "treated_revenue_squared": (revenue**2).where(treated, 0.0),
            "control_revenue_squared": (revenue**2).where(~treated, 0.0),
            "contact_cost": cost.astype(float).where(treated, 0.0),
        }
    )
    return parts.groupby(list(DIMENSIONS), as_index=False, observed=True).sum()


def _measures(cells: pd.DataFrame, *, confidence: float) -> pd.DataFrame:
    out = cells.copy()
    n_t, n_c = out["treated_contacts"].astype(float), out["control_contacts"].astype(float)
    x_t, x_c = out["treated_responses"], out["control_responses"]
    out["contacts"] = out["treated_contacts"] + out["control_contacts"]
    out["responses"] = out["treated_responses"] + out["control_responses"]
    out["revenue"] = out["treated_revenue"] + out["control_revenue"]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["treated_rate"] = x_t / n_t
        out["control_rate"] = x_c / n_c
        out["response_rate"] = out["responses"] / out["contacts"]
        difference, low, high = newcombe_difference(x_t, n_t, x_c, n_c, confidence=confidence)
        out["incremental_response_rate"] = difference
        out["incremental_response_rate_low"] = low
        out["incremental_response_rate_high"] = high
        out["incremental_responses"] = difference * n_t
        out["incremental_responses_low"] = low * n_t
        out["incremental_responses_high"] = high * n_t
        mean_t, mean_c = out["treated_revenue"] / n_t, out["control_revenue"] / n_c
        var_t = (out["treated_revenue_squared"] / n_t - mean_t**2) * n_t / (n_t - 1)
        var_c = (out["control_revenue_squared"] / n_c - mean_c**2) * n_c / (n_c - 1)
        z = stats.norm.ppf(0.5 + confidence / 2)
        lift = mean_t - mean_c
        half = z * np.sqrt(var_t.clip(lower=0) / n_t + var_c.clip(lower=0) / n_c)
    out["incremental_revenue_per_contact"] = lift
    out["incremental_revenue_per_contact_low"] = lift - half
    out["incremental_revenue_per_contact_high"] = lift + half
    for suffix in ("", "_low", "_high"):
        out[f"incremental_profit{suffix}"] = (
            out[f"incremental_revenue_per_contact{suffix}"] * n_t - out["contact_cost"]
        )
    return out.drop(columns=["treated_revenue_squared", "control_revenue_squared"])


def performance_cube(
    frame: pd.DataFrame,
    *,
    contact_cost: Mapping[str, float] | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Every grouping of :data:`DIMENSIONS` (``(all)`` where rolled up), with ``grain`` naming
    the dimensions kept; ``frame`` is :func:`with_dimensions`' output."""
    contact_cost = dict(contact_cost or {})
    base = _arm_sums(frame, contact_cost)
    additive = [column for column in base.columns if column not in DIMENSIONS]
    levels = []
    for size in range(len(DIMENSIONS), -1, -1):
        for kept in combinations(DIMENSIONS, size):
            if kept:
                cells = base.groupby(list(kept), as_index=False, observed=True)[additive].sum()
            else:
                cells = base[additive].sum().to_frame().T
            for column in DIMENSIONS:
                if column not in kept:
                    cells[column] = ALL
            cells["grain"] = "+".join(kept) if kept else ALL
            levels.append(cells)
    cube = pd.concat(levels, ignore_index=True)
    if not len(base):
        cube = cube.iloc[0:0]
    cube = cube[["grain", *DIMENSIONS, *additive]]
    counts = [column for column in additive if column.endswith(("_contacts", "_responses"))]
    cube[additive] = cube[additive].astype(float).astype({column: "int64" for column in counts})
    return _measures(cube, confidence=confidence).reset_index(drop=True)

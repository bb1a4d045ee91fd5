"""Champion versus challenger: is a challenger test group's result different, and if the
evidence is not there yet, how many more contacts would show the observed effect?

Two comparisons per challenger, both two-sided at level ``alpha``:

- ``treated_response_rate``: response rate of treated contacts, challenger − champion, by the
  two-proportion z test (pooled variance) with Fisher's exact test beside it;
- ``incremental_response_rate``: the lift over control (treated − control rate), challenger −
  champion, by a z test on the difference of two independent differences (unpooled).

Sample size still needed: with the observed effect and the current allocation between the
groups, the normal approximation needs ``n × ((z_{1−α/2} + z_{power}) / |z|)²`` contacts for
the test to reach ``power``; what is still needed is that minus what each group has (0 once
reached, null when the observed effect is 0).

Live experiments on campaign targeting (:mod:`cx_pipelines.campaigns.experiment`): the
incremental *profit* per customer of each arm and challenger − champion
(:func:`incremental_profit_tests`), from the arms' outcomes and what the exports' manifests
record of the runs (:func:`experiment_runs`: customers per arm, margin and cost).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from cx_pipelines.feedback.performance import CHAMPION

METRICS = ("treated_response_rate", "incremental_response_rate")


def _arms(frame: pd.DataFrame) -> dict[str, int]:
    treated = frame["treated"].astype(bool)
    responded = frame["responded"].astype(bool)
    return {
        "treated": int(treated.sum()),
        "treated_responses": int((treated & responded).sum()),
        "control": int((~treated).sum()),
        "control_responses": int((~treated & responded).sum()),
    }


def contacts_still_needed(
    observed_z: float, contacts: int, *, alpha: float = 0.05, power: float = 0.8
) -> float:
    """Contacts still needed for a test at ``observed_z`` on ``contacts`` to reach ``power``
    (0 once reached, NaN when the observed effect is 0)."""
    if not np.isfinite(observed_z) or observed_z == 0:
        return np.nan
    required = (
        contacts * ((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) / observed_z) ** 2
    )
    return float(max(0.0, np.ceil(required - contacts)))


def _rate(responses: int, contacts: int) -> float:
    return responses / contacts if contacts else np.nan


def _treated_rate_test(champion: dict, challenger: dict) -> dict[str, float]:
    x1, n1 = challenger["treated_responses"], challenger["treated"]
    x0, n0 = champion["treated_responses"], champion["treated"]
    if not (n1 and n0):
        return {"effect": np.nan, "z": np.nan, "p_value": np.nan, "fisher_p_value": np.nan}
    p1, p0 = x1 / n1, x0 / n0
    pooled = (x1 + x0) / (n1 + n0)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    z = (p1 - p0) / se if se > 0 else np.nan
    table = [[x1, n1 - x1], [x0, n0 - x0]]
    return {
        "effect": p1 - p0,
        "z": z,
        "p_value": float(2 * stats.norm.sf(abs(z))) if np.isfinite(z) else np.nan,
        "fisher_p_value": float(stats.fisher_exact(table).pvalue),
    }


def _lift_test(champion: dict, challenger: dict) -> dict[str, float]:
    def lift(arms: dict) -> tuple[float, float]:
        p_t = _rate(arms["treated_responses"], arms["treated"])
        p_c = _rate(arms["control_responses"], arms["control"])
        variance = p_t * (1 - p_t) / arms["treated"] + p_c * (1 - p_c) / arms["control"]
        return p_t - p_c, variance

    if not all(arms[arm] for arms in (champion, challenger) for arm in ("treated", "control")):
        return {"effect": np.nan, "z": np.nan, "p_value": np.nan, "fisher_p_value": np.nan}
    lift_1, variance_1 = lift(challenger)
    lift_0, variance_0 = lift(champion)
    se = np.sqrt(variance_1 + variance_0)
    z = (lift_1 - lift_0) / se if se > 0 else np.nan
    return {
        "effect": lift_1 - lift_0,
        "z": z,
        "p_value": float(2 * stats.norm.sf(abs(z))) if np.isfinite(z) else np.nan,
        "fisher_p_value": np.nan,
    }


def champion_challenger_tests(
    frame: pd.DataFrame,
    *,
    group_column: str = "test_group",
    champion: str = CHAMPION,
    alpha: float = 0.05,
    power: float = 0.8,
) -> pd.DataFrame:
    """One row per challenger group and metric (see the module doc); empty without a champion."""
    groups = {name: _arms(rows) for name, rows in frame.groupby(group_column, observed=True)}
    columns = [
        "challenger", "champion", "metric", "champion_value", "challenger_value", "effect",
        "z", "p_value", "fisher_p_value", "significant", "champion_contacts",
        "challenger_contacts", "champion_contacts_still_needed",
        "challenger_contacts_still_needed",
    ]  # fmt: skip
    if champion not in groups:
        return pd.DataFrame(columns=columns)
    rows = []
    base = groups[champion]
    for name, arms in sorted(groups.items()):
        if name == champion:
            continue
        for metric, test in (
            ("treated_response_rate", _treated_rate_test),
            ("incremental_response_rate", _lift_test),
        ):
            result = test(base, arms)
            if metric == "treated_response_rate":
                values = [_rate(a["treated_responses"], a["treated"]) for a in (base, arms)]
                contacts = [base["treated"], arms["treated"]]
            else:
                values = [
                    _rate(a["treated_responses"], a["treated"])
                    - _rate(a["control_responses"], a["control"])
                    if a["treated"] and a["control"]
                    else np.nan
                    for a in (base, arms)
                ]
                contacts = [base["treated"] + base["control"], arms["treated"] + arms["control"]]
            rows.append(
                {
                    "challenger": name,
                    "champion": champion,
                    "metric": metric,
                    "champion_value": values[0],
                    "challenger_value": values[1],
                    **result,
                    "significant": bool(
                        np.isfinite(result["p_value"]) and result["p_value"] < alpha
                    ),
                    "champion_contacts": contacts[0],
                    "challenger_contacts": contacts[1],
                    "champion_contacts_still_needed": contacts_still_needed(
                        result["z"], contacts[0], alpha=alpha, power=power
                    ),
                    "challenger_contacts_still_needed": contacts_still_needed(
                        result["z"], contacts[1], alpha=alpha, power=power
                    ),
                }
            )
    return pd.DataFrame(rows, columns=columns)


# --- Live champion/challenger experiments on campaign targeting: incremental profit ---------

PROFIT_COLUMNS = [
    "experiment_id", "challenger", "champion", "runs", "champion_customers",
    "challenger_customers", "champion_profit_per_customer", "champion_low", "champion_high",
    "challenger_profit_per_customer", "challenger_low", "challenger_high", "difference", "low",
    "high", "z", "p_value", "significant", "champion_customers_still_needed",
    "challenger_customers_still_needed", "rows_without_control_baseline",
]  # fmt: skip


@dataclass(frozen=True)
class ExperimentRuns:
    """What the exports' manifests say of an experiment's runs (no customer data)."""

    experiment_id: str
    arm_customers: pd.DataFrame  # run_key, test_group, customers
    economics: pd.DataFrame  # run_key, campaign_id, margin_per_response, cost_per_contact
    horizon: int | None = None  # the runs the experiment file states it lasts, if it does
    spending: str | None = None  # the spending function it states (None: O'Brien–Fleming)


def experiment_runs(exports_dir: Path) -> dict[str, ExperimentRuns]:
    """Every experiment found in the manifests under ``exports_dir``, by experiment id."""
    arms, economics, seen, horizons, spending = [], [], set(), {}, {}
    for manifest in sorted(exports_dir.glob("*/*/manifest.json")):
        if any(part.startswith(".") for part in manifest.relative_to(exports_dir).parts):
            continue
        content = json.loads(manifest.read_text(encoding="utf-8"))
        block = content.get("experiment")
        if not block or content["run_key"] in seen:
            continue
        seen.add(content["run_key"])
        key = {"experiment_id": block["experiment_id"], "run_key": content["run_key"]}
        if block.get("horizon") is not None:
            horizons[block["experiment_id"]] = int(block["horizon"])
        if block.get("spending") is not None:
            spending[block["experiment_id"]] = str(block["spending"])
        arms += [{**key, "test_group": a, "customers": n} for a, n in block["customers"].items()]
        economics += [{**key, "campaign_id": c, **e} for c, e in block["economics"].items()]
    arms_frame = pd.DataFrame(arms, columns=["experiment_id", "run_key", "test_group", "customers"])
    money = pd.DataFrame(
        economics,
        columns=["experiment_id", "run_key", "campaign_id", "margin_per_response",
                 "cost_per_contact"],
    )  # fmt: skip
    return {
        name: ExperimentRuns(
            name,
            arms_frame[arms_frame["experiment_id"] == name].drop(columns="experiment_id"),
            money[money["experiment_id"] == name].drop(columns="experiment_id"),
            horizons.get(name),
            spending.get(name),
        )
        for name in sorted(arms_frame["experiment_id"].unique())
    }


def decision_covariates(exports_dir: Path) -> pd.DataFrame:
    """Per decided row (``contact_id``) the baseline its arm's scores predicted before the
    control draw: ``baseline_prediction = clip(p_response − uplift, 0, 1)``, the predicted
    response rate without contact (from the exports' ``decisions.parquet``)."""
    frames = []
    for path in sorted(exports_dir.glob("*/*/decisions.parquet")):
        if any(part.startswith(".") for part in path.relative_to(exports_dir).parts):
            continue
        frames.append(pd.read_parquet(path, columns=["contact_id", "p_response", "uplift"]))
    if not frames:
        return pd.DataFrame(columns=["contact_id", "baseline_prediction"])
    rows = pd.concat(frames, ignore_index=True).drop_duplicates("contact_id")
    identifier = rows["contact_id"].astype(str)  # interaction_results keeps it as text
    return pd.DataFrame(
        {"contact_id": identifier, "baseline_prediction": baseline_prediction(rows)}
    )


def baseline_prediction(decisions: pd.DataFrame) -> pd.Series:
    """The response rate without contact that a decided row's scores predict:
    ``clip(p_response − uplift, 0, 1)`` (0 where a score is missing)."""
    return (decisions["p_response"] - decisions["uplift"]).clip(0.0, 1.0).fillna(0.0)


def customer_profit(
    outcomes: pd.DataFrame, economics: pd.DataFrame, *, adjust: bool = False
) -> tuple[pd.DataFrame, int, pd.Series]:
    """Each customer's estimated incremental profit over the runs (linearised, see
    :func:`incremental_profit_tests`), the rows left out for want of a control baseline,
    and per arm the variance floor of :func:`_variance_floor`.

    ``outcomes``: decided rows with their outcome (``run_key, campaign_id, customer_id,
    test_group, treated, responded``; with ``adjust``, also ``baseline_prediction``).

    ``adjust`` (regression adjustment, a difference estimator): every outcome ``R`` is
    replaced by its residual ``R − f`` on a prediction ``f`` fixed before the control draw,
    so a cell's baseline is ``Σ_T f + n_T mean_C(R − f)`` instead of ``n_T mean_C(R)``.
    Within a cell the controls are a random subset of the decided rows, so
    ``mean_C(R − f)`` is unbiased for the cell's mean of ``R₀ − f`` whatever ``f`` is:
    the estimate stays unbiased, and its variance falls by what ``f`` explains of the
    outcomes. Rows without a prediction take ``f = 0`` (no adjustment)."""
    frame = outcomes.merge(economics, on=["run_key", "campaign_id"], how="left")
    if frame["margin_per_response"].isna().any():
        missing = sorted(frame.loc[frame["margin_per_response"].isna(), "campaign_id"].unique())
        raise ValueError(f"no margin and cost recorded for campaign(s) {missing} of the runs")
    treated = frame["treated"].astype(bool).to_numpy()
    responded = frame["responded"].astype(float).to_numpy()
    if adjust:
        if "baseline_prediction" not in frame:
            raise ValueError("adjust needs a baseline_prediction column (decision_covariates)")
        prediction = frame["baseline_prediction"].astype(float).fillna(0.0).to_numpy()
        residual = responded - prediction
    else:
        residual = responded
    frame["t"], frame["c"] = treated.astype(int), (~treated).astype(int)
    frame["x_c"] = np.where(treated, 0.0, responded)
    frame["r_c"] = np.where(treated, 0.0, residual)
    cell = ["test_group", "run_key", "campaign_id"]
    sums = frame.groupby(cell)[["t", "c", "r_c"]].transform("sum")
    pooled = frame.groupby(["test_group", "campaign_id"])[["t", "c", "r_c"]].transform("sum")
    # the control rate (mean residual) of the cell; else of the arm's campaign over its runs
    with np.errstate(divide="ignore", invalid="ignore"):
        baseline = np.where(sums["c"] > 0, sums["r_c"] / sums["c"], pooled["r_c"] / pooled["c"])
        weight = np.where(sums["c"] > 0, sums["t"] / sums["c"], pooled["t"] / pooled["c"])
    margin, cost = frame["margin_per_response"].to_numpy(), frame["cost_per_contact"].to_numpy()
    frame["profit"] = np.where(
        treated,
        margin * (residual - baseline) - cost,
        -margin * weight * (residual - baseline),
    )
    usable = np.isfinite(frame["profit"].to_numpy())
    per_customer = frame[usable].groupby(["test_group", "customer_id"], as_index=False)["profit"]
    return per_customer.sum(), int((~usable).sum()), _variance_floor(frame[usable], cell)


def _variance_floor(frame: pd.DataFrame, cell: list[str]) -> pd.Series:
    """Per arm, the variance of its total that the rows' own spread misses where a cell's
    rate is near 0 or 1 (no control responded: the baseline looks certain).

    Per cell, each rate's binomial variance ``p(1 − p)`` is raised to that of the
    Agresti–Coull-style ``(x + 1) / (n + 2)`` where that is larger: treated
    ``m² n_T (...)``, baseline ``m² n_T² (...) / n_C``. Zero for cells with ordinary rates."""
    frame = frame.assign(x_t=np.where(frame["t"] > 0, frame["responded"].astype(float), 0.0))
    cells = frame.groupby(cell).agg(
        t=("t", "sum"), c=("c", "sum"), x_t=("x_t", "sum"), x_c=("x_c", "sum"),
        m=("margin_per_response", "first"),
    )  # fmt: skip

    def deficit(x: pd.Series, n: pd.Series) -> pd.Series:
        with np.errstate(divide="ignore", invalid="ignore"):
            rate, adjusted = x / n, (x + 1) / (n + 2)
        return (adjusted * (1 - adjusted) - rate * (1 - rate)).clip(lower=0).fillna(0.0)

    with np.errstate(divide="ignore", invalid="ignore"):
        baseline = (cells["t"] ** 2 / cells["c"]).where(cells["c"] > 0, 0.0)
    extra = cells["m"] ** 2 * (
        cells["t"] * deficit(cells["x_t"], cells["t"])
        + baseline * deficit(cells["x_c"], cells["c"])
    )
    return extra.groupby(level="test_group").sum()


def _arm_figures(
    profit: pd.Series, customers: int, *, z: float, extra_variance: float = 0.0
) -> dict[str, float]:
    values = np.r_[profit.to_numpy(float), np.zeros(max(customers - len(profit), 0))]
    mean = float(values.mean()) if len(values) else np.nan
    variance = float(values.var(ddof=1)) / len(values) if len(values) > 1 else np.nan
    variance += extra_variance / len(values) ** 2 if len(values) else 0.0
    half = z * np.sqrt(variance)
    return {"mean": mean, "variance": variance, "low": mean - half, "high": mean + half}


def incremental_profit_tests(
    outcomes: pd.DataFrame,
    runs: ExperimentRuns,
    *,
    champion: str = CHAMPION,
    alpha: float = 0.05,
    power: float = 0.8,
    adjust: bool = False,
) -> pd.DataFrame:
    """Incremental profit per customer of each arm and challenger − champion, with interval,
    two-sided p-value and the customers still needed (one row per challenger arm).

    The unit is a customer of the arm (the split is by customer, so a customer's runs are
    one unit). Per cell (arm, run, campaign) with treated ``T`` and control ``C`` decided
    rows, the incremental profit is ``m (x_T − n_T x_C / n_C) − c n_T`` (treated responses
    over the control baseline, times the margin, minus the contacts' cost); it is the sum
    over the cell's rows of their linearised contributions — ``m (R − p_C) − c`` for a
    treated row, ``−m (n_T / n_C)(R − p_C)`` for a control row — so each customer gets the
    sum of its rows' contributions, and every customer of the arm decided nothing gets 0.
    The arm's profit per customer is the mean over its customers (the most any run had: the
    population only grows) and its variance the sample variance over them; challenger −
    champion is a two-sample z test (Welch). Where a cell's rate is 0 or 1 (a small control
    group with no response), its variance is floored (:func:`_variance_floor`), so a
    baseline that looks certain does not make the interval too narrow. A cell without
    controls takes the arm's control rate of that campaign over its runs; rows with no
    baseline at all are counted. ``adjust``: the regression-adjusted (difference) estimator
    of :func:`customer_profit`, unbiased, with a smaller variance where the arms' scores
    predict the outcomes. It is not the test of record: on the closed loop's logs (20,000
    customers, seeds 2 and 3, ``benchmarks/experiment_tests.py --replays`` with the control
    group drawn again) its spread at the first look was 1.94 and 1.36 per customer against
    the plain estimator's 1.93 and 1.42 — the noise is the rare, high-margin responses'
    own (no score predicts a coin), not the baselines' spread across rows.
    """
    z_level = float(stats.norm.ppf(1 - alpha / 2))
    decided = outcomes[outcomes["test_group"].isin(runs.arm_customers["test_group"])]
    decided = decided[decided["run_key"].isin(runs.arm_customers["run_key"])]
    profit, unusable, extra = customer_profit(decided, runs.economics, adjust=adjust)
    customers = runs.arm_customers.groupby("test_group")["customers"].max()
    run_count = int(runs.arm_customers["run_key"].nunique())
    arms = {
        arm: _arm_figures(
            profit.loc[profit["test_group"] == arm, "profit"],
            int(size),
            z=z_level,
            extra_variance=float(extra.get(arm, 0.0)),
        )  # fmt: skip
        for arm, size in customers.items()
    }
    if champion not in arms:
        return pd.DataFrame(columns=PROFIT_COLUMNS)
    base, rows = arms[champion], []
    for arm in sorted(name for name in arms if name != champion):
        figures = arms[arm]
        difference = figures["mean"] - base["mean"]
        se = np.sqrt(figures["variance"] + base["variance"])
        z = difference / se if se > 0 else np.nan
        p_value = float(2 * stats.norm.sf(abs(z))) if np.isfinite(z) else np.nan
        rows.append(
            {
                "experiment_id": runs.experiment_id, "challenger": arm, "champion": champion,
                "runs": run_count, "champion_customers": int(customers[champion]),
                "challenger_customers": int(customers[arm]),
                "champion_profit_per_customer": base["mean"], "champion_low": base["low"],
                "champion_high": base["high"], "challenger_profit_per_customer": figures["mean"],
                "challenger_low": figures["low"], "challenger_high": figures["high"],
                "difference": difference, "low": difference - z_level * se,
                "high": difference + z_level * se, "z": z, "p_value": p_value,
                "significant": bool(np.isfinite(p_value) and p_value < alpha),
                "champion_customers_still_needed": contacts_still_needed(
                    z, int(customers[champion]), alpha=alpha, power=power
                ),
                "challenger_customers_still_needed": contacts_still_needed(
                    z, int(customers[arm]), alpha=alpha, power=power
                ),
                "rows_without_control_baseline": unusable,
            }
        )  # fmt: skip
    return pd.DataFrame(rows, columns=PROFIT_COLUMNS)


def experiment_profit_tests(
    results: pd.DataFrame, exports_dir: Path, *, alpha: float = 0.05, power: float = 0.8
) -> pd.DataFrame:
    """:func:`incremental_profit_tests` of every experiment in the exports' manifests, on
    the outcomes of ``interaction_results`` (rows with a ``test_group``)."""
    runs = experiment_runs(exports_dir)
    if not runs or "test_group" not in results:
        return pd.DataFrame(columns=PROFIT_COLUMNS)
    outcomes = results[results["test_group"].notna()]
    tests = [
        incremental_profit_tests(outcomes, item, alpha=alpha, power=power) for item in runs.values()
    ]
    return pd.concat(tests, ignore_index=True)

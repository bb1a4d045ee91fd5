"""Off-policy evaluation: what a candidate targeting policy would earn, from the decision log.

The log holds one row per decided customer: the campaign ``j`` it was decided for, the arm
(treated or randomised control), the probability ``s`` with which the logging policy chose
that campaign *and* that arm (``selection_probability``), and the matched outcome ``Y``.
The **units** are every customer the logging policy decided over (``population``; a
customer it left out is a unit whose logged action is "none"), or, without a population,
the logged rows themselves. Restricting the units to the logged customers would condition
on the logger's own draws: a customer in the log only because exploration drew it would
count ``1 / q`` times with ``q`` its small exploration probability, not once.

A candidate policy gives each unit a campaign ``j*`` to be treated with, or none. Its
value is the **incremental profit** over the units,
``Σ_u [π(u) = j*] (margin_j* (P(Y=1 | treated) − P(Y=1 | control)) − cost_j*)``.
A logged row *matches* the candidate's action when both offer the same offer type on the
same channel (the customer answers the offer and the channel, whatever the campaign is
called); the margin and cost are the candidate campaign's.

**Support.** An action is *supported* when the logging policy could have taken it
(positive selection probability). The log shows it for a matched row; beyond that, a
pair the log *randomised* (explored) in the run may have gone to any eligible unit, and a
unit the log explored may have gone to its optimiser campaign instead. Every other action
(e.g. a campaign the logger's optimiser never gives this customer, or a customer it left
out, on a pair it did not explore) is **unsupported**: no logged outcome can ever speak for
it, so IPS cannot estimate it. IPS and SNIPS therefore estimate the value of the supported
actions only (``scope``); the direct-method value of the unsupported actions and their
share of the candidate's predicted value are reported beside them
(``unsupported_direct_value``, ``unsupported_share``), and doubly robust is the direct
method alone there (its value is the only one that speaks for all actions, and only as
well as the models do there).

Per unit ``u`` (``T`` treated, ``C`` control rows matching the candidate's action):

* **IPS**: ``z = [T] (m Y − c) / s − [C] m Y / s``; unbiased for the supported part.
* **Self-normalised IPS**: the two arms' weighted means, each divided by its own sum of
  weights, times the number of supported units: a little biased, much less variable when
  weights are large.
* **Doubly robust**: the models' predicted incremental profit ``q = m (μ1 − μ0) − c`` (the
  direct method) plus the IPS-weighted residuals ``[T] m (Y − μ1) / s − [C] m (Y − μ0) / s``;
  unbiased on the supported part when either the probabilities or the predictions are right.
  The truth it is checked against (:mod:`cx_pipelines.loop.policies`) is the simulator's,
  fatigue included; the residuals carry that fatigue into the estimate whatever the models
  believe, the direct method on unsupported actions does not.

**Arms fixed before the run.** A campaign whose control draw is fixed per customer (the
same salt every run: a *persistent* hold-out) randomises a customer's arm once, the first
time it decides that customer; from then on the arm is known before every later run and
has shaped the customer's history (a held-out customer is never tired, never declines,
stays eligible when the treated ones are capped or suppressed), so the logged rows of a
later run hold more controls than ``control_share`` says (a 10 % hold-out reached 17–20 %
of the rows after four to six weekly cycles) and weighting them by ``1 / control_share``
counts the held-out customers several times over. For such a row (``revealed``: the
customer was decided for the same offer and channel in an earlier run of a persistent
campaign) the arm is given, probability 1: only the campaign draw is random
(``selection_probability / P(arm)``). Its other arm was never possible, so IPS and SNIPS
cannot speak for the unit (it is unsupported for them) and doubly robust has the models
for that arm and the observed outcome for the logged one.

**No clipping.** Weights are the exact inverse probabilities (clipping them trades an
unknown bias for variance); instead the largest weight and the effective sample size
``(Σw)² / Σw²`` of the matched rows are reported, so a log too thin for the candidate shows.

Intervals: the normal interval from the per-unit variance (IPS, DR), the delta method for
the ratio (SNIPS), or a seeded Poisson bootstrap. **Few responses in a cell.** The per-unit
variance reads each arm's spread from its own outcomes, so a small cell (a campaign's
control rows: 23–146 rows at a 10 % share of a 50k loop) with no or one response looks
almost certain: in the 50k loop's last log the 95 control rows of mortgage_branch had no
response where the world expected 5.6, and "stop mortgage_branch" got an interval of
±21k where its spread over redrawn outcomes is about three times that, missing the truth.
So the normal intervals (and :func:`compare`) floor each (logged campaign, arm) cell's
outcome variance at the ``(x + 1) / (n + 2)`` rate (``x`` responses in ``n`` rows, as
:func:`cx_pipelines.feedback.experiments.incremental_profit_tests` does): the variance
gets ``Σ_i a_i² [r̃(1 − r̃) − r̂(1 − r̂)]⁺`` over the cell's units, ``a_i`` the weight of
the unit's outcome in its influence value (:func:`outcome_coefficients`). The estimates
themselves do not change. :func:`compare` tests a candidate against
a baseline on the same units (paired differences), for detecting a better challenger, and
says how many units the observed difference would still need to be significant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats

LOG_COLUMNS = (
    "customer_id",
    "campaign_id",
    "offer_type",
    "channel",
    "group",
    "selection_probability",
    "responded",
)
CANDIDATE_COLUMNS = ("customer_id", "campaign_id", "offer_type", "channel", "p_response", "uplift")
ESTIMATORS = ("ips", "snips", "doubly_robust")


class OffPolicyError(ValueError):
    """The log or the candidate cannot be evaluated (missing columns, bad probabilities)."""


@dataclass(frozen=True)
class Estimate:
    """An estimate of a policy's total incremental profit over the units."""

    estimator: str
    value: float
    low: float
    high: float
    standard_error: float
    per_unit: float
    units: int
    supported_units: int  # units whose candidate action the log could have taken
    treated_units: int  # units the candidate treats
    scope: str  # "all actions" or "supported actions only" (what ``value`` estimates)
    unsupported_units: int  # candidate actions the log could never take
    unsupported_direct_value: float  # the models' value of those actions (direct method)
    unsupported_share: float  # their share of the candidate's predicted value, by |value|
    max_weight: float  # largest inverse probability among the matched rows (no clipping)
    effective_sample_size: float  # (Σw)² / Σw² of the matched rows
    arm_fixed_units: int = 0  # candidate actions whose arm an earlier run fixed (persistent)

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


@dataclass(frozen=True)
class Comparison:
    """Candidate minus baseline on the same units, with a two-sided test of no difference."""

    estimator: str
    difference: float
    low: float
    high: float
    p_value: float
    units: int
    units_still_needed: float  # more units for 80 % power at this difference (0 = enough)

    def as_dict(self) -> dict[str, float | str]:
        return asdict(self)


@dataclass(frozen=True)
class UnitTerms:
    """Per-unit pieces every estimator is built from (one entry per unit)."""

    treated_reward: np.ndarray  # [T] (m Y − c) / s
    treated_weight: np.ndarray  # [T] / s
    control_reward: np.ndarray  # [C] m Y / s
    control_weight: np.ndarray  # [C] / s
    direct: np.ndarray  # q: predicted incremental profit of the candidate's action
    treated_residual: np.ndarray  # [T] m (Y − μ1) / s
    control_residual: np.ndarray  # [C] m (Y − μ0) / s
    chosen: np.ndarray  # the candidate treats this unit
    matched: np.ndarray  # the logged row offers the candidate's offer on its channel
    supported: np.ndarray  # the logging policy could have taken the candidate's action
    arm_fixed: np.ndarray  # the arm of the candidate's action was fixed before the run
    outcome: np.ndarray | None = None  # Y of the logged row (0 for units without one)
    weight: np.ndarray | None = None  # m / s of a matched logged row, 0 elsewhere
    cell: np.ndarray | None = None  # "campaign|arm" of a matched logged row, "" elsewhere


def given_assignment(log: pd.DataFrame, control_share: Mapping[str, float]) -> pd.DataFrame:
    """The log with ``selection_probability`` replaced by the arm's probability given the
    campaign the unit was decided for (``control_share`` or ``1 − control_share``).

    For policies that only choose *which logged units* to treat with their logged campaign
    (the deployed policy and its sub-policies), assignment is given and only the arm is
    random; weighting by the full selection probability would count the logger's own
    exploration draws, which such a policy shares, as if they were independent of it.
    """
    return log.assign(selection_probability=arm_probability(log, control_share))


def _require(frame: pd.DataFrame, columns: tuple[str, ...], *, what: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise OffPolicyError(f"{what} lacks column(s) {missing}; it has {list(frame.columns)}")


def _economics(
    campaigns: pd.Series, values: Mapping[str, float], *, what: str, where: str
) -> np.ndarray:
    unknown = sorted(set(campaigns.dropna()) - set(values))
    if unknown:
        raise OffPolicyError(f"no {what} for campaign(s) {unknown} in {where}")
    return campaigns.map(values).fillna(0.0).to_numpy(np.float64)


def randomised_pairs(log: pd.DataFrame) -> set[str]:
    """``offer|channel`` pairs the log drew at random for any eligible unit: those with an
    exploration row, or, for a log without an ``exploration`` column, every logged pair
    (a fully randomised logger)."""
    pairs = log["offer_type"].astype(str) + "|" + log["channel"].astype(str)
    if "exploration" not in log.columns:
        return set(pairs)
    return set(pairs[log["exploration"].fillna(False).astype(bool).to_numpy()])


def pair_keys(frame: pd.DataFrame) -> pd.Series:
    """``customer_id|offer_type|channel`` of each row (whose arm a campaign draws)."""
    return (
        frame["customer_id"].astype(str)
        + "|"
        + frame["offer_type"].astype(str)
        + "|"
        + frame["channel"].astype(str)
    )


def arm_probability(log: pd.DataFrame, control_share: Mapping[str, float]) -> np.ndarray:
    """The probability of each logged row's arm given its campaign (``control_share`` of
    control rows, ``1 − control_share`` of treated rows)."""
    unknown = sorted(set(log["campaign_id"]) - set(control_share))
    if unknown:
        raise OffPolicyError(f"no control share for campaign(s) {unknown}")
    share = log["campaign_id"].map(control_share).astype(float).to_numpy()
    return np.where(log["group"].to_numpy(object) == "control", share, 1.0 - share)


def revealed_pairs(
    earlier: pd.DataFrame, persistent: Mapping[str, bool], *, day: pd.Timestamp
) -> set[str]:
    """:func:`pair_keys` of the rows of runs before ``day`` of the campaigns whose control
    draw is ``persistent`` (their arm was fixed then, for every later run)."""
    before = pd.to_datetime(earlier["contacted_at"]) < day
    fixed = earlier["campaign_id"].map(persistent).fillna(False).astype(bool)
    return set(pair_keys(earlier[before.to_numpy() & fixed.to_numpy()]))


def _units(log: pd.DataFrame, population: np.ndarray | None) -> pd.DataFrame:
    """The log laid out over the units: the log itself, or one row per population customer
    (customers the logger left out get the action "none")."""
    if population is None:
        return log.reset_index(drop=True)
    ids = pd.Index(np.asarray(population)).unique()
    if log["customer_id"].duplicated().any():
        raise OffPolicyError(
            "the decision log has several rows for one customer: evaluate one run at a time "
            "when the units are a population"
        )
    outside = ~log["customer_id"].isin(ids)
    if outside.any():
        raise OffPolicyError(
            f"{int(outside.sum())} logged customer(s) are not in the population, e.g. "
            f"customer_id {log['customer_id'][outside].iloc[0]}"
        )
    units = log.set_index("customer_id").reindex(ids)
    missing = units["group"].isna().to_numpy()
    units["group"] = units["group"].where(~missing, "none")
    units["selection_probability"] = units["selection_probability"].where(~missing, 1.0)
    units["responded"] = units["responded"].where(~missing, 0)
    if "exploration" in units.columns:
        units["exploration"] = units["exploration"].where(~missing, False)
    return units.rename_axis("customer_id").reset_index()


def unit_terms(
    log: pd.DataFrame,
    candidate: pd.DataFrame,
    *,
    margin: Mapping[str, float],
    cost: Mapping[str, float],
    population: np.ndarray | None = None,
    randomised: set[str] | None = None,
    revealed: set[str] | None = None,
    control_share: Mapping[str, float] | None = None,
) -> UnitTerms:
    """Line the candidate's action up with every unit and compute the weighted terms.

    ``log``: one row per decided customer, ``LOG_COLUMNS`` (``group`` "treated"/"control",
    ``responded`` 0/1; optional ``exploration``). ``candidate``: at most one row per
    customer, the campaign it would treat the customer with and the models' ``p_response``
    (μ1) and ``uplift`` (μ1 − μ0) for it; customers it leaves out have no row (or a null
    campaign). ``population``: the customers the logger decided over (the units); default:
    the logged rows. ``randomised``: the ``offer|channel`` pairs the logger drew at random
    (default :func:`randomised_pairs` of the log). ``revealed``: :func:`pair_keys` whose arm
    an earlier run of a persistent campaign fixed (see the module docstring); they need
    ``control_share`` (per logged campaign) to take the arm out of the probability.
    """
    _require(log, LOG_COLUMNS, what="the decision log")
    _require(candidate, CANDIDATE_COLUMNS, what="the candidate policy")
    if candidate["customer_id"].duplicated().any():
        raise OffPolicyError("the candidate policy has duplicate customer_id entries")
    probability = log["selection_probability"].to_numpy(np.float64)
    if not np.all((probability > 0) & (probability <= 1)):
        bad = int(np.sum(~((probability > 0) & (probability <= 1))))
        raise OffPolicyError(
            f"{bad} logged row(s) have a selection_probability outside (0, 1]; "
            "off-policy evaluation needs the probability of every logged decision"
        )
    randomised = randomised_pairs(log) if randomised is None else randomised
    if revealed:
        if control_share is None:
            raise OffPolicyError("revealed arms need the logged campaigns' control_share")
        fixed = pair_keys(log).isin(revealed).to_numpy()
        probability = log["selection_probability"].to_numpy(np.float64).copy()
        arm = arm_probability(log[fixed], control_share)
        probability[fixed] = np.minimum(probability[fixed] / arm, 1.0)  # the campaign draw
        log = log.assign(selection_probability=probability)
    units = _units(log, population)
    chosen_rows = candidate[candidate["campaign_id"].notna()].set_index("customer_id")
    if population is not None:
        stray = ~chosen_rows.index.isin(units["customer_id"])
        if stray.any():
            raise OffPolicyError(
                f"the candidate treats {int(stray.sum())} customer(s) outside the population, "
                f"e.g. customer_id {chosen_rows.index[stray][0]}"
            )
    action = units["customer_id"].map(chosen_rows["campaign_id"])
    pair = chosen_rows["offer_type"].astype(str) + "|" + chosen_rows["channel"].astype(str)
    candidate_pair = units["customer_id"].map(pair).to_numpy(object)
    logged_pair = (units["offer_type"].astype(str) + "|" + units["channel"].astype(str)).to_numpy(
        object
    )
    mu1 = units["customer_id"].map(chosen_rows["p_response"]).to_numpy(np.float64)
    mu0 = mu1 - units["customer_id"].map(chosen_rows["uplift"]).to_numpy(np.float64)
    chosen = action.notna().to_numpy()
    m = _economics(action, margin, what="margin", where="the candidate")
    c = _economics(action, cost, what="cost", where="the candidate")
    group = units["group"].to_numpy(object)
    matched = chosen & (group != "none") & (candidate_pair == logged_pair)
    explored_unit = (
        units["exploration"].fillna(False).astype(bool).to_numpy()
        if "exploration" in units.columns
        else np.zeros(len(units), dtype=bool)
    )
    supported = matched | (
        chosen & (explored_unit | pd.Series(candidate_pair).isin(randomised).to_numpy())
    )
    arm_fixed = np.zeros(len(units), dtype=bool)
    if revealed:
        unit_key = units["customer_id"].astype(str) + "|" + pd.Series(candidate_pair)
        arm_fixed = chosen & unit_key.isin(revealed).to_numpy()
        supported &= ~arm_fixed  # one arm was never possible: no IPS for the unit
    outcome = units["responded"].astype(np.float64).to_numpy()
    treated = matched & (group == "treated")
    control = matched & (group == "control")
    inverse = 1.0 / units["selection_probability"].to_numpy(np.float64)
    zero = np.zeros(len(units))
    weighted = ~arm_fixed  # IPS and SNIPS terms: randomised arms only
    return UnitTerms(
        treated_reward=np.where(treated & weighted, (m * outcome - c) * inverse, zero),
        treated_weight=np.where(treated & weighted, inverse, zero),
        control_reward=np.where(control & weighted, m * outcome * inverse, zero),
        control_weight=np.where(control & weighted, inverse, zero),
        direct=np.where(chosen, m * (np.nan_to_num(mu1) - np.nan_to_num(mu0)) - c, zero),
        treated_residual=np.where(treated, m * (outcome - np.nan_to_num(mu1)) * inverse, zero),
        control_residual=np.where(control, m * (outcome - np.nan_to_num(mu0)) * inverse, zero),
        chosen=chosen,
        matched=matched,
        supported=supported,
        arm_fixed=arm_fixed,
        outcome=outcome,
        weight=np.where(matched, m * inverse, zero),
        cell=np.where(
            matched,
            units["campaign_id"].fillna("").astype(str).to_numpy(object) + "|" + group.astype(str),
            "",
        ),
    )


def outcome_coefficients(terms: UnitTerms, estimator: str) -> np.ndarray:
    """Per unit, how much its influence value moves per unit of its own outcome ``Y``:
    ``± m / s`` on the matched rows (+ treated, − control; for IPS and SNIPS only where the
    arm was randomised), scaled by the share over the arm's mean weight for SNIPS."""
    if terms.weight is None or terms.cell is None:
        return np.zeros_like(terms.direct)
    cell = terms.cell.astype(str)
    if estimator == "doubly_robust":
        treated = np.char.endswith(cell, "|treated")
        control = np.char.endswith(cell, "|control")
    else:
        treated, control = terms.treated_weight > 0, terms.control_weight > 0
    if estimator != "snips":
        return np.where(treated, terms.weight, 0.0) - np.where(control, terms.weight, 0.0)
    share = float(terms.supported.mean())
    mean_t, mean_c = terms.treated_weight.mean(), terms.control_weight.mean()
    if mean_t == 0 or mean_c == 0:
        return np.zeros_like(terms.direct)
    return share * (
        np.where(treated, terms.weight / mean_t, 0.0)
        - np.where(control, terms.weight / mean_c, 0.0)
    )


def floor_variance(terms: UnitTerms, coefficient: np.ndarray) -> float:
    """The extra variance of the per-unit mean from flooring each (campaign, arm) cell's
    outcome rate at ``(x + 1) / (n + 2)`` (module docstring, "Few responses in a cell")."""
    if terms.cell is None or not coefficient.any():
        return 0.0
    used = coefficient != 0
    frame = pd.DataFrame({"cell": terms.cell[used], "y": terms.outcome[used]})
    frame["a2"] = coefficient[used] ** 2
    cells = frame.groupby("cell").agg(x=("y", "sum"), n=("y", "size"), a2=("a2", "sum"))
    observed = cells["x"] / cells["n"]
    floored = (cells["x"] + 1) / (cells["n"] + 2)
    gap = (floored * (1 - floored) - observed * (1 - observed)).clip(lower=0)
    return float((cells["a2"] * gap).sum()) / len(terms.direct) ** 2


def _influence(terms: UnitTerms, estimator: str) -> tuple[float, np.ndarray]:
    """(per-unit estimate, per-unit influence values whose variance gives its standard error)."""
    if estimator == "ips":
        values = terms.treated_reward - terms.control_reward
        return float(values.mean()), values
    if estimator == "doubly_robust":
        values = terms.direct + terms.treated_residual - terms.control_residual
        return float(values.mean()), values
    if estimator == "snips":
        share = float(terms.supported.mean())  # IPS speaks for the supported actions only
        treated_weight = terms.treated_weight.mean()
        control_weight = terms.control_weight.mean()
        if treated_weight == 0 or control_weight == 0:  # an arm the log never took
            return 0.0, np.zeros_like(terms.direct)
        treated_mean = terms.treated_reward.mean() / treated_weight
        control_mean = terms.control_reward.mean() / control_weight
        influence = share * (
            (terms.treated_reward - treated_mean * terms.treated_weight) / treated_weight
            - (terms.control_reward - control_mean * terms.control_weight) / control_weight
        )
        return share * (treated_mean - control_mean), influence + share * (
            treated_mean - control_mean
        )
    raise OffPolicyError(f"unknown estimator {estimator!r}; expected one of {ESTIMATORS}")


def _bootstrap_means(values: np.ndarray, *, resamples: int, seed: int) -> np.ndarray:
    """Poisson-bootstrap replicates of the mean of ``values`` (seeded, chunked for memory)."""
    rng = np.random.default_rng(seed)
    replicates = np.empty(resamples)
    chunk = max(1, 2_000_000 // max(len(values), 1))
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        weights = rng.poisson(1.0, (size, len(values)))
        replicates[start : start + size] = (weights @ values) / np.maximum(weights.sum(axis=1), 1)
    return replicates


def estimate(
    terms: UnitTerms,
    estimator: str,
    *,
    confidence: float = 0.95,
    bootstrap: int = 0,
    seed: int = 0,
) -> Estimate:
    """One estimator's total value over the units with its interval.

    ``bootstrap`` = 0 uses the influence-function variance (the variance formula); a positive
    number draws that many seeded Poisson-bootstrap resamples of the influence values.
    """
    units = len(terms.direct)
    if units == 0:
        raise OffPolicyError("the decision log is empty: nothing to evaluate the candidate on")
    per_unit, influence = _influence(terms, estimator)
    standard_error = float(influence.std(ddof=1) / np.sqrt(units)) if units > 1 else 0.0
    floor = floor_variance(terms, outcome_coefficients(terms, estimator))
    standard_error = float(np.sqrt(standard_error**2 + floor))
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    if bootstrap > 0:
        replicates = _bootstrap_means(influence, resamples=bootstrap, seed=seed)
        shift = per_unit - float(influence.mean())
        tail = (1 - confidence) / 2
        low, high = (np.quantile(replicates, [tail, 1 - tail]) + shift).tolist()
    else:
        low, high = per_unit - z * standard_error, per_unit + z * standard_error
    unsupported = terms.chosen & ~terms.supported
    predicted = np.abs(terms.direct[terms.chosen]).sum()
    weights = np.r_[terms.treated_weight, terms.control_weight]
    weights = weights[weights > 0]
    return Estimate(
        estimator=estimator,
        value=per_unit * units,
        low=low * units,
        high=high * units,
        standard_error=standard_error * units,
        per_unit=per_unit,
        units=units,
        supported_units=int(terms.supported.sum()),
        treated_units=int(terms.chosen.sum()),
        scope="all actions"
        if estimator == "doubly_robust" or not unsupported.any()
        else "supported actions only",
        unsupported_units=int(unsupported.sum()),
        unsupported_direct_value=float(terms.direct[unsupported].sum()),
        unsupported_share=float(np.abs(terms.direct[unsupported]).sum() / predicted)
        if predicted > 0
        else 0.0,
        max_weight=float(weights.max()) if len(weights) else 0.0,
        effective_sample_size=float(weights.sum() ** 2 / (weights**2).sum())
        if len(weights)
        else 0.0,
        arm_fixed_units=int(terms.arm_fixed.sum()),
    )


def evaluate(
    log: pd.DataFrame,
    candidate: pd.DataFrame,
    *,
    margin: Mapping[str, float],
    cost: Mapping[str, float],
    population: np.ndarray | None = None,
    confidence: float = 0.95,
    bootstrap: int = 0,
    seed: int = 0,
    revealed: set[str] | None = None,
    control_share: Mapping[str, float] | None = None,
) -> dict[str, Estimate]:
    """IPS, self-normalised IPS and doubly robust estimates of the candidate's value
    (``revealed``, ``control_share``: see :func:`unit_terms`)."""
    terms = unit_terms(
        log, candidate, margin=margin, cost=cost, population=population, revealed=revealed,
        control_share=control_share,
    )  # fmt: skip
    return {
        name: estimate(terms, name, confidence=confidence, bootstrap=bootstrap, seed=seed)
        for name in ESTIMATORS
    }


def compare(
    log: pd.DataFrame,
    candidate: pd.DataFrame,
    baseline: pd.DataFrame,
    *,
    margin: Mapping[str, float],
    cost: Mapping[str, float],
    population: np.ndarray | None = None,
    estimator: str = "doubly_robust",
    confidence: float = 0.95,
    revealed: set[str] | None = None,
    control_share: Mapping[str, float] | None = None,
) -> Comparison:
    """Candidate minus baseline over the same units: paired interval, p-value and the units
    the observed difference would still need for a test at 5 % with 80 % power."""
    from cx_pipelines.feedback.experiments import contacts_still_needed

    common = {
        "margin": margin, "cost": cost, "population": population, "revealed": revealed,
        "control_share": control_share,
    }  # fmt: skip
    candidate_terms = unit_terms(log, candidate, **common)
    baseline_terms = unit_terms(log, baseline, **common)
    first, first_influence = _influence(candidate_terms, estimator)
    second, second_influence = _influence(baseline_terms, estimator)
    units = len(first_influence)
    difference = (first - second) * units
    spread = float((first_influence - second_influence).std(ddof=1) / np.sqrt(units))
    coefficient = outcome_coefficients(candidate_terms, estimator) - outcome_coefficients(
        baseline_terms, estimator
    )
    # a logged row's cell is the log's (campaign, arm), whichever policy matches it
    cells = np.where(candidate_terms.cell != "", candidate_terms.cell, baseline_terms.cell)
    floor = floor_variance(replace(candidate_terms, cell=cells), coefficient)
    spread = float(np.sqrt(spread**2 + floor)) * units
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    observed = difference / spread if spread > 0 else np.nan
    p_value = float(2 * stats.norm.sf(abs(observed))) if spread > 0 else 1.0
    return Comparison(
        estimator=estimator,
        difference=difference,
        low=difference - z * spread,
        high=difference + z * spread,
        p_value=p_value,
        units=units,
        units_still_needed=contacts_still_needed(observed, units, alpha=1 - confidence),
    )

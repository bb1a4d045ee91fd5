"""Does the closed loop learn? The learned policy against the oracle, propensity-only and
random policies, cycle after cycle, on fresh synthetic worlds (one per seed).

    python benchmarks/closed_loop.py --customers 50000 --cycles 6 --seeds 1 2 3

Per seed: generate the world, materialise the pipeline up to the models' scores, then
`run_loop` (decide → target → export → simulated answers → interaction_results →
strategy_performance → retrain). Per cycle it prints contacts, response rate, the true
incremental profit of the learned policy and of the oracle, propensity-only and random
policies (same customers, caps, budgets, contact policy and control groups: each campaign
holds out its control share of every policy's list with the same draw), and the regret;
beside them, the oracle and propensity-only figures with no control group (every decided
row treated), the ceiling if campaigns kept no hold-out.

After the last cycle, on the last cycle's decision log (estimates from the log and the
models only; true values from the world's truth, fatigue included, never shown to them):
* **off-policy estimate** of a candidate (the deployed campaigns with half their volume caps
  and budgets, targeted over the whole population of that day, as it would be deployed)
  next to its true value; the units are that population, and the candidate's actions the
  log could never take are counted and reported (IPS leaves them out, DR has only the
  models there), with the true value of the supported part beside the IPS figures, and the
  design's own spread (:class:`DesignSpread`: doubly robust with the TRUE probabilities as
  its model, the least an estimator unbiased whatever its models believe can spread on this
  log; ``benchmarks/off_policy_replays.py`` replays the log's arms and outcomes to check it);
* **challenger strategies**, each a rule the platform could deploy on the deployed lists,
  from its own data only (:func:`challenger_rules`): a fatigue-aware value rule (a contact
  is kept only if its model value is still positive after the documented contact fatigue,
  ``FATIGUE_LOG_ODDS_PER_CONTACT`` per treated contact in the previous
  ``FATIGUE_WINDOW_DAYS``, counted from the platform's own exports), stricter contact
  pressure, a stricter value threshold, no exploration, stopping one campaign. Each is
  compared with the deployed lists on the same units (paired doubly robust difference given
  the assignment, two-sided p-value, units still needed) and printed with its TRUE gain.
  The **planted challenger** is the rule whose true gain (the world's expected values, never
  the logged outcomes, so the test is not tilted by the choice) is largest: the benchmark
  plants the truly better strategy and asks whether the log detects it.

Options: ``--jobs N`` runs up to N seeds' child processes at once; ``--from-home PATH``
copies a prepared CX_HOME (world, sources and models, e.g. ``<home>/seed-N/cx`` of an earlier
run before its loop, or one made with ``cx_pipelines.loop.cycle.prepare``; '{seed}' in PATH is
the seed) instead of generating one, never writing into it; ``--keep-last-log``
keeps what the off-policy figures read on the last log (before the models learn from it) in
``<home>/seed-N/last-log``, and ``--ope-only FOLDER`` prints the off-policy figures of such a
folder again (e.g. after a change to the estimators).

Targets (issue 8): by the last cycle the learned policy captures ≥ 90 % of the oracle's
incremental profit (under the same control groups) and beats propensity-only by more than
the seed-to-seed noise; the off-policy estimate is within 10 % of the true value; the
planted challenger's p < 0.05. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from cx_pipelines import config, warehouse
from cx_pipelines.loop import candidate, direct_model, off_policy, policies, targeting_inputs
from cx_pipelines.world import simulator

FATIGUE = simulator.FATIGUE_LOG_ODDS_PER_CONTACT
"""The world's documented contact fatigue: the challenger's prior for what a contact loses."""


@dataclass(frozen=True)
class Challenger:
    """A challenger strategy against the deployed lists: the log's test and the truth."""

    name: str
    comparison: off_policy.Comparison
    true_difference: float
    withdrawn: int  # deployed contacts the challenger does not make

    def describe(self) -> str:
        c = self.comparison
        return (
            f"{self.name}: withdraws {self.withdrawn:,} of {c.units:,} deployed "
            f"contacts; estimated gain {c.difference:,.2f} [{c.low:,.2f}, {c.high:,.2f}], "
            f"p = {c.p_value:.3g}, units still needed {c.units_still_needed:,.0f}; "
            f"TRUE gain {self.true_difference:,.2f}"
        )


@dataclass(frozen=True)
class OffPolicyFigures:
    """The candidate's estimates and true value; the planted challengers' tests."""

    run_key: str
    units: int
    candidate_true_value: float
    candidate_true_supported_value: float  # the part on actions the log could take
    estimates: dict
    challengers: tuple[Challenger, ...]
    persistent_campaigns: tuple[str, ...] = ()  # control drawn with a fixed salt every run
    control_share_logged: float = float("nan")  # controls among the logged rows
    spread: DesignSpread | None = None  # how precisely the log's arms can measure it

    @property
    def challenger(self) -> Challenger:
        """The planted challenger: the deployable rule that is truly best."""
        return max(self.challengers, key=lambda item: item.true_difference)

    @property
    def relative_error(self) -> float:
        estimate = self.estimates["doubly_robust"].value
        return (estimate - self.candidate_true_value) / abs(self.candidate_true_value)

    @property
    def units_for_ten_percent(self) -> float:
        """Units the DR interval would need to be ±10 % of the estimate (SE ∝ 1/√units)."""
        item = self.estimates["doubly_robust"]
        if item.value == 0:
            return float("inf")
        return float(item.units * (1.96 * item.standard_error / (0.1 * abs(item.value))) ** 2)

    @property
    def challenger_p_value(self) -> float:
        return self.challenger.comparison.p_value

    def describe(self) -> list[str]:
        first = self.estimates["doubly_robust"]
        lines = [
            f"off-policy, logged run {self.run_key}: candidate = deployed campaigns with half "
            f"their caps over {self.units:,} customers; it treats {first.treated_units:,}, "
            f"{first.unsupported_units:,} with actions the log could never take "
            f"({first.unsupported_share:.1%} of its predicted value); largest weight "
            f"{first.max_weight:,.1f}, effective sample size {first.effective_sample_size:,.0f}",
            f"  TRUE incremental profit {self.candidate_true_value:,.2f} (supported part "
            f"{self.candidate_true_supported_value:,.2f})",
            f"  arms: {self.control_share_logged:.1%} of the logged rows are controls; "
            f"persistent control draws: {', '.join(self.persistent_campaigns) or 'none'}; "
            f"{first.arm_fixed_units:,} candidate actions' arms fixed by earlier runs "
            "(doubly robust has the models for their other arm, IPS leaves them out)",
        ]
        for name, item in self.estimates.items():
            truth = (
                self.candidate_true_value
                if item.scope == "all actions"
                else self.candidate_true_supported_value
            )
            covered = item.low <= truth <= item.high
            lines.append(
                f"  {name:<14} {item.value:>12,.2f} [{item.low:,.2f}, {item.high:,.2f}] "
                f"error {(item.value - truth) / abs(truth):+.1%} vs the truth of {item.scope}"
                f"{'' if covered else '  (interval misses the truth)'}"
            )
        lines.append(
            f"  a ±10 % doubly robust interval would need about {self.units_for_ten_percent:,.0f}"
            f" units like these (it has {self.units:,})"
        )
        if self.spread is not None:
            lines += self.spread.describe()
        lines.append("challenger strategies against the deployed lists (estimate | TRUE):")
        lines += [f"  {item.describe()}" for item in self.challengers]
        best = self.challenger
        lines.append(
            f"planted challenger (truly best rule): {best.name}, true gain "
            f"{best.true_difference:,.2f}, estimated {best.comparison.difference:,.2f}, "
            f"p = {best.comparison.p_value:.3g}"
            + ("" if best.true_difference > 0 else "  (no rule is truly better here)")
        )
        return lines


def half_caps(source: Path, target: Path) -> Path:
    """A candidate folder: every campaign of ``source`` with half its volume cap and budget."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data["campaign_id"] = f"{data['campaign_id']}_half"
        for key in ("volume_cap", "budget"):
            if key in data:
                data[key] = int(data[key]) // 2 if key == "volume_cap" else data[key] / 2
        (target / path.name).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return target


def logged_actions(log: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """The deployed policy as a candidate: every logged unit given its logged campaign."""
    indexed = scores.set_index("customer_id")
    rows = []
    for (offer, channel), part in log.groupby(["offer_type", "channel"]):
        p_response = indexed[f"propensity__{offer}__{channel}"].reindex(part["customer_id"])
        uplift = indexed[f"uplift__{offer}__{channel}"].reindex(part["customer_id"])
        rows.append(
            part[["customer_id", "campaign_id", "offer_type", "channel"]].assign(
                p_response=p_response.to_numpy(), uplift=uplift.to_numpy()
            )
        )
    return pd.concat(rows, ignore_index=True)


def fatigue_aware_value(units: pd.DataFrame, recent: np.ndarray, economics) -> np.ndarray:
    """The models' value of each unit's logged contact after the documented contact fatigue:
    ``m (σ(logit μ1 − λ recent) − μ0) − c`` (the platform's rule, from its own scores)."""
    mu1 = np.clip(units["p_response"].to_numpy(float), 1e-9, 1 - 1e-9)
    mu0 = mu1 - units["uplift"].to_numpy(float)
    tired = 1.0 / (1.0 + np.exp(-(np.log(mu1 / (1 - mu1)) - FATIGUE * recent)))
    column = pd.Index(economics.campaign_id).get_indexer(units["campaign_id"])
    return economics.margin[column] * (tired - mu0) - economics.cost[column]


@dataclass(frozen=True)
class CandidateSetting:
    """The half-caps candidate on the last logged run: what the estimators read (the log,
    its arm design, the candidate's actions over the population) and what the truth says."""

    log: pd.DataFrame
    run_key: str
    day: date
    design: candidate.ArmDesign
    policy: candidate.CandidatePolicy
    population: np.ndarray
    exposure: np.ndarray  # per action: the treated contacts the simulator's fatigue counts
    true_value: np.ndarray  # per action: its TRUE incremental profit
    supported: np.ndarray  # per action: could the logging policy have taken it

    @property
    def options(self) -> dict:
        """The estimators' keyword arguments: economics, units and arm design."""
        return {
            "margin": self.policy.margin, "cost": self.policy.cost,
            "population": self.population, "revealed": self.design.revealed,
            "control_share": self.design.control_share,
        }  # fmt: skip

    def estimates(self, log: pd.DataFrame | None = None) -> dict[str, off_policy.Estimate]:
        """IPS, SNIPS and doubly robust (direct model recalibrated on ``log``, default the
        real one) of the candidate."""
        log = self.log if log is None else log
        actions = direct_model.recalibrated(log, self.policy.actions, recent=self.policy.recent)
        return off_policy.evaluate(log, actions, **self.options)


def exposure_of(customer_ids: np.ndarray, day: date, run_key: str) -> np.ndarray:
    """Each customer's treated contacts the simulator counts for fatigue on ``day`` (every
    other export run in its window): the truth's side, never shown to the estimators."""
    return simulator.recent_contacts(
        customer_ids,
        pd.Series(pd.Timestamp(day), index=range(len(customer_ids))),
        exports_dir=config.exports_dir(),
        exclude_run_key=run_key,
    )


def candidate_setting(home: Path, truth: simulator.WorldTruth) -> CandidateSetting:
    """Target the half-caps candidate on the last logged run and value it with the truth."""
    log, run_key, day = candidate.logged_run()
    folder = targeting_inputs.strategies_folder() / "campaigns"
    deployed = [c for c in candidate.load_candidate(folder) if c.active_on(day)]
    design = candidate.arm_design(log, day, deployed)
    half = candidate.load_candidate(half_caps(folder, home / "candidate_half_caps"))
    policy = candidate.target_candidate(half, day)
    population = candidate.units_of(policy, log)
    ids = policy.actions["customer_id"].to_numpy()
    exposure = exposure_of(ids, day, run_key)
    true_value = policies.action_values(
        truth, policy.actions, targeting_inputs.economics_of(half), recent=exposure
    )
    options = {"margin": policy.margin, "cost": policy.cost, "population": population}
    terms = off_policy.unit_terms(
        log, policy.actions, **options, revealed=design.revealed,
        control_share=design.control_share,
    )  # fmt: skip
    supported = pd.Series(terms.supported, index=population).reindex(ids).to_numpy(bool)
    return CandidateSetting(
        log, run_key, day, design, policy, population, exposure, true_value, supported
    )


@dataclass(frozen=True)
class DesignSpread:
    """How precisely the log's randomisation can measure the candidate at all: the standard
    deviation of doubly robust with the TRUE probabilities as its direct model (its
    residuals are then pure chance: which campaign and arm the log drew, and the outcome's
    draw) over the candidate's supported actions; no estimator that is unbiased whatever
    its models believe does better on this design. Beside it: the same at the best control
    share; the outcome noise of the treated arm alone (the control probabilities known
    exactly, every logged action treated); and the units such a log would need for a
    ±10 % error 95 % of the time at the best share (the value grows with the units, its
    spread with their square root)."""

    matched_actions: int  # candidate actions logged with their offer and channel
    standard_deviation: float  # at the log's own arm probabilities
    best_control_share: float  # the share that minimises it (same campaign draws)
    best_standard_deviation: float
    treated_noise: float  # sd with every logged action treated and p_control known
    true_value: float

    @property
    def relative_standard_deviation(self) -> float:
        """The design's sd over the true value: above 0.051 no unbiased estimate is within
        ±10 % of the truth 95 % of the time on this log."""
        return self.standard_deviation / abs(self.true_value) if self.true_value else float("inf")

    @property
    def units_factor_for_ten_percent(self) -> float:
        """Times the log's units a ±10 % error at 95 % would need, at the best share."""
        if self.true_value == 0:
            return float("inf")
        return float((1.96 * self.best_standard_deviation / (0.1 * abs(self.true_value))) ** 2)

    def describe(self) -> list[str]:
        scale = abs(self.true_value) or float("nan")
        return [
            f"  design: doubly robust with the TRUE probabilities as its model still spreads "
            f"by sd {self.standard_deviation:,.0f} (from its {self.matched_actions:,} logged "
            f"actions; {self.standard_deviation / scale:.2f}× the true value); at "
            f"the best control share ({self.best_control_share:.0%}) "
            f"{self.best_standard_deviation:,.0f}; the treated outcomes' noise alone "
            f"{self.treated_noise:,.0f} ({self.treated_noise / scale:.2f}×)",
            f"  a ±10 % error 95 % of the time needs sd ≤ {0.1 * scale / 1.96:,.0f}: about "
            f"{self.units_factor_for_ten_percent:,.0f}× these units at the best control share",
        ]


def design_spread(setting: CandidateSetting, truth: simulator.WorldTruth) -> DesignSpread:
    """The candidate's :class:`DesignSpread` on the log. An action the log takes with
    probability ``P`` (its campaign draw) and arm probability ``a`` adds
    ``m² (p1 (1 − p1) / (P (1 − a)) + p0 (1 − p0) / (P a))``; summed over the logged ones,
    each divided by ``P`` again, since it stands for ``1 / P`` supported actions (those an
    exploration draw could have reached but did not are not in the log)."""
    from cx_pipelines.source_schema import OFFER_CHANNELS, OFFER_TYPES

    actions, log = setting.policy.actions, setting.log
    rows = truth.positions(actions["customer_id"].to_numpy())
    offers = simulator.codes(actions["offer_type"], OFFER_TYPES, column="offer_type")
    channels = simulator.codes(actions["channel"], OFFER_CHANNELS, column="channel")
    p1 = truth.treated_probability(rows, offers, channels, setting.exposure)
    p0 = truth.control_probability(rows, offers)
    margin = actions["campaign_id"].map(setting.policy.margin).to_numpy(float)
    share = log["campaign_id"].map(setting.design.control_share).to_numpy(float)
    arm = off_policy.arm_probability(log, setting.design.control_share)
    by_customer = pd.DataFrame(
        {"pair": off_policy.pair_keys(log), "campaign": log["selection_probability"] / arm,
         "share": share},
    ).set_index(log["customer_id"].to_numpy())  # fmt: skip
    logged = by_customer.reindex(actions["customer_id"].to_numpy())
    matched = logged["pair"].to_numpy(object) == off_policy.pair_keys(actions).to_numpy(object)
    revealed = off_policy.pair_keys(actions).isin(setting.design.revealed).to_numpy()
    matched &= ~revealed  # an arm fixed earlier is no draw of this run
    drawn, control = logged["campaign"].to_numpy(float), logged["share"].to_numpy(float)
    reach = np.where(matched, drawn, 1.0) ** 2  # 1 / P for the draw, 1 / P for the count
    treated_noise = np.where(matched, margin**2 * p1 * (1 - p1) / reach, 0)
    control_noise = np.where(matched, margin**2 * p0 * (1 - p0) / reach, 0)
    a, b = float(treated_noise.sum()), float(control_noise.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        at_log = np.where(matched, treated_noise / (1 - control) + control_noise / control, 0)
    best = np.sqrt(b) / (np.sqrt(a) + np.sqrt(b)) if a + b > 0 else 0.5
    return DesignSpread(
        matched_actions=int(matched.sum()),
        standard_deviation=float(np.sqrt(at_log.sum())),
        best_control_share=float(best),
        best_standard_deviation=float(np.sqrt(a) + np.sqrt(b)),
        treated_noise=float(np.sqrt(a)),
        true_value=float(setting.true_value.sum()),
    )


def off_policy_figures(home: Path) -> OffPolicyFigures:
    """Evaluate a candidate and the planted challengers on the last logged run."""
    truth = simulator.WorldTruth.load()
    setting = candidate_setting(home, truth)
    log, run_key, day, design = setting.log, setting.run_key, setting.day, setting.design
    arms = {"revealed": design.revealed, "control_share": design.control_share}
    folder = targeting_inputs.strategies_folder() / "campaigns"
    deployed = [c for c in candidate.load_candidate(folder) if c.active_on(day)]
    economics = targeting_inputs.economics_of(deployed)
    margin = dict(zip(economics.campaign_id, economics.margin, strict=True))
    cost = dict(zip(economics.campaign_id, economics.cost, strict=True))
    units = logged_actions(log, warehouse.read_table("customer_scores"))
    unit_recent = exposure_of(units["customer_id"].to_numpy(), day, run_key)
    unit_value = policies.action_values(truth, units, economics, recent=unit_recent)
    # Both policies treat logged units with their logged campaign: only the arm is random.
    arm_log = off_policy.given_assignment(log, design.control_share)
    rules = challenger_rules(units, unit_recent, economics, log["exploration"].to_numpy(bool))
    # doubly robust's direct model recalibrated on the log (the rules keep the scores)
    recent_seen = candidate.recent_contacts_of(units["customer_id"].to_numpy(), day)
    direct = direct_model.recalibrated(log, units, recent=recent_seen)

    def challenger(name: str, keep: np.ndarray) -> Challenger:
        comparison = off_policy.compare(
            arm_log, direct[keep], direct, margin=margin, cost=cost, **arms
        )
        return Challenger(name, comparison, float(-unit_value[~keep].sum()), int((~keep).sum()))

    return OffPolicyFigures(
        run_key=run_key,
        units=len(setting.population),
        candidate_true_value=float(setting.true_value.sum()),
        candidate_true_supported_value=float(setting.true_value[setting.supported].sum()),
        estimates=setting.estimates(),
        challengers=tuple(challenger(name, keep) for name, keep in rules.items() if keep.any()),
        persistent_campaigns=design.persistent_campaigns,
        control_share_logged=float((log["group"] == "control").mean()),
        spread=design_spread(setting, truth),
    )


def challenger_rules(
    units: pd.DataFrame, recent: np.ndarray, economics, explored: np.ndarray
) -> dict[str, np.ndarray]:
    """Deployable rules on the deployed lists: which logged contacts each keeps (from the
    platform's scores, costs and contact history only; unscored pairs have no model value,
    so value rules keep them)."""
    column = pd.Index(economics.campaign_id).get_indexer(units["campaign_id"])
    value = units["uplift"].to_numpy(float) * economics.margin[column] - economics.cost[column]
    window = simulator.FATIGUE_WINDOW_DAYS
    rules = {
        "fatigue-aware value rule": ~(fatigue_aware_value(units, recent, economics) <= 0),
        f"no contact within {window} days of a treated one": recent == 0,
        f"at most one treated contact per {window} days": recent <= 1,
        "value must cover twice the cost": ~(value < economics.cost[column]),
        "no exploration contacts": ~explored,
    }
    for campaign in economics.campaign_id:
        rules[f"stop campaign {campaign}"] = units["campaign_id"].to_numpy() != campaign
    return {name: keep for name, keep in rules.items() if (~keep).any()}


MLFLOW_PATH_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("model_versions", "storage_location"),
    ("logged_models", "artifact_location"),
)
"""Where MLflow's SQLite store holds absolute paths into its CX_HOME."""


def copy_home(prepared: Path, home: Path) -> None:
    """A copy of a prepared CX_HOME (world, sources, models) at ``home``, its MLflow store's
    absolute paths pointed at the copy, so nothing is ever written into ``prepared``."""
    if not (prepared / "world" / "truth.parquet").exists():
        raise SystemExit(f"{prepared} is not a prepared CX_HOME (no world/truth.parquet)")
    shutil.copytree(prepared, home, symlinks=True)
    old, new = str(prepared.resolve()), str(home.resolve())
    with sqlite3.connect(home / "mlflow.db") as connection:
        for table, column in MLFLOW_PATH_COLUMNS:  # fixed names, not input
            statement = f"UPDATE {table} SET {column} = replace({column}, ?, ?)"
            connection.execute(statement, (old, new))


def snapshot_last_log(home: Path, target: Path) -> None:
    """Keep what the off-policy figures read (warehouse, exports, world, sources) as they
    are on the last log, before the models learn from it, for ``--ope-only``."""
    if target.exists():
        shutil.rmtree(target)
    for part in ("warehouse", "exports", "world", "source.db"):
        source = home / part
        if source.is_dir():
            shutil.copytree(source, target / part, symlinks=True)
        elif source.exists():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / part)


def run_seed(
    home: Path, *, customers: int, cycles: int, seed: int, cycle_days: int = 7,
    prepared_home: Path | None = None, keep_last_log: bool = False,
) -> dict:  # fmt: skip
    """One world, one loop; the per-cycle table and the off-policy figures."""
    from cx_pipelines.loop.commands import format_report
    from cx_pipelines.loop.cycle import LoopSettings, environment, prepare, run_loop
    from cx_pipelines.world import generate_world

    began = time.perf_counter()
    if prepared_home is not None:
        copy_home(prepared_home, home)
    with environment(CX_HOME=str(home), DAGSTER_HOME=str(home / "dagster")):
        if prepared_home is None:
            generate_world(customers=customers, seed=seed, source_url=config.source_url())
            prepare()
        prepared = time.perf_counter() - began
        print(f"seed {seed}: world and models ready in {time.perf_counter() - began:.0f} s")
        evaluations = []

        def evaluate_last(figures) -> None:  # on the last log, before the models learn from it
            if figures.cycle == cycles:
                if keep_last_log:
                    snapshot_last_log(home, home.parent / "last-log")
                evaluations.append(off_policy_figures(home))

        report = run_loop(
            LoopSettings(cycles=cycles, seed=seed, policy_seed=seed, cycle_days=cycle_days),
            before_retrain=evaluate_last,
            on_cycle=lambda figures: print(
                f"  cycle {figures.cycle} ({figures.decision_date}): {figures.contacts:,} "
                f"contacts, learned {figures.incremental_profit:,.0f}, oracle "
                f"{figures.oracle_profit:,.0f}, propensity-only {figures.propensity_profit:,.0f}"
                f", random {figures.random_profit:,.0f} (without control groups: oracle "
                f"{figures.oracle_profit_without_controls:,.0f}, propensity-only "
                f"{figures.propensity_profit_without_controls:,.0f}); seconds (wall/CPU) "
                + ", ".join(
                    f"{step} {figures.seconds[step]:.1f}/{figures.seconds[step + '_cpu']:.1f}"
                    for step in ("decide", "respond", "ingest", "measure", "retrain")
                ),
                flush=True,
            ),
        )
        table = report.table()
        print(f"\nseed {seed}: {customers:,} customers, prepared in {prepared:.0f} s")
        print(format_report(table))
        ope = evaluations[0]
        for line in ope.describe():
            print(line, flush=True)
    result = {
        "seed": seed,
        "cycles": table.to_dict(orient="records"),
        **ope_fields(ope),
        "seconds": time.perf_counter() - began,
    }
    (home.parent / "result.json").write_text(json.dumps(result, indent=2, default=str))
    return result


def ope_fields(ope: OffPolicyFigures) -> dict:
    """The off-policy figures of one log as JSON fields."""
    return {
        "ope_relative_error": ope.relative_error,
        "ope_estimates": {name: item.as_dict() for name, item in ope.estimates.items()},
        "ope_true_value": ope.candidate_true_value,
        "ope_true_supported_value": ope.candidate_true_supported_value,
        "ope_units": ope.units,
        "ope_units_for_ten_percent": ope.units_for_ten_percent,
        "challenger_p_value": ope.challenger_p_value,
        "challenger": ope.challenger.comparison.as_dict(),
        "challenger_true_difference": ope.challenger.true_difference,
        "challenger_withdrawn": ope.challenger.withdrawn,
        "challenger_name": ope.challenger.name,
        "challengers": [
            {
                "name": item.name,
                "true_difference": item.true_difference,
                **item.comparison.as_dict(),
            }
            for item in ope.challengers
        ],
        "ope_persistent_campaigns": list(ope.persistent_campaigns),
        "ope_control_share_logged": ope.control_share_logged,
        "ope_design_spread": asdict(ope.spread) if ope.spread else None,
        "ope_design_sd_over_true_value": ope.spread.relative_standard_deviation
        if ope.spread
        else None,
        "ope_design_units_factor_for_ten_percent": ope.spread.units_factor_for_ten_percent
        if ope.spread
        else None,
    }


def summarise(runs: list[dict]) -> dict:
    """Last-cycle figures across seeds, and whether each target is met."""
    last = pd.DataFrame([run["cycles"][-1] for run in runs])
    share = last["oracle_share"].to_numpy(float)
    margin = (last["incremental_profit"] - last["propensity_profit"]).to_numpy(float)
    profit = [sum(cycle["incremental_profit"] for cycle in run["cycles"]) for run in runs]
    oracle = [sum(cycle["oracle_profit"] for cycle in run["cycles"]) for run in runs]
    noise = float(np.std(last["incremental_profit"], ddof=1)) if len(runs) > 1 else float("nan")
    ope_error = [run["ope_relative_error"] for run in runs]
    p_values = [run["challenger_p_value"] for run in runs]
    true_gain = [run["challenger_true_difference"] for run in runs]
    rules = [rule for run in runs for rule in run["challengers"]]
    detected = [rule for rule in rules if rule["p_value"] < 0.05]
    return {
        "seeds": [run["seed"] for run in runs],
        "challenger_rules_tested": len(rules),
        "challenger_rules_p_below_005": len(detected),
        "challenger_rules_detected_with_the_true_sign": sum(
            (rule["difference"] > 0) == (rule["true_difference"] > 0) for rule in detected
        ),
        "challenger_rules_truly_better": sum(rule["true_difference"] > 0 for rule in rules),
        "challenger_intervals_covering_the_truth": sum(
            rule["low"] <= rule["true_difference"] <= rule["high"] for rule in rules
        ),
        "last_cycle_oracle_share": [round(value, 4) for value in share],
        "last_cycle_oracle_share_without_controls": [
            round(value, 4) for value in last["oracle_share_without_controls"]
        ],
        "last_cycle_learned_minus_propensity": [round(value, 2) for value in margin],
        "last_cycle_learned_minus_propensity_without_controls": [
            round(value, 2)
            for value in last["incremental_profit"] - last["propensity_profit_without_controls"]
        ],
        "all_cycles_learned_profit": [round(value, 2) for value in profit],
        "all_cycles_oracle_share": [round(a / b, 4) for a, b in zip(profit, oracle, strict=True)],
        "run_to_run_sd_of_learned_profit": round(noise, 2),
        "ope_relative_error": [round(value, 4) for value in ope_error],
        "planted_challenger": [run["challenger_name"] for run in runs],
        "planted_challenger_p_value": [float(f"{value:.3g}") for value in p_values],
        "planted_challenger_true_gain": [round(value, 2) for value in true_gain],
        "planted_challenger_estimated_gain": [
            round(run["challenger"]["difference"], 2) for run in runs
        ],
        "target_oracle_share_90": bool((share >= 0.9).all()),
        "target_beats_propensity_outside_noise": bool(
            len(runs) > 1 and margin.mean() - 2 * margin.std(ddof=1) / np.sqrt(len(runs)) > 0
        ),
        "target_ope_within_10pct": bool(all(abs(value) <= 0.1 for value in ope_error)),
        "target_challenger_detected": bool(
            all(p < 0.05 for p in p_values) and all(gain > 0 for gain in true_gain)
        ),
        "seconds_per_seed": [round(run["seconds"]) for run in runs],
        "step_seconds_per_cycle": [
            [cycle.get("seconds", {}) for cycle in run["cycles"]] for run in runs
        ],
        "regret_by_cycle": [[regret_summary(cycle) for cycle in run["cycles"]] for run in runs],
    }


def regret_summary(cycle: dict) -> dict:
    """The headline parts of a cycle's regret decomposition (the whole one is in the
    seed's result.json): control holdout, exploration, truly negative contacts, fatigue."""
    split = cycle.get("regret_breakdown") or {}
    if not split:
        return {}
    action = split["by_learned_action"]
    return {
        "regret": split["regret"],
        "holdout_cost": action["control"].get("holdout_cost"),
        "explored_regret": action["explored"]["regret"],
        "explored_contacts": action["explored"]["customers"],
        "negative_contacts_value": split["negative_contacts"]["value"],
        "by_campaign": {name: part["regret"] for name, part in split["by_campaign"].items()},
        "by_recent_contacts": {
            name: part["regret"] for name, part in split["by_recent_contacts"].items()
        },
    }


def run_children(arguments: argparse.Namespace, root: Path) -> list[dict]:
    """Each seed in its own child process, up to ``--jobs`` at once; their results in seed
    order. A child that fails stops the benchmark (the others are waited for first)."""
    waiting, running, failed = list(arguments.seeds), [], []
    while waiting or running:
        while waiting and len(running) < max(1, arguments.jobs):
            seed = waiting.pop(0)
            command = [sys.executable, __file__, "--one-seed", "--seeds", str(seed)]
            command += ["--customers", str(arguments.customers), "--cycles", str(arguments.cycles)]
            command += ["--cycle-days", str(arguments.cycle_days), "--home", str(root)]
            command += ["--from-home", arguments.from_home] if arguments.from_home else []
            command += ["--keep-last-log"] if arguments.keep_last_log else []
            if arguments.challenger:
                command += ["--challenger", arguments.challenger]
                command += ["--challenger-share", str(arguments.challenger_share)]
                if arguments.experiment_control_share is not None:
                    command += ["--experiment-control-share"]
                    command += [str(arguments.experiment_control_share)]
                if arguments.experiment_spending:
                    command += ["--experiment-spending", arguments.experiment_spending]
                if arguments.experiment_horizon:
                    command += ["--experiment-horizon", str(arguments.experiment_horizon)]
            running.append((seed, subprocess.Popen(command)))
        time.sleep(1.0)
        for seed, process in list(running):
            if process.poll() is not None:
                running.remove((seed, process))
                if process.returncode != 0:
                    failed.append((seed, process.returncode))
    if failed:
        raise SystemExit(f"seed process(es) failed (seed, exit code): {failed}")
    return [json.loads((root / f"seed-{s}" / "result.json").read_text()) for s in arguments.seeds]


def run_experiment_seed(
    home: Path, *, customers: int, cycles: int, seed: int, cycle_days: int, challenger: str,
    share: float, prepared: Path | None = None, control_share: float | None = None,
    spending: str | None = None, horizon: int | None = None,
) -> dict:  # fmt: skip
    """One world, one loop run as a live champion/challenger split test with a planted
    challenger arm (``cx_pipelines.loop.live_experiment``); per cycle the arms' TRUE and
    measured incremental profit per customer, the test's p-value and whether it detects."""
    from cx_pipelines.loop.commands import format_report
    from cx_pipelines.loop.cycle import LoopSettings, environment, prepare, run_loop
    from cx_pipelines.world import generate_world

    began = time.perf_counter()
    if prepared is not None:  # a prepared CX_HOME (world and models), copied, never written
        copy_home(prepared, home)
    with environment(CX_HOME=str(home), DAGSTER_HOME=str(home / "dagster")):
        if prepared is None:
            generate_world(customers=customers, seed=seed, source_url=config.source_url())
            prepare()
        print(f"seed {seed}: world and models ready in {time.perf_counter() - began:.0f} s")
        settings = LoopSettings(
            cycles=cycles, seed=seed, policy_seed=seed, cycle_days=cycle_days,
            challenger=challenger, challenger_share=share,
            experiment_control_share=control_share, experiment_spending=spending,
            experiment_horizon=horizon,
        )  # fmt: skip
        so_far: list[dict] = []

        def record(figures) -> None:  # the truth so far, for experiment_tests.py mid-run
            print(figures.describe(), flush=True)
            so_far.append(figures.as_row())
            partial = {"seed": seed, "challenger": challenger, "challenger_share": share}
            partial |= {"experiment_control_share": control_share, "experiment_spending": spending}
            partial |= {"experiment_horizon": horizon}
            partial_file = home.parent / "result.partial.json"
            partial_file.write_text(json.dumps({**partial, "experiment": so_far}, default=str))

        report = run_loop(
            settings,
            on_cycle=lambda f: print(
                f"  cycle {f.cycle} ({f.decision_date}): {f.contacts:,} contacts, both arms "
                f"{f.incremental_profit:,.0f} true, oracle (all customers, full caps) "
                f"{f.oracle_profit:,.0f}; seconds (wall/CPU) "
                + ", ".join(
                    f"{step} {f.seconds.get(step, 0):.1f}/{f.seconds.get(step + '_cpu', 0):.1f}"
                    for step in ("plant", "decide", "respond", "ingest", "measure", "retrain")
                ),
                flush=True,
            ),
            on_experiment=lambda figures: record(figures),
        )
        table = report.table()
        print(f"\nseed {seed}: {customers:,} customers, challenger {challenger!r} at {share:.0%}")
        print(format_report(table))
    experiment = [figures.as_row() for figures in report.experiment]
    result = {
        "seed": seed,
        "challenger": challenger,
        "challenger_share": share,
        "experiment_control_share": control_share,
        "experiment_spending": spending,
        "experiment_horizon": horizon or cycles,
        "cycles": table.to_dict(orient="records"),
        "experiment": experiment,
        "seconds": time.perf_counter() - began,
    }
    (home.parent / "result.json").write_text(json.dumps(result, indent=2, default=str))
    return result


def summarise_experiment(runs: list[dict]) -> dict:
    """Per seed and cycle: the measured and TRUE challenger − champion, p-value, detection."""
    return {
        "challenger": runs[0]["challenger"],
        "challenger_share": runs[0]["challenger_share"],
        "experiment_control_share": runs[0].get("experiment_control_share"),
        "experiment_spending": runs[0].get("experiment_spending") or "obrien_fleming",
        "experiment_horizon": runs[0].get("experiment_horizon"),
        "seeds": [run["seed"] for run in runs],
        "per_cycle": [
            [
                {
                    "cycle": row["cycle"],
                    "true_difference_per_customer": round(row["true_difference"], 4),
                    "measured_difference_per_customer": round(row["measured_difference"], 4),
                    "low": round(row["low"], 4),
                    "high": round(row["high"], 4),
                    "p_value": float(f"{row['p_value']:.3g}"),
                    "z": round(row.get("z", float("nan")), 3),
                    "boundary": round(row.get("boundary", float("nan")), 3),
                    "horizon": row.get("horizon", 0),
                    "detected": row["detected"],
                    "true_per_customer": row["true_profit_per_customer"],
                    "measured_per_customer": row["measured_profit_per_customer"],
                    "customers": row["customers"],
                }
                for row in run["experiment"]
            ]
            for run in runs
        ],
        "last_cycle_p_value": [run["experiment"][-1]["p_value"] for run in runs],
        "last_cycle_true_gain_per_customer": [
            run["experiment"][-1]["true_difference"] for run in runs
        ],
        "target_challenger_detected": bool(
            all(run["experiment"][-1]["detected"] for run in runs)
            and all(run["experiment"][-1]["true_difference"] > 0 for run in runs)
        ),
        "seconds_per_seed": [round(run["seconds"]) for run in runs],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--cycles", type=int, default=6)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--cycle-days", type=int, default=7, help="days between decisions")
    parser.add_argument("--home", help="keep each seed's CX_HOME under this folder")
    parser.add_argument("--jobs", type=int, default=1, help="seeds run at once (one process each)")
    parser.add_argument(
        "--from-home",
        help="copy this prepared CX_HOME (world, sources and models) instead "
        "of generating one; '{seed}' in it is replaced by the seed; it is never written to",
    )
    parser.add_argument(
        "--keep-last-log",
        action="store_true",
        help="keep the last log's warehouse and exports in <home>/seed-N/last-log",
    )
    parser.add_argument("--ope-only", help="off-policy figures of a kept last-log folder only")
    parser.add_argument("--one-seed", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--challenger",
        choices=["true_uplift", "same"],
        help="run the loop as a live split test with this planted challenger arm",
    )
    parser.add_argument("--challenger-share", type=float, default=0.2)
    parser.add_argument(
        "--experiment-control-share",
        type=float,
        help="the experiment file states this hold-out share for every arm and campaign "
        "while it runs (default: each campaign's own control_share)",
    )
    parser.add_argument(
        "--experiment-spending",
        choices=["obrien_fleming", "pocock"],
        help="the spending function the experiment file states with its horizon "
        "(default: obrien_fleming)",
    )
    parser.add_argument(
        "--experiment-horizon",
        type=int,
        help="the looks the experiment file states (default: the cycles); later cycles "
        "still split the customers but are not tested",
    )
    arguments = parser.parse_args(argv)
    if arguments.ope_only:
        from cx_pipelines.loop.cycle import environment

        snapshot = Path(arguments.ope_only).resolve()
        with environment(CX_HOME=str(snapshot)):
            ope = off_policy_figures(snapshot)
        for line in ope.describe():
            print(line, flush=True)
        rules = ope_fields(ope)["challengers"]
        detected = [rule for rule in rules if rule["p_value"] < 0.05]
        counts = {
            "challenger_rules_p_below_005": len(detected),
            "challenger_rules_detected_with_the_true_sign": sum(
                (r["difference"] > 0) == (r["true_difference"] > 0) for r in detected
            ),
            "challenger_intervals_covering_the_truth": sum(
                r["low"] <= r["true_difference"] <= r["high"] for r in rules
            ),
        }
        print(json.dumps({"snapshot": str(snapshot), **counts, **ope_fields(ope)}, default=str))
        return 0
    root = Path(arguments.home or tempfile.mkdtemp(prefix="cx-closed-loop-")).resolve()
    if arguments.challenger:
        return experiment_main(arguments, root)
    if arguments.one_seed:  # a child process: MLflow and Dagster keep process-wide state
        (seed,) = arguments.seeds
        prepared = arguments.from_home
        run_seed(
            root / f"seed-{seed}" / "cx",
            customers=arguments.customers,
            cycles=arguments.cycles,
            seed=seed,
            cycle_days=arguments.cycle_days,
            prepared_home=Path(prepared.replace("{seed}", str(seed))) if prepared else None,
            keep_last_log=arguments.keep_last_log,
        )
        return 0
    runs = run_children(arguments, root)
    summary = {
        "customers": arguments.customers,
        "cycles": arguments.cycles,
        "cycle_days": arguments.cycle_days,
        **summarise(runs),
    }
    print(json.dumps(summary))
    return 0


def experiment_main(arguments: argparse.Namespace, root: Path) -> int:
    """``--challenger``: one child process per seed, then the summary as the last line."""
    if arguments.one_seed:
        (seed,) = arguments.seeds
        prepared = arguments.from_home
        run_experiment_seed(
            root / f"seed-{seed}" / "cx", customers=arguments.customers,
            cycles=arguments.cycles, seed=seed, cycle_days=arguments.cycle_days,
            challenger=arguments.challenger, share=arguments.challenger_share,
            prepared=Path(prepared.replace("{seed}", str(seed))) if prepared else None,
            control_share=arguments.experiment_control_share,
            spending=arguments.experiment_spending, horizon=arguments.experiment_horizon,
        )  # fmt: skip
        return 0
    runs = run_children(arguments, root)
    summary = {"customers": arguments.customers, "cycles": arguments.cycles}
    print(json.dumps({**summary, **summarise_experiment(runs)}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

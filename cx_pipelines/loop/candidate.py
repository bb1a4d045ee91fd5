"""`cx strategy evaluate CANDIDATE`: what a candidate set of campaigns would have earned on
the last logged decision run, estimated off-policy before it is deployed.

The log is ``interaction_results`` (batch decisions matched to their outcomes, with their
``selection_probability``). The candidate (a campaign YAML file or a folder of them) is
targeted with the campaigns package (:func:`cx_pipelines.campaigns.target`: its rules, the
policy strategy's contact policy, the champion models' scores, its caps) over the customers
of that run, on that run's decision date; treating every customer it decides is the
policy evaluated by :mod:`cx_pipelines.loop.off_policy` (IPS, self-normalised IPS, doubly
robust): its value is what the candidate's targeting earns at full deployment.

The units are the whole population that run decided over (not only the logged customers:
see :mod:`cx_pipelines.loop.off_policy`), and the candidate is targeted over all of it, as
it would be once deployed. What the log cannot speak for (candidate actions the logging
policy could never take) is counted and valued by the models, never passed off as measured.

The log's arm design is read from the campaigns that decided it (:func:`arm_design`): a
campaign whose control draw is the same every run (its fixed salt) fixed a customer's arm
the first time it decided the customer, so in a later run that arm is given, not drawn
(:mod:`cx_pipelines.loop.off_policy`, "arms fixed before the run"). Doubly robust's direct
model is the champion scores recalibrated on the log (:mod:`cx_pipelines.loop.direct_model`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from cx_pipelines import warehouse
from cx_pipelines.loop import direct_model, off_policy
from cx_pipelines.loop.targeting_inputs import POLICY_STRATEGY, population_inputs, strategies_folder

RESULTS_TABLE = "interaction_results"
SERVICE_RUN_KEY = "service"


class CandidateError(ValueError):
    """The candidate cannot be evaluated: it does not load, or there is no log to use."""


@dataclass(frozen=True)
class CandidatePolicy:
    """A candidate's treated rows over the logged customers, with its economics."""

    actions: pd.DataFrame  # customer_id, campaign_id, offer_type, channel, p_response, uplift
    population: np.ndarray  # every customer the candidate decided over (the units)
    margin: dict[str, float]
    cost: dict[str, float]
    campaigns: tuple[str, ...]
    recent: np.ndarray  # per action: the customer's recent treated contacts (fatigue feature)


@dataclass(frozen=True)
class CandidateEvaluation:
    """Off-policy estimates of one candidate on one logged run."""

    candidate: str
    run_key: str
    decision_date: str
    logged_decisions: int
    campaigns: tuple[str, ...]
    estimates: dict[str, off_policy.Estimate]

    def describe(self) -> str:
        first = next(iter(self.estimates.values()))
        lines = [
            f"candidate {self.candidate} ({len(self.campaigns)} campaigns active on "
            f"{self.decision_date}) on logged run {self.run_key}: {self.logged_decisions:,} "
            f"logged decisions over {first.units:,} customers; the candidate treats "
            f"{first.treated_units:,} of them, {first.supported_units:,} with an action the "
            "logging policy could have taken",
        ]
        if first.unsupported_units:
            lines.append(
                f"  {first.unsupported_units:,} candidate actions the log could never take "
                f"({first.unsupported_share:.1%} of its predicted value, models' value "
                f"{first.unsupported_direct_value:,.2f}): IPS and SNIPS leave them out, "
                "doubly robust has only the models' value for them"
            )
        lines.append(
            f"  largest weight {first.max_weight:,.1f}, effective sample size "
            f"{first.effective_sample_size:,.0f} (no clipping)"
        )
        lines.append("estimated incremental profit (95% interval):")
        for name, item in self.estimates.items():
            lines.append(
                f"  {name:<14} {item.value:>14,.2f}   [{item.low:,.2f}, {item.high:,.2f}]"
                f"   per customer {item.per_unit:,.4f}   ({item.scope})"
            )
        return "\n".join(lines)

    def as_dict(self) -> dict[str, object]:
        return {
            "candidate": self.candidate,
            "run_key": self.run_key,
            "decision_date": self.decision_date,
            "logged_decisions": self.logged_decisions,
            "campaigns": list(self.campaigns),
            "estimates": {name: item.as_dict() for name, item in self.estimates.items()},
        }


def load_candidate(path: Path) -> list:
    """The candidate's campaigns: one YAML file or every campaign file of a folder."""
    from cx_pipelines.campaigns.catalog import (
        CampaignValidationError,
        check_campaign_file,
        load_campaigns,
    )

    if not path.exists():
        raise CandidateError(f"{path}: no such campaign file or folder")
    if path.is_dir():
        try:
            return load_campaigns(path)
        except CampaignValidationError as error:
            raise CandidateError(f"candidate campaigns do not validate:\n{error}") from None
    campaign, errors = check_campaign_file(path)
    if campaign is None:
        raise CandidateError("\n".join(error.describe() for error in errors))
    return [campaign]


def logged_run(run_key: str | None = None) -> tuple[pd.DataFrame, str, date]:
    """The matched batch decisions of one run (default: the latest), its key and date."""
    if not warehouse.table_exists(RESULTS_TABLE):
        raise CandidateError(
            f"no decision log yet: {RESULTS_TABLE} has not been materialised (run campaigns, "
            "let results come back, then `cx materialize interaction_results`)"
        )
    results = warehouse.read_table(RESULTS_TABLE)
    batch = results[(results["run_key"] != SERVICE_RUN_KEY) & results["run_key"].notna()]
    batch = batch[batch["selection_probability"].notna()]
    if batch.empty:
        raise CandidateError(f"{RESULTS_TABLE} holds no matched batch decisions to evaluate on")
    if run_key is None:
        run_key = str(batch.sort_values("contacted_at")["run_key"].iloc[-1])
    log = batch[batch["run_key"] == run_key]
    if log.empty:
        known = ", ".join(sorted(batch["run_key"].unique())[-5:])
        raise CandidateError(f"run key {run_key!r} is not in {RESULTS_TABLE} (latest: {known})")
    log = log.assign(responded=log["responded"].astype(int)).reset_index(drop=True)
    return log, run_key, pd.Timestamp(log["contacted_at"].min()).date()


@dataclass(frozen=True)
class ArmDesign:
    """How the logged run drew its arms: per campaign its control share, whether the draw
    is persistent (the campaign's fixed salt, the same customers held out every run), and
    the customer–pair arms earlier runs of persistent campaigns had already fixed (a logged
    campaign with no campaign file any more counts as not persistent)."""

    control_share: dict[str, float]
    persistent: dict[str, bool]
    revealed: set[str]

    @property
    def persistent_campaigns(self) -> tuple[str, ...]:
        return tuple(sorted(name for name, fixed in self.persistent.items() if fixed))


def persistent_draws(log: pd.DataFrame, campaigns: list) -> dict[str, bool]:
    """Per campaign: is the logged run's control draw persistent, i.e. is every logged row's
    arm the campaign's fixed-salt draw (:func:`cx_pipelines.campaigns.draws.uniform`
    ``< control_share`` = control)? A draw salted per run would disagree with it on about
    2 × share × (1 − share) of the rows."""
    from cx_pipelines.campaigns.draws import uniform

    persistent = {}
    for campaign in campaigns:
        rows = log[log["campaign_id"] == campaign.campaign_id]
        draw = uniform(rows["customer_id"].to_numpy(), campaign.salt) < campaign.control_share
        logged = (rows["group"] == "control").to_numpy()
        persistent[campaign.campaign_id] = bool(len(rows)) and bool((draw == logged).all())
    return persistent


def arm_design(log: pd.DataFrame, day: date, campaigns: list) -> ArmDesign:
    """The arm design of the logged run of ``day``, from the campaigns that decided it and
    the earlier runs in ``interaction_results``."""
    persistent = persistent_draws(log, campaigns)
    results = warehouse.read_table(RESULTS_TABLE)
    batch = results[(results["run_key"] != SERVICE_RUN_KEY) & results["run_key"].notna()]
    revealed = off_policy.revealed_pairs(batch, persistent, day=pd.Timestamp(day))
    share = {c.campaign_id: float(c.control_share) for c in campaigns}
    return ArmDesign(share, persistent, revealed)


def target_candidate(
    campaigns: list,
    day: date,
    *,
    customer_ids: np.ndarray | None = None,
    strategies_dir: Path | None = None,
) -> CandidatePolicy:
    """Target the candidate on ``day`` as campaign_targets would, over the whole population
    of that day (or only ``customer_ids``)."""
    from cx_pipelines.campaigns.targeting import TargetingSettings, target
    from cx_pipelines.engine import load_strategy
    from cx_pipelines.ml.training_data import recent_treated_contacts

    population, scores, history = population_inputs(day)
    if customer_ids is not None:
        population = population[population["customer_id"].isin(customer_ids)]
    strategy = load_strategy(strategies_folder(strategies_dir) / POLICY_STRATEGY)
    result = target(
        campaigns,
        population.reset_index(drop=True),
        scores,
        history,
        caps=[(cap.channel, cap.max, cap.period_days) for cap in strategy.contact_caps],
        decline_limit=strategy.decline_limit,
        # No exploration: it is the experiment, not the policy, and its draws (salted with
        # the date) are the log's own, so a candidate exploring would share the log's luck.
        settings=TargetingSettings(decision_date=day, exploration_share=0.0),
        strategy_hash=strategy.content_hash,
        model_versions={},
        fingerprint={"candidate": sorted(f"{c.file}@{c.content_hash}" for c in campaigns)},
    )
    # Every decided row is an action: the candidate's own control hold-out is how it would
    # be measured once deployed, not part of what it decides (and its deterministic control
    # draws are the log's own, so its treated rows alone would never meet a logged control).
    columns = ["customer_id", "campaign_id", "offer_type", "channel", "p_response", "uplift"]
    actions = result.targets[columns].reset_index(drop=True)
    return CandidatePolicy(
        actions=actions,
        population=population["customer_id"].to_numpy(),
        margin={c.campaign_id: c.margin_per_response for c in campaigns},
        cost={c.campaign_id: c.cost_per_contact for c in campaigns},
        campaigns=tuple(c.campaign_id for c in campaigns if c.active_on(day)),
        recent=recent_treated_contacts(
            history, actions["customer_id"].to_numpy(), pd.Timestamp(day)
        ),
    )


def recent_contacts_of(customer_ids: np.ndarray, day: date) -> np.ndarray:
    """Each customer's treated contacts in the fatigue feature's window before ``day``, from
    the platform's own contact history (the models' ``recent_treated_contacts`` rule)."""
    from cx_pipelines.campaigns.population import contact_history, service_contacts
    from cx_pipelines.ml.training_data import recent_treated_contacts

    results = warehouse.read_table(RESULTS_TABLE) if warehouse.table_exists(RESULTS_TABLE) else None
    history = contact_history(warehouse.read_table("offer_history"), results, service_contacts())
    return recent_treated_contacts(history, customer_ids, pd.Timestamp(day))


def units_of(policy: CandidatePolicy, log: pd.DataFrame) -> np.ndarray:
    """The units: the population the candidate decided over, and every logged customer."""
    return pd.unique(np.r_[policy.population, log["customer_id"].to_numpy()])


def evaluate_candidate(
    path: Path,
    *,
    run_key: str | None = None,
    bootstrap: int = 0,
    seed: int = 0,
    strategies_dir: Path | None = None,
) -> CandidateEvaluation:
    """Load, target and evaluate the candidate on a logged run."""
    from cx_pipelines.campaigns.catalog import load_campaigns

    campaigns = load_candidate(path)
    log, run_key, day = logged_run(run_key)
    policy = target_candidate(campaigns, day, strategies_dir=strategies_dir)
    deployed = load_campaigns(strategies_folder(strategies_dir) / "campaigns")
    design = arm_design(log, day, [c for c in deployed if c.active_on(day)])
    estimates = off_policy.evaluate(
        log,
        direct_model.recalibrated(log, policy.actions, recent=policy.recent),
        margin=policy.margin,
        cost=policy.cost,
        population=units_of(policy, log),
        bootstrap=bootstrap,
        seed=seed,
        revealed=design.revealed,
        control_share=design.control_share,
    )
    return CandidateEvaluation(
        candidate=str(path),
        run_key=run_key,
        decision_date=day.isoformat(),
        logged_decisions=len(log),
        campaigns=policy.campaigns,
        estimates=estimates,
    )

"""The figures of one loop cycle, scored against the world's truth.

The learned policy is what the platform decided (its export runs' treated rows); the
oracle, random and propensity-only policies (:mod:`cx_pipelines.loop.policies`) decide the
same customers on the same date, with the same eligibility (campaign rules, contact
policy, scored pairs), costs, budgets, volume caps and control groups (the same draw),
through the same optimiser; each also without control groups, beside it. Every
policy is scored with the true incremental profit, including the simulator's contact
fatigue from the contacts the loop has made so far (all policies face the same state).
Where the learned policy loses against the oracle is in ``regret_breakdown``
(:mod:`cx_pipelines.loop.regret`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from cx_pipelines import config
from cx_pipelines.loop import policies, regret
from cx_pipelines.loop.targeting_inputs import TargetingInputs, targeting_inputs
from cx_pipelines.world import simulator


@dataclass
class CycleFigures:
    """One cycle: what was done, what it earned in truth, and what the yardsticks earned."""

    cycle: int
    decision_date: str
    contacts: int
    controls: int
    explored: int
    response_rate: float  # realised, treated contacts
    control_response_rate: float  # realised, randomised controls
    revenue: float  # realised, treated contacts
    incremental_profit: float  # true expected, the learned policy's treated contacts
    oracle_profit: float  # the policies under the campaigns' control groups, as the learned
    random_profit: float
    propensity_profit: float
    oracle_contacts: int
    oracle_profit_without_controls: float  # the policies with every decided row treated
    random_profit_without_controls: float
    propensity_profit_without_controls: float
    retrained: bool = False
    champions: str = ""  # the response models' champion versions after the cycle
    seconds: dict[str, float] = field(default_factory=dict)  # per step: wall and CPU seconds
    regret_breakdown: dict = field(default_factory=dict)  # :func:`regret.regret_breakdown`

    @property
    def regret(self) -> float:
        return self.oracle_profit - self.incremental_profit

    @property
    def oracle_share(self) -> float:
        """Share of the oracle's incremental profit the learned policy captured."""
        return self.incremental_profit / self.oracle_profit if self.oracle_profit else 0.0

    @property
    def oracle_share_without_controls(self) -> float:
        """The same against the oracle that keeps no control group."""
        best = self.oracle_profit_without_controls
        return self.incremental_profit / best if best else 0.0

    def as_row(self) -> dict[str, object]:
        return {
            **asdict(self),
            "regret": self.regret,
            "oracle_share": self.oracle_share,
            "oracle_share_without_controls": self.oracle_share_without_controls,
        }


def _rate(answers: pd.DataFrame, contacts: pd.Series) -> float:
    chosen = answers[answers["contact_id"].isin(contacts)]
    return float((chosen["outcome"] == "responded").mean()) if len(chosen) else 0.0


def learned_value(decisions: pd.DataFrame, increment: np.ndarray, inputs: TargetingInputs) -> float:
    """True incremental profit of the decided treated rows (controls earn and cost nothing)."""
    treated = decisions[decisions["group"] == "treated"]
    rows = pd.Index(inputs.customer_ids).get_indexer(treated["customer_id"].to_numpy())
    columns = pd.Index(inputs.economics.campaign_id).get_indexer(treated["campaign_id"])
    if (rows < 0).any() or (columns < 0).any():
        raise simulator.SimulatorError(
            "decisions name customers or campaigns the yardsticks do not see "
            f"({int((rows < 0).sum())} customers, {int((columns < 0).sum())} campaigns)"
        )
    return float(increment[rows, columns].sum())


def cycle_figures(
    *,
    cycle: int,
    day: date,
    decisions: pd.DataFrame,
    answers: pd.DataFrame,
    truth: simulator.WorldTruth,
    policy_seed: int,
    inputs: TargetingInputs | None = None,
) -> CycleFigures:
    """Score the cycle's decisions and the three yardstick policies with the truth."""
    inputs = inputs or targeting_inputs(day)
    ids = inputs.customer_ids
    run_key = str(decisions["run_key"].iloc[0]) if len(decisions) else ""
    recent = simulator.recent_contacts(
        ids,
        pd.Series(pd.Timestamp(day), index=range(len(ids))),
        exports_dir=config.exports_dir(),
        exclude_run_key=run_key,
    )
    economics = inputs.economics
    increment = policies.true_increment(truth, ids, economics, recent=recent)
    values = {
        "oracle": policies.oracle_values(increment, inputs.eligible),
        "random": policies.random_values(inputs.eligible, seed=policy_seed),
        "propensity": policies.propensity_values(inputs.p_response, economics, inputs.eligible),
    }
    chosen = {
        name: policies.choose_with_controls(value, economics, inputs.control)
        for name, value in values.items()
    }
    earned = {name: policies.choice_value(increment, choice) for name, choice in chosen.items()}
    without_controls = {
        name: policies.choice_value(increment, policies.choose(value, economics))
        for name, value in values.items()
    }
    treated = decisions[decisions["group"] == "treated"] if len(decisions) else decisions
    control = decisions[decisions["group"] == "control"] if len(decisions) else decisions
    treated_answers = answers[answers["contact_id"].isin(treated.get("contact_id", []))]
    return CycleFigures(
        cycle=cycle,
        decision_date=day.isoformat(),
        contacts=len(treated),
        controls=len(control),
        explored=int(decisions["exploration"].sum()) if "exploration" in decisions else 0,
        response_rate=_rate(answers, treated.get("contact_id", pd.Series(dtype=object))),
        control_response_rate=_rate(answers, control.get("contact_id", pd.Series(dtype=object))),
        revenue=float(treated_answers["revenue"].sum()) if len(treated_answers) else 0.0,
        incremental_profit=learned_value(decisions, increment, inputs) if len(decisions) else 0.0,
        oracle_profit=earned["oracle"],
        random_profit=earned["random"],
        propensity_profit=earned["propensity"],
        oracle_contacts=int((chosen["oracle"] >= 0).sum()),
        oracle_profit_without_controls=without_controls["oracle"],
        random_profit_without_controls=without_controls["random"],
        propensity_profit_without_controls=without_controls["propensity"],
        regret_breakdown=regret.regret_breakdown(
            increment=increment,
            oracle_choice=chosen["oracle"],
            decisions=decisions,
            customer_ids=ids,
            economics=economics,
            recent=recent,
            predicted_uplift=inputs.uplift,
        )
        if len(decisions)
        else {},
    )
